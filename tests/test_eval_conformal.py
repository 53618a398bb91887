"""Split conformal prediction sets (`t5cls.eval.conformal`): the threshold, the sets and their coverage."""

from __future__ import annotations

import math

import numpy as np
import pytest

from t5cls.errors import InputError, OptionError
from t5cls.eval.calibration import calibrate
from t5cls.eval.conformal import (
    check_coverage,
    check_rows,
    fit_sets,
    minimum_rows,
    quantile_rank,
    set_report,
)
from t5cls.probability import softmax


def dirichlet_rows(rows: int, classes: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Probabilities and gold labels drawn from them: a perfectly calibrated model."""
    rng = np.random.default_rng(seed)
    probs = rng.dirichlet(np.full(classes, 0.7), size=rows)
    gold = (rng.random((rows, 1)) > probs.cumsum(axis=1)).sum(axis=1)
    return probs, np.minimum(gold, classes - 1)


def reference_threshold(gold_scores: list[float], coverage: float) -> float:
    """The textbook q: sort the n scores, take the ⌈(n+1)·coverage⌉-th smallest (1-based)."""
    return sorted(gold_scores)[math.ceil((len(gold_scores) + 1) * coverage) - 1]


def reference_aps_scores(row: np.ndarray) -> list[float]:
    """Non-randomized APS scores of one row, one class at a time: the mass of the classes ranked above it."""
    ranked = sorted(range(len(row)), key=lambda c: (-row[c], c))
    scores, mass = [0.0] * len(row), 0.0
    for c in ranked:
        scores[c] = mass
        mass += row[c]
    return scores


@pytest.mark.parametrize("coverage", [0.5, 0.8, 0.9, 0.95])
def test_lac_sets_equal_the_textbook_computation(coverage):
    probs, gold = dirichlet_rows(300, 5, seed=1)
    test, _ = dirichlet_rows(200, 5, seed=2)
    q = reference_threshold([1.0 - probs[i, g] for i, g in enumerate(gold)], coverage)
    fitted = fit_sets(probs, gold, coverage, "lac")
    assert fitted.threshold == q and fitted.method == "lac" and fitted.coverage == coverage
    expected = [[1.0 - p <= q for p in row] for row in test]
    assert fitted.sets(test).tolist() == expected


@pytest.mark.parametrize("coverage", [0.6, 0.9])
def test_aps_sets_equal_a_row_by_row_computation(coverage):
    probs, gold = dirichlet_rows(250, 4, seed=3)
    probs[:5, :2] = probs[:5, :2].mean(axis=1, keepdims=True)  # ties: the earlier class ranks first
    test, _ = dirichlet_rows(150, 4, seed=4)
    q = reference_threshold([reference_aps_scores(row)[g] for row, g in zip(probs, gold)], coverage)
    fitted = fit_sets(probs, gold, coverage, "aps")
    assert fitted.threshold == pytest.approx(q, abs=1e-15)
    expected = [[score <= fitted.threshold for score in reference_aps_scores(row)] for row in test]
    assert fitted.sets(test).tolist() == expected
    assert fitted.sets(test)[np.arange(150), test.argmax(axis=1)].all()  # the most probable class is always in


def test_a_dev_row_is_in_its_own_set_exactly_when_its_score_is_at_most_q():
    """Set and fit use one score function, so the rows that define q are covered whatever the rounding."""
    probs, gold = dirichlet_rows(99, 3, seed=5)
    for method in ("lac", "aps"):
        fitted = fit_sets(probs, gold, 0.9, method)
        covered = fitted.sets(probs)[np.arange(99), gold]
        assert covered.sum() >= 90  # k = ⌈100 · 0.9⌉ = 90 scores are ≤ their 90th smallest


@pytest.mark.parametrize("confidence_level", [0.8, 0.9])
def test_lac_sets_equal_mapie(confidence_level):
    """MAPIE's split conformal classifier (v1 API) on a prefit model that returns the given probabilities."""
    mapie = pytest.importorskip("mapie.classification", reason="MAPIE (test extra) is not installed")
    from sklearn.base import BaseEstimator, ClassifierMixin

    class Fixed(ClassifierMixin, BaseEstimator):
        """A prefit classifier whose X is a row number into fixed probabilities."""

        def __init__(self, probs=None):
            self.probs = probs

        def fit(self, X, y):
            self.classes_ = np.arange(self.probs.shape[1])
            return self

        def predict_proba(self, X):
            return self.probs[np.asarray(X)[:, 0].astype(int)]

        def predict(self, X):
            return self.predict_proba(X).argmax(axis=1)

    probs, gold = dirichlet_rows(700, 4, seed=6)
    rows = np.arange(700)[:, None]
    calibration, test = slice(0, 200), slice(200, 700)
    conformal = mapie.SplitConformalClassifier(
        estimator=Fixed(probs).fit(rows, gold), confidence_level=confidence_level, conformity_score="lac", prefit=True
    )
    conformal.conformalize(rows[calibration], gold[calibration])
    _, sets = conformal.predict_set(rows[test])
    ours = fit_sets(probs[calibration], gold[calibration], confidence_level, "lac").sets(probs[test])
    assert ours.tolist() == sets[:, :, 0].tolist()


def coverage_over_seeds(method: str, coverage: float, fit_temperature: bool, seeds: int = 400) -> np.ndarray:
    """Each seed: 99 dev rows and 1000 new rows, gold drawn from the model's own distribution; the new rows' coverage.

    With ``fit_temperature`` the scores are over-confident (logits × 2) and T is fitted on the same dev
    rows as q, as ``t5cls calibrate --coverage`` does.
    """
    rng = np.random.default_rng(7)
    dev_rows, new_rows, classes = 99, 1000, 5
    results = []
    for _ in range(seeds):
        logits = rng.normal(0.0, 2.0, size=(dev_rows + new_rows, classes))
        truth = softmax(logits)
        gold = (rng.random((len(truth), 1)) > truth.cumsum(axis=1)).sum(axis=1).clip(max=classes - 1)
        scores = 2.0 * logits if fit_temperature else logits
        temperature = calibrate(scores[:dev_rows], gold[:dev_rows]).temperature if fit_temperature else 1.0
        probs = softmax(scores, temperature)
        sets = fit_sets(probs[:dev_rows], gold[:dev_rows], coverage, method).sets(probs[dev_rows:])
        results.append(sets[np.arange(new_rows), gold[dev_rows:]].mean())
    return np.array(results)


@pytest.mark.parametrize("method", ["lac", "aps"])
@pytest.mark.parametrize("fit_temperature", [False, True], ids=["fixed-scores", "T-fitted-on-the-same-rows"])
def test_coverage_over_many_seeds_is_the_level(method, fit_temperature):
    """The guarantee: E[coverage] ≥ k/(n+1) = 90/100, with equality for scores without ties, so the mean over
    400 seeds stays within Monte-Carlo error of 0.9: per seed the coverage's sd is about 0.031 (Beta(90, 10)
    plus 1000 binomial draws), so the mean's is 0.0016, and the tolerance is 4 of those. (APS scores tie at
    0 on rows whose gold class ranks first; here that moves the mean by less than the tolerance: 0.902.)"""
    tolerance = 4 * 0.031 / math.sqrt(400)
    coverage = coverage_over_seeds(method, 0.9, fit_temperature)
    assert abs(coverage.mean() - 0.9) < tolerance, coverage.mean()
    assert 0.02 < coverage.std() < 0.045  # the per-seed spread the tolerance assumes


def test_minimum_rows_is_the_first_n_with_a_kth_smallest_score():
    for coverage in (0.5, 0.8, 0.9, 0.95, 0.99, 0.123):
        n = minimum_rows(coverage)
        assert quantile_rank(n, coverage) <= n and quantile_rank(n - 1, coverage) > n - 1


def test_too_few_dev_rows_are_refused_naming_n_the_level_and_the_minimum():
    check_rows(9, 0.9)  # ⌈10 · 0.9⌉ = 9 ≤ 9
    with pytest.raises(InputError, match=r"dev.csv: 8 dev rows are too few for coverage 0.9: .* n ≥ 9 rows"):
        check_rows(8, 0.9, "dev.csv")
    probs, gold = dirichlet_rows(18, 3, seed=8)
    with pytest.raises(InputError, match=r"18 dev rows are too few for coverage 0\.95"):
        fit_sets(probs, gold, 0.95, "lac")


@pytest.mark.parametrize("coverage", [0, 1, 1.5, -0.1, True, float("nan")])
def test_a_level_outside_0_1_is_refused_naming_the_parameter(coverage):
    with pytest.raises(OptionError, match=r"^coverage must be a level strictly between 0 and 1"):
        check_coverage(coverage)


def test_an_unknown_method_is_refused():
    probs, gold = dirichlet_rows(50, 3, seed=9)
    with pytest.raises(OptionError, match="conformal must be lac or aps; got 'raps'"):
        fit_sets(probs, gold, 0.9, "raps")


def test_set_report_counts_coverage_and_sizes_overall_and_per_class():
    sets = np.array([[1, 0, 0], [1, 1, 0], [0, 0, 0], [0, 1, 1], [1, 1, 1]], dtype=bool)
    gold = np.array([0, 1, 0, 2, 1])
    report = set_report(sets, gold)
    assert report.coverage == pytest.approx(4 / 5) and report.mean_size == pytest.approx(8 / 5)
    assert report.class_coverage.tolist() == [0.5, 1.0, 1.0]
    assert report.class_mean_size.tolist() == [0.5, 2.5, 2.0]
    assert report.class_rows.tolist() == [2, 2, 1] and report.size_counts.tolist() == [1, 1, 2, 1]
