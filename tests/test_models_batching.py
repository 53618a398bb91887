"""Batches: cut by length on the CPU at the least padded cost; on CUDA, an out-of-memory error halves the batch."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from helpers.labels import UNSURE as LABELS
from t5cls import LabelScorer
from t5cls.errors import InputError
from t5cls.models.batching import length_groups

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


def cost(lengths: list[int], cuts: list[slice], pass_tokens: int) -> int:
    return sum(pass_tokens + (cut.stop - cut.start) * max(lengths[cut]) for cut in cuts)


def every_cut(rows: int, most_rows: int):
    """Every way to cut ``rows`` consecutive rows into groups of at most ``most_rows`` (brute force)."""
    if rows == 0:
        yield []
        return
    for first in range(1, min(most_rows, rows) + 1):
        for rest in every_cut(rows - first, most_rows):
            yield [slice(0, first)] + [slice(cut.start + first, cut.stop + first) for cut in rest]


@given(
    st.lists(st.integers(1, 60), min_size=1, max_size=9).map(sorted),
    st.integers(1, 9),
    st.integers(0, 200),
)
def test_length_groups_cover_the_rows_at_the_least_cost(lengths, most_rows, pass_tokens):
    cuts = length_groups(np.array(lengths), most_rows, pass_tokens)
    assert [cut.start for cut in cuts] == [0] + [cut.stop for cut in cuts[:-1]] and cuts[-1].stop == len(lengths)
    assert all(0 < cut.stop - cut.start <= most_rows for cut in cuts)
    best = min(cost(lengths, other, pass_tokens) for other in every_cut(len(lengths), most_rows))
    assert cost(lengths, cuts, pass_tokens) == best


def test_rows_of_one_length_take_the_fewest_passes_and_a_jump_in_length_is_cut():
    sizes = [cut.stop - cut.start for cut in length_groups(np.full(10, 7), 4, 128)]
    assert len(sizes) == 3 and max(sizes) <= 4
    # 8 rows of 10 tokens and 8 of 100: one pass pads 720 tokens, more than a second pass costs
    assert length_groups(np.array([10] * 8 + [100] * 8), 16, 128) == [slice(0, 8), slice(8, 16)]
    assert length_groups(np.array([10] * 8 + [20] * 8), 16, 128) == [slice(0, 16)]
