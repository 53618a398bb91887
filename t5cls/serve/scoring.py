"""Rows in, the columns ``t5cls score`` adds out: the chunk step of every run, on the rows of one batch.

`BatchScorer` hands a batch to `t5cls.run.chunks.ChunkScorer` (prompts, tokens, `TaskScorer`,
output columns) exactly as a file run hands it a chunk, and keeps only the added columns, in
``t5cls score``'s order, and each row's prompt tokens (the usage a response reports).
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from t5cls.models.scorer import LabelScorer
from t5cls.run.chunks import ChunkScorer, PreparedChunk
from t5cls.run.plan import ScorePlan
from t5cls.serve.rows import ScoredRows

SOURCE = "batch"


class BatchScorer:
    """A plan's tasks bound to a loaded model (label checks that need the tokenizer fail here, at start-up)."""

    def __init__(self, plan: ScorePlan, scorer: LabelScorer):
        self.chunks = ChunkScorer(plan, scorer)
        self.added_columns = plan.added_columns
        self.max_rows = scorer.batch_size

    def empty(self) -> ScoredRows:
        """The answer to a request without rows."""
        table = self.chunks.output_schema(pa.schema([])).empty_table()
        return ScoredRows(table, np.zeros(0, dtype=np.int64))

    def score(self, table: pa.Table) -> ScoredRows:
        """Score ``table`` (template columns as text, every cell checked); a `RowError` keeps its ``input_row``."""
        prepared = self.chunks.prepare(table, 0, SOURCE)
        scored = self.chunks.score(prepared)
        return ScoredRows(scored.table.select(self.added_columns), _tokens_per_row(prepared))


def _tokens_per_row(prepared: PreparedChunk) -> np.ndarray:
    """Each row's prompt tokens over every task (a multi-label task asks one prompt per class)."""
    rows = prepared.table.num_rows
    total = np.zeros(rows, dtype=np.int64)
    for tokens in prepared.tokens:
        lengths = np.array([len(ids) for ids in tokens.ids], dtype=np.int64)
        total += lengths.reshape(-1, rows).sum(axis=0)
    return total
