"""Labelled files read whole for training: every task's prompts and gold targets, checked before the model loads.

A training or dev file is read once, in full (training passes over it many times, in a shuffled
order). Everything that can be wrong with it (a missing column, a blank text, a gold value that
is not a class) is found here, as a one-line error naming the file, row and column, before any
model is loaded.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import closing
from dataclasses import dataclass

import numpy as np

from t5cls.errors import InputError, OptionError, literal
from t5cls.io.readers import SCAN_CHUNK_ROWS, open_input
from t5cls.io.schemas import column_values
from t5cls.run.chunks import drop_or_fill_nulls, template_values
from t5cls.tasks.config import Task
from t5cls.train.gold import parse_gold


@dataclass(frozen=True)
class TaskRows:
    """One task's examples: prompts question-major (a multi-label task asks one block of rows per class)."""

    prompts: list[str]  # (questions * rows,)
    gold: np.ndarray  # class indexes (rows,), numbers (rows,) or memberships (rows, classes)
    gold_text: list[str]  # the gold values as written, for reports


@dataclass(frozen=True)
class LabelledFile:
    """A labelled file's rows for every task, in file order; rows without text may have been skipped."""

    path: str
    rows: int
    skipped: int
    tasks: list[TaskRows]


def read_labelled(
    path: str, tasks: Sequence[Task], gold_columns: Sequence[str], on_null: str, where: Sequence[str]
) -> LabelledFile:
    """Read ``path`` whole; ``where[i]`` names task i in errors (its config and name, or "")."""
    with closing(open_input(path, SCAN_CHUNK_ROWS)) as source:
        for task, column, name in zip(tasks, gold_columns, where):
            _check_columns(task, column, source.columns, path, name)
        needed = list(dict.fromkeys(c for task in tasks for c in task.template.columns_needed()))
        collected = [_TaskCollector(task, column, path) for task, column in zip(tasks, gold_columns)]
        seen = kept = 0
        for table in source.chunks:
            table_kept, rows = drop_or_fill_nulls(table, needed, on_null, seen, path)
            values = template_values(table_kept, needed)
            for collector in collected:
                collector.add(values, column_values(table_kept.column(collector.column)), rows)
            seen += table.num_rows
            kept += table_kept.num_rows
    if not kept:
        raise InputError(f"{path}: no rows to train or evaluate on")
    return LabelledFile(path, kept, seen - kept, [collector.joined() for collector in collected])


class _TaskCollector:
    """One task's prompts (one list per question) and gold targets, chunk after chunk."""

    def __init__(self, task: Task, column: str, path: str):
        self.task, self.column, self.path = task, column, path
        self.questions: list[list[str]] = [[] for _ in range(len(task.classes) if task.multi_label else 1)]
        self.gold: list[np.ndarray] = []
        self.text: list[str] = []

    def add(self, values: dict[str, list[str]], gold: list, rows: np.ndarray) -> None:
        prompts = self.task.prompts(values) if len(rows) else []
        for q, question in enumerate(self.questions):
            question.extend(prompts[q * len(rows) : (q + 1) * len(rows)])
        self.gold.append(parse_gold(self.task, gold, self.path, self.column, rows))
        self.text.extend(_as_text(value) for value in gold)

    def joined(self) -> TaskRows:
        return TaskRows([p for question in self.questions for p in question], np.concatenate(self.gold), self.text)


def _as_text(value) -> str:
    if isinstance(value, (list, tuple, np.ndarray)):
        return ",".join(str(item) for item in value)
    return "" if value is None else str(value)


def _check_columns(task: Task, gold: str, columns: Sequence[str], path: str, where: str) -> None:
    """The template's columns and the gold column must be in the file (named as `score` names them)."""
    shown = ", ".join(columns)
    if not where:
        task.template.check_columns(columns, path)
    elif missing := task.template.missing_columns(columns):
        raise InputError(f"{where}: 'template' reads column {missing[0]!r}, which {path} lacks; columns are: {shown}")
    if gold not in columns:
        raise OptionError(
            f"{literal(path)}: no gold column {literal(repr(gold))}; columns are: {literal(shown)} "
            "(choose one with {gold})"
        )
