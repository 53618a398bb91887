"""The output folder of a Ray run: Parquet parts, a log of finished chunks, and the final manifest.

While a run works, its parts go to a hidden folder beside the target, ``.<name>.t5cls-parts/``,
with the run's fingerprint (``job.json``) and one log line per finished chunk (``done.jsonl``).
`PartsFolder.finish` checks that every chunk of every file is in, writes ``_t5cls.json`` (input
files, their parts and counts) and moves the folder onto the target, which so never holds a
partial result.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterable
from pathlib import Path

from t5cls import __version__
from t5cls.io.atomic import replace_folder, write_text_atomically
from t5cls.io.output import check_same_run

MANIFEST = "_t5cls.json"
JOB_FILE = "job.json"
DONE_FILE = "done.jsonl"
COUNTS = ("input_rows", "rows", "skipped", "truncated")  # per chunk, summed per file and per run


def part_name(file: int, chunk: int) -> str:
    """Zero-padded so that sorting the names sorts the rows into input order (up to 10^6 files, 10^9 chunks each)."""
    return f"part-{file:06d}-{chunk:09d}.parquet"


class PartsFolder:
    """The hidden folder of parts, with the job's fingerprint and a log of the chunks recorded."""

    def __init__(self, path: Path, fingerprint: dict[str, str], resume: bool):
        self.path = path
        self.done: dict[tuple[int, int], dict] = {}
        if resume and (path / JOB_FILE).exists():
            check_same_run(json.loads((path / JOB_FILE).read_text()), fingerprint, path)
            self.done = {(s["file"], s["chunk"]): s for s in _logged_summaries(path / DONE_FILE)}
            _rewrite_log(path / DONE_FILE, self.done.values())  # without a cut-short last line to append after
            return
        if path.exists():
            shutil.rmtree(path)
        path.mkdir()
        write_text_atomically(path / JOB_FILE, json.dumps(fingerprint, indent=1))
        (path / DONE_FILE).touch()

    def done_chunks(self) -> set[tuple[int, int]]:
        return set(self.done)

    def record(self, summary: dict) -> None:
        """Log a chunk whose part is in place (a retried chunk arrives once: Ray drops failed attempts)."""
        key = (summary["file"], summary["chunk"])
        if key in self.done:
            raise RuntimeError(f"chunk {key} reported twice")
        self.done[key] = summary
        with open(self.path / DONE_FILE, "a") as log:
            log.write(json.dumps(summary) + "\n")

    def counters(self) -> dict[str, int]:
        return {key: sum(summary[key] for summary in self.done.values()) for key in COUNTS}

    def finish(self, files: list[str], output: Path) -> None:
        """Check that every chunk of every file is in, write the manifest, and move the folder onto ``output``."""
        by_file: dict[int, list[dict]] = {index: [] for index in range(len(files))}
        for (file, _), summary in sorted(self.done.items()):
            by_file[file].append(summary)
        inputs = [_file_entry(path, by_file[index]) for index, path in enumerate(files)]
        any_summary = next(iter(self.done.values()))
        manifest = {
            "t5cls_version": __version__,
            "metadata": json.loads(any_summary["provenance"]),
            "inputs": inputs,
            **self.counters(),
        }
        write_text_atomically(self.path / MANIFEST, json.dumps(manifest, indent=1, ensure_ascii=False))
        keep = {summary["part"] for summary in self.done.values()} | {MANIFEST}
        for entry in self.path.iterdir():  # the log, and temporary files of attempts killed mid-write
            if entry.name not in keep:
                entry.unlink()
        replace_folder(self.path, output)


def _file_entry(path: str, summaries: list[dict]) -> dict:
    """A file's line in the manifest, once its chunks are checked to be complete and in sequence."""
    expected_row = 0
    for position, summary in enumerate(summaries):
        if summary["chunk"] != position or summary["first_row"] != expected_row:
            raise RuntimeError(f"{path}: chunk {position} is missing from the Ray run's results")
        expected_row += summary["input_rows"]
    if not summaries or not summaries[-1]["last"]:
        raise RuntimeError(f"{path}: the last chunk is missing from the Ray run's results")
    return {
        "path": path,
        "parts": [s["part"] for s in summaries],
        **{key: sum(s[key] for s in summaries) for key in COUNTS},
    }


def _logged_summaries(log: Path) -> list[dict]:
    """The chunks a log records; a last line cut short by a kill is dropped (its chunk is scored again)."""
    summaries = []
    for line in log.read_text().splitlines():
        try:
            summaries.append(json.loads(line))
        except json.JSONDecodeError:
            break
    return summaries


def _rewrite_log(log: Path, summaries: Iterable[dict]) -> None:
    write_text_atomically(log, "".join(json.dumps(s) + "\n" for s in summaries))
