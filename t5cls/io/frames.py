"""In-memory tables as run inputs: a pandas DataFrame, a `pyarrow.Table` or a polars DataFrame.

A frame is read like a file (`t5cls.io.readers`): an `InputSource` of fixed-size Arrow chunks,
each holding only the columns the tasks read plus `ROW_COLUMN`, the row's position in the frame,
which rides through the run to the output so the caller can line the scores up with the frame's
rows (and its index) after ``on_null="skip"`` dropped some. Only one chunk of those columns is
converted at a time: the frame itself is never copied whole.

Column types are those ``DataFrame.to_parquet`` would write (``pyarrow.Schema.from_pandas``), fixed
once for the whole frame, so a template reads a frame's values exactly as it reads the same rows
from a Parquet file. Errors name rows as the frame does: by index label (pandas), by 0-based
position (Arrow, polars).

polars is not a dependency: a polars frame is recognised by its module and read through
``to_arrow()`` (zero-copy), and only a caller who already has one imports polars.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from t5cls.errors import InputError
from t5cls.io.readers import InputSource

ROW_COLUMN = "__t5cls_row__"  # each row's 0-based position in the frame, carried to the output
KINDS = {"pandas": "DataFrame", "arrow": "pyarrow.Table", "polars": "polars DataFrame"}


@dataclass(frozen=True)
class Frame:
    """A caller's table, seen the same way whatever its library.

    ``kind`` is ``pandas``, ``arrow`` or ``polars``; ``table`` is the frame itself (pandas) or its
    Arrow table (Arrow, polars); ``columns`` are the column names as text.
    """

    kind: str
    table: object
    columns: list[str]

    @property
    def name(self) -> str:
        """How errors name the input: ``DataFrame``, ``pyarrow.Table`` or ``polars DataFrame``."""
        return KINDS[self.kind]

    @property
    def num_rows(self) -> int:
        return len(self.table) if self.kind == "pandas" else self.table.num_rows

    def row_name(self, row: int) -> str:
        """How errors name the frame's ``row``-th row (1-based, as the runner counts them)."""
        if self.kind == "pandas":
            return f"row at index {self.table.index[row - 1]!r}"
        return f"row at position {row - 1}"


def as_frame(frame) -> Frame:
    """Recognise ``frame``'s library; anything else is refused with what is accepted."""
    module = type(frame).__module__.split(".")[0]
    if isinstance(frame, pa.Table):
        return Frame("arrow", frame, list(frame.column_names))
    if module == "polars" and hasattr(frame, "to_arrow"):
        table = frame.to_arrow()
        return Frame("polars", table, list(table.column_names))
    if module == "pandas" and hasattr(frame, "columns") and hasattr(frame, "index"):
        return Frame("pandas", frame, [str(name) for name in frame.columns])
    raise InputError(
        f"expected a pandas DataFrame, a pyarrow.Table or a polars DataFrame, got {type(frame).__name__}; "
        "for a list of texts use LabelScorer.score, for a file score_file"
    )


def open_frame(frame: Frame, columns: Sequence[str], chunk_rows: int) -> InputSource:
    """An `InputSource` of ``frame``'s ``columns`` (and `ROW_COLUMN`) in chunks of ``chunk_rows`` rows."""
    _check_unique(frame)
    if ROW_COLUMN in frame.columns:
        raise InputError(f"{frame.name}: column {ROW_COLUMN!r} is reserved by t5cls; rename it")
    schema = _schema(frame, columns).append(pa.field(ROW_COLUMN, pa.int64()))
    chunks = _chunks(frame, schema, chunk_rows)
    return InputSource(frame.name, "frame", schema, frame.num_rows, chunks, row_name=frame.row_name)


def _check_unique(frame: Frame) -> None:
    seen: set[str] = set()
    for name in frame.columns:
        if name in seen:
            raise InputError(f"{frame.name}: column {name!r} appears twice; column names must be unique")
        seen.add(name)


def _schema(frame: Frame, columns: Sequence[str]) -> pa.Schema:
    """The Arrow types of ``columns``: the table's own, or those ``to_parquet`` would give a DataFrame's."""
    if frame.kind != "pandas":
        return pa.schema([frame.table.schema.field(name) for name in columns])
    fields = []
    for name in columns:
        with _readable(frame, name):
            fields.append(pa.Schema.from_pandas(frame.table[[_label(frame, name)]], preserve_index=False).field(0))
    return pa.schema(fields)


def _chunks(frame: Frame, schema: pa.Schema, chunk_rows: int) -> Iterator[pa.Table]:
    convert = _pandas_chunk if frame.kind == "pandas" else _arrow_chunk
    for start in range(0, frame.num_rows, chunk_rows):
        stop = min(start + chunk_rows, frame.num_rows)
        table = convert(frame, schema, start, stop)
        yield table.append_column(ROW_COLUMN, pa.array(np.arange(start, stop, dtype=np.int64)))


def _arrow_chunk(frame: Frame, schema: pa.Schema, start: int, stop: int) -> pa.Table:
    return frame.table.select(schema.names[:-1]).slice(start, stop - start)  # zero-copy


def _pandas_chunk(frame: Frame, schema: pa.Schema, start: int, stop: int) -> pa.Table:
    names = schema.names[:-1]
    rows = frame.table.iloc[start:stop]
    arrays = []
    for name in names:
        with _readable(frame, name):
            arrays.append(pa.array(rows[_label(frame, name)], type=schema.field(name).type, from_pandas=True))
    return pa.Table.from_arrays(arrays, schema=pa.schema([schema.field(name) for name in names]))


def _label(frame: Frame, name: str):
    """The pandas column label whose text is ``name`` (labels need not be strings)."""
    return frame.table.columns[frame.columns.index(name)]


@contextmanager
def _readable(frame: Frame, name: str) -> Iterator[None]:
    """Turn Arrow's refusal to convert a column (mixed kinds of objects) into an `InputError` naming it."""
    try:
        yield
    except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError) as err:
        problem = str(err).splitlines()[0]
        raise InputError(
            f"{frame.name}: column {name!r} cannot be read as text ({problem}); "
            "give it one kind of value: strings, numbers or booleans"
        ) from None


def row_positions(table: pa.Table) -> np.ndarray:
    """The frame positions of an output table's rows."""
    return table.column(ROW_COLUMN).to_numpy()
