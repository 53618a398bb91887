"""Distributions over a label set: the few formulas every stage uses, written once.

Scores are ``(N, C)`` arrays of log-scores, one row per input; every function works row by row
and is exact for a single column and safe from overflow.
"""

from __future__ import annotations

import numpy as np


def logsumexp(values: np.ndarray, axis: int = -1) -> np.ndarray:
    """log Σ exp(values) along ``axis``."""
    top = values.max(axis=axis, keepdims=True)
    return (top + np.log(np.exp(values - top).sum(axis=axis, keepdims=True))).squeeze(axis)


def log_softmax(scores: np.ndarray, temperature: float = 1.0) -> np.ndarray:
    """Row-wise log softmax(scores / temperature)."""
    scaled = scores / temperature
    return scaled - logsumexp(scaled, axis=1)[:, None]


def softmax(scores: np.ndarray, temperature: float = 1.0) -> np.ndarray:
    """Row-wise softmax(scores / temperature): what every path reports as class probabilities."""
    scaled = scores / temperature
    weights = np.exp(scaled - scaled.max(axis=1, keepdims=True))
    return weights / weights.sum(axis=1, keepdims=True)


def entropy(probs: np.ndarray) -> np.ndarray:
    """Entropy in nats of each row's distribution (0 log 0 = 0); at most log C."""
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(probs > 0, probs * np.log(probs), 0.0)
    return -terms.sum(axis=1)


def binary_entropy(probs: np.ndarray) -> np.ndarray:
    """Σ_c H(p_c): the entropy of a label set whose classes are independent yes/no questions."""
    both = np.stack([probs, 1.0 - probs], axis=-1).reshape(-1, 2)
    return entropy(both).reshape(probs.shape).sum(axis=1)


def scaled_nll(scores: np.ndarray, gold: np.ndarray, temperature: float = 1.0) -> float:
    """Mean −log softmax(scores / T)[gold], from the log-sum-exp: exact even where p underflows."""
    return float(-log_softmax(scores, temperature)[np.arange(len(gold)), gold].mean())
