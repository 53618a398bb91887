"""Gold answers of a labelled file, as the targets each kind of task trains on.

A task is trained as one of three kinds, read off the task itself:

- ``classes``: one gold class per row (its name, as in ``labels``);
- ``regression`` (the task has ``values``): a gold number per row, or a class name, which
  stands for its value;
- ``multi-label``: the gold classes of a row, comma-separated as ``<task>_pred`` writes them
  ("" for none), or a list in JSONL/Parquet.

Gold values are checked row by row; a bad one is a one-line error naming the file, row and column.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from t5cls.errors import InputError, OptionError, literal
from t5cls.tasks.config import Task

CLASSES, REGRESSION, MULTI_LABEL = "classes", "regression", "multi-label"


def task_kind(task: Task) -> str:
    """How a task is trained: on a class, a number, or one yes/no answer per class."""
    if task.multi_label:
        return MULTI_LABEL
    return REGRESSION if task.values is not None else CLASSES


def gold_columns(spec: str, tasks: Sequence[Task], quick: bool) -> list[str]:
    """Each task's gold column: ``--gold COLUMN`` for one task, ``--gold task=column,...`` for several."""
    if "=" not in spec:
        if len(tasks) > 1:
            names = ",".join(f"{task.name}=COLUMN" for task in tasks)
            raise OptionError(f"{{gold}}: the config has {len(tasks)} tasks; name each one's gold column: {names}")
        return [spec]
    if quick:
        raise OptionError(f"{{gold}} {literal(repr(spec))}: task=column pairs go with a config of several tasks")
    pairs = dict(_pair(item) for item in spec.split(","))
    unknown = [name for name in pairs if name not in {task.name for task in tasks}]
    if unknown:
        raise OptionError(f"{{gold}}: no task named {literal(repr(unknown[0]))} in the config")
    missing = [task.name for task in tasks if task.name not in pairs]
    if missing:
        raise OptionError(
            f"{{gold}}: no gold column for task {literal(repr(missing[0]))}; add {literal(missing[0])}=COLUMN"
        )
    return [pairs[task.name] for task in tasks]


def _pair(item: str) -> tuple[str, str]:
    name, _, column = item.partition("=")
    if not name.strip() or not column.strip():
        raise OptionError(f"{{gold}}: {literal(repr(item))} is not task=column")
    return name.strip(), column.strip()


def parse_gold(task: Task, values: Sequence, path: str, column: str, rows: Sequence[int]) -> np.ndarray:
    """The training targets of ``values``: class indexes (N,), numbers (N,), or (N, C) 0/1 memberships.

    ``rows`` are the 1-based row numbers of ``values`` in ``path``, for error messages.
    """
    kind = task_kind(task)
    parse = {CLASSES: _class_index, REGRESSION: _number, MULTI_LABEL: _members}[kind]
    targets = [parse(task, value, f"{path}: row {row}: column {column!r}") for value, row in zip(values, rows)]
    if kind == MULTI_LABEL:
        return np.array(targets, dtype=np.float32).reshape(len(values), len(task.classes))
    return np.array(targets, dtype=np.int64 if kind == CLASSES else np.float64)


def _text(value) -> str:
    return "" if value is None else str(value)


def _class_index(task: Task, value, where: str) -> int:
    text = _text(value)
    if text not in task.classes:
        shown = ", ".join(task.classes)
        what = "is empty" if not text.strip() else f"holds {text!r}, which is not one of the classes ({shown})"
        raise InputError(f"{where} {what}; every training row needs a gold class")
    return task.classes.index(text)


def _number(task: Task, value, where: str) -> float:
    text = _text(value).strip()
    if text in task.classes:
        return task.values[task.classes.index(text)]
    try:
        number = float(text)
    except ValueError:
        number = math.nan
    if not math.isfinite(number):
        raise InputError(f"{where} holds {text!r}, not a number or a class of this regression task")
    return number


def _members(task: Task, value, where: str) -> list[float]:
    if isinstance(value, (list, tuple, np.ndarray)):
        names = [_text(item).strip() for item in value]
    else:
        names = [name.strip() for name in _text(value).split(",")]
    names = [name for name in names if name]
    for name in names:
        if name not in task.classes:
            raise InputError(
                f"{where} names {name!r}, which is not one of the classes ({', '.join(task.classes)}); "
                "write a row's classes comma-separated, or nothing for none"
            )
    return [1.0 if name in names else 0.0 for name in task.classes]
