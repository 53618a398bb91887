"""The output folder of a Ray run: Parquet parts, a record per finished chunk, and the final manifest.

While a run works, its fingerprint (``job.json``) and one record per finished chunk
(``done-<file>-<chunk>.json``, each written whole) live in a hidden folder beside the target,
``.<name>.t5cls-parts/``. Every part has a deterministic name, so a retried chunk rewrites the
same part. `PartsFolder.finish` checks that every chunk of every file is in and writes the
manifest ``_t5cls.json`` (input files, their parts and counts). Where the parts go, and how the
output appears, depends on the filesystem:

- a local disk: the parts are written into the hidden folder, which gets the manifest and is then
  renamed onto the target; the target never holds a partial result;
- object storage (no rename): the parts are written straight into the target prefix, and the
  manifest is written last. A reader that reads exactly the parts a manifest lists never sees a
  partial output. A new run (not ``--resume``) deletes an earlier manifest before anything else.
"""

from __future__ import annotations

import json
from pathlib import Path

from t5cls import __version__
from t5cls.errors import InputError
from t5cls.io.atomic import replace_folder
from t5cls.io.output import check_same_run
from t5cls.io.paths import check_output_folder, sidecar_name
from t5cls.io.storage import Location

MANIFEST = "_t5cls.json"
JOB_FILE = "job.json"
DONE_PREFIX = "done-"
COUNTS = ("input_rows", "rows", "skipped", "truncated")  # per chunk, summed per file and per run


def part_name(file: int, chunk: int) -> str:
    """Zero-padded so that sorting the names sorts the rows into input order (up to 10^6 files, 10^9 chunks each)."""
    return f"part-{file:06d}-{chunk:09d}.parquet"


def state_folder(output: Location) -> Location:
    """The hidden folder beside ``output`` with the run's fingerprint and records (and, locally, its parts)."""
    return output.sibling(sidecar_name(output.name, "parts"))


def parts_location(output: Location) -> Location:
    """Where the actors write the parts: the hidden folder on a local disk, the target itself in object storage."""
    return state_folder(output) if output.local else output


def check_output(output: Location) -> None:
    """An output folder may be new, an earlier t5cls output, or one an interrupted run is writing; nothing else."""
    state = state_folder(output)  # refuses a bucket itself, before any request to the store
    if output.local:
        check_output_folder(output.path if "://" in output.uri else output.uri, MANIFEST)
        return
    bucket = output.path.split("/")[0]
    if not Location(output.uri, output.filesystem, bucket, output.query).exists():
        raise InputError(f"{output.uri}: bucket {bucket!r} does not exist; create it first or name another -o")
    if output.exists() and not output.child(MANIFEST).exists() and not state.child(JOB_FILE).exists():
        raise InputError(f"{output.uri}: exists and is not a t5cls output folder; remove it or choose another -o")


class PartsFolder:
    """The parts of a run, with the job's fingerprint and a record of each chunk whose part is in place."""

    def __init__(self, output: Location, fingerprint: dict[str, str], resume: bool):
        self.output = output
        self.state = state_folder(output)
        self.parts = parts_location(output)
        self.done: dict[tuple[int, int], dict] = {}
        if resume and self.state.child(JOB_FILE).exists():
            check_same_run(json.loads(self.state.child(JOB_FILE).read_text()), fingerprint, output.uri)
            self.done = {(s["file"], s["chunk"]): s for s in self._recorded()}
            return
        self.state.remove()
        if not output.local:  # the parts are rewritten in place: the old manifest must go first
            output.child(MANIFEST).remove()
            output.remove()
        self.state.make_folder()
        self.state.child(JOB_FILE).write_text(json.dumps(fingerprint, indent=1))

    def _recorded(self) -> list[dict]:
        return [
            json.loads(self.state.child(name).read_text())
            for name in self.state.names()
            if name.startswith(DONE_PREFIX) and name.endswith(".json")
        ]

    def done_chunks(self) -> set[tuple[int, int]]:
        return set(self.done)

    def record(self, summary: dict) -> bool:
        """Record a chunk whose part is in place; False if it was recorded already.

        A chunk may arrive twice: when a node dies, Ray rebuilds the blocks it held by running
        their read task again, which reads the file from its start, so chunks already recorded
        are scored once more. Scoring is deterministic, so the second attempt rewrote the same
        part with the same rows; its summary must match the first.
        """
        key = (summary["file"], summary["chunk"])
        if key in self.done:
            if self.done[key] != summary:
                raise RuntimeError(f"chunk {key} was scored twice with different results")
            return False
        self.done[key] = summary
        self.state.child(f"{DONE_PREFIX}{key[0]:06d}-{key[1]:09d}.json").write_text(json.dumps(summary))
        return True

    def counters(self) -> dict[str, int]:
        return {key: sum(summary[key] for summary in self.done.values()) for key in COUNTS}

    def finish(self, files: list[str]) -> None:
        """Check that every chunk of every file is in, then publish: the manifest last (see the module docstring)."""
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
        keep = {summary["part"] for summary in self.done.values()} | {MANIFEST}
        for name in self.parts.names():  # records, and temporary files of attempts killed mid-write
            if name not in keep:
                self.parts.child(name).remove()
        self.parts.child(MANIFEST).write_text(json.dumps(manifest, indent=1, ensure_ascii=False))
        if self.output.local:
            replace_folder(Path(self.state.path), Path(self.output.path))
        else:
            self.state.remove()


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
