"""The output folder of a Ray run: Parquet parts, a record per finished chunk, and the final manifest.

While a run works, its fingerprint (``job.json``) and one record per finished chunk
(``done-<file>-<chunk>.json``, each written whole) live in a hidden folder beside the target,
``.<name>.t5cls-parts/`` (`t5cls.io.output.parts_folder`, as a local run's). Every part has a
deterministic name, so a retried chunk rewrites the same part. `PartsFolder.finish` checks that
every chunk of every file is in and writes the manifest ``_t5cls.json`` (input files, their parts
and counts, and the rankings if any). Where the parts go, and how the output appears, depends on the filesystem:

- a local disk: the parts are written into the hidden folder, which gets the manifest and is then
  renamed onto the target; the target never holds a partial result;
- object storage (no rename): the parts are written straight into the target prefix, and the
  manifest is written last. A reader that reads exactly the parts a manifest lists never sees a
  partial output. A new run (not ``--resume``) deletes an earlier manifest before anything else.

With rankings (``rank_by``) the scoring pass writes unranked parts into the hidden folder on
either filesystem, and a second pass (`t5cls.run.ray`) writes each part again, ranked, under the
same name, to where the parts are published (`publish_location`): locally a second hidden folder,
``.<name>.t5cls-ranked/``, which gets the manifest and is renamed onto the target; in object
storage the target prefix, the manifest last. Then the unranked parts and records are removed.
The rank pass starts afresh each time, so a run killed during it resumes with the rank pass alone.

What a reader may rely on, either way: the manifest appears last, and the parts it lists are
complete (and ranked, with rankings).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path

from t5cls import __version__
from t5cls.io.atomic import replace_folder
from t5cls.io.output import check_same_run, parts_folder
from t5cls.io.paths import check_output_folder, is_uri, not_an_output_folder, sidecar_name
from t5cls.io.storage import Location
from t5cls.run.ranking import Ranking

MANIFEST = "_t5cls.json"
JOB_FILE = "job.json"
DONE_PREFIX = "done-"
COUNTS = ("input_rows", "rows", "skipped", "truncated")  # per chunk, summed per file and per run


def part_name(file: int, chunk: int) -> str:
    """Zero-padded so that sorting the names sorts the rows into input order (up to 10^6 files, 10^9 chunks each)."""
    return f"part-{file:06d}-{chunk:09d}.parquet"


def ranked_folder(output: Location) -> Location:
    """The hidden folder beside a local ``output`` where the rank pass writes the ranked parts."""
    return output.sibling(sidecar_name(output.name, "ranked"))


def parts_location(output: Location, ranked: bool) -> Location:
    """Where the actors write the parts: the hidden folder on a local disk, or when ranks are still to be added
    (the target never shows an unranked part); else (object storage) the target itself."""
    return parts_folder(output) if output.local or ranked else output


def publish_location(output: Location, ranked: bool) -> Location:
    """Where the finished parts are and the manifest goes: the parts' own location, or with ranks, where the rank
    pass writes them (locally a second hidden folder that is renamed onto the target, else the target itself)."""
    if not ranked:
        return parts_location(output, ranked)
    return ranked_folder(output) if output.local else output


def check_output(output: Location) -> None:
    """An output folder may be new, an earlier t5cls output, or one an interrupted run is writing; nothing else."""
    state = parts_folder(output)  # refuses a bucket itself, before any request to the store
    if output.local:
        check_output_folder(output.path if is_uri(output.uri) else output.uri, MANIFEST)
        return
    output.check_bucket()
    if output.exists() and not output.child(MANIFEST).exists() and not state.child(JOB_FILE).exists():
        raise not_an_output_folder(output.uri)


class PartsFolder:
    """The parts of a run, with the job's fingerprint and a record of each chunk whose part is in place.

    With ``rankings`` the parts are unranked until the rank pass has written them again to `published`.
    """

    def __init__(self, output: Location, fingerprint: dict[str, str], resume: bool, rankings: Sequence[Ranking] = ()):
        self.output = output
        self.rankings = tuple(rankings)
        self.state = parts_folder(output)
        self.parts = parts_location(output, bool(self.rankings))
        self.published = publish_location(output, bool(self.rankings))
        self.done: dict[tuple[int, int], dict] = {}
        if resume and self.state.child(JOB_FILE).exists():
            check_same_run(json.loads(self.state.child(JOB_FILE).read_text()), fingerprint, output.uri)
            self.done = {(s["file"], s["chunk"]): s for s in self._recorded()}
            return
        self.state.remove()
        if output.local:  # what a killed ranked run left
            ranked_folder(output).remove()
        else:  # the parts are rewritten in place: the old manifest must go first
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

    def part_names(self) -> list[str]:
        """The recorded parts in input order (files in listing order, then chunks): the output read as one table."""
        return [summary["part"] for _, summary in sorted(self.done.items())]

    def check_complete(self, files: list[str]) -> list[dict]:
        """Every chunk of every file must be in, in sequence; returns each file's entry of the manifest."""
        by_file: dict[int, list[dict]] = {index: [] for index in range(len(files))}
        for (file, _), summary in sorted(self.done.items()):
            by_file[file].append(summary)
        return [_file_entry(path, by_file[index]) for index, path in enumerate(files)]

    def begin_rank_pass(self) -> Location:
        """Make `published` ready for the ranked parts and return it; every rank pass starts afresh.

        Locally: an empty hidden folder. In object storage: the target, its manifest (if a run was
        killed just after writing it) removed before any part is written again.
        """
        if self.output.local:
            self.published.remove()
            self.published.make_folder()
        else:
            self.published.child(MANIFEST).remove()
        return self.published

    def finish(self, files: list[str]) -> None:
        """Check that every chunk of every file is in, then publish: the manifest last (see the module docstring)."""
        inputs = self.check_complete(files)
        any_summary = next(iter(self.done.values()))
        manifest = {
            "t5cls_version": __version__,
            "metadata": json.loads(any_summary["provenance"]),
            "inputs": inputs,
            **self.counters(),
        }
        if self.rankings:
            manifest["rankings"] = [asdict(ranking) for ranking in self.rankings]
        keep = set(self.part_names()) | {MANIFEST}
        for name in self.published.names():  # records, and temporary files of attempts killed mid-write
            if name not in keep:
                self.published.child(name).remove()
        self.published.child(MANIFEST).write_text(json.dumps(manifest, indent=1, ensure_ascii=False))
        if self.output.local:
            replace_folder(Path(self.published.path), Path(self.output.path))
        self.state.remove()  # gone already if it was the folder published


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
