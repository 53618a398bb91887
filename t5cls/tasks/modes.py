"""Scoring modes: how label log-probabilities become the class log-scores a softmax reads.

Notation, for one prompt x: ``log p(f | x)`` is the exact log-probability of the complete
surface form f (its tokens and EOS), class c has forms F(c), and K content-free strings
(default "N/A", "" and "[MASK]") give the content-free prompts cf_1..cf_K: the task's
template with that string in every input column.

The class log-probability is the log of the total probability of saying any of the class's
forms, ``log P(c | x) = logsumexp_{f in F(c)} log p(f | x)`` (exactly ``log p(f | x)`` for a
one-form class). Each mode then gives a class log-score S(c | x):

- ``sum``: S = log P(c | x).
- ``mean``: S = logsumexp_{f in F(c)} log p(f | x) / n_f, with n_f the number of tokens scored for
  f (`t5cls.models.scorer.LabelScorer.label_ids`: EOS included for encoder-decoder models).
- ``pmi``: S = log P(c | x) - (1/K) sum_k log P(c | cf_k) (domain-conditional PMI, Holtzman et
  al. 2021; the content-free log-probability is averaged in log space).
- ``contextual``: S = log q(c | x) - log qbar(c), with q(. | x) = softmax_c log P(c | x) and
  qbar = (1/K) sum_k q(. | cf_k) (Calibrate Before Use, Zhao et al. 2021: q_cal ∝ q / qbar).
- ``batch``: S = log q(c | x) - (1/M) sum_i log q(c | x_i), the mean over the M rows scored
  together: one chunk of the input, ``--chunk-size`` rows less any ``--on-null skip`` rows
  (Batch Calibration, Zhou et al. 2023). A chunk size of at least the row count makes it the
  mean over the whole input; a resumed run cuts the same chunks, so it gives the same scores.
- ``first``: S = logsumexp_{f in F(c)} z(t_f) - logsumexp_{all forms g} z(t_g), with z the
  first decoder step's logits and t_f the first token of f: the restricted softmax over the
  forms' first tokens (monoT5). Forms must have distinct first tokens.

Finally a fitted temperature T divides the scores, and p(c | x) = softmax_c S(c | x) / T.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from t5cls.probability import log_softmax, logsumexp, softmax

MODES = ("sum", "mean", "pmi", "contextual", "batch", "first")
CONTENT_FREE_MODES = ("pmi", "contextual")


def verbalize(form_scores, groups: Sequence[Sequence[int]], logsumexp=logsumexp, stack=np.column_stack):
    """(N, F) form log-scores -> (N, C): the log-sum-exp over each class's forms.

    ``logsumexp`` (called with ``axis=1``) and ``stack`` (columns into a matrix) default to
    numpy's; training passes torch's, so the loss differentiates this very formula.
    """
    return stack([logsumexp(form_scores[:, list(group)], axis=1) for group in groups])


def form_scores(mode: str, logprobs, lengths):
    """Per-form scores before the log-sum-exp: length-normalised in ``mean``, else as they are.

    ``logprobs`` are full-sequence log-probabilities, or for ``first`` the first-token logits.
    ``sum`` and ``mean`` are plain arithmetic, so training runs them on torch tensors too.
    """
    if mode == "mean":
        return logprobs / lengths
    if mode == "first":
        return log_softmax(logprobs)
    return logprobs


def class_scores(
    mode: str, raw: np.ndarray, lengths: np.ndarray, groups: Sequence[Sequence[int]], content_free=None
) -> np.ndarray:
    """(N, C) the class log-scores S of ``mode`` from the (N, F) label scores ``raw``: the whole formula above.

    ``raw`` and ``lengths`` are as `form_scores` takes them; ``content_free`` as `calibrated`.
    """
    return calibrated(mode, verbalize(form_scores(mode, raw, lengths), groups), content_free)


def calibrated(mode: str, class_logprobs: np.ndarray, content_free: np.ndarray | None = None) -> np.ndarray:
    """The class log-scores S of ``mode`` from log P(c | x); ``content_free`` is (K, C) log P(c | cf_k)."""
    if mode == "pmi":
        return class_logprobs - content_free.mean(axis=0)
    if mode == "contextual":
        return log_softmax(class_logprobs) - np.log(softmax(content_free).mean(axis=0))
    if mode == "batch":
        normalised = log_softmax(class_logprobs)
        return normalised - normalised.mean(axis=0) if len(normalised) else normalised
    return class_logprobs


def expectation(probs: np.ndarray, values: Sequence[float]) -> tuple[np.ndarray, np.ndarray]:
    """Mean and standard deviation of the class values under each row's distribution."""
    numbers = np.asarray(values, dtype=np.float64)
    expected = probs @ numbers
    variance = (probs * (numbers[None, :] - expected[:, None]) ** 2).sum(axis=1)
    return expected, np.sqrt(variance)
