"""`t5cls calibrate`: fit a softmax temperature on a labelled dev file and write a task config.

Temperature scaling (Guo et al., 2017) divides a task's class log-scores (in ``sum`` mode, the
label log-probabilities) by one number T > 0 before the softmax: p = softmax(S / T). It never
changes which label wins, so accuracy stays the same, but T > 1 softens over-confident scores and
T < 1 sharpens timid ones. T is chosen to minimise the negative log-likelihood of the dev file's
gold labels. The dev file is scored by the task exactly as ``t5cls score`` would score it (mode,
verbalizers, few-shot examples), so T belongs to the scores the written config will give.
"""

from __future__ import annotations

import json
import os
from contextlib import closing
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

import numpy as np
import tomli_w

from t5cls.errors import InputError, OptionError, literal
from t5cls.eval import metrics
from t5cls.io.atomic import write_text_atomically
from t5cls.io.lock import output_lock
from t5cls.io.paths import check_output_file
from t5cls.io.readers import SCAN_CHUNK_ROWS, open_input
from t5cls.options import DEFAULT_CHUNK_ROWS, ModelOptions
from t5cls.probability import scaled_nll, softmax
from t5cls.tasks.config import NAME_PATTERN, Config, Task
from t5cls.tasks.prompts import PromptTemplate

if TYPE_CHECKING:
    from t5cls.run.task_scoring import TaskScorer

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


def toml_string(value: str) -> str:
    """A TOML basic string. JSON's escapes are all valid TOML; TOML also wants DEL escaped."""
    return json.dumps(value, ensure_ascii=False).replace("\x7f", "\\u007f")


def calibrate_dev_file(
    dev: str, gold: str, task: Task, model: ModelOptions, output: str, config: Config | None = None
) -> Calibration:
    """Score a labelled dev file with ``task`` as ``t5cls score`` would, fit T, and write the task with T to ``output``.

    ``config`` is the file ``task`` came from, if any: the task is then written as its table there,
    every key kept (few-shot ``examples`` included), with the fitted ``temperature``. Everything that
    needs no model (the task's name, the output path, every dev row) is checked before the model loads.
    """
    check_task_name(task.name)
    check_output_file(output, dev)
    where = f"{config.path}: task {task.name!r}" if config is not None else ""
    if task.multi_label:
        raise InputError(f"{where}: a multi-label task has no softmax over classes to fit a temperature to")
    with output_lock(output):  # one calibration per config file at a time
        return _calibrate_locked(dev, gold, task, model, output, config, where)


def _calibrate_locked(
    dev: str, gold: str, task: Task, model: ModelOptions, output: str, config: Config | None, where: str
) -> Calibration:
    from t5cls.models.scorer import LabelScorer
    from t5cls.run.task_scoring import TaskScorer

    dev_set = read_dev_file(dev, task.template, list(task.classes), gold)
    keep = rows_to_fit(task, dev, len(dev_set.gold))
    scorer = LabelScorer.from_options(model)
    scores = class_scores(TaskScorer(task, scorer, where), dev_set)
    result = replace(calibrate(scores[keep], dev_set.gold[keep]), left_out=int((~keep).sum()))
    write_config(output, fitted_table(task, config, output, result.temperature), result, dev, scorer.name_or_path)
    return result


def class_scores(task: TaskScorer, dev: DevSet) -> np.ndarray:
    """(N, C) the task's class log-scores before its temperature, exactly as ``t5cls score`` computes them.

    The task's mode, verbalizers and few-shot prefix apply, and the rows go through in the chunks a
    run cuts by default (``batch`` mode normalises over a chunk).
    """
    rows = len(dev.gold)
    chunks = [
        {name: values[start : start + DEFAULT_CHUNK_ROWS] for name, values in dev.columns.items()}
        for start in range(0, rows, DEFAULT_CHUNK_ROWS)
    ]
    return np.concatenate([task.score(task.tokenize(chunk)).log_scores for chunk in chunks])


def rows_to_fit(task: Task, dev: str, rows: int) -> np.ndarray:
    """Which dev rows T is fitted on: all, but the task's demonstrations when the dev file is its examples file.

    A demonstration's own row would be scored with its answer already in the prompt, an easy
    question that would make the scores look sharper than they are.
    """
    keep = np.ones(rows, dtype=bool)
    if task.examples is not None and _same_file(task.examples.spec.path, dev):
        keep[[demo.row - 1 for demo in task.examples.demonstrations]] = False
        if not keep.any():
            raise InputError(f"{dev}: every row is one of task {task.name!r}'s demonstrations; none is left to fit on")
    return keep


def _same_file(first: str, second: str) -> bool:
    if "://" in first or "://" in second:
        return first == second
    try:
        return os.path.samefile(first, second)
    except OSError:
        return False


def check_task_name(name: str) -> None:
    """The name a fitted task gets must be one that ``score --config`` accepts."""
    if not NAME_PATTERN.fullmatch(name):
        raise OptionError(
            f"{{task}} {literal(repr(name))} must be letters, digits, '_' or '-' (it prefixes the output columns)"
        )


def fitted_table(task: Task, config: Config | None, output: str, temperature: float) -> dict:
    """The ``[[task]]`` table to write: the config's table as written, or the ``--labels`` task; T set.

    A relative examples ``file`` is rewritten relative to the written config's folder, where it is read from.
    """
    if config is None:
        table = {
            "name": task.name,
            "template": task.template.template,
            "text_column": task.template.text_column,
            "labels": list(task.classes),
        }
    else:
        table = config.table(task.name)
        if task.examples is not None:
            table["examples"]["file"] = task.examples.file_from(os.path.dirname(output))
    table["temperature"] = float(temperature)
    return table


def write_config(path: str, table: dict, calibration: Calibration, dev_file: str, model: str) -> None:
    """Write the fitted task as a config file, atomically (a failed run leaves no half-written config)."""
    write_text_atomically(path, config_toml(table, calibration, dev_file, model))


def config_toml(table: dict, calibration: Calibration, dev_file: str, model: str) -> str:
    """The config file text: a comment saying where T came from (it fits only that model), then the table.

    tomli-w writes the TOML (`tomllib` only reads), so any key a task holds round-trips: verbalizer
    tables, the examples table, multi-line templates.
    """
    left_out = f", {calibration.left_out} demonstration rows left out" if calibration.left_out else ""
    comment = (
        f"# fitted by t5cls calibrate on {toml_string(dev_file)} ({calibration.rows} rows{left_out}) with model "
        f"{toml_string(model)}: NLL {calibration.nll_before:.4f} -> {calibration.nll_after:.4f}, "
        f"ECE {calibration.ece_before:.4f} -> {calibration.ece_after:.4f}"
    )
    return comment + "\n" + tomli_w.dumps({"task": [table]})


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
