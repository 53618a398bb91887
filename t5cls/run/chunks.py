"""One chunk of input rows in, the same rows with score columns out: the step every run shares.

A local run (`t5cls.run.local`) and a Ray run (`t5cls.run.ray`) differ only in where chunks come
from and where they go; both hand each chunk to a `ChunkScorer`, so they write the same values.
`prepare` (null policy, prompts, tokens) needs no model and runs in the reading thread; `score`
runs the model.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from t5cls.errors import RowError
from t5cls.io.readers import file_row
from t5cls.models.scorer import LabelScorer
from t5cls.models.tokens import TokenizedTexts
from t5cls.run.plan import ScorePlan
from t5cls.task_scorer import TaskScorer
from t5cls.tasks.columns import TaskResult, with_scores
from t5cls.tasks.rows import drop_or_fill_nulls, template_values


@dataclass
class PreparedChunk:
    """A chunk ready for the model: the rows kept, their tokens per task, and where they came from."""

    table: pa.Table
    tokens: list[TokenizedTexts]  # one per task; empty when no row is kept
    input_rows: int
    skipped: int
    rows: np.ndarray  # (kept,) 1-based row number in the input of each kept row
    source: str
    bytes_read: tuple[int, int] | None = None  # the input's position before and after this chunk, when known
    row_name: Callable[[int], str] = file_row  # how errors name a row of the input


@dataclass
class ScoredChunk:
    """A chunk's output rows and what happened to its input rows."""

    table: pa.Table
    input_rows: int
    skipped: int
    truncated: int


class ChunkScorer:
    """Null policy, prompts, tokens, scores and output columns for the tasks of a plan."""

    def __init__(self, plan: ScorePlan, scorer: LabelScorer):
        """Binds every task to ``scorer``: label checks that need the tokenizer happen here, before any scoring."""
        self.plan = plan
        self.task_scorers = [TaskScorer(task, scorer, plan.task_set.where(task)) for task in plan.tasks]

    def prepare(
        self,
        table: pa.Table,
        first_row: int,
        source: str,
        bytes_read: tuple[int, int] | None = None,
        row_name: Callable[[int], str] = file_row,
    ) -> PreparedChunk:
        """Apply the null policy, render and tokenize; ``first_row`` (0-based) and ``source`` name rows in errors."""
        options = self.plan.options
        kept, rows = drop_or_fill_nulls(table, self.plan.columns_needed, options.on_null, first_row, source, row_name)
        tokens = []
        if kept.num_rows:  # every row skipped: nothing to tokenize (or score)
            values = template_values(kept, self.plan.columns_needed)
            with _rows_named(rows, source, row_name):
                tokens = [task.tokenize(values) for task in self.task_scorers]
        skipped = table.num_rows - kept.num_rows
        return PreparedChunk(kept, tokens, table.num_rows, skipped, rows, source, bytes_read, row_name)

    def results(self, chunk: PreparedChunk) -> list[TaskResult]:
        """Run the model on a prepared chunk: each task's scores and probabilities (`calibrate_file` reads these)."""
        if not chunk.tokens:
            return [TaskResult.empty(task) for task in self.plan.tasks]
        return [self._score_task(task, tokens, chunk) for task, tokens in zip(self.task_scorers, chunk.tokens)]

    def score(self, chunk: PreparedChunk) -> ScoredChunk:
        """Run the model on a prepared chunk and append every task's columns."""
        results = self.results(chunk)
        truncated = int(np.any([result.truncated for result in results], axis=0).sum())
        table = with_scores(chunk.table, self.plan.tasks, results, self.plan.options.logprobs)
        return ScoredChunk(table, chunk.input_rows, chunk.skipped, truncated)

    @staticmethod
    def _score_task(task: TaskScorer, tokens: TokenizedTexts, chunk: PreparedChunk) -> TaskResult:
        with _rows_named(chunk.rows, chunk.source, chunk.row_name):
            return task.score(tokens)

    def output_schema(self, input_schema: pa.Schema) -> pa.Schema:
        """The schema of every output chunk of an input with ``input_schema``: its columns, then each task's."""
        results = [TaskResult.empty(task) for task in self.plan.tasks]
        return with_scores(input_schema.empty_table(), self.plan.tasks, results, self.plan.options.logprobs).schema


@contextmanager
def _rows_named(rows: np.ndarray, source: str, row_name: Callable[[int], str]) -> Iterator[None]:
    """Restate an error about one text of a call (`RowError`) with the file and row it came from.

    ``rows`` are the 1-based input rows of the chunk's kept rows; a multi-label task asks one block
    of prompts per class, so a text's row is its index modulo their number.
    """
    try:
        yield
    except RowError as err:
        if err.row is None:
            raise
        row = int(rows[err.row % len(rows)])
        raise err.at(f"{source}: {row_name(row)}", row) from None
