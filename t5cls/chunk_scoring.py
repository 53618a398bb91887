"""One chunk of input rows in, the same rows with score columns out: the step every run shares.

A local run (`t5cls.job`) and a Ray run (`t5cls.ray_job`) differ only in where chunks come from
and where they go; both hand each chunk to a `ChunkScorer`, so they write the same values.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from t5cls.errors import InputError
from t5cls.scorer import TokenizedTexts
from t5cls.task_scoring import TaskResult, TaskScorer, output_columns
from t5cls.tasks import Task

NULL_POLICIES = ("error", "skip", "empty")


@dataclass
class PreparedChunk:
    """A chunk ready for the model: the rows kept, their tokens per task, and row bookkeeping."""

    table: pa.Table
    tokens: list[TokenizedTexts]  # one per task
    input_rows: int
    skipped: int = 0


@dataclass
class ScoredChunk:
    """A chunk's output rows and what happened to its input rows."""

    table: pa.Table
    input_rows: int
    skipped: int
    truncated: int


class ChunkScorer:
    """Null policy, prompts, tokens, scores and output columns for the tasks of a run."""

    def __init__(self, tasks: Sequence[Task], task_scorers: Sequence[TaskScorer], on_null: str, logprobs: bool):
        self.tasks = list(tasks)
        self.task_scorers = list(task_scorers)
        self.on_null = on_null
        self.logprobs = logprobs
        self.columns_needed = columns_needed(self.tasks)

    def prepare(self, table: pa.Table, first_row: int, source: str) -> PreparedChunk:
        """Apply ``--on-null``, render and tokenize; ``first_row`` and ``source`` name rows in errors."""
        kept, skipped = drop_or_fill_nulls(table, self.columns_needed, self.on_null, first_row, source)
        values = template_values(kept, self.columns_needed)
        tokens = [task.tokenize(values) for task in self.task_scorers]
        return PreparedChunk(kept, tokens, table.num_rows, skipped)

    def score(self, chunk: PreparedChunk) -> ScoredChunk:
        """Run the model on a prepared chunk and append every task's columns."""
        results = [task.score(tokens) for task, tokens in zip(self.task_scorers, chunk.tokens)]
        truncated = int(np.any([result.truncated for result in results], axis=0).sum())
        table = with_scores(chunk.table, self.tasks, results, self.logprobs)
        return ScoredChunk(table, chunk.input_rows, chunk.skipped, truncated)


def columns_needed(tasks: Sequence[Task]) -> list[str]:
    """Input columns any task reads (the ``--on-null`` policy applies to all of them)."""
    needed: list[str] = []
    for task in tasks:
        needed += [name for name in task.template.columns_needed() if name not in needed]
    return needed


def drop_or_fill_nulls(table: pa.Table, columns: Sequence[str], on_null: str, first_row: int,
                       source: str) -> tuple[pa.Table, int]:
    """Apply ``--on-null`` to rows whose template columns are null or blank."""
    missing = np.zeros(table.num_rows, dtype=bool)
    for name in columns:
        values = table.column(name).to_pylist()
        blank = np.array([v is None or (isinstance(v, str) and not v.strip()) for v in values], dtype=bool)
        if blank.any() and on_null == "error":
            row = first_row + int(np.flatnonzero(blank)[0]) + 1
            raise InputError(
                f"{source}: row {row}: column {name!r} is empty or null; fix the row or pass --on-null skip|empty"
            )
        missing |= blank
    if on_null == "skip" and missing.any():
        return table.filter(pa.array(~missing)), int(missing.sum())
    return table, 0


def template_values(table: pa.Table, columns: Sequence[str]) -> dict[str, list[str]]:
    """The template's columns as text (nulls as empty strings)."""
    return {name: ["" if v is None else str(v) for v in table.column(name).to_pylist()] for name in columns}


def with_scores(table: pa.Table, tasks: Sequence[Task], results: Sequence[TaskResult], logprobs: bool) -> pa.Table:
    """Append each task's columns (p_<class>, pred, entropy, ...) after the input columns."""
    for task, result in zip(tasks, results):
        for name, values in output_columns(task, result, logprobs).items():
            table = table.append_column(name, values)
    return table
