"""Split conformal prediction sets: which classes a row's true label is among, for a stated share of rows.

Given n labelled dev rows and class probabilities p_i, a conformity score s_i = s(x_i, gold_i)
measures how badly row i's gold label fits. q, the ⌈(n+1)·coverage⌉-th smallest of the n scores,
then makes the set {c : s(x, c) ≤ q} of a new row contain its true label with probability at
least ``coverage``, when the new row and the dev rows are exchangeable (Vovk et al. 2005;
Angelopoulos & Bates 2021, section 1). The guarantee is marginal: over rows, not per class or per row.

Two scores (``METHODS``):

- ``lac`` (least ambiguous set-valued classifier, Sadinle et al. 2019): s(x, c) = 1 − p_c, so the
  set is every class with p_c ≥ 1 − q. The smallest sets on average; they can be empty, and they
  are uneven across classes (hard classes are covered less often).
- ``aps`` (adaptive prediction sets, Romano et al. 2020), non-randomized: s(x, c) is the
  probability mass of the classes ranked above c (descending probability, ties to the earlier
  class), so a set takes classes from the most probable down while the mass before the next
  one is ≤ q: the most probable class is always in, and sets grow on rows whose probability is
  spread out. This is Romano et al.'s randomized score u·p_c + (mass above c) with u = 0, so the
  sets are those of the score itself and the guarantee holds as for ``lac``. Every row whose
  gold class ranks first scores 0, a tie that can put coverage above the level (at least the
  model's accuracy); the randomized score breaks it, at the price of a row's set changing
  from run to run.

The scores of a set and of the fit are computed by the same function (`class_scores`), so a dev
row's gold class is in its own set exactly when its score is ≤ q, whatever the rounding.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from t5cls.errors import InputError, OptionError, literal

METHODS = ("lac", "aps")
DEFAULT_METHOD = "lac"


def is_level(value: object) -> bool:
    """A coverage level is a number strictly between 0 and 1 (0 and 1 would promise nothing or everything)."""
    return not isinstance(value, bool) and isinstance(value, (int, float)) and 0 < value < 1


def check_coverage(coverage: float) -> None:
    if not is_level(coverage):
        raise OptionError(f"{{coverage}} must be a level strictly between 0 and 1, e.g. 0.9; got {literal(coverage)}")


def check_method(method: str) -> None:
    if method not in METHODS:
        raise OptionError(f"{{conformal}} must be {' or '.join(METHODS)}; got {literal(repr(method))}")


def quantile_rank(rows: int, coverage: float) -> int:
    """k = ⌈(n+1)·coverage⌉: q is the k-th smallest of the n dev scores (the finite-sample correction)."""
    return math.ceil((rows + 1) * coverage)


def minimum_rows(coverage: float) -> int:
    """The fewest dev rows for which the k-th smallest score exists (k ≤ n)."""
    rows = max(1, math.floor(coverage / (1 - coverage)) - 1)
    while quantile_rank(rows, coverage) > rows:
        rows += 1
    return rows


def check_rows(rows: int, coverage: float, where: str = "") -> None:
    """Refuse ``rows`` dev rows too few for the level: the ⌈(n+1)·coverage⌉-th smallest score must exist."""
    if quantile_rank(rows, coverage) > rows:
        prefix = f"{where}: " if where else ""
        raise InputError(
            f"{prefix}{rows} dev rows are too few for coverage {coverage:g}: the ⌈(n+1)·{coverage:g}⌉-th smallest "
            f"score needs n ≥ {minimum_rows(coverage)} rows; use a larger dev file or a lower coverage"
        )


def class_scores(probs: np.ndarray, method: str) -> np.ndarray:
    """(N, C) s(x, c) for every row and class: how badly each class fits its row (lower fits better)."""
    if method == "lac":
        return 1.0 - probs
    order = np.argsort(-probs, axis=1, kind="stable")  # descending, ties to the earlier class
    ranked = np.take_along_axis(probs, order, axis=1)
    mass = np.zeros_like(probs)
    np.cumsum(ranked[:, :-1], axis=1, out=mass[:, 1:])  # the mass ranked above each class
    scores = np.empty_like(probs)
    np.put_along_axis(scores, order, mass, axis=1)
    return scores


def conformal_threshold(probs: np.ndarray, gold: np.ndarray, coverage: float, method: str, where: str = "") -> float:
    """q: the ⌈(n+1)·coverage⌉-th smallest gold-class score of the n rows; refused when n is too small."""
    rows = len(gold)
    check_rows(rows, coverage, where)
    rank = quantile_rank(rows, coverage)
    gold_scores = class_scores(probs, method)[np.arange(rows), gold]
    return float(np.partition(gold_scores, rank - 1)[rank - 1])


@dataclass(frozen=True)
class ConformalSets:
    """A fitted set rule: the method, the promised level and the threshold q on its scores."""

    method: str
    coverage: float
    threshold: float

    def sets(self, probs: np.ndarray) -> np.ndarray:
        """(N, C) bool: class c is in row i's set when s(x_i, c) ≤ q."""
        return class_scores(probs, self.method) <= self.threshold


def fit_sets(probs: np.ndarray, gold: np.ndarray, coverage: float, method: str, where: str = "") -> ConformalSets:
    """The set rule of ``method`` at level ``coverage``, fitted on the (N, C) ``probs`` and gold indexes."""
    check_coverage(coverage)
    check_method(method)
    return ConformalSets(method, float(coverage), conformal_threshold(probs, gold, coverage, method, where))


@dataclass(frozen=True)
class SetReport:
    """How prediction sets did against gold labels, overall and per gold class."""

    coverage: float  # share of rows whose gold class is in the set
    mean_size: float
    class_coverage: np.ndarray  # (C,) among rows of each gold class; NaN for a class with no rows
    class_mean_size: np.ndarray  # (C,)
    class_rows: np.ndarray  # (C,) int
    size_counts: np.ndarray  # (C + 1,) rows with a set of 0, 1, ..., C classes


def set_report(sets: np.ndarray, gold: np.ndarray) -> SetReport:
    """Empirical coverage and set sizes of (N, C) ``sets`` against gold indexes (all in 0..C-1)."""
    rows, classes = sets.shape
    covered = sets[np.arange(rows), gold]
    sizes = sets.sum(axis=1)
    class_rows = np.bincount(gold, minlength=classes)
    with np.errstate(invalid="ignore", divide="ignore"):
        class_coverage = np.bincount(gold, weights=covered, minlength=classes) / class_rows
        class_mean_size = np.bincount(gold, weights=sizes, minlength=classes) / class_rows
    return SetReport(
        coverage=float(covered.mean()),
        mean_size=float(sizes.mean()),
        class_coverage=class_coverage,
        class_mean_size=class_mean_size,
        class_rows=class_rows,
        size_counts=np.bincount(sizes, minlength=classes + 1),
    )
