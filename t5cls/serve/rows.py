"""A request's rows as the table the chunk step reads (the template columns as text, each cell checked), and back.

A cell the tasks cannot read (missing, not a string, null or blank: the null policy's own test,
`t5cls.tasks.rows.blank_cells`) fails the request that sent it, naming the row and field, before
its rows can join a batch with other requests' rows.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from t5cls.tasks.rows import blank_cells


@dataclass(frozen=True)
class ScoredRows:
    """The columns ``t5cls score`` adds, for some rows, and the prompt tokens each row cost (all tasks together)."""

    columns: pa.Table
    tokens: np.ndarray  # (rows,) int

    def slice(self, start: int, rows: int) -> ScoredRows:
        return ScoredRows(self.columns.slice(start, rows), self.tokens[start : start + rows])


class RowProblem(Exception):
    """One request's row that cannot be scored (a 422): the message, and the field as a JSON path."""

    def __init__(self, message: str, param: str):
        super().__init__(message)
        self.message = message
        self.param = param


def template_table(
    rows: Sequence[Mapping[str, object]], columns: Sequence[str], field: Callable[[int, str], str]
) -> pa.Table:
    """``rows``' values of ``columns`` as string columns; ``field(row, column)`` names a cell in errors."""
    for index, row in enumerate(rows):
        for column in columns:
            if column not in row:
                raise RowProblem(f"{field(index, column)} is missing (the template reads it)", field(index, column))
            if row[column] is not None and not isinstance(row[column], str):
                kind = type(row[column]).__name__
                raise RowProblem(f"{field(index, column)} must be a string, got {kind}", field(index, column))
    table = pa.table({column: pa.array([row[column] for row in rows], pa.string()) for column in columns})
    for column, blank in blank_cells(table, columns).items():
        if blank.any():
            index = int(np.flatnonzero(blank)[0])
            raise RowProblem(f"{field(index, column)} is empty or null; give it text", field(index, column))
    return table
