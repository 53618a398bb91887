"""JSON Lines input: one object per line, every column typed by a first pass over the whole input.

Why two passes: JSON values carry their own types, and a column may be null, or hold ints, for
thousands of lines before its first float. Types inferred chunk by chunk would then change from
one chunk to the next, and a Parquet output, a resumed run or the join of the parts would break
after the model had scored every row. The first pass reads every line once (quick next to any
model) and fixes one Arrow type per column; the second builds every chunk with those types, so
the output schema is known before anything is scored and does not depend on the chunk size.

The rules (the README's "score" section says the same):

- the columns are the keys of all objects, in order of first appearance; a missing key is null;
- a column's type follows the JSON kind of its values: only nulls → null; numbers → int64, or
  float64 as soon as one value is a float (an int beyond ±2^53 cannot become a float exactly, so
  that mix is refused); true/false → bool; text → string; arrays and objects → Arrow list and
  struct types merged over the whole input;
- values of two kinds in one column (text and numbers, true/false and numbers, ...) are refused
  with a line of each before anything is scored: no value is silently turned into another kind.
"""

from __future__ import annotations

import io
import json
from collections.abc import Callable, Iterator

import pyarrow as pa

from t5cls.errors import InputError
from t5cls.io.streams import NOT_UTF8, ByteStream, decoding, has_bad_text

KINDS = {bool: "true/false", int: "a number", float: "a number", str: "text", list: "an array", dict: "an object"}
NESTED_BATCH = 1000  # nested values whose Arrow type is inferred together
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
        arrays = [pa.array([record.get(field.name) for record in records], type=field.type) for field in schema]
    except (pa.ArrowException, OverflowError, UnicodeError) as err:
        problem = f"a value does not fit its column's type ({err})"
        raise InputError(f"{path}: lines {lines[0]}-{lines[1]}: {problem}") from None
    return pa.Table.from_arrays(arrays, schema=schema)


class ColumnTypes:
    """What the first pass learns about each column: the kind of its values, where each was first seen, its type."""

    def __init__(self, path: str):
        self.path = path
        self.rows = 0
        self.names: dict[str, None] = {}  # every key, in order of first appearance
        self.kinds: dict[str, tuple[str, int]] = {}  # column -> (kind of its values, first line with one)
        self.first_float: dict[str, int] = {}
        self.first_big_int: dict[str, int] = {}
        self.nested = {}  # column -> NestedType

    def add(self, line: int, record: dict) -> None:
        self.rows += 1
        for name, value in record.items():
            if name not in self.names:
                self._check_text(line, name, "a key")
                self.names[name] = None
            if value is not None:
                self._add_value(line, name, value)

    def _add_value(self, line: int, name: str, value) -> None:
        kind = KINDS[type(value)]
        first_kind, first_line = self.kinds.setdefault(name, (kind, line))
        if kind != first_kind:
            raise InputError(
                f"{self.path}: line {line}: column {name!r} holds {kind}, but line {first_line} holds {first_kind}; "
                "a column must hold one kind of JSON value (ints and floats are both numbers): quote the odd ones"
            )
        if type(value) is str:
            self._check_text(line, value, f"column {name!r}")
        elif type(value) is float:
            self.first_float.setdefault(name, line)
        elif type(value) is int:
            self._check_int(line, name, value)
        elif kind in ("an array", "an object"):
            self.nested.setdefault(name, NestedType(self.path, name)).add(line, value)

    def _check_text(self, line: int, text: str, what: str) -> None:
        if has_bad_text(text):
            raise InputError(
                f"{self.path}: line {line}: {what} holds a lone surrogate escape (\\ud800-\\udfff), not Unicode text"
            )

    def _check_int(self, line: int, name: str, value: int) -> None:
        if not -(2**63) <= value < 2**63:
            raise InputError(
                f"{self.path}: line {line}: column {name!r}: the integer {value} does not fit in 64 bits; "
                "write it as text"
            )
        if abs(value) > EXACT_INTS:
            self.first_big_int.setdefault(name, line)

    def schema(self) -> pa.Schema:
        return pa.schema([pa.field(name, self._type(name)) for name in self.names])

    def _type(self, name: str) -> pa.DataType:
        kind = self.kinds.get(name, (None, 0))[0]
        if kind == "a number":
            return self._number_type(name)
        if kind in ("an array", "an object"):
            return self.nested[name].type()
        return {None: pa.null(), "true/false": pa.bool_(), "text": pa.string()}[kind]

    def _number_type(self, name: str) -> pa.DataType:
        if name not in self.first_float:
            return pa.int64()
        if name in self.first_big_int:
            raise InputError(
                f"{self.path}: line {self.first_big_int[name]}: column {name!r} holds an integer beyond ±2^53, which "
                f"a float column (line {self.first_float[name]} holds a float) cannot keep exactly; write it as text"
            )
        return pa.float64()


class NestedType:
    """The Arrow type of a column of arrays or objects: inferred batch by batch, merged (struct fields unioned)."""

    def __init__(self, path: str, name: str):
        self.path, self.name = path, name
        self.merged: pa.DataType | None = None
        self.pending: list = []
        self.lines: tuple[int, int] = (0, 0)

    def add(self, line: int, value) -> None:
        if not self.pending:
            self.lines = (line, line)
        self.pending.append(value)
        self.lines = (self.lines[0], line)
        if len(self.pending) == NESTED_BATCH:
            self._merge_pending()

    def type(self) -> pa.DataType:
        if self.pending:
            self._merge_pending()
        return self.merged

    def _merge_pending(self) -> None:
        try:
            inferred = pa.array(self.pending).type
            if self.merged is not None:
                schemas = [pa.schema([("value", self.merged)]), pa.schema([("value", inferred)])]
                inferred = pa.unify_schemas(schemas, promote_options="permissive").field("value").type
        except (pa.ArrowException, OverflowError, UnicodeError) as err:
            first, last = self.lines
            raise InputError(
                f"{self.path}: lines {first}-{last}: column {self.name!r} holds arrays or objects whose contents "
                f"cannot share one type ({err}); make them alike or write them as text"
            ) from None
        self.merged, self.pending = inferred, []
