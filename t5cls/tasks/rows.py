"""The rows a task reads: the null policy over its template columns, and their values as text.

Scoring and training read rows through these two functions, so a blank text is
skipped, kept or refused the same way whichever command reads it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import pyarrow as pa

from t5cls.errors import OptionError, literal
from t5cls.io.readers import file_row
from t5cls.io.schemas import column_texts


def drop_or_fill_nulls(
    table: pa.Table,
    columns: Sequence[str],
    on_null: str,
    first_row: int,
    source: str,
    row_name: Callable[[int], str] = file_row,
) -> tuple[pa.Table, np.ndarray]:
    """Apply the null policy to rows whose template columns are null or blank.

    Returns the rows kept and their 1-based row numbers in the input; ``error`` names the first
    such row of the chunk (and its first such column), by ``row_name`` (a file's ``row 37``, a
    DataFrame's index label).
    """
    blank = blank_cells(table, columns)
    missing = np.logical_or.reduce(list(blank.values()), axis=0) if blank else np.zeros(table.num_rows, bool)
    if on_null == "error" and missing.any():
        index = int(np.flatnonzero(missing)[0])
        name = next(name for name in columns if blank[name][index])
        where = literal(f"{source}: {row_name(first_row + index + 1)}")
        raise OptionError(
            f"{where}: column {literal(repr(name))} is empty or null; fix the row or pass {{on_null}} skip|empty"
        )
    rows = first_row + 1 + np.arange(table.num_rows)
    if on_null == "skip" and missing.any():
        return table.filter(pa.array(~missing)), rows[~missing]
    return table, rows


def blank_cells(table: pa.Table, columns: Sequence[str]) -> dict[str, np.ndarray]:
    """Per template column, which rows are null or blank: the cells the null policy acts on (a server refuses them)."""
    return {
        name: np.array([v is None or not v.strip() for v in column_texts(table.column(name))], bool) for name in columns
    }


def template_values(table: pa.Table, columns: Sequence[str]) -> dict[str, list[str]]:
    """The template's columns as text (nulls as empty strings)."""
    return {name: ["" if v is None else v for v in column_texts(table.column(name))] for name in columns}
