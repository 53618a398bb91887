"""The metrics in `t5cls.metrics` against scikit-learn and hand-computed values."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn import metrics as sk

from t5cls import probability
from t5cls.eval import metrics


def random_case(seed: int, rows: int = 500, classes: int = 4, unknown: float = 0.0):
    """Dirichlet probabilities, gold labels correlated with them, some gold set to -1."""
    rng = np.random.default_rng(seed)
    probs = rng.dirichlet(np.full(classes, 0.7), size=rows)
    gold = np.array([rng.choice(classes, p=0.5 * p + 0.5 / classes) for p in probs])
    gold[rng.random(rows) < unknown] = -1
    return probs, gold, metrics.predictions(probs)


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("unknown", [0.0, 0.1])
def test_classification_metrics_equal_sklearn(seed, unknown):
    probs, gold, pred = random_case(seed, classes=3 + seed, unknown=unknown)
    labels = list(range(probs.shape[1]))
    scores = metrics.precision_recall_f1(gold, pred, len(labels))
    precision, recall, f1, support = sk.precision_recall_fscore_support(gold, pred, labels=labels, zero_division=0)
    assert metrics.accuracy(gold, pred) == pytest.approx(sk.accuracy_score(gold, pred))
    np.testing.assert_allclose(scores.precision, precision)
    np.testing.assert_allclose(scores.recall, recall)
    np.testing.assert_allclose(scores.f1, f1)
    np.testing.assert_array_equal(scores.support, support)
    assert scores.macro_f1 == pytest.approx(sk.f1_score(gold, pred, labels=labels, average="macro", zero_division=0))
    expected_matrix = sk.confusion_matrix(gold, pred, labels=labels)
    np.testing.assert_array_equal(metrics.confusion_matrix(gold, pred, len(labels)), expected_matrix)


def test_a_class_never_predicted_nor_seen_scores_zero_like_sklearn():
    gold, pred = np.array([0, 0, 1, 1]), np.array([0, 1, 1, 1])
    scores = metrics.precision_recall_f1(gold, pred, 3)
    assert scores.f1[2] == 0.0
    assert scores.macro_f1 == pytest.approx(sk.f1_score(gold, pred, labels=[0, 1, 2], average="macro", zero_division=0))


@pytest.mark.parametrize("seed", range(5))
def test_nll_equals_sklearn_log_loss(seed):
    probs, gold, _ = random_case(seed, classes=2 + seed)
    assert metrics.nll(probs, gold) == pytest.approx(sk.log_loss(gold, probs, labels=list(range(probs.shape[1]))))


def test_nll_clips_a_zero_probability_like_sklearn():
    probs, gold = np.array([[1.0, 0.0], [0.5, 0.5]]), np.array([1, 0])
    assert np.isfinite(metrics.nll(probs, gold))
    assert metrics.nll(probs, gold) == pytest.approx(sk.log_loss(gold, probs, labels=[0, 1]))


@pytest.mark.parametrize("seed", range(3))
def test_brier_is_the_mean_summed_squared_error_to_the_one_hot_gold(seed):
    probs, gold, _ = random_case(seed)
    expected = np.mean([sum((p[c] - (c == g)) ** 2 for c in range(len(p))) for p, g in zip(probs, gold)])
    assert metrics.brier(probs, gold) == pytest.approx(expected)


def test_binary_brier_is_twice_sklearns():
    probs, gold, _ = random_case(0, classes=2)
    assert metrics.brier(probs, gold) == pytest.approx(2 * sk.brier_score_loss(gold, probs[:, 1]))


def test_ece_on_a_hand_computed_example():
    # Confidences 0.9, 0.9, 0.6, 0.5 with 15 bins of width 1/15:
    # 0.9 lies in (13/15, 14/15] = (0.8667, 0.9333]: two rows, one right -> |0.5 - 0.9| = 0.4
    # 0.6 lies in (8/15, 9/15] = (0.5333, 0.6]: one row, right -> |1 - 0.6| = 0.4
    # 0.5 lies in (7/15, 8/15]: one row, wrong -> |0 - 0.5| = 0.5
    # ECE = 2/4 * 0.4 + 1/4 * 0.4 + 1/4 * 0.5 = 0.425
    probs = np.array([[0.9, 0.1], [0.1, 0.9], [0.6, 0.4], [0.5, 0.5]])
    gold = np.array([0, 0, 0, 1])
    bins = metrics.calibration_bins(probs, gold)
    assert bins.count.sum() == 4
    assert bins.count[13] == 2 and bins.count[8] == 1 and bins.count[7] == 1
    assert bins.accuracy[13] == pytest.approx(0.5)
    assert metrics.expected_calibration_error(probs, gold) == pytest.approx(0.425)


def test_ece_is_zero_when_confidence_matches_accuracy():
    probs = np.array([[0.75, 0.25]] * 4)
    gold = np.array([0, 0, 0, 1])
    assert metrics.expected_calibration_error(probs, gold) == pytest.approx(0.0)


def test_entropy_in_nats_with_zero_probabilities():
    probs = np.array([[0.5, 0.5, 0.0], [1.0, 0.0, 0.0], [1 / 3, 1 / 3, 1 / 3]])
    np.testing.assert_allclose(probability.entropy(probs), [np.log(2), 0.0, np.log(3)])


def test_predictions_break_ties_towards_the_first_label():
    assert metrics.predictions(np.array([[0.4, 0.4, 0.2], [0.2, 0.4, 0.4]])).tolist() == [0, 1]
