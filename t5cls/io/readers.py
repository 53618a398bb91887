"""Streaming readers: CSV, JSONL or Parquet (a path, or ``-`` for stdin) in fixed-size row chunks.

Every reader yields `pyarrow.Table` chunks of exactly ``chunk_rows`` rows (the last may be
shorter), so a resumed run cuts the file at the same rows as the first run did.

CSV is parsed with the standard library's `csv` module rather than pyarrow's streaming reader:
pyarrow silently swallows the rest of the file into one value after an unclosed quote and cannot
report line numbers when values contain newlines, and both matter more here than parse speed
(the model is orders of magnitude slower than either parser). Every CSV value is read as text, so
``007``, ``NA`` and dates come back byte for byte.
"""

from __future__ import annotations

import csv
import io
import json
import sys
from collections.abc import Iterator
from dataclasses import dataclass

import pyarrow as pa
import pyarrow.parquet as pq

from t5cls.errors import InputError
from t5cls.io.formats import input_format
from t5cls.io.paths import existing_file

# Rows per chunk when a whole file is scanned rather than scored (eval, inspect, ranks, dev sets).
SCAN_CHUNK_ROWS = 10_000
csv.field_size_limit(sys.maxsize)


@dataclass
class InputSource:
    """An opened input: its column names, row count when known, and a chunk iterator.

    The chunks can be read once. `close` releases the file (stdin stays open).
    """

    path: str
    format: str
    columns: list[str]
    total_rows: int | None
    chunks: Iterator[pa.Table]
    empty: pa.Table  # zero rows with the input's columns, for an input without data rows
    stream: object = None  # the open file, closed by `close`

    def close(self) -> None:
        close = getattr(self.chunks, "close", None)
        if close is not None:
            close()
        if self.stream is not None and self.path != "-":
            self.stream.close()


def open_input(path: str, chunk_rows: int, fmt: str | None = None) -> InputSource:
    """Open ``path`` (a local path, a URI pyarrow understands, or ``-`` for stdin) and read its columns."""
    fmt = input_format(path, fmt)
    try:
        if path == "-":
            stream = sys.stdin.buffer
        else:
            filesystem, inner = existing_file(path)
            if fmt == "parquet":
                return _open_parquet(path, filesystem.open_input_file(inner), chunk_rows)
            stream = filesystem.open_input_stream(inner, compression="detect")
    except OSError as err:
        raise InputError(f"{path}: cannot read ({err.strerror or err})") from err
    if fmt == "csv":
        return _open_csv(path, stream, chunk_rows)
    return _open_jsonl(path, stream, chunk_rows)


def _open_parquet(path: str, source: pa.NativeFile, chunk_rows: int) -> InputSource:
    try:
        parquet = pq.ParquetFile(source)
    except (pa.ArrowException, OSError) as err:
        raise InputError(f"{path}: not a readable Parquet file ({err})") from err
    chunks = (pa.Table.from_batches([batch]) for batch in parquet.iter_batches(batch_size=chunk_rows))
    schema = parquet.schema_arrow
    return InputSource(path, "parquet", schema.names, parquet.metadata.num_rows, chunks, schema.empty_table(), source)


def _open_csv(path: str, stream, chunk_rows: int) -> InputSource:
    text = io.TextIOWrapper(stream, encoding="utf-8-sig", errors="surrogateescape", newline="")
    reader = csv.reader(text, strict=True)
    try:
        header = next(reader)
    except StopIteration:
        raise InputError(f"{path}: empty CSV file (no header row)") from None
    except csv.Error as err:
        raise InputError(f"{path}: line 1: {_csv_problem(err)}") from None
    _check_utf8(path, 1, header, header)
    _check_unique(path, header)
    chunks = _csv_chunks(path, reader, header, chunk_rows)
    return InputSource(path, "csv", header, None, chunks, _string_table(header, [[] for _ in header]), stream)


def _csv_chunks(path: str, reader, header: list[str], chunk_rows: int) -> Iterator[pa.Table]:
    """Group CSV records into chunks of string columns, checking each record's width."""
    width = len(header)
    columns: list[list[str]] = [[] for _ in header]
    while True:
        first_line = reader.line_num + 1
        try:
            record = next(reader, None)
        except csv.Error as err:
            raise InputError(f"{path}: line {first_line}: {_csv_problem(err)}") from None
        if record is None:
            break
        _check_utf8(path, first_line, record, header)
        if len(record) != width:
            if not record:  # a blank line carries no row
                continue
            raise InputError(
                f"{path}: line {reader.line_num}: expected {width} fields like the header, got {len(record)}"
            )
        for column, value in zip(columns, record):
            column.append(value)
        if len(columns[0]) == chunk_rows:
            yield _string_table(header, columns)
            columns = [[] for _ in header]
    if columns[0]:
        yield _string_table(header, columns)


def _csv_problem(err: csv.Error) -> str:
    message = str(err)
    if "unexpected end of data" in message or "EOF" in message:
        return "unclosed quote: the quoted value that starts here runs to the end of the file"
    return f"malformed CSV ({message})"


NOT_UTF8 = "bytes that are not UTF-8; convert the file, e.g. iconv -f latin1 -t utf-8"


def _has_bad_bytes(value: str) -> bool:
    """True when undecodable bytes came through ``surrogateescape`` as lone surrogates."""
    if value.isascii():
        return False
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def _check_utf8(path: str, line: int, values: list[str], names: list[str]) -> None:
    """Reject undecodable bytes with their line and column (streams decode with surrogateescape)."""
    for name, value in zip(names, values):
        if _has_bad_bytes(value):
            raise InputError(f"{path}: line {line}, column {name!r}: {NOT_UTF8}")


def _string_table(header: list[str], columns: list[list[str]]) -> pa.Table:
    return pa.table([pa.array(values, pa.string()) for values in columns], names=header)


def _open_jsonl(path: str, stream, chunk_rows: int) -> InputSource:
    """JSON Lines: one object per line; the first object's keys are the columns."""
    lines = io.TextIOWrapper(stream, encoding="utf-8-sig", errors="surrogateescape")
    numbered = _json_records(path, lines)
    try:
        first = next(numbered)
    except StopIteration:
        raise InputError(f"{path}: empty JSONL input") from None
    columns = list(first.keys())
    chunks = _jsonl_chunks(path, first, numbered, columns, chunk_rows)
    return InputSource(path, "jsonl", columns, None, chunks, _string_table(columns, [[] for _ in columns]), stream)


def _json_records(path: str, lines) -> Iterator[dict]:
    number = 0
    while line := lines.readline():
        number += 1
        if _has_bad_bytes(line):
            raise InputError(f"{path}: line {number}: {NOT_UTF8}")
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as err:
            raise InputError(f"{path}: line {number}: invalid JSON ({err.msg})") from None
        if not isinstance(record, dict):
            raise InputError(f"{path}: line {number}: expected a JSON object per line")
        yield record


def _jsonl_chunks(path, first, records, columns, chunk_rows) -> Iterator[pa.Table]:
    batch = [first]
    for record in records:
        batch.append(record)
        if len(batch) == chunk_rows:
            yield _records_table(path, batch, columns)
            batch = []
    if batch:
        yield _records_table(path, batch, columns)


def _records_table(path: str, records: list[dict], columns: list[str]) -> pa.Table:
    """Build a table in the first record's column order; missing keys are nulls."""
    try:
        return pa.table({name: pa.array([record.get(name) for record in records]) for name in columns})
    except (pa.ArrowInvalid, pa.ArrowTypeError) as err:
        raise InputError(f"{path}: a column mixes value types ({err})") from None


def _check_unique(path: str, header: list[str]) -> None:
    seen = set()
    for name in header:
        if name in seen:
            raise InputError(f"{path}: column {name!r} appears twice in the header; column names must be unique")
        seen.add(name)
