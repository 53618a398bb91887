"""Automatic batch sizing: a CUDA out-of-memory error halves the batch without losing or repeating rows."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from helpers.labels import UNSURE as LABELS
from t5cls import LabelScorer
from t5cls.errors import InputError

TEXTS = [f"review number {i} says {'good ' * (i % 4)}and {'bad ' * (i % 3)}" for i in range(21)]


def fail_above(scorer, largest_batch_that_fits, seen):
    real = scorer.backend.label_logprobs

    def label_logprobs(ids, mask, trie):
        if len(ids) > largest_batch_that_fits:
            raise torch.cuda.OutOfMemoryError("CUDA out of memory (simulated)")
        seen.append(len(ids))
        return real(ids, mask, trie)

    return label_logprobs


def test_auto_batch_size_halves_on_out_of_memory(t5_dir, monkeypatch):
    expected = LabelScorer.from_pretrained(str(t5_dir), device="cpu", batch_size=4).score(TEXTS, LABELS).logprobs
    scorer = LabelScorer.from_pretrained(str(t5_dir), device="cpu")
    scorer.batch_size = 16
    seen: list[int] = []
    monkeypatch.setattr(scorer.backend, "label_logprobs", fail_above(scorer, 5, seen))
    monkeypatch.setattr(torch.cuda, "empty_cache", lambda: None)
    scores = scorer.score(TEXTS, LABELS)
    assert scorer.batch_size == 4
    assert sum(seen) == len(TEXTS)  # every row scored exactly once
    np.testing.assert_allclose(scores.logprobs, expected, atol=1e-5)


def test_fixed_batch_size_reports_out_of_memory(t5_dir, monkeypatch):
    scorer = LabelScorer.from_pretrained(str(t5_dir), device="cpu", batch_size=8)
    monkeypatch.setattr(scorer.backend, "label_logprobs", fail_above(scorer, 5, []))
    with pytest.raises(InputError, match="out of memory at batch_size 8"):
        scorer.score(TEXTS, LABELS)
