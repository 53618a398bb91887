"""`t5cls eval`: load a scored file and a gold column, compute the metrics, render them.

A scored file is what `t5cls score` writes: the input columns, then ``p_<label>`` for each
label (label text verbatim, in label order), ``pred``, ``entropy`` and optionally
``logp_<label>``. Columns of a named task carry its name as a prefix (``NAME_p_<label>``),
chosen with ``--task NAME``. Only the probabilities and the gold column are read; the
prediction is recomputed from the probabilities so every metric agrees with them.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from contextlib import closing
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from rich.console import Console
from rich.table import Table
from rich.text import Text

from t5cls.errors import InputError
from t5cls.eval import metrics
from t5cls.eval.conformal import set_report
from t5cls.eval.scored_tasks import choose_task, is_multi_label, tasks_hint
from t5cls.io.readers import SCAN_CHUNK_ROWS, open_input
from t5cls.tasks.columns import split_classes

SUM_TOLERANCE = 1e-3
SHOWN_UNKNOWN_VALUES = 10


@dataclass(frozen=True)
class ScoredFile:
    """The probabilities and gold labels of a scored file, as arrays."""

    path: str
    task: str | None
    gold_column: str
    labels: list[str]
    probs: np.ndarray  # (N, L) float64
    gold: list[str]  # gold values as text; a null is ""
    gold_index: np.ndarray  # (N,) index into labels, -1 when the gold value is not a label
    sets: np.ndarray | None = None  # (N, L) bool: the prediction set of each row, when the file has one

    @property
    def known(self) -> np.ndarray:
        """Rows whose gold value is one of the labels (the only ones with a likelihood)."""
        return self.gold_index >= 0


def load_scored(path: str, gold_column: str, task: str | None = None) -> ScoredFile:
    """Read the ``p_`` columns and the gold column, checking both before computing anything."""
    with closing(open_input(path, SCAN_CHUNK_ROWS)) as source:
        return _load_scored(source, path, gold_column, task)


def _load_scored(source, path: str, gold_column: str, task: str | None) -> ScoredFile:
    task = choose_task(source.columns, task, path)
    prefix = f"{task}_p_" if task else "p_"
    prob_columns = [name for name in source.columns if name.startswith(prefix)]
    shown = ", ".join(source.columns)
    if len(prob_columns) < 2:
        hint = tasks_hint(source.columns)
        found = "only one" if prob_columns else "no"
        raise InputError(
            f"{path}: {found} {prefix}<label> probability columns (need one per label, at least 2){hint}; "
            f"columns are: {shown}"
        )
    if gold_column not in source.columns:
        raise InputError(f"{path}: no gold column {gold_column!r}; columns are: {shown}")
    _refuse_regression(source.columns, task, path)
    blocks, gold, preds, sets, offset = [], [], [], [], 0
    pred_column = f"{task}_pred" if task else "pred"
    set_column = f"{task}_set" if task else "set"
    labels = [name.removeprefix(prefix) for name in prob_columns]
    for table in source.chunks:
        blocks.append(np.column_stack([_floats(path, table.column(name), name, offset) for name in prob_columns]))
        gold.extend("" if value is None else str(value) for value in table.column(gold_column).to_pylist())
        if pred_column in source.columns:
            preds.extend(table.column(pred_column).to_pylist())
        if set_column in source.columns:
            sets.append(_sets(path, table.column(set_column).to_pylist(), set_column, labels, offset))
        offset += table.num_rows
    if not gold:
        raise InputError(f"{path}: no rows to evaluate")
    probs = np.concatenate(blocks)
    _check_distributions(path, probs, prob_columns, lambda: _multi_label_task(preds, probs, labels, task))
    position = {label: index for index, label in enumerate(labels)}
    gold_index = np.array([position.get(value, -1) for value in gold])
    if not (gold_index >= 0).any():
        raise InputError(
            f"{path}: none of the gold values in {gold_column!r} is a label ({', '.join(labels)}); "
            f"first gold value is {gold[0]!r}"
        )
    return ScoredFile(path, task, gold_column, labels, probs, gold, gold_index, np.concatenate(sets) if sets else None)


def _sets(path: str, values: list, name: str, labels: list[str], offset: int) -> np.ndarray:
    """A chunk of a ``set`` column as (rows, L) bool; a null is the empty set (CSV writes it as nothing)."""
    chosen = np.zeros((len(values), len(labels)), dtype=bool)
    for row, value in enumerate(values):
        indexes = split_classes("" if value is None else str(value), labels)
        if indexes is None:
            raise InputError(
                f"{path}: row {offset + row + 1}: column {name!r} holds {value!r}, not classes of "
                f"{', '.join(labels)} joined by commas in that order"
            )
        chosen[row, indexes] = True
    return chosen


def _floats(path: str, column: pa.ChunkedArray, name: str, offset: int) -> np.ndarray:
    """A probability column as float64 (CSV gives text); nulls become NaN for the range check."""
    try:
        return pc.cast(column, pa.float64()).to_numpy(zero_copy_only=False).astype(np.float64)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):  # text Arrow cannot parse: find the culprit
        return np.array([_float(path, value, name, offset + row) for row, value in enumerate(column.to_pylist())])


def _float(path: str, value: object, name: str, row: int) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        raise InputError(f"{path}: row {row + 1}: column {name!r} holds {value!r}, not a number") from None


def _refuse_regression(columns, task: str | None, path: str) -> None:
    """A regression task (its ``<task>_expected`` column) is refused by name: its gold values are numbers."""
    expected = f"{task}_expected" if task else "expected"
    if expected in columns:
        name = f"task {task!r}" if task else "the task"
        raise InputError(
            f"{path}: {name} is a regression task (its score is {expected}, the expected value); eval measures "
            f"tasks with one class per row: compare {expected} with the gold numbers (e.g. their MSE and MAE)"
        )


def _multi_label_task(preds: list, probs: np.ndarray, labels: list[str], task: str | None) -> str | None:
    """A refusal naming ``task`` when its scores are a multi-label task's, whose classes need not sum to 1."""
    if not is_multi_label(probs, preds, labels):
        return None
    name = f"task {task!r}" if task else "the task"
    return (
        f"{name} is multi-label (one yes-probability per class, pred lists every class above 0.5); "
        "eval measures tasks with one class per row"
    )


def _check_distributions(
    path: str, probs: np.ndarray, columns: list[str], multi_label: Callable[[], str | None]
) -> None:
    """Every row must be a probability distribution, or the metrics would mean nothing.

    ``multi_label()`` says why rows that do not sum to 1 are fine as a multi-label task's, which eval refuses.
    """
    outside = ~((probs >= 0) & (probs <= 1))  # NaN (a null) is outside too
    if outside.any():
        row, column = np.argwhere(outside)[0]
        value = probs[row, column]
        shown = "missing (null or NaN)" if np.isnan(value) else f"{value:g}, not a probability"
        raise InputError(f"{path}: row {row + 1}: column {columns[column]!r} is {shown}")
    totals = probs.sum(axis=1)
    bad = np.flatnonzero(np.abs(totals - 1) > SUM_TOLERANCE)
    if len(bad) and (refusal := multi_label()):
        raise InputError(f"{path}: {refusal}")
    if len(bad):
        raise InputError(
            f"{path}: row {bad[0] + 1}: the {len(columns)} probability columns sum to {totals[bad[0]]:.6g}, not 1 "
            f"(tolerance {SUM_TOLERANCE:g}); is a label's column missing?"
        )


def build_report(scored: ScoredFile) -> dict:
    """Every metric as plain JSON-ready values (the ``--json`` output and the tables' source).

    Accuracy, F1 and the confusion-matrix margins use all rows, a gold value outside the label
    set counting as wrong; NLL, Brier and ECE need a gold class, so they use only the
    ``calibration_rows`` rows whose gold is a label, and the report says how many were left out.
    """
    pred = metrics.predictions(scored.probs)
    count = len(scored.labels)
    classes = metrics.precision_recall_f1(scored.gold_index, pred, count)
    known_probs, known_gold = scored.probs[scored.known], scored.gold_index[scored.known]
    unknown = Counter(value for value, index in zip(scored.gold, scored.gold_index) if index < 0)
    return {
        "file": scored.path,
        "task": scored.task,
        "gold_column": scored.gold_column,
        "labels": scored.labels,
        "rows": len(scored.gold),
        "accuracy": metrics.accuracy(scored.gold_index, pred),
        "macro_f1": classes.macro_f1,
        "classes": [
            {"label": label, "precision": float(p), "recall": float(r), "f1": float(f), "support": int(s)}
            for label, p, r, f, s in zip(scored.labels, classes.precision, classes.recall, classes.f1, classes.support)
        ],
        "calibration_rows": int(scored.known.sum()),
        "nll": metrics.nll(known_probs, known_gold),
        "brier": metrics.brier(known_probs, known_gold),
        "ece": metrics.expected_calibration_error(known_probs, known_gold),
        "ece_bins": metrics.ECE_BINS,
        "confusion_matrix": metrics.confusion_matrix(scored.gold_index, pred, count).tolist(),
        "unknown_gold": {"rows": sum(unknown.values()), "values": dict(unknown.most_common())},
        "sets": None if scored.sets is None else _sets_report(scored),
    }


def _sets_report(scored: ScoredFile) -> dict:
    """Empirical coverage and mean set size over the rows with a known gold label, overall and per gold class."""
    sets = set_report(scored.sets[scored.known], scored.gold_index[scored.known])
    return {
        "rows": int(scored.known.sum()),
        "coverage": sets.coverage,
        "mean_size": sets.mean_size,
        "classes": [
            {"label": label, "coverage": _number(coverage), "mean_size": _number(size), "support": int(rows)}
            for label, coverage, size, rows in zip(
                scored.labels, sets.class_coverage, sets.class_mean_size, sets.class_rows
            )
        ],
        "size_counts": sets.size_counts.tolist(),
    }


def _number(value: float) -> float | None:
    """A per-class figure, or None (JSON null) for a class without rows."""
    return None if np.isnan(value) else float(value)


def render_report(report: dict, console: Console) -> None:
    """Print the report as rich tables: summary, per class, confusion matrix."""
    task = f" (task {report['task']})" if report["task"] else ""
    console.print(Text(f"{report['file']}{task}: {report['rows']} rows, gold column {report['gold_column']!r}"))
    console.print(_summary_table(report))
    if report["unknown_gold"]["rows"]:
        console.print(_unknown_gold_note(report), style="yellow")
    console.print(_class_table(report))
    console.print(_confusion_table(report))
    if report["sets"] is not None:
        console.print(_sets_table(report["sets"]))


def _summary_table(report: dict) -> Table:
    table = Table(title="Summary", title_justify="left")
    for header, justify in (("metric", "left"), ("value", "right"), ("over", "left")):
        table.add_column(header, justify=justify)
    every, known = f"{report['rows']} rows", f"{report['calibration_rows']} rows with a known gold label"
    table.add_row("accuracy", f"{report['accuracy']:.4f}", every)
    table.add_row("macro-F1", f"{report['macro_f1']:.4f}", every)
    table.add_row("NLL (nats)", f"{report['nll']:.4f}", known)
    table.add_row("Brier", f"{report['brier']:.4f}", known)
    table.add_row(f"ECE ({report['ece_bins']} bins)", f"{report['ece']:.4f}", known)
    return table


def _unknown_gold_note(report: dict) -> Text:
    unknown = report["unknown_gold"]
    values = list(unknown["values"].items())
    shown = ", ".join(f"{value!r} ({rows})" for value, rows in values[:SHOWN_UNKNOWN_VALUES])
    more = f" and {len(values) - SHOWN_UNKNOWN_VALUES} more" if len(values) > SHOWN_UNKNOWN_VALUES else ""
    return Text(
        f"{unknown['rows']} rows have a gold value that is not a label: {shown}{more}. They count as wrong "
        "for accuracy and F1 and are left out of NLL, Brier and ECE."
    )


def _class_table(report: dict) -> Table:
    table = Table(title="Per class", title_justify="left")
    table.add_column("label")
    for header in ("precision", "recall", "F1", "support"):
        table.add_column(header, justify="right")
    for row in report["classes"]:
        scores = (f"{row[key]:.4f}" for key in ("precision", "recall", "f1"))
        table.add_row(Text(row["label"]), *scores, str(row["support"]))
    return table


def _confusion_table(report: dict) -> Table:
    table = Table(title="Confusion matrix", title_justify="left")
    table.add_column("gold \\ pred")
    for label in report["labels"]:
        table.add_column(Text(label), justify="right")
    for label, counts in zip(report["labels"], report["confusion_matrix"]):
        table.add_row(Text(label), *(str(count) for count in counts))
    return table


def _sets_table(sets: dict) -> Table:
    """Coverage and mean set size overall, then per gold class (where LAC's coverage is uneven)."""
    table = Table(title="Prediction sets (rows with a known gold label)", title_justify="left")
    table.add_column("gold label")
    for header in ("coverage", "mean set size", "rows"):
        table.add_column(header, justify="right")
    table.add_row("all", f"{sets['coverage']:.4f}", f"{sets['mean_size']:.4f}", str(sets["rows"]), end_section=True)
    for row in sets["classes"]:
        shown = (
            "-" if row[key] is None else f"{row[key]:{spec}}"
            for key, spec in (("coverage", ".4f"), ("mean_size", ".3f"))
        )
        table.add_row(Text(row["label"]), *shown, str(row["support"]))
    return table
