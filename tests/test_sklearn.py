"""`t5cls.sklearn.T5Classifier`: scikit-learn's conventions, exact probabilities, model selection, fine-tuning.

References: a brute-force forward per (row, label) for the probabilities; accuracies computed
by hand from the estimator's own zero-shot predictions for `cross_val_score` and `GridSearchCV`;
``t5cls train``'s report (the session's trained tiny T5) for fine-tuning.

scikit-learn's `estimator_checks` are run where they apply. The rest feed numeric 2-D arrays to
``fit`` (``check_classifiers_train``, ``check_fit2d_*``, ``check_estimators_dtypes``, ``..._nan_inf``,
``check_dict_unchanged``, ``check_fit_idempotent``, ``check_methods_*_invariance``,
``check_estimators_pickle``, sample weights, sparse input, ``n_features_in_``...), which a text
classifier refuses; the properties among them that make sense for text (idempotent fit, subsets
and order of rows, pickling, parameters left alone) are tested here with texts instead.
"""

from __future__ import annotations

import gc
import importlib
import json
import os
import pickle
import subprocess
import sys
from pathlib import Path

import joblib
import numpy as np
import pandas as pd
import polars as pl
import pyarrow as pa
import pytest
from scipy.optimize import minimize_scalar
from sklearn.base import clone
from sklearn.calibration import CalibratedClassifierCV
from sklearn.exceptions import NotFittedError
from sklearn.frozen import FrozenEstimator
from sklearn.metrics import get_scorer
from sklearn.model_selection import (
    GridSearchCV,
    KFold,
    ParameterGrid,
    cross_val_predict,
    cross_val_score,
    cross_validate,
    train_test_split,
)
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer
from sklearn.utils import estimator_checks

from helpers.cli import SINGLE_THREAD
from helpers.labels import SENTIMENT as LABELS
from helpers.reference import brute_force_logprobs
from helpers.trained_model import LABELS as TRAINED_LABELS
from helpers.trained_model import TEMPLATE as TRAINED_TEMPLATE
from helpers.trained_model import TRAIN_ARGS
from t5cls import probability
from t5cls.errors import InputError
from t5cls.sklearn import T5Classifier
from t5cls.tasks.prompts import PromptTemplate

TEXTS = ["Great film", "awful plot", "it was fine", "loved the acting", "boring", "okay I guess", "superb", "meh"]
GOLD = ["positive", "negative", "neutral", "positive", "negative", "neutral", "positive", "neutral"]
TEMPLATES = ["{text}\nSentiment:", "Review: {text}\nOptions: {labels}\nAnswer:"]
UNSORTED = ["positive", "negative", "neutral", "mixed"]  # the README's order, not scikit-learn's
GOLD4 = ["positive", "negative", "neutral", "mixed", "mixed", "neutral", "negative", "positive"]

APPLICABLE_CHECKS = [
    estimator_checks.check_estimator_cloneable,
    estimator_checks.check_estimator_repr,
    estimator_checks.check_no_attributes_set_in_init,
    estimator_checks.check_parameters_default_constructible,
    estimator_checks.check_get_params_invariance,
    estimator_checks.check_set_params,
    estimator_checks.check_do_not_raise_errors_in_init_or_set_params,
    estimator_checks.check_estimators_unfitted,
    estimator_checks.check_mixin_order,
    estimator_checks.check_estimator_tags_renamed,
    estimator_checks.check_valid_tag_types,
]


def classifier(t5_dir, **params) -> T5Classifier:
    return T5Classifier(model=str(t5_dir), device="cpu", **params)


@pytest.mark.parametrize("check", APPLICABLE_CHECKS, ids=lambda check: check.__name__)
def test_the_estimator_checks_that_apply_to_a_text_classifier(t5_dir, check):
    check("T5Classifier", classifier(t5_dir, labels=LABELS))


def test_probabilities_are_the_softmax_of_the_exact_label_scores_for_every_kind_of_x(t5_dir):
    estimator = classifier(t5_dir, labels=LABELS, template=TEMPLATES[0]).fit(TEXTS, GOLD)
    prompts = PromptTemplate(TEMPLATES[0]).render({"text": TEXTS}, LABELS)
    logprobs = brute_force_logprobs(t5_dir, prompts, LABELS)
    order = np.argsort(LABELS)  # classes_ is sorted, as scikit-learn assumes
    np.testing.assert_allclose(estimator.predict_proba(TEXTS), probability.softmax(logprobs)[:, order], atol=1e-5)
    np.testing.assert_allclose(estimator.decision_function(TEXTS), logprobs[:, order], atol=1e-4)
    assert list(estimator.predict(TEXTS)) == [LABELS[i] for i in logprobs.argmax(axis=1)]
    assert list(estimator.classes_) == sorted(LABELS)
    expected = estimator.predict_proba(TEXTS)
    frame = pd.DataFrame({"text": TEXTS, "other": range(len(TEXTS))}, index=list("abcdefgh"))
    for X in (np.array(TEXTS), pd.Series(TEXTS), frame, pa.Table.from_pandas(frame), pl.from_pandas(frame)):
        np.testing.assert_array_equal(estimator.predict_proba(X), expected)


def test_two_classes_sorted_from_y_and_a_one_column_decision_function(t5_dir):
    y = ["yes", "no", "yes", "no", "no", "yes", "no", "yes"]
    estimator = classifier(t5_dir, template="{text}").fit(TEXTS, y)
    assert list(estimator.classes_) == ["no", "yes"]
    logprobs = brute_force_logprobs(t5_dir, TEXTS, ["no", "yes"])
    np.testing.assert_allclose(estimator.decision_function(TEXTS), logprobs[:, 1] - logprobs[:, 0], atol=1e-4)


def unsorted_reference(t5_dir) -> dict[str, np.ndarray]:
    """Each label's brute-force probability per row of TEXTS, the prompt listing UNSORTED in its order."""
    prompts = PromptTemplate(TEMPLATES[1]).render({"text": TEXTS}, UNSORTED)
    return dict(zip(UNSORTED, probability.softmax(brute_force_logprobs(t5_dir, prompts, UNSORTED)).T))


def pairwise_auc(scores: np.ndarray, positive: np.ndarray) -> float:
    """The chance that a positive row outscores a negative one (ties count half): ROC AUC by its definition."""
    pairs = scores[positive][:, None] - scores[~positive][None, :]
    return float(np.mean((pairs > 0) + 0.5 * (pairs == 0)))


def test_classes_are_sorted_so_scikit_learns_probability_scorers_read_the_right_columns(t5_dir):
    estimator = classifier(t5_dir, labels=UNSORTED, template=TEMPLATES[1]).fit(TEXTS, GOLD4)
    assert list(estimator.classes_) == sorted(UNSORTED)
    p = unsorted_reference(t5_dir)
    gold = np.array(GOLD4)
    np.testing.assert_allclose(estimator.predict_proba(TEXTS), np.column_stack([p[c] for c in sorted(p)]), atol=1e-5)
    log_loss = -np.mean(np.log([p[label][row] for row, label in enumerate(GOLD4)]))
    brier = np.mean(sum((p[label] - (gold == label)) ** 2 for label in UNSORTED))
    auc = np.mean([pairwise_auc(p[label], gold == label) for label in UNSORTED])
    assert get_scorer("neg_log_loss")(estimator, TEXTS, GOLD4) == pytest.approx(-log_loss, abs=1e-5)
    assert get_scorer("neg_brier_score")(estimator, TEXTS, GOLD4) == pytest.approx(-brier, abs=1e-5)
    assert get_scorer("roc_auc_ovr")(estimator, TEXTS, GOLD4) == pytest.approx(auc, abs=1e-9)


def test_cross_val_predict_hands_over_class_codes_and_gets_the_columns_of_the_sorted_classes(t5_dir):
    estimator = classifier(t5_dir, labels=UNSORTED, template=TEMPLATES[1])
    predicted = cross_val_predict(estimator, TEXTS, GOLD4, cv=KFold(2), method="predict_proba")
    p = unsorted_reference(t5_dir)  # zero-shot: every fold's model is the same one
    np.testing.assert_allclose(predicted, np.column_stack([p[c] for c in sorted(p)]), atol=1e-5)
    names = clone(estimator).fit(TEXTS, GOLD4).predict(TEXTS)
    codes = clone(estimator).fit(TEXTS, np.searchsorted(sorted(UNSORTED), GOLD4))  # y as LabelEncoder gives it
    assert list(codes.classes_) == [0, 1, 2, 3]
    np.testing.assert_array_equal(codes.predict(TEXTS), np.searchsorted(sorted(UNSORTED), names))


def fitted_temperature(scores: np.ndarray, gold: np.ndarray) -> float:
    """The T minimising the log loss of softmax(scores / T) on the rows' gold columns."""

    def loss(log_t):
        logp = probability.log_softmax(scores / np.exp(log_t))
        return -np.mean(logp[np.arange(len(gold)), gold])

    return float(np.exp(minimize_scalar(loss, bounds=(-5, 5), method="bounded", options={"xatol": 1e-8}).x))


def test_calibrated_classifier_cv_fits_the_temperature_of_the_class_scores(trained_t5):
    dev = pd.read_csv(trained_t5.data.dev).head(120)
    estimator = T5Classifier(str(trained_t5.folder), TRAINED_LABELS, TRAINED_TEMPLATE, device="cpu")
    assert sorted(TRAINED_LABELS) != TRAINED_LABELS
    scores = estimator.fit(dev.text, dev.label).decision_function(dev.text)  # sorted classes' log-scores
    gold = np.searchsorted(sorted(TRAINED_LABELS), dev.label)
    frozen = CalibratedClassifierCV(FrozenEstimator(estimator), method="temperature", cv=KFold(2))
    expected = probability.softmax(scores / fitted_temperature(scores, gold))
    np.testing.assert_allclose(frozen.fit(dev.text, dev.label).predict_proba(dev.text), expected, atol=1e-3)
    folds = KFold(2).split(dev)  # each fold's clone is fitted on class codes, its T on the other half
    crossed = CalibratedClassifierCV(clone(estimator), method="temperature", cv=KFold(2)).fit(dev.text, dev.label)
    expected = np.mean([probability.softmax(scores / fitted_temperature(scores[t], gold[t])) for _, t in folds], 0)
    np.testing.assert_allclose(crossed.predict_proba(dev.text), expected, atol=1e-3)


def test_rows_scored_alone_in_any_order_or_twice_fitted_give_the_same_answers(t5_dir):
    estimator = classifier(t5_dir, labels=LABELS)
    before = estimator.get_params()
    whole = estimator.fit(TEXTS, GOLD).predict_proba(TEXTS)
    assert estimator.get_params() == before
    np.testing.assert_allclose(np.vstack([estimator.predict_proba([text]) for text in TEXTS]), whole, atol=1e-6)
    order = np.random.default_rng(0).permutation(len(TEXTS))
    np.testing.assert_allclose(estimator.predict_proba([TEXTS[i] for i in order]), whole[order], atol=1e-6)
    np.testing.assert_array_equal(estimator.fit(TEXTS, GOLD).predict_proba(TEXTS), whole)
    np.testing.assert_array_equal(pickle.loads(pickle.dumps(estimator)).predict_proba(TEXTS), whole)


def test_a_pipeline_scores_what_its_steps_hand_over(t5_dir):
    lower = FunctionTransformer(lambda texts: [text.lower() for text in texts])
    pipeline = Pipeline([("lower", lower), ("t5", classifier(t5_dir, labels=LABELS))]).fit(TEXTS, GOLD)
    direct = classifier(t5_dir, labels=LABELS).fit(TEXTS, GOLD)
    np.testing.assert_array_equal(pipeline.predict_proba(TEXTS), direct.predict_proba([t.lower() for t in TEXTS]))
    assert pipeline.score(TEXTS, GOLD) == np.mean(direct.predict([t.lower() for t in TEXTS]) == np.array(GOLD))


def test_cross_val_score_gives_each_folds_zero_shot_accuracy(t5_dir):
    estimator = classifier(t5_dir, labels=LABELS)
    predictions = estimator.fit(TEXTS, GOLD).predict(TEXTS)
    gold = np.array(GOLD)
    folds = KFold(3).split(TEXTS)
    expected = [np.mean(predictions[test] == gold[test]) for _, test in folds]
    np.testing.assert_allclose(cross_val_score(estimator, TEXTS, GOLD, cv=KFold(3)), expected)


def test_grid_search_over_template_and_mode_picks_the_most_accurate(t5_dir):
    grid = {"template": TEMPLATES, "mode": ["sum", "mean"]}
    gold = np.array(GOLD)
    folds = list(KFold(2).split(TEXTS))
    means = []
    for params in ParameterGrid(grid):
        predictions = classifier(t5_dir, labels=LABELS, **params).fit(TEXTS, GOLD).predict(TEXTS)
        means.append(np.mean([np.mean(predictions[test] == gold[test]) for _, test in folds]))
    search = GridSearchCV(classifier(t5_dir, labels=LABELS), grid, cv=KFold(2)).fit(TEXTS, GOLD)
    np.testing.assert_allclose(search.cv_results_["mean_test_score"], means)
    assert search.best_params_ == list(ParameterGrid(grid))[int(np.argmax(means))]
    assert search.best_estimator_.template == search.best_params_["template"]


@pytest.mark.parametrize(
    ("params", "X", "y", "error", "message"),
    [
        ({}, TEXTS, [1, 0] * 4, ValueError, "y holds 1: classes are the label texts"),
        ({"labels": ["a", "b"]}, TEXTS, ["a", "c"] * 4, ValueError, "y holds 'c', which is not one of labels (a, b)"),
        ({}, TEXTS, ["a"] * 8, ValueError, "y has 1 class(es); a classifier needs at least two"),
        ({}, TEXTS, GOLD[:3], ValueError, "X has 8 rows but y has 3 values"),
        ({}, np.zeros((8, 2)), GOLD, ValueError, "got an array of shape (8, 2)"),
        ({"on_null": "skip"}, TEXTS, GOLD, InputError, "on_null: unknown on null 'skip'; choose error or empty"),
        ({"mode": "vote"}, TEXTS, GOLD, InputError, "mode: unknown mode 'vote'"),
    ],
)
def test_bad_fits_say_what_to_change(t5_dir, params, X, y, error, message):
    with pytest.raises(error) as raised:
        classifier(t5_dir, **params).fit(X, y)
    assert message in str(raised.value)


def test_errors_name_the_estimators_parameters_never_its_temporary_task_file(t5_dir, tmp_path):
    with pytest.raises(
        TypeError, match=r"^T5Classifier\(\) got an unexpected keyword argument 'templat'; did you mean"
    ):
        T5Classifier(str(t5_dir), templat="{text}")
    estimator = classifier(t5_dir, labels=["a", "b"], mode="first").fit(TEXTS[:2], ["a", "b"])  # both "▁", ...
    with pytest.raises(InputError, match=r"^T5Classifier: mode 'first' needs labels with distinct first tokens"):
        estimator.predict(TEXTS[:2])
    with pytest.raises(InputError, match=r"^T5Classifier: 'template' reads column 'txt', which X \(the rows fit"):
        classifier(t5_dir, labels=LABELS, template="{txt}", epochs=1).fit(TEXTS, GOLD)
    with pytest.raises(InputError, match=r"^X \(the rows fit trains on\): row 3: column 'text' is empty or null"):
        classifier(t5_dir, labels=LABELS, epochs=1, validation_fraction=0).fit(["good", "bad", ""], GOLD[:3])
    with pytest.raises(InputError, match=r"^label 'a' is given twice in labels"):
        classifier(t5_dir, labels=["a", "a", "b"]).fit(TEXTS[:2], ["a", "b"])
    with pytest.raises(InputError, match=r"^model \S*nowhere: no such folder"):
        T5Classifier(str(tmp_path / "nowhere"), labels=LABELS).fit(TEXTS, GOLD).predict(TEXTS)
    with pytest.raises(InputError, match=r"^batch_size must be a positive whole number, got 0"):
        classifier(t5_dir, labels=LABELS, batch_size=0).fit(TEXTS, GOLD).predict(TEXTS)


def test_unfitted_and_bad_rows_are_refused(t5_dir):
    with pytest.raises(NotFittedError):
        classifier(t5_dir).predict(TEXTS)
    estimator = classifier(t5_dir, labels=LABELS).fit(TEXTS, GOLD)
    with pytest.raises(InputError, match=r"DataFrame: row at index 2: column 'text' is empty or null"):
        estimator.predict(["fine", "good", " "])
    with pytest.raises(InputError, match=r"^T5Classifier: 'template' reads column 'text', which DataFrame lacks"):
        estimator.predict(pd.DataFrame({"body": TEXTS}))
    blank = classifier(t5_dir, labels=LABELS, on_null="empty").fit(TEXTS, GOLD).predict_proba(["fine", ""])
    assert blank.shape == (2, 3)


def test_zero_shot_on_the_trained_model_is_as_accurate_as_t5cls_train_reported(trained_t5):
    train, dev = pd.read_csv(trained_t5.data.train), pd.read_csv(trained_t5.data.dev)
    estimator = T5Classifier(str(trained_t5.folder), TRAINED_LABELS, TRAINED_TEMPLATE, device="cpu")
    accuracy = estimator.fit(train["text"], train["label"]).score(dev["text"], dev["label"])
    training = json.loads((trained_t5.folder / "training.json").read_text())
    assert accuracy >= training["tasks"][0]["after"]["accuracy"] >= 0.95


def test_fine_tuning_trains_as_t5cls_train_does(trained_t5, tmp_path):
    train, dev = pd.read_csv(trained_t5.data.train), pd.read_csv(trained_t5.data.dev)
    settings = dict(zip(TRAIN_ARGS[::2], TRAIN_ARGS[1::2]))
    estimator = T5Classifier(
        str(trained_t5.base), TRAINED_LABELS, TRAINED_TEMPLATE, epochs=int(settings["--epochs"]),
        learning_rate=float(settings["--lr"]), batch_size=int(settings["--batch-size"]),
        class_weights=settings["--class-weights"], seed=int(settings["--seed"]), device="cpu",
        output_dir=str(tmp_path / "model"),
    )  # fmt: skip
    estimator.fit(train[["text"]], train["label"], eval_set=(dev["text"], dev["label"]))
    training = json.loads((trained_t5.folder / "training.json").read_text())["tasks"][0]
    assert estimator.score(dev["text"], dev["label"]) >= training["after"]["accuracy"]
    assert estimator.temperature_ == pytest.approx(training["temperature"], rel=1e-3)
    assert clone(estimator).get_params() == estimator.get_params()
    assert (tmp_path / "model" / "t5cls.toml").exists()


def test_fine_tuning_holds_out_a_share_for_the_temperature_in_a_folder_removed_with_the_estimator(t5_dir):
    estimator = classifier(t5_dir, labels=LABELS, epochs=1, validation_fraction=0.25).fit(TEXTS, GOLD)
    folder = Path(estimator.model_)
    training = json.loads((folder / "training.json").read_text())
    assert (training["train"]["rows"], training["dev"]["rows"]) == (6, 2)
    assert estimator.temperature_ == pytest.approx(training["tasks"][0]["temperature"])
    assert estimator.predict_proba(TEXTS).shape == (8, 3)
    del estimator
    gc.collect()
    assert not folder.parent.exists()


def test_a_fine_tuned_estimator_carries_its_model_in_its_pickle_to_another_process(t5_dir, tmp_path):
    estimator = classifier(t5_dir, labels=LABELS, epochs=1, validation_fraction=0).fit(TEXTS, GOLD)
    expected, folder = estimator.predict_proba(TEXTS), Path(estimator.model_).parent
    joblib.dump(estimator, tmp_path / "tuned.joblib")
    del estimator
    gc.collect()
    assert not folder.exists()
    load = (
        "import json, sys, joblib; tuned = joblib.load(sys.argv[1]); "
        "print(json.dumps({'p': tuned.predict_proba(json.loads(sys.argv[2])).tolist(), 'model': tuned.model_}))"
    )
    shown = subprocess.run(
        [sys.executable, "-c", load, str(tmp_path / "tuned.joblib"), json.dumps(TEXTS)],
        capture_output=True,
        env={**os.environ, **SINGLE_THREAD},
        check=True,
        timeout=300,
    )
    loaded = json.loads(shown.stdout)
    np.testing.assert_allclose(loaded["p"], expected, atol=1e-6)
    assert Path(loaded["model"]).parent != folder
    assert not Path(loaded["model"]).parent.exists()  # the second process's own copy went with it


def test_cross_validate_returns_fine_tuned_estimators_that_predict(t5_dir):
    estimator = classifier(t5_dir, labels=LABELS, epochs=1, validation_fraction=0)
    folds = list(KFold(2).split(TEXTS))
    result = cross_validate(estimator, TEXTS, GOLD, cv=KFold(2), n_jobs=2, return_estimator=True)
    for (train, _), fitted in zip(folds, result["estimator"]):
        here = clone(estimator).fit([TEXTS[i] for i in train], [GOLD[i] for i in train])
        np.testing.assert_allclose(fitted.predict_proba(TEXTS), here.predict_proba(TEXTS), atol=1e-5)


def test_without_scikit_learn_the_import_says_how_to_get_it(monkeypatch):
    monkeypatch.setitem(sys.modules, "sklearn.base", None)  # what an environment without scikit-learn imports
    monkeypatch.delitem(sys.modules, "t5cls.sklearn")
    with pytest.raises(ImportError, match=r"t5cls.sklearn needs scikit-learn: pip install 't5cls\[sklearn\]'"):
        importlib.import_module("t5cls.sklearn")


SET_TEXTS = [*TEXTS, "not bad", "terrible", "so-so", "brilliant", "dull", "average", "wonderful", "fine I suppose"]
SET_GOLD = [*GOLD, "positive", "negative", "neutral", "positive", "negative", "neutral", "positive", "neutral"]


def lac_threshold(probs: np.ndarray, gold: list[str], classes: list[str], coverage: float) -> float:
    """q by hand: the ⌈(n+1)·coverage⌉-th smallest 1 − p(gold) of the n dev rows."""
    scores = sorted(1.0 - probs[row, classes.index(label)] for row, label in enumerate(gold))
    return scores[int(np.ceil((len(gold) + 1) * coverage)) - 1]


def test_prediction_sets_are_every_class_at_least_one_minus_q_fitted_on_x_when_zero_shot(t5_dir):
    estimator = classifier(t5_dir, labels=UNSORTED, template=TEMPLATES[1], coverage=0.8)
    estimator.fit(SET_TEXTS[:12], SET_GOLD[:12])
    probs = estimator.predict_proba(SET_TEXTS[:12])
    q = lac_threshold(probs, SET_GOLD[:12], list(estimator.classes_), 0.8)
    assert estimator.conformal_threshold_ == q
    sets = estimator.predict_set(SET_TEXTS)
    assert sets.dtype == bool and sets.shape == (16, 4)
    np.testing.assert_array_equal(sets, estimator.predict_proba(SET_TEXTS) >= 1.0 - q)
    assert 0 < sets.sum() < sets.size  # neither empty nor full: the threshold decides
    on_dev = classifier(t5_dir, labels=UNSORTED, template=TEMPLATES[1], coverage=0.8)
    on_dev.fit(SET_TEXTS[:2], SET_GOLD[:2], eval_set=(SET_TEXTS[4:], SET_GOLD[4:]))
    assert on_dev.conformal_threshold_ == lac_threshold(probs[4:], SET_GOLD[4:12], list(on_dev.classes_), 0.8)


@pytest.mark.parametrize("conformal", ["lac", "aps"])
def test_prediction_sets_are_score_frames_set_column_for_a_config_with_the_same_threshold(t5_dir, tmp_path, conformal):
    from t5cls import score_frame

    estimator = classifier(t5_dir, labels=UNSORTED, template=TEMPLATES[1], coverage=0.75, conformal=conformal)
    estimator.fit(SET_TEXTS, SET_GOLD)
    config = tmp_path / "sets.toml"
    config.write_text(
        f'[[task]]\nname = "T5Classifier"\nlabels = {json.dumps(UNSORTED)}\ntemplate = {json.dumps(TEMPLATES[1])}\n'
        f'coverage = 0.75\nconformal = "{conformal}"\nconformal_threshold = {estimator.conformal_threshold_!r}\n'
    )
    scored = score_frame(pd.DataFrame({"text": SET_TEXTS}), config=str(config), model=str(t5_dir), device="cpu")
    sets = estimator.predict_set(SET_TEXTS)
    expected = [set(filter(None, joined.split(","))) for joined in scored["T5Classifier_set"]]
    assert [set(estimator.classes_[row]) for row in sets] == expected
    np.testing.assert_array_equal(sets.sum(axis=1), scored["T5Classifier_set_size"])
    if conformal == "aps":
        assert sets[np.arange(16), estimator.predict_proba(SET_TEXTS).argmax(axis=1)].all()


def test_fine_tuned_sets_are_fitted_on_the_temperatures_held_out_rows(t5_dir):
    estimator = classifier(t5_dir, labels=LABELS, epochs=1, validation_fraction=0.5, coverage=0.8)
    estimator.fit(SET_TEXTS, SET_GOLD)
    training = json.loads((Path(estimator.model_) / "training.json").read_text())
    assert training["dev"]["rows"] == 8
    _, dev_rows = train_test_split(np.arange(16), test_size=0.5, random_state=0, stratify=SET_GOLD)
    dev_texts, dev_gold = [SET_TEXTS[i] for i in dev_rows], [SET_GOLD[i] for i in dev_rows]
    probs = estimator.predict_proba(dev_texts)
    assert estimator.conformal_threshold_ == lac_threshold(probs, dev_gold, list(estimator.classes_), 0.8)
    np.testing.assert_array_equal(
        estimator.predict_set(SET_TEXTS), estimator.predict_proba(SET_TEXTS) >= 1.0 - estimator.conformal_threshold_
    )


@pytest.mark.parametrize(
    ("params", "fit", "error", "message"),
    [
        ({"coverage": 1.0}, {}, InputError, "coverage must be a level strictly between 0 and 1, e.g. 0.9; got 1.0"),
        ({"coverage": 0.9, "conformal": "raps"}, {}, InputError, "conformal must be lac or aps; got 'raps'"),
        (
            {"coverage": 0.9, "epochs": 1, "validation_fraction": 0},
            {},
            InputError,
            "coverage needs dev rows to fit the prediction sets on: give fit an eval_set, or a validation_fraction > 0",
        ),
        ({"coverage": 0.9}, {}, InputError, "X: 8 dev rows are too few for coverage 0.9: the ⌈(n+1)·0.9⌉-th"),
        (
            {"coverage": 0.9},
            {"eval_set": (TEXTS[:5], GOLD[:5])},
            InputError,
            "the dev rows (eval_set, or the share held out of X): 5 dev rows are too few for coverage 0.9",
        ),
        (
            {"coverage": 0.9, "epochs": 1, "validation_fraction": 0.25},
            {},
            InputError,
            "the dev rows (eval_set, or the share held out of X): 2 dev rows are too few for coverage 0.9",
        ),
    ],
)
def test_prediction_sets_without_enough_dev_rows_are_refused_before_training(t5_dir, params, fit, error, message):
    estimator = classifier(t5_dir, labels=LABELS, **params)
    with pytest.raises(error) as raised:
        estimator.fit(TEXTS, GOLD, **fit)
    assert str(raised.value).startswith(message)
    assert not hasattr(estimator, "model_") or estimator.model_ == str(t5_dir)  # nothing was fine-tuned


def test_predict_set_without_coverage_says_which_parameter_to_give(t5_dir):
    with pytest.raises(NotFittedError):
        classifier(t5_dir, coverage=0.5).predict_set(TEXTS)
    estimator = classifier(t5_dir, labels=LABELS).fit(TEXTS, GOLD)
    assert estimator.conformal_threshold_ is None
    with pytest.raises(ValueError, match=r"^predict_set needs prediction sets: give coverage \(e.g. coverage=0.9\)"):
        estimator.predict_set(TEXTS)


def test_clone_and_pickle_keep_the_prediction_sets(t5_dir, tmp_path):
    estimator = classifier(t5_dir, labels=LABELS, coverage=0.75, conformal="aps")
    assert clone(estimator).get_params() == estimator.get_params()
    assert (estimator.get_params()["coverage"], estimator.get_params()["conformal"]) == (0.75, "aps")
    estimator.fit(SET_TEXTS, SET_GOLD)
    expected = estimator.predict_set(SET_TEXTS)
    refitted = clone(estimator).fit(SET_TEXTS, SET_GOLD)
    assert refitted.conformal_threshold_ == estimator.conformal_threshold_
    joblib.dump(estimator, tmp_path / "sets.joblib")
    loaded = joblib.load(tmp_path / "sets.joblib")
    assert loaded.conformal_threshold_ == estimator.conformal_threshold_
    np.testing.assert_array_equal(loaded.predict_set(SET_TEXTS), expected)
    np.testing.assert_array_equal(pickle.loads(pickle.dumps(refitted)).predict_set(SET_TEXTS), expected)
