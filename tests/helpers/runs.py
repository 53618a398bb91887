"""Runs through the Python API, as ``t5cls score`` does them, without a subprocess."""

from __future__ import annotations

import signal
from contextlib import closing

import torch

from t5cls.io.readers import open_input
from t5cls.models.scorer import LabelScorer
from t5cls.options import ScoreOptions
from t5cls.run.plan import ScorePlan
from t5cls.signals import StopRequest


def plan_for(options: ScoreOptions) -> ScorePlan:
    """The plan of ``options``, checked against its input's columns (what a run checks before the model loads)."""
    plan = ScorePlan.build(options)
    with closing(open_input(options.input, options.chunk_rows, options.input_format)) as source:
        plan.check_input(source.columns, options.input)
    return plan


class StopAfter(StopRequest):
    """A stop request that arrives (as ``signum`` would: SIGTERM) once the flag was looked at ``chunks`` times.

    A scoring pass looks once per chunk, before scoring it; a rank pass once per part, before ranking it.
    """

    def __init__(self, chunks: int, signum: int = signal.SIGTERM):
        super().__init__()
        self.chunks = chunks
        self.stop_signal = signum

    @property
    def requested(self) -> bool:
        self.chunks -= 1
        if self.chunks < 0:
            self.signum = self.stop_signal
        return self.signum is not None


def poison(monkeypatch, scorer: LabelScorer, prompts: list[str]) -> None:
    """Make the model's scores NaN for exactly the texts whose tokens are those of ``prompts``."""
    targets = list(scorer.tokenize(prompts).ids)
    original = scorer.batches.run

    def run(ids, width, compute, pass_tokens):
        def poisoned(batch, mask):
            values = compute(batch, mask)
            for j in range(batch.shape[0]):
                if batch[j][mask[j].bool()].tolist() in targets:
                    values[j] = torch.nan
            return values

        return original(ids, width, poisoned, pass_tokens)

    monkeypatch.setattr(scorer.batches, "run", run)
