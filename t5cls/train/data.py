"""Labelled files read whole for training: the rows' template columns and every task's gold, checked up front.

A training or dev file is read once, in full (training passes over it many times, in a shuffled
order). Everything that can be wrong with it (a missing column, a blank text, a gold value that
is not a class) is found here, as a one-line error naming the file, row and column, before any
model is loaded. The prompts are not rendered here: `t5cls.task_scorer.TaskScorer` renders and
tokenizes the template columns exactly as a scoring run does (few-shot prefix included).

A row of the file that some task shows as a few-shot demonstration is left out (as ``t5cls
calibrate`` leaves it out of the fit): its prompt would already hold its own answer.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from contextlib import closing
from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from t5cls.errors import InputError, OptionError, T5clsWarning, literal
from t5cls.io.readers import SCAN_CHUNK_ROWS, open_input
from t5cls.io.schemas import column_values
from t5cls.tasks.config import Task, TaskSet
from t5cls.tasks.rows import drop_or_fill_nulls, template_values
from t5cls.train.gold import parse_gold


@dataclass(frozen=True)
class TaskRows:
    """One task's gold targets for the rows of a file."""

    gold: np.ndarray  # class indexes (rows,), numbers (rows,) or memberships (rows, classes)
    gold_text: list[str]  # the gold values as written, for reports


@dataclass(frozen=True)
class LabelledFile:
    """A labelled file's rows, in file order: their template columns as text, and every task's gold.

    ``skipped`` rows had no text (``on_null`` skip); ``demonstrations`` rows are a task's few-shot examples.
    """

    path: str
    rows: int
    skipped: int
    columns: dict[str, list[str]]
    tasks: list[TaskRows]
    demonstrations: int = 0


def read_labelled(path: str, task_set: TaskSet, gold_columns: Sequence[str], on_null: str) -> LabelledFile:
    """Read ``path`` whole: the columns the tasks of ``task_set`` read and their gold columns."""
    tasks = task_set.tasks
    shown = np.array(sorted({row for task in tasks if task.examples for row in task.examples.rows_in(path)}), int)
    with closing(open_input(path, SCAN_CHUNK_ROWS)) as source:
        for task, column in zip(tasks, gold_columns):
            task_set.check_columns(task, source.columns, path)
            _check_gold_column(column, source.columns, path)
        needed = list(dict.fromkeys(c for task in tasks for c in task.template.columns_needed()))
        columns: dict[str, list[str]] = {name: [] for name in needed}
        collected = [_GoldCollector(task, column, path) for task, column in zip(tasks, gold_columns)]
        seen = kept = left_out = 0
        for table in source.chunks:
            table_kept, rows = drop_or_fill_nulls(table, needed, on_null, seen, path)
            demonstration = np.isin(rows, shown)
            table_kept, rows = table_kept.filter(pa.array(~demonstration)), rows[~demonstration]
            for name, values in template_values(table_kept, needed).items():
                columns[name].extend(values)
            for collector in collected:
                collector.add(column_values(table_kept.column(collector.column)), rows)
            seen += table.num_rows
            kept += table_kept.num_rows
            left_out += int(demonstration.sum())
    if not kept:
        shown_rows = f" ({left_out} are few-shot demonstrations, left out)" if left_out else ""
        raise InputError(f"{path}: no rows to train or evaluate on{shown_rows}")
    if left_out:
        warnings.warn(
            T5clsWarning(f"{path}: {left_out} rows are a task's few-shot demonstrations; they are left out"),
            stacklevel=2,
        )
    gold = [collector.joined() for collector in collected]
    return LabelledFile(path, kept, seen - kept - left_out, columns, gold, left_out)


class _GoldCollector:
    """One task's gold targets, chunk after chunk."""

    def __init__(self, task: Task, column: str, path: str):
        self.task, self.column, self.path = task, column, path
        self.gold: list[np.ndarray] = []
        self.text: list[str] = []

    def add(self, gold: list, rows: np.ndarray) -> None:
        self.gold.append(parse_gold(self.task, gold, self.path, self.column, rows))
        self.text.extend(_as_text(value) for value in gold)

    def joined(self) -> TaskRows:
        return TaskRows(np.concatenate(self.gold), self.text)


def _as_text(value) -> str:
    if isinstance(value, (list, tuple, np.ndarray)):
        return ",".join(str(item) for item in value)
    return "" if value is None else str(value)


def _check_gold_column(gold: str, columns: Sequence[str], path: str) -> None:
    shown = ", ".join(columns)
    if gold not in columns:
        raise OptionError(
            f"{literal(path)}: no gold column {literal(repr(gold))}; columns are: {literal(shown)} "
            "(choose one with {gold})"
        )
