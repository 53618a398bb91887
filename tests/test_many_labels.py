"""Hundreds of labels: exact against brute force, and the same whatever the memory blocks."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from helpers.reference import brute_force_logprobs
from helpers.tiny_causal_models import build_causal
from t5cls import LabelScorer
from t5cls.models import batching
from t5cls.models.batching import MemoryBudget

WORDS = [
    "movie",
    "great",
    "acting",
    "terrible",
    "plot",
    "boring",
    "positive",
    "negative",
    "neutral",
    "mixed",
    "feelings",
    "strongly",
    "not",
    "sure",
    "relevant",
    "true",
    "false",
    "yes",
    "no",
    "question",
]
TEXTS = ["the movie was great and the acting was wonderful", "terrible plot, boring characters", "not sure"]


def many_labels(count: int) -> list[str]:
    """``count`` distinct labels of one to three words, sharing prefixes as class names in a taxonomy do."""
    phrases = [" ".join(words) for size in (1, 2, 3) for words in itertools.permutations(WORDS, size)]
    return phrases[:: max(1, len(phrases) // count)][:count]


def distinct(scorer, labels):
    """The labels whose token ids differ (a small test tokenizer can give two phrases the same ids)."""
    seen, kept = set(), []
    for label in labels:
        ids = tuple(scorer.tokens.labels([label])[0])
        if ids not in seen:
            seen.add(ids)
            kept.append(label)
    return kept


@pytest.fixture(scope="module")
def llama_dir(tmp_path_factory):
    return build_causal(tmp_path_factory.mktemp("tiny-llama-many"), "llama")


def test_hundreds_of_labels_match_brute_force_on_t5(t5_dir):
    scorer = LabelScorer.from_pretrained(str(t5_dir), device="cpu")
    labels = distinct(scorer, many_labels(300))
    assert len(labels) >= 200 and scorer.label_trie(labels).num_positions > len(labels)
    reference = brute_force_logprobs(t5_dir, TEXTS, labels)
    np.testing.assert_allclose(scorer.score(TEXTS, labels).logprobs, reference, atol=1e-4)


def causal_brute_force(model_dir, texts, labels, scorer):
    """One full forward of prompt + label per (row, label), summing the label tokens' log-probs."""
    model = AutoModelForCausalLM.from_pretrained(model_dir).eval()
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    rows = []
    for text in texts:
        prompt = tokenizer(text.rstrip()).input_ids
        row = []
        for ids in scorer.label_ids(labels):
            full = prompt + ids
            with torch.no_grad():
                logprobs = model(torch.tensor([full])).logits[0].log_softmax(-1)
            row.append(sum(logprobs[t - 1, full[t]].item() for t in range(len(prompt), len(full))))
        rows.append(row)
    return np.array(rows)


def test_hundreds_of_labels_match_brute_force_on_llama(llama_dir):
    scorer = LabelScorer.from_pretrained(str(llama_dir), device="cpu")
    labels = distinct(scorer, many_labels(200))
    assert len(labels) >= 150
    reference = causal_brute_force(llama_dir, TEXTS, labels, scorer)
    np.testing.assert_allclose(scorer.score(TEXTS, labels).logprobs, reference, atol=1e-4)


@pytest.mark.parametrize("kind", ["t5", "llama"])
def test_scores_do_not_depend_on_the_memory_blocks(t5_dir, llama_dir, kind):
    """A budget small enough for one row and one LM-head position per block gives the one-block scores."""
    scorer = LabelScorer.from_pretrained(str(t5_dir if kind == "t5" else llama_dir), device="cpu")
    labels = distinct(scorer, many_labels(120))
    texts = TEXTS * 3
    one_block = scorer.score(texts, labels).logprobs
    for limit in (1, 50_000, 10**12):
        scorer.backend.budget = MemoryBudget(torch.device("cpu"), limit)
        blocks = scorer.backend.budget.blocks(len(texts), scorer.label_trie(labels).num_positions, 1000, 1000)
        assert limit != 1 or blocks.rows == blocks.positions == 1
        np.testing.assert_allclose(scorer.score(texts, labels).logprobs, one_block, atol=1e-5)


@pytest.mark.parametrize("kind", ["t5", "llama"])
def test_scores_do_not_depend_on_the_vocabulary_slices(t5_dir, llama_dir, kind, monkeypatch):
    """Log-normalisers summed over slices of 7 or 97 vocabulary entries (an uneven last slice) equal one slice."""
    scorer = LabelScorer.from_pretrained(str(t5_dir if kind == "t5" else llama_dir), device="cpu")
    labels = distinct(scorer, many_labels(40))
    vocab_size = scorer.backend.head.vocab_size
    monkeypatch.setattr(batching, "CPU_VOCAB_SLICE", vocab_size)
    whole = scorer.score(TEXTS, labels).logprobs
    for width in (7, 97):
        assert vocab_size % width
        monkeypatch.setattr(batching, "CPU_VOCAB_SLICE", width)
        assert scorer.backend.budget.blocks(len(TEXTS), 10, 1000, vocab_size).vocabulary == width
        np.testing.assert_allclose(scorer.score(TEXTS, labels).logprobs, whole, atol=1e-5)
