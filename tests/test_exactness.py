"""Label log-probs equal a brute-force full forward per (row, label), on every decoding path."""

from __future__ import annotations

import numpy as np
import pytest

from helpers.reference import brute_force_logprobs
from t5cls import LabelScorer
from t5cls.errors import InputError
from t5cls.models.continuation import tokenize_target_labels
from t5cls.models.trie import LabelTrie

TEXTS = [
    "the movie was great and the acting was wonderful",
    "terrible",
    "a much longer sentence with many many words in it so that the batch needs padding here",
    "café naïve 東京 🙂",
    "premise: a man sleeps. hypothesis: a person rests.",
]
MULTI = [
    "entailment",
    "not entailment",
    "neutral",
    "positive",
    "positive review",
    "mixed feelings",
    "strongly positive",
]
SINGLE = ["positive", "negative", "neutral"]


@pytest.fixture(scope="module", params=["t5_dir", "t5_v11_dir", "bart_dir"])
def model_dir(request):
    return request.getfixturevalue(request.param)


@pytest.mark.parametrize("labels", [MULTI, SINGLE], ids=["multi-token", "single-token"])
def test_logprobs_match_brute_force(model_dir, labels):
    scorer = LabelScorer.from_pretrained(str(model_dir), device="cpu", batch_size=2)
    scores = scorer.score(TEXTS, labels)
    reference = brute_force_logprobs(model_dir, TEXTS, labels)
    np.testing.assert_allclose(scores.logprobs, reference, atol=1e-4)


def test_an_encoder_run_by_length_groups_matches_brute_force(model_dir, monkeypatch):
    # pass cost 0: every distinct prompt length is encoded apart, at its own width, and laid back into the batch
    from t5cls.models import seq2seq

    monkeypatch.setattr(seq2seq, "CPU_ENCODER_PASS_TOKENS", 0)
    scorer = LabelScorer.from_pretrained(str(model_dir), device="cpu", batch_size=len(TEXTS))
    encoder, widths = scorer.model.get_encoder(), []
    encoder.register_forward_pre_hook(
        lambda module, args, kwargs: widths.append(kwargs["input_ids"].shape[1]), with_kwargs=True
    )
    scores = scorer.score(TEXTS, MULTI)
    lengths = sorted({len(ids) for ids in scorer.tokenize(TEXTS).ids})
    assert sorted(widths) == lengths  # one encoder call per length, none padded
    np.testing.assert_allclose(scores.logprobs, brute_force_logprobs(model_dir, TEXTS, MULTI), atol=1e-4)


def test_per_label_fallback_matches_brute_force(model_dir):
    scorer = LabelScorer.from_pretrained(str(model_dir), device="cpu")
    scorer.backend.tree_decoding = False
    np.testing.assert_allclose(
        scorer.score(TEXTS, MULTI).logprobs, brute_force_logprobs(model_dir, TEXTS, MULTI), atol=1e-4
    )


def test_eager_attention_matches_brute_force(t5_dir):
    scorer = LabelScorer.from_pretrained(str(t5_dir), device="cpu")
    scorer.model.set_attn_implementation("eager")
    np.testing.assert_allclose(
        scorer.score(TEXTS, MULTI).logprobs, brute_force_logprobs(t5_dir, TEXTS, MULTI), atol=1e-4
    )


def test_probabilities_pred_and_entropy(t5_dir):
    scores = LabelScorer.from_pretrained(str(t5_dir), device="cpu").score(TEXTS, MULTI)
    reference = brute_force_logprobs(t5_dir, TEXTS, MULTI)
    expected = np.exp(reference) / np.exp(reference).sum(axis=1, keepdims=True)
    np.testing.assert_allclose(scores.probs, expected, atol=1e-5)
    np.testing.assert_allclose(scores.probs.sum(axis=1), 1.0, atol=1e-12)
    assert scores.predictions == [MULTI[i] for i in reference.argmax(axis=1)]
    np.testing.assert_allclose(scores.entropy, -(expected * np.log(expected)).sum(axis=1), atol=1e-5)


def test_ties_go_to_the_first_label():
    from t5cls.models.scorer import LabelScores

    scores = LabelScores(["a", "b", "c"], np.array([[-1.0, -0.5, -0.5]]), np.array([False]))
    assert scores.predictions == ["b"]
    assert np.isclose(
        scores.entropy[0],
        -2 * (scores.probs[0, 1] * np.log(scores.probs[0, 1])) - scores.probs[0, 0] * np.log(scores.probs[0, 0]),
    )


def test_independent_of_batch_size_and_batch_neighbours(t5_dir):
    scorer = LabelScorer.from_pretrained(str(t5_dir), device="cpu", batch_size=len(TEXTS))
    together = scorer.score(TEXTS, MULTI).logprobs
    for batch_size in (1, 2, 3):
        scorer.batch_size = batch_size
        np.testing.assert_allclose(scorer.score(TEXTS, MULTI).logprobs, together, atol=1e-5)
    order = [3, 0, 4, 2, 1]
    shuffled = scorer.score([TEXTS[i] for i in order], MULTI).logprobs
    np.testing.assert_allclose(shuffled, together[order], atol=1e-5)


def test_truncation_is_counted_and_exact(t5_dir):
    scorer = LabelScorer.from_pretrained(str(t5_dir), device="cpu", max_length=6)
    scores = scorer.score(TEXTS, SINGLE)
    lengths = [len(scorer.tokenizer(t).input_ids) for t in TEXTS]
    assert scores.truncated.tolist() == [n > 6 for n in lengths]
    np.testing.assert_allclose(scores.logprobs, brute_force_logprobs(t5_dir, TEXTS, SINGLE, max_length=6), atol=1e-4)


def test_trie_decodes_each_shared_prefix_once():
    # entailment = [e, n, t], not entailment = [not, e, n, t], not sure = [not, s]; each + EOS (9)
    sequences = [[5, 6, 7, 9], [8, 5, 6, 7, 9], [8, 4, 9]]
    trie = LabelTrie.build(sequences, start_token_id=0)
    # fed prefixes: root, 5, 5-6, 5-6-7, 8, 8-5, 8-5-6, 8-5-6-7, 8-4 = 9 (vs 12 padded tokens)
    assert trie.num_positions == 9
    assert trie.label_lengths.tolist() == [4, 5, 3]
    assert trie.label_edges.sum(axis=0).tolist() == [4, 5, 3]
    # breadth-first: root; 5, 8; 5-6, 8-5, 8-4; 5-6-7, 8-5-6; 8-5-6-7 (leaves, which feed nothing, are not positions)
    assert trie.input_ids.tolist() == [0, 5, 8, 6, 5, 4, 7, 6, 7]
    assert trie.depths.tolist() == [0, 1, 1, 2, 2, 2, 3, 3, 4]
    # every edge reads its token at its parent's position, which precedes the child's
    assert trie.edge_tokens.tolist() == [5, 6, 7, 9, 8, 5, 6, 7, 9, 4, 9]
    assert trie.edge_positions.tolist() == [0, 1, 3, 6, 0, 2, 4, 7, 8, 2, 5]
    # each position's ancestors, by depth: root first, itself last, each one the parent of the next
    assert trie.ancestors[:, 0].tolist() == [0] * trie.num_positions
    for p in range(trie.num_positions):
        depth = trie.depths[p]
        assert trie.ancestors[p, depth] == p and (trie.ancestors[p, depth:] == p).all()
        assert [trie.depths[a] for a in trie.ancestors[p, : depth + 1]] == list(range(depth + 1))
        for j in range(depth):
            assert trie.ancestors[trie.ancestors[p, j + 1], j] == trie.ancestors[p, j]


@pytest.mark.parametrize(
    "labels, message",
    [
        (["positive", "positive"], "given twice"),
        (["positive", ""], "empty"),
        (["positive", "  "], "empty"),
        (["positive"], "at least two"),
    ],
)
def test_bad_label_sets_are_errors(t5_dir, labels, message):
    scorer = LabelScorer.from_pretrained(str(t5_dir), device="cpu")
    with pytest.raises(InputError, match=message):
        scorer.score(TEXTS, labels)


def test_labels_that_tokenize_identically_are_an_error():
    class CaseFoldingTokenizer:  # like an uncased vocabulary: Yes and yes become one sequence
        def __call__(self, text_target):
            return type("Encoding", (), {"input_ids": [len(text_target.lower()), 1]})

    with pytest.raises(InputError, match="'Yes' and 'yes' tokenize to the same ids"):
        tokenize_target_labels(CaseFoldingTokenizer(), ["Yes", "yes"])
