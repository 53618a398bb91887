"""Generated tables for the I/O properties: strategies, input files in every format, and the expected output.

A `Case` is a table as a user might hand it over: text with commas, quotes, CR/LF, BOMs, tabs,
emoji, leading zeros, ``NA``/``null``/``-`` and ``=1+1``; ints, floats, bools, nulls, arrays and
objects, with types that drift at a random row (null then ints, ints then floats, text then
numbers, arrays then objects). Large tables are drawn as a small pool of values spread by a
seeded generator, so hypothesis can make thousands of rows without drawing each one.

The expected values follow the README's rules, written here independently of t5cls's readers:
CSV values are text; a JSONL column of one JSON kind takes its type (numbers: ints, or floats once
any value is a float), any other is JSON text; Parquet values are what pyarrow reads from the file.
"""

from __future__ import annotations

import bz2
import csv
import gzip
import io
import json
import math
import random
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
from hypothesis import strategies as st

LABELS = ("yes", "no", "not sure")
NASTY_TEXTS = [
    "", " ", "\t", "007", "0", "NA", "N/A", "null", "None", "-", "=1+1", "+1", "@SUM(A1)", "a,b", 'say "hi"', '"',
    "line\nbreak", "cr\r\nlf", "lone\rcr", "\r\n", "\ufeffbom", "tab\there", "🙂 emoji", "café 東京", "\\", "nan",
    "TRUE", "1e5", "  padded  ", "{text}", "x" * 300, "\u2028sep", "\x00nul", "\x1c",
]  # fmt: skip
OTHER_COLUMNS = ["id", "n", "a b", "x,y", 'q"t', "ünï", "=cmd", "NA", "Text", "text2"]
KINDS = ("text", "int", "float", "bool", "null", "null-int", "int-float", "array", "object")
JSONL_ONLY_KINDS = ("text-number", "bool-number", "array-object", "huge-int")  # Arrow columns cannot hold these
TEXT_FORMATS = ("csv", "csv.gz", "csv.bz2", "csv.zst", "jsonl", "jsonl.gz")
INPUTS = (*TEXT_FORMATS, "parquet", "stdin-csv", "stdin-jsonl", "stdin-parquet")
OUTPUTS = ("csv", "jsonl", "parquet", "stdout-csv", "stdout-jsonl", "stdout-parquet")

# A text is a few pieces: nasty ones (often), or anything hypothesis draws.
texts = st.lists(st.sampled_from(NASTY_TEXTS) | st.text(max_size=6), max_size=3).map("".join)
small_ints = st.integers(-(2**53), 2**53)
ints = st.one_of(small_ints, st.integers(-(2**63), 2**63 - 1), st.sampled_from([2**53 + 1, -(2**60)]))
floats = st.floats(allow_nan=False, allow_infinity=False) | st.sampled_from([0.0, -0.0, 0.1, 1e300, 5e-324, 1.0])
objects = st.dictionaries(st.sampled_from(["a", "b", "c d"]), small_ints | texts, max_size=3)


@dataclass
class Case:
    """A table to write in some format: column names in order and each column's values (None: null)."""

    names: list[str]
    columns: dict[str, list]
    kinds: dict[str, str]

    @property
    def rows(self) -> int:
        return len(self.columns["text"])


@st.composite
def cases(draw, fmt: str, max_rows: int = 2500) -> Case:
    """A table for input format ``fmt`` (CSV: every value text; Parquet: what one Arrow type per column holds)."""
    rows = draw(st.integers(0, 12) | st.integers(0, max_rows))
    others = draw(st.lists(st.sampled_from(OTHER_COLUMNS), unique=True, max_size=3))
    at = draw(st.integers(0, len(others)))
    names = [*others[:at], "text", *others[at:]]
    jsonl = "jsonl" in fmt
    text_kinds = ["text", "text", "text-number"] if jsonl else ["text"]
    kinds = {"text": draw(st.sampled_from(text_kinds))}
    for name in others:
        kinds[name] = "text" if "csv" in fmt else draw(st.sampled_from(KINDS + (JSONL_ONLY_KINDS if jsonl else ())))
    columns = {name: draw(column_values(kinds[name], rows, "parquet" in fmt)) for name in names}
    if "csv" in fmt:  # CSV has no nulls: a null is an empty field
        columns = {name: ["" if v is None else v for v in values] for name, values in columns.items()}
    return Case(names, columns, kinds)


@st.composite
def column_values(draw, kind: str, rows: int, parquet: bool) -> list:
    """``rows`` values of ``kind``: a drawn pool spread by a drawn seed; drifting kinds change at a drawn row."""
    arrays = st.lists(small_ints, max_size=3) if parquet else st.lists(small_ints | texts | st.none(), max_size=3)
    # A Parquet column holds one Arrow type: objects of ints, and at least one field (no struct without one).
    int_objects = st.dictionaries(st.sampled_from(["a", "b", "c d"]), small_ints, min_size=1, max_size=3)
    first, then = {
        "text": (texts, texts),
        "int": (small_ints if parquet else ints, small_ints),
        "float": (floats, floats),
        "bool": (st.booleans(), st.booleans()),
        "null": (st.none(), st.none()),
        "null-int": (st.none(), ints),
        "int-float": (small_ints if parquet else ints, floats),
        "array": (arrays, arrays),
        "object": (int_objects, int_objects) if parquet else (objects, objects),
        "text-number": (texts, ints | floats),
        "bool-number": (st.booleans(), ints),
        "array-object": (arrays, objects),
        "huge-int": (st.integers(2**63, 2**70), small_ints),
    }[kind]
    pools = [draw(st.lists(first, min_size=1, max_size=6)), draw(st.lists(then, min_size=1, max_size=6))]
    change = draw(st.integers(0, rows))
    null_share = draw(st.sampled_from([0.0, 0.0, 0.2, 0.7]))
    rng = random.Random(draw(st.integers(0, 2**32)))
    return [None if rng.random() < null_share else rng.choice(pools[i >= change]) for i in range(rows)]


# Writing inputs -----------------------------------------------------------------------------------


def write_input(case: Case, fmt: str, folder: Path, *, bom: bool = False, crlf: bool = True) -> tuple[Path, bytes]:
    """Write ``case`` as ``fmt`` into ``folder``; returns the path (``in.<ext>``) and the bytes written."""
    kind = fmt.removeprefix("stdin-")
    data = {"csv": csv_bytes, "jsonl": jsonl_bytes, "parquet": parquet_bytes}[kind.split(".")[0]](case, bom, crlf)
    data = compress(data, kind.partition(".")[2])
    path = folder / f"in.{kind}"
    path.write_bytes(data)
    return path, data


def csv_bytes(case: Case, bom: bool, crlf: bool) -> bytes:
    buffer = io.StringIO()
    quoting = csv.QUOTE_MINIMAL if crlf else csv.QUOTE_ALL  # with \n line ends csv.writer leaves a bare \r unquoted
    writer = csv.writer(buffer, lineterminator="\r\n" if crlf else "\n", quoting=quoting)
    writer.writerow(case.names)
    writer.writerows(zip(*(case.columns[name] for name in case.names)))
    return (b"\xef\xbb\xbf" if bom else b"") + buffer.getvalue().encode()


def jsonl_bytes(case: Case, bom: bool, crlf: bool) -> bytes:
    """One object per row; ``crlf`` ends lines with CRLF (JSON whitespace); nulls of other columns left out at times."""
    lines = []
    for i in range(case.rows):
        row = {name: case.columns[name][i] for name in case.names}
        if i % 3 == 1:
            row = {name: value for name, value in row.items() if value is not None or name == "text"}
        lines.append(json.dumps(row, ensure_ascii=i % 2 == 0) + ("\r\n" if crlf else "\n"))
    return (b"\xef\xbb\xbf" if bom else b"") + "".join(lines).encode()


def parquet_bytes(case: Case, bom: bool, crlf: bool) -> bytes:
    arrays = {}
    for name in case.names:
        values = case.columns[name]
        as_float = case.kinds[name] in ("float", "int-float") and any(type(v) is float for v in values)
        arrays[name] = pa.array(values, pa.float64() if as_float else None)
    sink = io.BytesIO()
    pq.write_table(pa.table(arrays), sink, row_group_size=max(1, case.rows // 3))
    return sink.getvalue()


def compress(data: bytes, codec: str) -> bytes:
    if codec == "gz":
        return gzip.compress(data, mtime=0)
    if codec == "bz2":
        return bz2.compress(data)
    if codec == "zst":
        sink = pa.BufferOutputStream()
        with pa.CompressedOutputStream(sink, "zstd") as stream:
            stream.write(data)
        return sink.getvalue().to_pybytes()
    return data


# What the output must hold --------------------------------------------------------------------------


@dataclass(frozen=True)
class JsonValue:
    """A value of a column that JSONL input keeps as JSON text (arrays, objects, mixed kinds, huge ints)."""

    value: object

    def text(self) -> str:
        return json.dumps(self.value, ensure_ascii=False)


def refusals(case: Case, fmt: str, on_null: str) -> list[str]:
    """What a run must refuse ``case`` with (exit 2, one line holding one of these), or nothing."""
    if fmt.removeprefix("stdin-").startswith("jsonl") and not case.rows:
        return ["empty JSONL input"]
    blank = [text is None or not text.strip() for text in prompt_texts(case, fmt)]
    if on_null == "error" and any(blank):
        return [f"row {blank.index(True) + 1}: column 'text' is empty or null"]
    return []


def is_json_text(values: list) -> bool:
    """The README's rule: a JSONL column is JSON text unless its values are of one kind an Arrow type holds exactly."""
    kinds = {("number" if type(v) in (int, float) else type(v).__name__) for v in values if v is not None}
    ints = [v for v in values if type(v) is int]
    if len(kinds) > 1 or kinds & {"list", "dict"} or any(not -(2**63) <= v < 2**63 for v in ints):
        return True
    return any(type(v) is float for v in values) and any(abs(v) > 2**53 for v in ints)


def jsonl_column(values: list) -> list:
    if is_json_text(values):
        return [None if v is None else JsonValue(v) for v in values]
    if any(type(v) is float for v in values):
        return [None if v is None else float(v) for v in values]
    return values


def expected_rows(case: Case, fmt: str, input_path: Path) -> list[dict]:
    """The input's rows as the output must keep them, typed as the input format types them (names in order)."""
    kind = fmt.removeprefix("stdin-").split(".")[0]
    if kind == "parquet":
        return pq.read_table(input_path).to_pylist()
    columns = {name: jsonl_column(values) for name, values in case.columns.items()} if kind == "jsonl" else case.columns
    return [{name: columns[name][i] for name in case.names} for i in range(case.rows)]


def prompt_texts(case: Case, fmt: str) -> list[str | None]:
    """Each row's text as the template reads it (None: null): a JSON-text column's strings as themselves."""
    values = case.columns["text"]
    if fmt.removeprefix("stdin-").startswith("jsonl"):
        values = [v.value if isinstance(v, JsonValue) and isinstance(v.value, str) else v for v in jsonl_column(values)]
    return [v if v is None or isinstance(v, str) else v.text() if isinstance(v, JsonValue) else str(v) for v in values]


def kept(case: Case, on_null: str, fmt: str) -> list[int]:
    """Indexes of the rows a run keeps (``skip`` drops rows whose text is null or blank)."""
    texts = prompt_texts(case, fmt)
    return [i for i, text in enumerate(texts) if not (on_null == "skip" and (text is None or not text.strip()))]


def as_written(value, fmt: str):
    """How an output of ``fmt`` holds an input value: CSV as text, JSON text in Parquet, JSON values in JSONL."""
    if isinstance(value, JsonValue):
        if fmt == "csv" and isinstance(value.value, str):
            return value.value
        return value.value if fmt == "jsonl" else value.text()
    if fmt != "csv" or isinstance(value, str):
        return value
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value) if math.isfinite(value) else str(value)
    if isinstance(value, (dict, list)):
        return json.dumps(value, ensure_ascii=False)
    return str(value)


def read_output(data: bytes, fmt: str) -> tuple[list[str], list[dict]]:
    """An output's column names and rows: CSV as text (strict RFC 4180), JSONL as JSON, Parquet as typed values."""
    if fmt == "parquet":
        table = pq.read_table(io.BytesIO(data))
        return table.column_names, table.to_pylist()
    if fmt == "jsonl":
        rows = [json.loads(line) for line in data.decode("utf-8").split("\n") if line]
        return (list(rows[0]) if rows else []), rows
    records = list(csv.reader(io.StringIO(data.decode("utf-8"), newline=""), strict=True))
    return records[0], [dict(zip(records[0], record)) for record in records[1:]]


def same_value(got, want) -> bool:
    """Equal and of the same type, all the way down (1 and 1.0 differ; -0.0 and 0.0 differ too)."""
    if isinstance(want, float) and isinstance(got, float):
        return math.copysign(1, got) == math.copysign(1, want) and got == want
    if isinstance(want, dict) and isinstance(got, dict):
        return list(got) == list(want) and all(same_value(got[key], want[key]) for key in want)
    if isinstance(want, list) and isinstance(got, list):
        return len(got) == len(want) and all(same_value(a, b) for a, b in zip(got, want))
    return type(got) is type(want) and got == want


NUMBERED_CSV = b"id,text\n" + b"".join(
    b"%d,review number %d\n" % (i, i) for i in range(3000)
)  # 3,000 rows of id and text


def drifting_rows(count: int = 12) -> list[dict]:
    """``late`` is null for 5 rows, then ints; ``mixed`` ints, then floats from row 8; ``flag`` bools."""
    return [
        {"id": i, "text": f"review {i}", "late": None if i < 5 else i, "mixed": i if i < 8 else i + 0.5, "flag": i > 3}
        for i in range(count)
    ]


def write_jsonl(path, rows):
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return path
