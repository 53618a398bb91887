"""Temperature scaling: the fit behind `t5cls calibrate` and the temperatures `t5cls train` writes.

Temperature scaling (Guo et al., 2017) divides a task's class log-scores (in ``sum`` mode, the
label log-probabilities) by one number T > 0 before the softmax: p = softmax(S / T). It never
changes which label wins, so accuracy stays the same, but T > 1 softens over-confident scores and
T < 1 sharpens timid ones. T is chosen to minimise the negative log-likelihood of the dev file's
gold labels. The scores come in from the caller (`t5cls.run.calibrate` scores the dev file as
``t5cls score`` would: mode, verbalizers, few-shot examples), so T belongs to the scores the
written config will give; nothing here loads a model.
"""

from __future__ import annotations

import json
from contextlib import closing
from dataclasses import dataclass

import numpy as np

from t5cls.errors import InputError
from t5cls.eval import metrics
from t5cls.eval.conformal import ConformalSets
from t5cls.io.readers import SCAN_CHUNK_ROWS, open_input
from t5cls.probability import scaled_nll, softmax
from t5cls.tasks.prompts import PromptTemplate

LOG_T_BOUNDS = (np.log(1e-2), np.log(1e2))
LOG_T_TOLERANCE = 1e-6


@dataclass(frozen=True)
class DevSet:
    """A dev file's template columns as text, and each row's gold class index."""

    columns: dict[str, list[str]]
    gold: np.ndarray  # (N,) index into the classes


def read_dev_file(path: str, template: PromptTemplate, labels: list[str], gold_column: str) -> DevSet:
    """Read every row's template columns and look up its gold class; every row must be usable.

    A row without text or with a gold value outside the label set cannot be fitted, so it is an
    error naming the row rather than a silent drop that would bias the temperature.
    """
    with closing(open_input(path, SCAN_CHUNK_ROWS)) as source:
        return _read_dev_rows(source, path, template, labels, gold_column)


def _read_dev_rows(source, path: str, template: PromptTemplate, labels: list[str], gold_column: str) -> DevSet:
    template.check_columns(source.columns, path)
    if gold_column not in source.columns:
        raise InputError(f"{path}: no gold column {gold_column!r}; columns are: {', '.join(source.columns)}")
    position = {label: index for index, label in enumerate(labels)}
    columns: dict[str, list[str]] = {name: [] for name in template.columns_needed()}
    gold: list[int] = []
    for table in source.chunks:
        for name, values in columns.items():
            values.extend(_texts(path, table.column(name).to_pylist(), name, len(gold)))
        for row, value in enumerate(table.column(gold_column).to_pylist(), start=len(gold) + 1):
            if (index := position.get("" if value is None else str(value))) is None:
                raise InputError(
                    f"{path}: row {row}: gold label {value!r} is not one of the labels ({', '.join(labels)}); "
                    "calibration needs every dev row's gold label in the label set"
                )
            gold.append(index)
    if not gold:
        raise InputError(f"{path}: no rows to calibrate on")
    return DevSet(columns, np.array(gold))


def _texts(path: str, values: list, name: str, offset: int) -> list[str]:
    """A template column as text; a blank value would fit T to the bare prompt, so it is an error."""
    for row, value in enumerate(values, start=offset + 1):
        if value is None or (isinstance(value, str) and not value.strip()):
            raise InputError(f"{path}: row {row}: column {name!r} is empty or null; remove the row from the dev file")
    return [str(value) for value in values]


def fit_temperature(logprobs: np.ndarray, gold: np.ndarray) -> float:
    """The T in [0.01, 100] minimising `scaled_nll`, by golden-section search on log T.

    The NLL is convex in 1/T (a log-sum-exp of linear functions, minus a linear term), so it
    is unimodal in log T and a bracketing search finds the global minimum in the bounds
    without derivatives or scipy. A minimum at a bound means the scores carry no usable
    signal (T = 100) or are separable (T = 0.01).
    """
    ratio = (np.sqrt(5.0) - 1.0) / 2.0
    low, high = LOG_T_BOUNDS

    def loss(log_t: float) -> float:
        return scaled_nll(logprobs, gold, float(np.exp(log_t)))

    left, right = high - ratio * (high - low), low + ratio * (high - low)
    loss_left, loss_right = loss(left), loss(right)
    while high - low > LOG_T_TOLERANCE:
        if loss_left <= loss_right:
            high, right, loss_right = right, left, loss_left
            left = high - ratio * (high - low)
            loss_left = loss(left)
        else:
            low, left, loss_left = left, right, loss_right
            right = low + ratio * (high - low)
            loss_right = loss(right)
    return float(np.exp((low + high) / 2.0))


@dataclass(frozen=True)
class Calibration:
    """A fitted temperature and what it did to the dev file's NLL and ECE."""

    temperature: float
    rows: int
    nll_before: float
    nll_after: float
    ece_before: float
    ece_after: float
    left_out: int = 0  # dev rows left out of the fit: the task's own few-shot demonstrations
    sets: ConformalSets | None = None  # prediction sets fitted on the calibrated probabilities (--coverage)


def calibrate(logprobs: np.ndarray, gold: np.ndarray) -> Calibration:
    """Fit the temperature and measure NLL and ECE at T = 1 and at the fitted T."""
    temperature = fit_temperature(logprobs, gold)
    return Calibration(
        temperature=temperature,
        rows=len(gold),
        nll_before=scaled_nll(logprobs, gold, 1.0),
        nll_after=scaled_nll(logprobs, gold, temperature),
        ece_before=metrics.expected_calibration_error(softmax(logprobs), gold),
        ece_after=metrics.expected_calibration_error(softmax(logprobs, temperature), gold),
    )


def bound_warning(result: Calibration) -> str | None:
    """What a temperature at a bound of the search means, or ``None`` for one inside the bounds.

    At the upper bound the fit flattened every row towards uniform: the scores say nothing about
    this dev set's gold labels. At the lower bound the dev set is separated perfectly, and any
    smaller T would fit it as well.
    """
    log_t = np.log(result.temperature)
    low, high = LOG_T_BOUNDS
    if log_t >= high - 2 * LOG_T_TOLERANCE:
        return (
            f"T = {result.temperature:.4g} is the upper bound of the search: the scores carry no information about "
            "this dev set's gold labels; check the labels, the template and the gold column"
        )
    if log_t <= low + 2 * LOG_T_TOLERANCE:
        return (
            f"T = {result.temperature:.4g} is the lower bound of the search: the scores separate this dev set "
            "perfectly, so T is not pinned down; fit on a larger or harder dev set"
        )
    return None


def toml_string(value: str) -> str:
    """A TOML basic string. JSON's escapes are all valid TOML; TOML also wants DEL escaped."""
    return json.dumps(value, ensure_ascii=False).replace("\x7f", "\\u007f")


def fitted_comment(calibration: Calibration, dev_file: str, model: str) -> str:
    """The comment above a fitted task: where T came from (it fits only that model's scores) and what it did."""
    left_out = f", {calibration.left_out} demonstration rows left out" if calibration.left_out else ""
    return (
        f"fitted by t5cls calibrate on {toml_string(dev_file)} ({calibration.rows} rows{left_out}) with model "
        f"{toml_string(model)}: NLL {calibration.nll_before:.4f} -> {calibration.nll_after:.4f}, "
        f"ECE {calibration.ece_before:.4f} -> {calibration.ece_after:.4f}"
    )


def sets_line(result: Calibration) -> str:
    """What ``--coverage`` fitted: the method, the level and q (the set rule `t5cls score` applies)."""
    sets = result.sets
    rule = (
        "every class c with p_c ≥ 1 − q"
        if sets.method == "lac"
        else "its classes by descending p while the mass ranked above the next one is ≤ q"
    )
    return (
        f"prediction sets ({sets.method}, coverage {sets.coverage:g}): q = {sets.threshold:.6g}, "
        f"fitted on the {result.rows} calibrated dev rows; a row's set is {rule}"
    )


def calibration_table(result: Calibration):
    """Dev-set NLL and ECE at T = 1 and at the fitted T (accuracy cannot change), as a rich table."""
    from rich.table import Table

    left_out = f" ({result.left_out} demonstration rows left out)" if result.left_out else ""
    title = f"Temperature {result.temperature:.4f} fitted on {result.rows} rows{left_out}"
    table = Table(title=title, title_justify="left")
    table.add_column("metric")
    table.add_column("before (T = 1)", justify="right")
    table.add_column(f"after (T = {result.temperature:.4f})", justify="right")
    table.add_row("NLL (nats)", f"{result.nll_before:.4f}", f"{result.nll_after:.4f}")
    table.add_row(f"ECE ({metrics.ECE_BINS} bins)", f"{result.ece_before:.4f}", f"{result.ece_after:.4f}")
    return table
