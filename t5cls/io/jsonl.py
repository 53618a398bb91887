"""JSON Lines input: one object per line, every column typed by a first pass over the whole input.

Why two passes: JSON values carry their own types, and a column may be null, or hold ints, for
thousands of lines before its first float. Types inferred chunk by chunk would then change from
one chunk to the next, and a Parquet output, a resumed run or the join of the parts would break
after the model had scored every row. The first pass reads every line once (quick next to any
model) and fixes one Arrow type per column; the second builds every chunk with those types, so
the output schema is known before anything is scored and does not depend on the chunk size.

The rules (the README's "score" section says the same):

- the columns are the keys of all objects, in order of first appearance; a missing key is null;
- a column whose values are all of one JSON kind takes its type: only nulls → null; numbers →
  int64, or float64 once one value is a float; true/false → bool; text → string;
- any other column, arrays and objects, values of two kinds (text and numbers, ...), ints that
  int64 or a float column cannot hold exactly, is kept as JSON text (Arrow's JSON type, Parquet's
  JSON logical type): JSONL output writes back the same JSON values, CSV output their JSON text
  (text values as themselves). No value is refused or silently changed for its type.
"""

from __future__ import annotations

import io
import json
from collections.abc import Callable, Iterator

import pyarrow as pa

from t5cls.errors import InputError
from t5cls.io.streams import NOT_UTF8, ByteStream, decoding, has_bad_text

EXACT_INTS = 2**53  # floats hold every int up to this size exactly


def read_records(path: str, stream: ByteStream) -> Iterator[tuple[int, dict]]:
    """(line number, object) for every non-blank line; bad bytes, bad JSON and decoder errors name their line."""
    lines = io.TextIOWrapper(stream.stream, encoding="utf-8-sig", errors="surrogateescape", newline="\n")
    number = 0
    try:
        while True:
            with decoding(path, f"line {number + 1}"):
                line = lines.readline()
            if not line:
                return
            number += 1
            if line.strip():
                yield number, _parse(path, number, line)
    finally:
        lines.detach()  # the stream's owner closes it (a spooled stdin is read twice)


def _parse(path: str, number: int, line: str) -> dict:
    if has_bad_text(line):
        raise InputError(f"{path}: line {number}: {NOT_UTF8}")
    try:
        record = json.loads(line)
    except json.JSONDecodeError as err:
        raise InputError(f"{path}: line {number}: invalid JSON ({err.msg} at column {err.colno})") from None
    except RecursionError:
        raise InputError(f"{path}: line {number}: JSON nested too deeply to read") from None
    if not isinstance(record, dict):
        raise InputError(f"{path}: line {number}: expected a JSON object per line, got {type(record).__name__}")
    return record


def jsonl_schema(path: str, stream: ByteStream) -> tuple[pa.Schema, int]:
    """The first pass: one Arrow type per column, and the number of rows."""
    types = ColumnTypes(path)
    try:
        for number, record in read_records(path, stream):
            types.add(number, record)
    finally:
        stream.close()
    if not types.rows:
        raise InputError(f"{path}: empty JSONL input (no JSON objects)")
    return types.schema(), types.rows


def jsonl_chunks(path: str, reopen: Callable[[], ByteStream], schema: pa.Schema, chunk_rows: int):
    """The second pass: tables of ``chunk_rows`` rows, every one with ``schema``."""
    stream = reopen()
    try:
        batch: list[dict] = []
        first_line = 0
        for number, record in read_records(path, stream):
            first_line = first_line or number
            batch.append(record)
            if len(batch) == chunk_rows:
                yield records_table(path, batch, schema, (first_line, number))
                batch, first_line = [], 0
        if batch:
            yield records_table(path, batch, schema, (first_line, number))
    finally:
        stream.close()


def records_table(path: str, records: list[dict], schema: pa.Schema, lines: tuple[int, int]) -> pa.Table:
    """Objects as a table of ``schema`` (the first pass checked that every value fits its column)."""
    try:
        arrays = [_column(field, [record.get(field.name) for record in records]) for field in schema]
    except (pa.ArrowException, OverflowError, UnicodeError) as err:
        problem = f"a value does not fit its column's type ({err})"
        raise InputError(f"{path}: lines {lines[0]}-{lines[1]}: {problem}") from None
    return pa.Table.from_arrays(arrays, schema=schema)


def _column(field: pa.Field, values: list) -> pa.Array:
    if field.type == pa.json_():
        values = [None if value is None else json.dumps(value, ensure_ascii=False) for value in values]
    return pa.array(values, type=field.type)


class ColumnTypes:
    """What the first pass learns about each column: the kinds of its values and whether they fit one Arrow type."""

    def __init__(self, path: str):
        self.path = path
        self.rows = 0
        self.names: dict[str, None] = {}  # every key, in order of first appearance
        self.kinds: dict[str, set[type]] = {}  # column -> Python types of its non-null values (float as int)
        self.with_float: set[str] = set()
        self.with_big_int: set[str] = set()  # an int beyond ±2^53: exact in int64, not in float64
        self.as_json: set[str] = set()  # arrays, objects, or ints beyond int64

    def add(self, line: int, record: dict) -> None:
        self.rows += 1
        for name, value in record.items():
            if name not in self.names:
                self._check_text(line, name, "a key")
                self.names[name] = None
            if value is not None:
                self._add_value(line, name, value)

    def _add_value(self, line: int, name: str, value) -> None:
        kind = type(value)
        self.kinds.setdefault(name, set()).add(int if kind is float else kind)
        if kind is str:
            self._check_text(line, value, f"column {name!r}")
        elif kind is float:
            self.with_float.add(name)
        elif kind is int and abs(value) > EXACT_INTS:
            (self.with_big_int if -(2**63) <= value < 2**63 else self.as_json).add(name)
        elif kind in (list, dict):
            self.as_json.add(name)
            self._check_text(line, json.dumps(value, ensure_ascii=False), f"column {name!r}")

    def _check_text(self, line: int, text: str, what: str) -> None:
        if has_bad_text(text):
            raise InputError(
                f"{self.path}: line {line}: {what} holds a lone surrogate escape (\\ud800-\\udfff), not Unicode text"
            )

    def schema(self) -> pa.Schema:
        return pa.schema([pa.field(name, self._type(name)) for name in self.names])

    def _type(self, name: str) -> pa.DataType:
        kinds = self.kinds.get(name, set())
        if not kinds:
            return pa.null()
        if len(kinds) > 1 or name in self.as_json or (name in self.with_float and name in self.with_big_int):
            return pa.json_()
        if int in kinds:
            return pa.float64() if name in self.with_float else pa.int64()
        return {bool: pa.bool_(), str: pa.string()}[next(iter(kinds))]
