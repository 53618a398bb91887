"""Incremental writers for scored chunks: CSV, JSONL and Parquet, to a file or to stdout.

Each writer takes `pyarrow.Table` chunks one at a time, so memory does not grow with the file.
A row is always written the same way whatever chunk it is in, which is what lets a resumed
run produce the same bytes as an uninterrupted one.
"""

from __future__ import annotations

import csv
import json
import math
from typing import BinaryIO, Protocol

import pyarrow as pa
import pyarrow.parquet as pq

from t5cls.errors import InputError


class ChunkWriter(Protocol):
    def write(self, table: pa.Table) -> None: ...

    def close(self) -> None: ...


class CsvWriter:
    """RFC 4180 CSV with ``\\n`` line ends; floats in shortest round-trip form, nulls empty."""

    def __init__(self, stream: BinaryIO, header: bool = True):
        self.stream = stream
        self.header = header

    def write(self, table: pa.Table) -> None:
        buffer = _TextBuffer()
        writer = csv.writer(buffer, lineterminator="\n")
        if self.header:
            writer.writerow(table.column_names)
            self.header = False
        columns = [[_csv_value(v) for v in column.to_pylist()] for column in table.columns]
        writer.writerows(zip(*columns))
        self.stream.write(buffer.getvalue().encode("utf-8"))
        self.stream.flush()

    def close(self) -> None:
        self.stream.flush()


class JsonlWriter:
    """One JSON object per line, keys in column order, unicode kept as is."""

    def __init__(self, stream: BinaryIO):
        self.stream = stream

    def write(self, table: pa.Table) -> None:
        lines = [json.dumps(row, ensure_ascii=False, default=str) + "\n" for row in table.to_pylist()]
        self.stream.write("".join(lines).encode("utf-8"))
        self.stream.flush()

    def close(self) -> None:
        self.stream.flush()


class ParquetChunkWriter:
    """A Parquet file written one row group per chunk; the footer is written on `close`."""

    def __init__(self, sink, metadata: dict[str, str] | None = None):
        self.sink = sink
        self.metadata = metadata or {}
        self.writer: pq.ParquetWriter | None = None

    def write(self, table: pa.Table) -> None:
        if self.writer is None:
            schema = table.schema.with_metadata({**(table.schema.metadata or {}), **_encode(self.metadata)})
            self.writer = pq.ParquetWriter(self.sink, schema)
        elif table.schema != self.writer.schema:
            table = _cast_like(table, self.writer.schema)
        self.writer.write_table(table)

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


def open_writer(
    fmt: str, stream: BinaryIO, *, header: bool = True, metadata: dict[str, str] | None = None
) -> ChunkWriter:
    """A writer of ``fmt`` on an open binary stream."""
    if fmt == "csv":
        return CsvWriter(stream, header=header)
    if fmt == "jsonl":
        return JsonlWriter(stream)
    return ParquetChunkWriter(stream, metadata)


def _csv_value(value) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return repr(value) if math.isfinite(value) else str(value)
    return str(value)


def _encode(metadata: dict[str, str]) -> dict[bytes, bytes]:
    return {key.encode(): value.encode() for key, value in metadata.items()}


def _cast_like(table: pa.Table, schema: pa.Schema) -> pa.Table:
    """Give a later chunk the first chunk's schema (JSONL chunks infer types independently)."""
    try:
        return table.select(schema.names).cast(schema.remove_metadata()).replace_schema_metadata(schema.metadata)
    except (pa.ArrowInvalid, pa.ArrowTypeError, KeyError) as err:
        raise InputError(
            f"column types change between chunks of the input ({err}); make each column one type"
        ) from None


class _TextBuffer(list):
    """The cheapest text sink for `csv.writer`: collects the strings it writes."""

    write = list.append

    def getvalue(self) -> str:
        return "".join(self)
