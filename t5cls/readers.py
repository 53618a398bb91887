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
import fnmatch
import hashlib
import io
import json
import os
import sys
from collections.abc import Iterator
from dataclasses import dataclass

import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from t5cls.errors import InputError

INPUT_FORMATS = {".csv": "csv", ".jsonl": "jsonl", ".ndjson": "jsonl", ".parquet": "parquet", ".pq": "parquet"}
COMPRESSIONS = (".gz", ".bz2", ".zst", ".lz4")
csv.field_size_limit(sys.maxsize)


def input_format(path: str, explicit: str | None = None) -> str:
    """The input format from ``--input-format`` or the extension (``-`` means CSV unless told)."""
    if explicit:
        return explicit
    if path == "-":
        return "csv"
    name = path.lower()
    for suffix in COMPRESSIONS:
        name = name.removesuffix(suffix)
    for suffix, fmt in INPUT_FORMATS.items():
        if name.endswith(suffix):
            return fmt
    raise InputError(f"{path}: unsupported input extension; use .csv, .jsonl or .parquet (optionally .gz), or --input-format")


@dataclass
class InputSource:
    """An opened input: its column names, row count when known, and a chunk iterator."""

    path: str
    format: str
    columns: list[str]
    total_rows: int | None
    chunks: Iterator[pa.Table]
    empty: pa.Table  # zero rows with the input's columns, for an input without data rows


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


def filesystem_of(path: str) -> tuple[pafs.FileSystem, str]:
    """The filesystem and inner path of a local path or of a URI (``s3://``, ``gs://``, ``file://``...)."""
    if "://" not in path:
        return pafs.LocalFileSystem(), os.path.abspath(path)
    try:
        return pafs.FileSystem.from_uri(path)
    except (pa.ArrowException, ValueError, OSError) as err:
        raise InputError(f"{path}: cannot open this location ({err})") from None


def existing_file(path: str) -> tuple[pafs.FileSystem, str]:
    """`filesystem_of` for a path that must be an existing regular file."""
    filesystem, inner = filesystem_of(path)
    kind = filesystem.get_file_info(inner).type
    if kind == pafs.FileType.NotFound:
        raise InputError(f"{path}: no such file")
    if kind != pafs.FileType.File:
        raise InputError(f"{path}: not a regular file")
    return filesystem, inner


GLOB_CHARACTERS = "*?["


def list_input_files(spec: str) -> list[str]:
    """The files a spec names, sorted: a file, a folder (searched recursively), or a glob; paths or URIs.

    Files and folders whose names start with ``.`` or ``_`` are skipped inside folders, as Spark,
    Ray and pyarrow datasets do (``_SUCCESS``, ``.crc``, hidden parts).
    """
    scheme = spec[: spec.index("://") + 3] if "://" in spec else ""
    glob_at = min((spec.index(char) for char in GLOB_CHARACTERS if char in spec), default=None)
    if glob_at is not None:  # a URI cannot hold glob characters: open the folder before the first one
        folder = spec[:glob_at].rpartition("/")[0]
        filesystem, base = filesystem_of(folder or ".")
        pattern = base.rstrip("/") + "/" + spec[len(folder):].lstrip("/")
        found = [info.path for info in _files_under(filesystem, base) if fnmatch.fnmatchcase(info.path, pattern)]
    else:
        filesystem, inner = filesystem_of(spec)
        if filesystem.get_file_info(inner).type != pafs.FileType.Directory:
            existing_file(spec)
            return [spec]
        found = [info.path for info in _files_under(filesystem, inner) if _is_data_file(info.path, inner)]
    if not found:
        raise InputError(f"{spec}: no CSV, JSONL or Parquet files found there")
    relative = not scheme and not os.path.isabs(spec)
    return [os.path.relpath(path) if relative else scheme + path for path in sorted(found)]


def _files_under(filesystem: pafs.FileSystem, folder: str) -> list[pafs.FileInfo]:
    selector = pafs.FileSelector(folder, recursive=True, allow_not_found=True)
    return [info for info in filesystem.get_file_info(selector) if info.type == pafs.FileType.File]


def _is_data_file(path: str, folder: str) -> bool:
    """Not hidden (``.``/``_`` anywhere below ``folder``) and with an input extension."""
    parts = os.path.relpath(path, folder).split(os.sep)
    if any(part.startswith((".", "_")) for part in parts):
        return False
    try:
        input_format(path)
    except InputError:
        return False
    return True


def file_identity(path: str, head_bytes: int = 1 << 20) -> list:
    """Size, modification time and SHA-256 of the first MiB: enough to notice a changed input on resume."""
    filesystem, inner = existing_file(path)
    info = filesystem.get_file_info(inner)
    with filesystem.open_input_stream(inner) as stream:
        head = hashlib.sha256(stream.read(head_bytes)).hexdigest()
    return [info.size, info.mtime_ns, head]


def _open_parquet(path: str, source: pa.NativeFile, chunk_rows: int) -> InputSource:
    try:
        parquet = pq.ParquetFile(source)
    except (pa.ArrowException, OSError) as err:
        raise InputError(f"{path}: not a readable Parquet file ({err})") from err
    chunks = (pa.Table.from_batches([batch]) for batch in parquet.iter_batches(batch_size=chunk_rows))
    schema = parquet.schema_arrow
    return InputSource(path, "parquet", schema.names, parquet.metadata.num_rows, chunks, schema.empty_table())


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
    return InputSource(path, "csv", header, None, chunks, _string_table(header, [[] for _ in header]))


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
    return InputSource(path, "jsonl", columns, None, chunks, _string_table(columns, [[] for _ in columns]))


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
