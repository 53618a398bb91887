"""Streaming readers: CSV, JSONL or Parquet (a path, a URI, or ``-`` for stdin) in fixed-size row chunks.

Every reader knows its schema before the first chunk (CSV: every column text; Parquet: the
file's; JSONL: from a first pass, see `t5cls.io.jsonl`) and yields `pyarrow.Table` chunks of
exactly ``chunk_rows`` rows (the last may be shorter) with that schema, so a resumed run cuts the
file at the same rows as the first run did, and no chunk can bring a type the output did not expect.

CSV is parsed with the standard library's `csv` module rather than pyarrow's streaming reader:
pyarrow silently swallows the rest of the file into one value after an unclosed quote and cannot
report line numbers when values contain newlines, and both matter more here than parse speed
(the model is orders of magnitude slower than either parser). Every CSV value is read as text, so
``007``, ``NA`` and dates come back byte for byte.

Stdin is read as it comes for CSV; JSONL and Parquet from stdin are first copied to an unnamed
temporary file, since one is read twice and the other needs to seek.
"""

from __future__ import annotations

import csv
import io
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from itertools import chain

import pyarrow as pa
import pyarrow.parquet as pq

from t5cls.errors import InputError
from t5cls.io.formats import compression, input_format, stdin_format
from t5cls.io.jsonl import jsonl_chunks, jsonl_schema
from t5cls.io.streams import (
    NOT_UTF8,
    ByteStream,
    decoding,
    has_bad_text,
    open_bytes,
    peek_stdin,
    spooled_stdin,
    stdin_bytes,
)

# Rows per chunk when a whole file is scanned rather than scored (eval, inspect, ranks, dev sets).
SCAN_CHUNK_ROWS = 10_000
csv.field_size_limit(sys.maxsize)


def file_row(row: int) -> str:
    """How errors name the ``row``-th (1-based) row of a file."""
    return f"row {row}"


@dataclass
class InputSource:
    """An opened input: its schema, row count when known, and a chunk iterator that can be read once.

    ``size`` is the input's size as stored (compressed bytes for ``.gz``) and ``position()`` how
    many of those bytes reading has consumed, where known: progress on files without a row count.
    ``row_name`` says how errors name a row: ``row 37`` in a file, an index label in a DataFrame.
    `close` releases the file (stdin stays open).
    """

    path: str
    format: str
    schema: pa.Schema
    total_rows: int | None
    chunks: Iterator[pa.Table]
    size: int | None = None
    position: Callable[[], int | None] = lambda: None
    streams: list[ByteStream] = field(default_factory=list)
    row_name: Callable[[int], str] = file_row  # how errors name a 1-based row (a frame's: by its index)
    taken: bool = False  # `take_chunks` was called: the rows belong to that reader

    @property
    def columns(self) -> list[str]:
        return self.schema.names

    @property
    def empty(self) -> pa.Table:
        """Zero rows with the input's schema."""
        return self.schema.empty_table()

    def __post_init__(self):
        self._reader = self.chunks  # the reader's own iterator, closed even after `peeking` wrapped it

    def close(self) -> None:
        for chunks in (self.chunks, self._reader):
            close = getattr(chunks, "close", None)
            if close is not None:
                close()
        for stream in self.streams:
            stream.close()

    def take_chunks(self) -> Iterator[pa.Table]:
        """The chunks, for the one reader that reads them all; a second taker would silently get no rows."""
        if self.taken:
            raise ValueError(f"the rows of {self.path} were already read; open the input again for another run")
        self.taken = True
        return self.chunks

    @contextmanager
    def peeking(self) -> Iterator[Iterator[pa.Table]]:
        """The chunks from the start, put back when the block ends, so a later reader gets every row.

        Only the chunks actually read are held in memory (a dry run reads until its first usable row).
        """
        seen: list[pa.Table] = []

        def remembered() -> Iterator[pa.Table]:
            for table in self.chunks:
                seen.append(table)
                yield table

        try:
            yield remembered()
        finally:
            self.chunks = chain(seen, self.chunks)


def open_input(path: str, chunk_rows: int, fmt: str | None = None) -> InputSource:
    """Open ``path`` (a local path, a URI pyarrow understands, or ``-`` for stdin) and read its schema."""
    fmt = stdin_format(peek_stdin()) if path == "-" and fmt is None else input_format(path, fmt)
    if fmt == "csv":
        return _open_csv(path, stdin_bytes() if path == "-" else open_bytes(path), chunk_rows)
    spooled = spooled_stdin() if path == "-" else None
    if fmt == "parquet":
        return _open_parquet(path, spooled or open_bytes(path), chunk_rows)
    return _open_jsonl(path, spooled, chunk_rows)


def _open_jsonl(path: str, spooled: ByteStream | None, chunk_rows: int) -> InputSource:
    def reopen() -> ByteStream:
        if spooled is None:
            return open_bytes(path)
        spooled.stream.seek(0)
        return ByteStream(spooled.stream, spooled.size, spooled.position)  # the spool is closed by the source

    schema, rows = jsonl_schema(path, reopen())
    chunks = jsonl_chunks(path, reopen, schema, chunk_rows)
    return InputSource(path, "jsonl", schema, rows, chunks, streams=[spooled] if spooled else [])


def _open_parquet(path: str, stream: ByteStream, chunk_rows: int) -> InputSource:
    try:
        parquet = pq.ParquetFile(stream.stream)
        schema = parquet.schema_arrow
        rows = parquet.metadata.num_rows
    except (pa.ArrowException, OSError) as err:
        stream.close()
        raise InputError(f"{path}: not a readable Parquet file ({err})") from None
    except BaseException:
        stream.close()
        raise
    _check_unique(path, schema.names)
    return InputSource(path, "parquet", schema, rows, _parquet_chunks(path, parquet, chunk_rows), streams=[stream])


def _parquet_chunks(path: str, parquet: pq.ParquetFile, chunk_rows: int) -> Iterator[pa.Table]:
    done = 0
    batches = parquet.iter_batches(batch_size=chunk_rows)
    while True:
        with decoding(path, f"rows {done + 1}-{done + chunk_rows}"):
            batch = next(batches, None)
        if batch is None:
            return
        done += batch.num_rows
        yield pa.Table.from_batches([batch])


class _CountedLines:
    """The lines of a text stream, with the bytes of those the CSV reader has taken so far.

    The file's own position runs ahead of the rows by the text decoder's read-ahead (8 KiB), which
    on a small file put the progress percentage well ahead of the rows written; the bytes of the
    lines read are where the reader is. (A compressed file keeps the stored position: its bytes
    as stored are what its size counts.)
    """

    def __init__(self, text: io.TextIOWrapper):
        self.text = text
        self.bytes = 0

    def __iter__(self) -> Iterator[str]:
        for line in self.text:
            self.bytes += len(line.encode("utf-8", "surrogateescape"))
            yield line


def _open_csv(path: str, stream: ByteStream, chunk_rows: int) -> InputSource:
    text = io.TextIOWrapper(stream.stream, encoding="utf-8-sig", errors="surrogateescape", newline="")
    lines = _CountedLines(text)
    reader = csv.reader(lines, strict=True)
    try:
        header = _next_record(path, reader)
        if header is None:
            raise InputError(f"{path}: empty CSV file (no header row)")
        if not header:
            raise InputError(f"{path}: line 1 is blank; the first line must be the header")
        _check_utf8(path, 1, header, header)
        _check_unique(path, header)
    except BaseException:
        stream.close()
        raise
    schema = pa.schema([(name, pa.string()) for name in header])
    chunks = _csv_chunks(path, reader, schema, chunk_rows)
    position = stream.position if compression(path) or stream.size is None else lambda: lines.bytes
    return InputSource(path, "csv", schema, None, chunks, stream.size, position, [stream])


def _next_record(path: str, reader) -> list[str] | None:
    """The next record, or None at the end; parse and decoder errors name the line where the record starts."""
    first_line = reader.line_num + 1
    with decoding(path, f"line {first_line}"):
        try:
            return next(reader, None)
        except csv.Error as err:
            raise InputError(f"{path}: line {first_line}: {_csv_problem(err)}") from None


def _csv_chunks(path: str, reader, schema: pa.Schema, chunk_rows: int) -> Iterator[pa.Table]:
    """Group CSV records into chunks of text columns, checking each record's width."""
    header = schema.names
    columns: list[list[str]] = [[] for _ in header]
    while True:
        first_line = reader.line_num + 1
        record = _next_record(path, reader)
        if record is None:
            break
        _check_utf8(path, first_line, record, header)
        if len(record) != len(header):
            if not record:  # a blank line carries no row
                continue
            raise InputError(
                f"{path}: line {reader.line_num}: expected {len(header)} fields like the header, got {len(record)}"
            )
        for column, value in zip(columns, record):
            column.append(value)
        if len(columns[0]) == chunk_rows:
            yield _text_table(schema, columns)
            columns = [[] for _ in header]
    if columns[0]:
        yield _text_table(schema, columns)


def _csv_problem(err: csv.Error) -> str:
    message = str(err)
    if "unexpected end of data" in message or "EOF" in message:
        return "unclosed quote: the quoted value that starts here runs to the end of the file"
    return f"malformed CSV ({message})"


def _check_utf8(path: str, line: int, values: list[str], names: list[str]) -> None:
    """Reject undecodable bytes with their line and column (streams decode with surrogateescape)."""
    for name, value in zip(names, values):
        if has_bad_text(value):
            raise InputError(f"{path}: line {line}, column {name!r}: {NOT_UTF8}")


def _text_table(schema: pa.Schema, columns: list[list[str]]) -> pa.Table:
    return pa.Table.from_arrays([pa.array(values, pa.string()) for values in columns], schema=schema)


def _check_unique(path: str, header: list[str]) -> None:
    seen = set()
    for name in header:
        if name in seen:
            raise InputError(f"{path}: column {name!r} appears twice in the header; column names must be unique")
        seen.add(name)
