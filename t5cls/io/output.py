"""Where scored chunks go: stdout as they come, a file that appears only when complete, or memory (frames).

A file output is written as numbered part files in a hidden folder beside the target,
``.<name>.t5cls-parts/``, with a ``checkpoint.json`` that lists the finished parts and the
fingerprint of the run (input file, model, labels, template, options). The target is a local path
or a URI (`t5cls.io.storage.Location`); parts and checkpoint are each written whole (locally: to a
temporary name, then renamed; in object storage: in one upload), so a SIGKILL at any moment leaves
a consistent checkpoint. When the input is exhausted the parts are joined:

- on a local disk into the fixed temporary ``.<name>.t5cls-tmp`` beside the target, renamed onto
  it: the target path never holds a partial file;
- in object storage (Parquet only: `t5cls.run.plan`) streamed, a row group at a time, into one
  upload to the target, which the store shows only when the upload completes; a killed process
  never completes it. A join that raises discards the Parquet writer (no footer) and deletes at
  once the object that closing the upload may have completed; the parts stay for ``--resume``.
  So a Parquet object at the target is complete, and during a run only the hidden prefix holds
  objects (HDFS shows a file while it is written: there the prefix's removal marks the end).

Then the hidden folder is removed. A FIFO or device output is written as it comes, like stdout
(`t5cls.io.paths.is_stream`).
"""

from __future__ import annotations

import contextlib
import json
import sys
from pathlib import Path
from typing import ClassVar

import pyarrow as pa
import pyarrow.parquet as pq

from t5cls.errors import T5clsError
from t5cls.io.oserrors import filesystem_errors
from t5cls.io.paths import sidecar_name
from t5cls.io.resume_check import check_same_run
from t5cls.io.storage import Location
from t5cls.io.writers import ChunkWriter, open_writer

CHECKPOINT = "checkpoint.json"


def parts_folder(target: Location) -> Location:
    """The hidden folder beside ``target``, ``.<name>.t5cls-parts/``, that holds a run's parts and its record of them:
    the checkpoint of a local run, the records of a Ray run (`t5cls.run.manifest`)."""
    return target.sibling(sidecar_name(target.name, "parts"))


class StdoutOutput:
    """Write chunks straight to stdout, or to a FIFO or device opened as ``> path`` would (no resume: a stream
    cannot be rewound)."""

    rows_done_before = 0
    counters_before: ClassVar[dict[str, int]] = {}

    def __init__(self, fmt: str, schema: pa.Schema, metadata: dict[str, str], path: str | None = None):
        self.description = path or "stdout"
        self.format, self.schema, self.metadata = fmt, schema, metadata
        self.writer: ChunkWriter | None = None
        with filesystem_errors(self.description):
            self.stream = sys.stdout.buffer if path is None else open(path, "wb")  # noqa: SIM115 (closed in finish)

    def _opened_writer(self) -> ChunkWriter:
        """The writer, opened with the first chunk: a run whose first chunk fails (a bad row, a damaged file)
        writes nothing, not even the CSV header that ``> out.csv`` would keep as a file of no rows."""
        if self.writer is None:
            self.writer = open_writer(self.format, self.stream, self.schema, metadata=self.metadata)
        return self.writer

    def write_chunk(self, table: pa.Table, input_rows: int, counters: dict[str, int]) -> None:
        with filesystem_errors(self.description):
            self._opened_writer().write(table)

    def finish(self) -> None:
        with filesystem_errors(self.description):
            self._opened_writer().close()  # an input of no rows still gets its header (or empty Parquet file)
            self._close()

    def abort(self) -> None:
        """After a failure: no Parquet footer, so what reached the stream is not mistaken for a whole file."""
        if self.writer is not None:
            self.writer.discard()
        self._close()

    def _close(self) -> None:
        if self.stream is not sys.stdout.buffer:
            self.stream.close()


class TableOutput:
    """Keep chunks in memory, only ``schema``'s columns of each (a frame's scores), for `table` at the end."""

    rows_done_before = 0
    counters_before: ClassVar[dict[str, int]] = {}

    def __init__(self, schema: pa.Schema, description: str):
        self.schema = schema
        self.description = description
        self.chunks: list[pa.Table] = []

    def write_chunk(self, table: pa.Table, input_rows: int, counters: dict[str, int]) -> None:
        self.chunks.append(table.select(self.schema.names))

    def finish(self) -> None:
        pass

    def abort(self) -> None:
        self.chunks.clear()

    def table(self) -> pa.Table:
        """Every chunk's rows, in order (zero rows with ``schema`` when there were none)."""
        return pa.concat_tables(self.chunks) if self.chunks else self.schema.empty_table()


class FileOutput:
    """Atomic, resumable output to ``path`` (a local path or a URI) through checkpointed part files of ``schema``."""

    def __init__(
        self,
        path: str,
        fmt: str,
        schema: pa.Schema,
        fingerprint: dict[str, str],
        metadata: dict[str, str],
        resume: bool,
    ):
        self.target = Location.of(path)
        self.fmt = fmt
        self.schema = schema
        self.metadata = metadata
        self.description = path
        self.parts_dir = parts_folder(self.target)
        self.fingerprint = fingerprint
        with filesystem_errors(self.parts_dir.uri, resumable=resume):
            self.state = self._load_or_start(fingerprint, resume)

    @property
    def rows_done_before(self) -> int:
        """Input rows already scored by earlier runs (to skip on resume)."""
        return sum(part["input_rows"] for part in self.state["parts"])

    @property
    def counters_before(self) -> dict[str, int]:
        return dict(self.state["counters"])

    def _load_or_start(self, fingerprint: dict[str, str], resume: bool) -> dict:
        checkpoint = self.parts_dir.child(CHECKPOINT)
        if resume and checkpoint.exists():
            state = json.loads(checkpoint.read_text())
            shown = Path(self.description) if self.target.local else self.target.uri
            check_same_run(state["fingerprint"], fingerprint, shown, len(state["parts"]))
            self._remove_unlisted_parts(state)
            return state
        self.parts_dir.remove()
        self.parts_dir.prepare_folder()
        state = {"fingerprint": fingerprint, "parts": [], "counters": {}}
        self._save(state)
        return state

    def _remove_unlisted_parts(self, state: dict) -> None:
        """Drop a part that was written but never recorded (killed in between)."""
        listed = {part["file"] for part in state["parts"]} | {CHECKPOINT}
        for name in self.parts_dir.names():
            if name not in listed:
                self.parts_dir.child(name).remove()

    def write_chunk(self, table: pa.Table, input_rows: int, counters: dict[str, int]) -> None:
        """Write one finished chunk as a part, then record it in the checkpoint."""
        name = f"part-{len(self.state['parts']):06d}.{self.fmt}"
        header = not self.state["parts"]
        part = {"file": name, "input_rows": input_rows, "rows": table.num_rows}
        state = {**self.state, "parts": [*self.state["parts"], part], "counters": counters}
        target = self.parts_dir.child(name)
        with filesystem_errors(target.uri, resumable=True):
            target.write(lambda stream: self._write(stream, [table], header))
            self._save(state)
        self.state = state

    def _write(self, stream, tables, header: bool = True) -> None:
        writer = open_writer(self.fmt, stream, self.schema, header=header, metadata=self.metadata)
        try:
            for table in tables:
                writer.write(table)
        except BaseException:
            writer.discard()
            raise
        writer.close()

    def _save(self, state: dict) -> None:
        self.parts_dir.child(CHECKPOINT).write_text(json.dumps(state, indent=1))

    def finish(self) -> None:
        """Join the parts into the target (see the module docstring), then drop the parts and the checkpoint."""
        parts = [self.parts_dir.child(part["file"]) for part in self.state["parts"]]

        def concatenate(sink) -> None:
            if self.fmt == "parquet" or not parts:  # no parts: the schema's empty file (a CSV header)
                self._write(sink, _parquet_row_groups(parts))
                return
            for part in parts:
                part.read_bytes_into(sink)

        with filesystem_errors(self.description, resumable=True):
            self.target.write(concatenate, streamed=True)
            self.parts_dir.remove()

    def abort(self) -> None:
        """After a failure: finished parts stay for ``--resume``; a folder without any is removed."""
        if not self.state["parts"]:
            with contextlib.suppress(OSError, T5clsError):
                self.parts_dir.remove()


def _parquet_row_groups(parts: list[Location]):
    """Every row group of every Parquet part, in order, one at a time."""
    for part in parts:
        with pq.ParquetFile(part.path, filesystem=part.filesystem) as source:
            for group in range(source.num_row_groups):
                yield source.read_row_group(group)
