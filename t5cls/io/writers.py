"""Incremental writers for scored chunks: CSV, JSONL and Parquet, to a file or to stdout.

Each writer is made with the run's output schema, known before the first row is scored, and
takes `pyarrow.Table` chunks of that schema one at a time, so memory does not grow with the file
and zero rows are a complete output too (a CSV header, an empty JSONL file, a Parquet file with
the schema). A row is always written the same way whatever chunk it is in, which is what lets a
resumed run produce the same bytes as an uninterrupted one.
"""

from __future__ import annotations

import json
import math
from typing import BinaryIO, Protocol

import pyarrow as pa
import pyarrow.parquet as pq

from t5cls.io.schemas import column_texts, conform


class ChunkWriter(Protocol):
    def write(self, table: pa.Table) -> None: ...

    def close(self) -> None: ...

    def discard(self) -> None: ...


class CsvWriter:
    """RFC 4180 CSV with ``\\n`` line ends; floats in shortest round-trip form, nulls empty, nested values as JSON.

    Fields are quoted here rather than by `csv.writer`: with ``\\n`` line ends it leaves a bare
    ``\\r`` unquoted, which every CSV reader then takes for a line break.
    """

    def __init__(self, stream: BinaryIO, schema: pa.Schema, header: bool = True):
        self.stream = stream
        self.schema = schema
        if header:
            self._write_rows([schema.names])

    def write(self, table: pa.Table) -> None:
        table = conform(table, self.schema)
        self._write_rows(zip(*(_csv_texts(column) for column in table.columns)))

    def _write_rows(self, rows) -> None:
        text = "".join(",".join(map(_csv_field, row)) + "\n" for row in rows)
        self.stream.write(text.encode("utf-8"))
        self.stream.flush()

    def close(self) -> None:
        self.stream.flush()

    def discard(self) -> None:
        """Stop after a failure; what was written stays written (a stream cannot take it back)."""


class JsonlWriter:
    """One JSON object per line, keys in column order, unicode kept as is; JSON-typed columns as their JSON values."""

    def __init__(self, stream: BinaryIO, schema: pa.Schema):
        self.stream = stream
        self.schema = schema
        self.json_columns = [field.name for field in schema if field.type == pa.json_()]

    def write(self, table: pa.Table) -> None:
        rows = conform(table, self.schema).to_pylist()
        for row in rows if self.json_columns else ():
            for name in self.json_columns:
                row[name] = None if row[name] is None else json.loads(row[name])
        self.stream.write("".join(json.dumps(row, ensure_ascii=False, default=str) + "\n" for row in rows).encode())
        self.stream.flush()

    def close(self) -> None:
        self.stream.flush()

    def discard(self) -> None:
        """Stop after a failure; what was written stays written."""


class ParquetChunkWriter:
    """A Parquet file of ``schema`` (plus ``metadata``), written one row group per chunk; the footer on `close`."""

    def __init__(self, sink, schema: pa.Schema, metadata: dict[str, str] | None = None):
        self.schema = schema.with_metadata({**(schema.metadata or {}), **_encode(metadata or {})})
        self.writer = pq.ParquetWriter(sink, self.schema)

    def write(self, table: pa.Table) -> None:
        table = conform(table, self.schema)
        if table.num_rows:
            self.writer.write_table(table)

    def close(self) -> None:
        self.writer.close()

    def discard(self) -> None:
        """Stop after a failure without writing the footer, so a half-written stream is not a valid Parquet file.

        ``is_open`` is what `pyarrow.parquet.ParquetWriter` checks before closing itself when
        garbage-collected (which would otherwise write the footer late, or fail on a closed file).
        """
        self.writer.is_open = False


def open_writer(
    fmt: str, stream: BinaryIO, schema: pa.Schema, *, header: bool = True, metadata: dict[str, str] | None = None
) -> ChunkWriter:
    """A writer of ``fmt`` on an open binary stream, for tables of ``schema``."""
    if fmt == "csv":
        return CsvWriter(stream, schema, header=header)
    if fmt == "jsonl":
        return JsonlWriter(stream, schema)
    return ParquetChunkWriter(stream, schema, metadata)


def _csv_texts(column: pa.ChunkedArray) -> list[str]:
    """A column's values as CSV text; a JSON-typed column's as their JSON text (a JSON string as itself)."""
    if column.type == pa.json_():
        return ["" if text is None else text for text in column_texts(column)]
    return [_csv_value(value) for value in column.to_pylist()]


def _csv_value(value) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):  # as JSON and Arrow's CSV writer spell it, not Python's True
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value) if math.isfinite(value) else str(value)
    if isinstance(value, (dict, list)):
        return json.dumps(value, ensure_ascii=False, default=str)
    return str(value)


def _csv_field(value: str) -> str:
    """A field as RFC 4180 writes it: quoted, quotes doubled, when it holds a comma, a quote or a line break."""
    if "," in value or '"' in value or "\n" in value or "\r" in value:
        return '"' + value.replace('"', '""') + '"'
    return value


def _encode(metadata: dict[str, str]) -> dict[bytes, bytes]:
    return {key.encode(): value.encode() for key, value in metadata.items()}
