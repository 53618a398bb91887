"""Classification and calibration metrics on class-probability arrays (pure numpy).

Conventions shared by every function:

- ``probs`` is an ``(N, L)`` array of class probabilities, rows summing to 1.
- ``gold`` is an ``(N,)`` integer array of gold class indexes into the ``L`` labels; ``-1``
  marks a gold value that is not in the label set. Such a row is always *wrong*, so it is
  accepted by `accuracy`, `precision_recall_f1` and `confusion_matrix`, but the probabilistic
  scores (`nll`, `brier`, `expected_calibration_error`) have no target for it and must be
  given only rows with a known gold class.
- ``pred`` is the predicted class index, ``argmax`` of ``probs`` with ties going to the first
  label (what `t5cls score` writes in ``pred``).

The definitions follow scikit-learn where it has the metric, so numbers can be checked
against it (the test suite does).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

ECE_BINS = 15


def predictions(probs: np.ndarray) -> np.ndarray:
    """Index of the most probable class per row; ties go to the first class."""
    return probs.argmax(axis=1)


def accuracy(gold: np.ndarray, pred: np.ndarray) -> float:
    """Fraction of rows with ``pred == gold``; rows whose gold is ``-1`` count as wrong."""
    return float(np.mean(gold == pred))


def confusion_matrix(gold: np.ndarray, pred: np.ndarray, n_classes: int) -> np.ndarray:
    """``(L, L)`` counts: entry ``[g, p]`` is the number of rows with gold ``g`` predicted ``p``.

    Rows with gold ``-1`` have no row in the matrix and are left out (as scikit-learn does
    with ``labels=``); they are still in the precision denominators of `precision_recall_f1`.
    """
    known = gold >= 0
    flat = gold[known] * n_classes + pred[known]
    return np.bincount(flat, minlength=n_classes * n_classes).reshape(n_classes, n_classes)


@dataclass(frozen=True)
class ClassScores:
    """Per-class precision, recall, F1 and support, each an ``(L,)`` array."""

    precision: np.ndarray
    recall: np.ndarray
    f1: np.ndarray
    support: np.ndarray

    @property
    def macro_f1(self) -> float:
        """Unweighted mean of the per-class F1 over all L labels (a class never seen scores 0)."""
        return float(self.f1.mean())


def precision_recall_f1(gold: np.ndarray, pred: np.ndarray, n_classes: int) -> ClassScores:
    """One-vs-rest precision, recall and F1 per class, and its support (rows with that gold).

    precision_c = TP_c / (rows predicted c), recall_c = TP_c / (rows with gold c),
    F1_c = 2 TP_c / (rows predicted c + rows with gold c). A 0/0 is 0 (scikit-learn's
    ``zero_division=0``). A row with gold ``-1`` predicted ``c`` is a false positive for ``c``.
    """
    true_positives = np.bincount(pred[gold == pred], minlength=n_classes).astype(float)
    predicted = np.bincount(pred, minlength=n_classes).astype(float)
    support = np.bincount(gold[gold >= 0], minlength=n_classes)
    return ClassScores(
        precision=_ratio(true_positives, predicted),
        recall=_ratio(true_positives, support.astype(float)),
        f1=_ratio(2 * true_positives, predicted + support),
        support=support,
    )


def _ratio(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    return np.divide(numerator, denominator, out=np.zeros_like(numerator), where=denominator > 0)


def nll(probs: np.ndarray, gold: np.ndarray) -> float:
    """Mean negative log-likelihood (natural log) of the gold class: mean_i -log p_i[gold_i].

    Probabilities are clipped to ``[eps, 1 - eps]`` (float64 machine epsilon) like
    scikit-learn's ``log_loss``, so one probability that underflowed to 0 costs about 36 nats
    instead of making the mean infinite.
    """
    eps = np.finfo(np.float64).eps
    gold_probs = np.clip(probs[np.arange(len(gold)), gold], eps, 1 - eps)
    return float(-np.log(gold_probs).mean())


def brier(probs: np.ndarray, gold: np.ndarray) -> float:
    """Multi-class Brier score: mean over rows of sum over classes of (p_c - [c == gold])^2.

    It ranges from 0 (certain and right) to 2 (certain and wrong); a uniform guess over L
    classes scores 1 - 1/L. For two classes this is twice the binary Brier score.
    """
    onehot = np.zeros_like(probs)
    onehot[np.arange(len(gold)), gold] = 1.0
    return float(((probs - onehot) ** 2).sum(axis=1).mean())


@dataclass(frozen=True)
class CalibrationBins:
    """Rows grouped by confidence (the max probability) into equal-width bins on [0, 1].

    Bin b holds confidences in ``(b / B, (b + 1) / B]`` (a confidence of exactly 0 joins the
    first bin). ``confidence`` and ``accuracy`` are the bin means, NaN for an empty bin.
    """

    edges: np.ndarray  # (B + 1,)
    count: np.ndarray  # (B,)
    confidence: np.ndarray  # (B,)
    accuracy: np.ndarray  # (B,)

    @property
    def ece(self) -> float:
        """sum_b (n_b / N) |accuracy_b - confidence_b| over the non-empty bins."""
        filled = self.count > 0
        gaps = np.abs(self.accuracy[filled] - self.confidence[filled])
        return float((self.count[filled] * gaps).sum() / self.count.sum())


def calibration_bins(probs: np.ndarray, gold: np.ndarray, n_bins: int = ECE_BINS) -> CalibrationBins:
    """Bin rows by their top probability and compare it with how often the top class is right."""
    confidence = probs.max(axis=1)
    correct = (predictions(probs) == gold).astype(float)
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    index = np.clip(np.searchsorted(edges, confidence, side="left") - 1, 0, n_bins - 1)
    count = np.bincount(index, minlength=n_bins)
    with np.errstate(divide="ignore", invalid="ignore"):
        mean_confidence = np.bincount(index, confidence, n_bins) / count
        mean_accuracy = np.bincount(index, correct, n_bins) / count
    return CalibrationBins(edges, count, mean_confidence, mean_accuracy)


def expected_calibration_error(probs: np.ndarray, gold: np.ndarray, n_bins: int = ECE_BINS) -> float:
    """ECE with ``n_bins`` equal-width confidence bins (Guo et al., 2017); see `CalibrationBins`."""
    return calibration_bins(probs, gold, n_bins).ece
