"""`T5Classifier`: t5cls as a scikit-learn classifier (``pip install t5cls[sklearn]``).

The estimator is a thin layer: its parameters become one ``[[task]]`` of a task config (labels,
template, text column, mode), written as ``t5cls calibrate`` and ``t5cls train`` write them and
read back by the same loader, so a bad parameter fails with the config's own message.
`predict_proba` is `t5cls.score_frame` with that config (``p_<class>`` in `classes_` order),
`decision_function` its ``logp_<class>`` columns (the class log-scores before the temperature),
and ``fit`` with ``epochs > 0`` is `t5cls.train.train` on the rows given, with the temperature
fitted on ``eval_set`` or on a held-out ``validation_fraction`` (as ``t5cls train --dev``).
With ``coverage``, ``fit`` also fits the prediction sets' threshold on those dev rows with
`t5cls.eval.conformal.fit_sets` (as ``t5cls calibrate --coverage``) and `predict_set` applies it.
`classes_` is sorted as scikit-learn's scorers assume (`numpy.unique`'s order), whatever the
order of ``labels``, which is kept only where it means something: the prompt's ``{labels}``.

Following scikit-learn's conventions, ``__init__`` only stores its parameters and everything
learnt ends in ``_``. Models are loaded lazily and the last one is kept (`_load`), so the clones
that `GridSearchCV` or `cross_val_score` fit share one loaded zero-shot model.
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import shutil
import tempfile
import tomllib
import uuid
import weakref
from pathlib import Path
from typing import NamedTuple

import numpy as np
import pandas as pd

try:
    from sklearn.base import BaseEstimator, ClassifierMixin
    from sklearn.model_selection import train_test_split
    from sklearn.utils.validation import check_is_fitted
except ImportError as err:  # an optional extra: say how to get it
    raise ImportError("t5cls.sklearn needs scikit-learn: pip install 't5cls[sklearn]'") from err

from t5cls.errors import InputError, OptionError
from t5cls.eval.conformal import check_coverage, check_method, check_rows, fit_sets
from t5cls.io.frames import as_frame
from t5cls.models.scorer import LabelScorer
from t5cls.options import (
    NULL_POLICIES,
    ModelOptions,
    ProgressOptions,
    ScoreOptions,
    check_keywords,
    keyword_names,
    keywords,
    number_in,
    one_of,
    with_keywords,
)
from t5cls.run.frames import run_frame
from t5cls.tasks.config import Task, TaskSet, config_toml, load_tasks, quick_task
from t5cls.tasks.labels import parse_labels
from t5cls.tasks.modes import MODES
from t5cls.tasks.prompts import DEFAULT_TEMPLATE

DEV_ROWS = "the dev rows (eval_set, or the share held out of X)"  # in errors
TASK = "T5Classifier"  # the task's name, in errors and its columns (T5Classifier_p_<class>, ...)
GOLD = "__t5cls_gold__"  # the gold column of the files handed to `t5cls train`
CONFIG = "task.toml"


class _Rows(NamedTuple):
    """The rows ``fit`` trains on and the dev rows it fits the temperature and the sets on (None: none)."""

    train: pd.DataFrame
    train_gold: np.ndarray
    dev: pd.DataFrame | None
    dev_gold: np.ndarray | None


class T5Classifier(ClassifierMixin, BaseEstimator):
    """A text classifier from a text-to-text or decoder-only model, with exact class probabilities.

    ``X`` is a list, array or Series of texts (read as ``text_column``), or a DataFrame (pandas,
    polars) or `pyarrow.Table` with every column the template reads. ``labels`` fixes the classes
    (and their order in the prompt's ``{labels}``); by default they are the distinct values of ``y``.
    `classes_` is always sorted, as scikit-learn's scorers assume. ``epochs=0`` (the
    default) is zero-shot: ``fit`` only records the classes. ``epochs > 0`` fine-tunes as
    ``t5cls train`` does (label-set loss) and writes the model to ``output_dir`` (default: a
    temporary folder removed with the estimator, whose files travel in the estimator's pickle).

    The other fields of `t5cls.options.ModelOptions` (``device``, ``dtype``, ``batch_size``,
    ``max_length``, ``label_end``, ``chat``, ``revision``...) are parameters too, read off their
    declaration; ``batch_size`` is the rows per forward pass, in ``fit`` as in ``predict``.
    """

    def __init__(
        self,
        model: str | None = None,
        labels=None,
        template: str | None = None,
        text_column: str = "text",
        mode: str = "sum",
        on_null: str = "error",
        epochs: int = 0,
        learning_rate: float = 1e-4,
        class_weights: str = "none",
        validation_fraction: float = 0.1,
        seed: int = 0,
        output_dir: str | None = None,
        progress: bool = False,
        coverage: float | None = None,
        conformal: str = "lac",
        **model_options,
    ):
        check_keywords(TASK, model_options, inspect.signature(type(self)).parameters)
        self.model = model
        self.labels = labels
        self.template = template
        self.text_column = text_column
        self.mode = mode
        self.on_null = on_null
        self.epochs = epochs
        self.learning_rate = learning_rate
        self.class_weights = class_weights
        self.validation_fraction = validation_fraction
        self.seed = seed
        self.output_dir = output_dir
        self.progress = progress
        self.coverage = coverage
        self.conformal = conformal
        for keyword, each in MODEL_KEYWORDS.items():  # the other fields of ModelOptions, read off their declaration
            if keyword != "model":
                setattr(self, keyword, model_options.get(keyword, each.default))

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.two_d_array = False
        tags.input_tags.string = True
        tags.target_tags.required = True
        return tags

    def fit(self, X, y, eval_set=None):
        """Set `classes_` (and with ``epochs > 0`` fine-tune); ``eval_set=(X_dev, y_dev)`` fits the temperature.

        With ``coverage``, the prediction sets' threshold q is fitted on the dev rows' calibrated
        probabilities, as ``t5cls calibrate --coverage`` fits it: the temperature's rows when
        fine-tuning (``eval_set`` or the held-out ``validation_fraction``); zero-shot, which learns
        nothing from ``X``, ``eval_set`` if given, else the rows of ``X``.
        """
        self._check_parameters()
        frame = self._frame(X)
        given = _given_labels(self.labels)
        gold = _gold(y, _rows(frame), given)
        labels = given if given is not None else _labels_of(gold)
        self.labels_ = np.array(sorted(labels), dtype=object)
        self.classes_ = np.arange(len(labels)) if _codes(y) else self.labels_
        self.model_ = self.model
        self._owned_model = False
        self.config_ = _task_config(labels, self.template, self.text_column, self.mode)
        self.fit_id_ = None
        self.conformal_threshold_ = None
        if self.epochs > 0 or self.coverage is not None:
            rows = self._split(frame, gold, eval_set)
            if self.coverage is not None:
                self._check_dev_rows(rows)
            if self.epochs > 0:
                self._fine_tune(rows)
            if self.coverage is not None:
                self._fit_sets(rows.dev, rows.dev_gold)
        return self

    def predict_proba(self, X) -> np.ndarray:
        """(n_samples, n_classes) class probabilities, columns in `classes_` order."""
        return self._scored(X, "p")

    def decision_function(self, X) -> np.ndarray:
        """The class log-scores S(c | x) (before the temperature); for two classes S(classes_[1]) − S(classes_[0])."""
        scores = self._scored(X, "logp")
        return scores[:, 1] - scores[:, 0] if len(self.classes_) == 2 else scores

    def predict(self, X) -> np.ndarray:
        """The most probable class of each row (ties go to the first class of `classes_`)."""
        probabilities = self.predict_proba(X)
        return self.classes_[probabilities.argmax(axis=1)]

    def predict_set(self, X) -> np.ndarray:
        """(n_samples, n_classes) bool, as MAPIE returns: whether each class of `classes_` is in the row's set.

        The set rule is `t5cls.eval.conformal`'s, the one ``t5cls score --config`` applies for its
        ``<task>_set`` column; ``classes_[row]`` lists a row's classes. Needs ``coverage`` at ``fit``.
        """
        check_is_fitted(self, "classes_")
        if getattr(self, "conformal_threshold_", None) is None:
            raise ValueError("predict_set needs prediction sets: give coverage (e.g. coverage=0.9) and fit again")
        task = self._task()
        order = self._prompt_order(task)
        probabilities = self.predict_proba(X)
        chosen = np.empty(probabilities.shape, dtype=bool)
        chosen[:, order] = task.conformal.sets(probabilities[:, order])
        return chosen

    def _fit_sets(self, dev, dev_gold: np.ndarray) -> None:
        """q on the dev rows' probabilities (class order of the task, as ``calibrate`` fits it); into `config_` too."""
        task = self._task()
        order = self._prompt_order(task)
        probabilities = self.predict_proba(dev)[:, order]
        gold = np.array([task.classes.index(label) for label in dev_gold])
        sets = fit_sets(probabilities, gold, self.coverage, self.conformal, DEV_ROWS)
        self.conformal_threshold_ = sets.threshold
        tables = tomllib.loads(self.config_)["task"]
        tables[0].update(coverage=sets.coverage, conformal=sets.method, conformal_threshold=sets.threshold)
        self.config_ = config_toml(tables, ["written by t5cls.sklearn.T5Classifier"])

    def _task(self) -> Task:
        """The estimator's task, read from `config_` by the loader ``t5cls score --config`` uses."""
        with tempfile.TemporaryDirectory(prefix="t5cls-") as folder:
            config = Path(folder) / CONFIG
            config.write_text(self.config_, encoding="utf-8")
            with _named_as_parameters(Path(folder)):
                [task] = load_tasks(None, str(config)).tasks
        return task

    def _prompt_order(self, task: Task) -> list[int]:
        """The `classes_` column of each of the task's classes, in the task's (the prompt's) order."""
        sorted_labels = [str(label) for label in self.labels_]
        return [sorted_labels.index(name) for name in task.classes]

    def _scored(self, X, kind: str) -> np.ndarray:
        """The task's ``<kind>_<class>`` columns (``p`` or ``logp``) for the rows of ``X``, in `classes_` order."""
        check_is_fitted(self, "classes_")
        frame = as_frame(self._frame(X))
        with tempfile.TemporaryDirectory(prefix="t5cls-") as folder:
            config = Path(folder) / CONFIG
            config.write_text(self.config_, encoding="utf-8")
            with _named_as_parameters(Path(folder)):
                options = ScoreOptions(input=frame.name, config=str(config), logprobs=True, on_null=self.on_null)
                scored = run_frame(frame, options, self._scorer(), self.progress)
        columns = [np.asarray(scored[f"{TASK}_{kind}_{name}"], dtype=np.float64) for name in self.labels_]
        return np.column_stack(columns)

    def _scorer(self) -> LabelScorer:
        return _load(self._model_options(self.model_), self.fit_id_)

    def _model_options(self, name: str | None) -> ModelOptions:
        """`ModelOptions` of ``name`` and the estimator's parameters of the same names; errors name those."""
        fields = {each.name: getattr(self, keyword) for keyword, each in MODEL_KEYWORDS.items() if keyword != "model"}
        try:
            return ModelOptions(name, **fields)
        except OptionError as err:
            raise err.renamed(keyword_names(ModelOptions)) from None

    def _frame(self, X):
        """``X`` as a table: frames and Arrow tables as they are, texts as a one-column DataFrame."""
        if hasattr(X, "columns") or hasattr(X, "column_names"):
            return X
        texts = np.asarray(X, dtype=object)
        if texts.ndim == 2 and texts.shape[1] == 1:
            texts = texts[:, 0]
        if texts.ndim != 1:
            raise ValueError(
                f"X must be texts (a list, 1-d array or Series) or a DataFrame with the template's columns; "
                f"got an array of shape {texts.shape}"
            )
        return pd.DataFrame({self.text_column: texts})

    def _check_parameters(self) -> None:
        one_of("mode", self.mode, MODES)
        one_of("on_null", self.on_null, [policy for policy in NULL_POLICIES if policy != "skip"])
        number_in("validation_fraction", self.validation_fraction, 0.0, 1.0, closed_high=False)
        if self.coverage is not None:
            check_coverage(self.coverage)
        check_method(self.conformal)

    def _check_dev_rows(self, rows: _Rows) -> None:
        """Refuse ``coverage`` before any training when there are no dev rows, or too few for the level."""
        if rows.dev is None:
            raise OptionError(
                "{coverage} needs dev rows to fit the prediction sets on: give fit an eval_set, "
                "or a {validation_fraction} > 0"
            )
        check_rows(len(rows.dev_gold), self.coverage, "X" if rows.dev is rows.train else DEV_ROWS)

    def _fine_tune(self, rows: _Rows) -> None:
        """``t5cls train`` on the rows given; the estimator then scores with the trained model and its temperature."""
        from t5cls.train import TrainOptions, train

        with tempfile.TemporaryDirectory(prefix="t5cls-") as work:
            work = Path(work)
            (work / CONFIG).write_text(self.config_, encoding="utf-8")
            train_file = _labelled_file(rows.train, rows.train_gold, work / "train.parquet")
            dev_file = None if rows.dev is None else _labelled_file(rows.dev, rows.dev_gold, work / "dev.parquet")
            output = self._output_folder()
            options = TrainOptions(
                train=str(train_file),
                output=str(output),
                gold=GOLD,
                config=str(work / CONFIG),
                dev=None if dev_file is None else str(dev_file),
                on_null=self.on_null,
                class_weights=self.class_weights,
                epochs=self.epochs,
                learning_rate=self.learning_rate,
                seed=self.seed,
            )
            with _named_as_parameters(work):
                summary = train(options, self._model_options(self.model), ProgressOptions(quiet=not self.progress))
        self.model_ = str(output)
        self.config_ = (output / "t5cls.toml").read_text(encoding="utf-8")
        self.temperature_ = summary.tasks[0].temperature if summary.tasks else 1.0
        self.fit_id_ = uuid.uuid4().hex

    def _split(self, frame, gold: np.ndarray, eval_set) -> _Rows:
        """The training rows and the dev rows: ``eval_set``, a held-out share when fine-tuning, or zero-shot ``X``."""
        frame = _pandas(frame)
        if eval_set is not None:
            dev = _pandas(self._frame(eval_set[0]))
            return _Rows(frame, gold, dev, _gold(eval_set[1], len(dev), list(self.labels_)))
        if self.epochs == 0:  # zero-shot learns nothing from X: its rows are as good as unseen ones
            return _Rows(frame, gold, frame, gold)
        if self.validation_fraction == 0:
            return _Rows(frame, gold, None, None)
        train_rows, dev_rows = train_test_split(
            np.arange(len(frame)),
            test_size=self.validation_fraction,
            random_state=self.seed,
            stratify=gold if _stratifiable(gold, self.validation_fraction) else None,
        )
        return _Rows(frame.iloc[train_rows], gold[train_rows], frame.iloc[dev_rows], gold[dev_rows])

    def _output_folder(self) -> Path:
        if self.output_dir is not None:
            return Path(self.output_dir)
        self._owned_model = True
        return self._temporary_folder() / "model"

    def _temporary_folder(self) -> Path:
        """A fresh temporary folder, removed with the estimator."""
        folder = Path(tempfile.mkdtemp(prefix="t5cls-model-"))
        weakref.finalize(self, shutil.rmtree, folder, ignore_errors=True)
        return folder

    def __getstate__(self) -> dict:
        """The estimator's state; a model fine-tuned into a temporary folder travels in it, file by file.

        That folder goes with the estimator, so a pickle that held only its path (``joblib.dump``,
        the estimators ``cross_validate`` sends back from its workers) would point at nothing.
        """
        state = super().__getstate__()
        if state.pop("_owned_model", False):
            folder = Path(self.model_)
            state["_model_files"] = {
                path.relative_to(folder).as_posix(): path.read_bytes()
                for path in sorted(folder.rglob("*"))
                if path.is_file()
            }
        return state

    def __setstate__(self, state: dict) -> None:
        """Unpickle; a model that travelled in the state is written to a temporary folder of this estimator's own."""
        files = state.pop("_model_files", None)
        super().__setstate__(state)
        if files is not None:
            folder = self._temporary_folder() / "model"
            for name, content in files.items():
                (folder / name).parent.mkdir(parents=True, exist_ok=True)
                (folder / name).write_bytes(content)
            self.model_ = str(folder)
            self._owned_model = True


MODEL_KEYWORDS = keywords(ModelOptions)
with_keywords(T5Classifier.__init__, ModelOptions, skip=["model"])


@functools.lru_cache(maxsize=1)
def _load(options: ModelOptions, fit_id: str | None) -> LabelScorer:
    """The last model used, kept loaded; ``fit_id`` tells apart models fine-tuned into the same folder."""
    return LabelScorer.from_options(options)


def _task_config(labels: list[str], template: str | None, text_column: str, mode: str) -> str:
    """The estimator's task as a config file's text, as ``t5cls calibrate`` writes one (``labels`` in prompt order)."""
    task = quick_task([str(name) for name in labels], template or DEFAULT_TEMPLATE, text_column, name=TASK)
    table = TaskSet(None, (task,)).table(task, ".") | {"mode": mode}
    return config_toml([table], ["written by t5cls.sklearn.T5Classifier"])


def _stratifiable(gold: np.ndarray, share: float) -> bool:
    """Whether a held-out ``share`` can keep every class on both sides (each class twice, enough rows per side)."""
    classes, counts = np.unique(gold, return_counts=True)
    held_out = int(np.ceil(share * len(gold)))
    return counts.min() >= 2 and min(held_out, len(gold) - held_out) >= len(classes)


def _given_labels(labels) -> list[str] | None:
    """The ``labels`` parameter as a list, in its order (the prompt's ``{labels}``), checked as ``--labels`` is."""
    return None if labels is None else parse_labels(labels if isinstance(labels, str) else list(labels))


@contextlib.contextmanager
def _named_as_parameters(work: Path):
    """Errors about the estimator's task and rows name its parameters, not the temporary files it writes to ``work``.

    The config's keys are the estimator's parameters (``labels``, ``template``, ``text_column``,
    ``mode``), so only the file and task that start the message change (``T5Classifier: 'template'
    ...``); the training and dev files are named as the rows they hold.
    """
    names = {
        f"{work / CONFIG}: task {TASK!r}": TASK,
        str(work / CONFIG): TASK,
        str(work / "train.parquet"): "X (the rows fit trains on)",
        str(work / "dev.parquet"): DEV_ROWS,
    }
    try:
        yield
    except InputError as err:
        message = str(err)
        if str(work) not in message:
            raise
        for path, name in names.items():
            message = message.replace(path, name)
        raise InputError(message) from None


def _labels_of(gold: np.ndarray) -> list[str]:
    """The classes of ``y`` when no ``labels`` are given: its distinct values."""
    found = sorted(set(gold))
    if len(found) < 2:
        raise ValueError(f"y has {len(found)} class(es); a classifier needs at least two, or give labels")
    return found


def _codes(y) -> bool:
    """Whether ``y`` holds whole numbers: codes of the sorted labels, as `LabelEncoder` (and so
    ``cross_val_predict(method="predict_proba")`` and ``CalibratedClassifierCV``) hands them over."""
    values = np.asarray(y).ravel()
    return values.dtype.kind in "iu" or (
        values.dtype == object and len(values) > 0 and all(isinstance(v, (int, np.integer)) for v in values)
    )


def _gold(y, rows: int, labels: list[str] | None) -> np.ndarray:
    """``y`` as label texts: texts as they are, codes (with ``labels``) as the sorted labels they number."""
    gold = np.asarray(y, dtype=object).ravel()
    if len(gold) != rows:
        raise ValueError(f"X has {rows} rows but y has {len(gold)} values")
    if labels is not None and _codes(gold):
        names = sorted(labels)
        bad = [code for code in gold if not 0 <= code < len(names)]
        if bad:
            raise ValueError(f"y holds {bad[0]!r}, which is not a class code 0..{len(names) - 1} of the sorted labels")
        return np.array([names[code] for code in gold], dtype=object)
    bad = [value for value in gold if not isinstance(value, str) or not value.strip()]
    if bad:
        raise ValueError(
            f"y holds {bad[0]!r}: classes are the label texts the model scores (map numbers to words first, "
            "or give labels: the codes 0, 1, ... then stand for the sorted labels)"
        )
    if labels is not None:
        unknown = sorted(set(gold) - set(labels))
        if unknown:
            raise ValueError(f"y holds {unknown[0]!r}, which is not one of labels ({', '.join(labels)})")
    return gold


def _rows(frame) -> int:
    return frame.num_rows if hasattr(frame, "num_rows") else len(frame)


def _pandas(frame) -> pd.DataFrame:
    if isinstance(frame, pd.DataFrame):
        return frame
    return frame.to_pandas()


def _labelled_file(frame: pd.DataFrame, gold: np.ndarray, path: Path) -> Path:
    if GOLD in frame.columns:
        raise ValueError(f"X has a column {GOLD!r}, which t5cls uses for the gold labels; rename it")
    frame.reset_index(drop=True).assign(**{GOLD: list(gold)}).to_parquet(path, index=False)
    return path
