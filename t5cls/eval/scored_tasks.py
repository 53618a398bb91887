"""Which task's columns of a scored file `eval` reads: the one named, the unnamed one, or the only one.

A task's columns are found by its entropy column, which every task writes once: ``entropy`` for
the task of ``--labels``, ``<name>_entropy`` for a named task of a config (``calibrate --labels``
writes a task named ``default``, so a config it fitted scores into ``default_*`` columns).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from t5cls.errors import OptionError, literal


def task_names(columns: Sequence[str]) -> list[str]:
    """The named tasks whose columns ``columns`` holds, in file order."""
    return [name.removesuffix("_entropy") for name in columns if name.endswith("_entropy") and name != "_entropy"]


def choose_task(columns: Sequence[str], task: str | None, path: str) -> str | None:
    """``task`` if given; else the unnamed task, or the file's only named task (``None``: the unnamed one).

    Several named tasks and no unnamed one is an error that names them.
    """
    if task is not None or "entropy" in columns:
        return task
    names = task_names(columns)
    if len(names) > 1:
        raise OptionError(
            f"{literal(path)} holds the columns of tasks {literal(', '.join(names))}: choose one with {{task}}"
        )
    return names[0] if names else None


def tasks_hint(columns: Sequence[str]) -> str:
    """`` (tasks in the file: a, b)`` for an error about a task's missing columns, or nothing."""
    names = task_names(columns)
    return f" (tasks in the file: {', '.join(names)}; choose one with --task)" if names else ""


def is_multi_label(probs: np.ndarray, preds: Sequence[str | None], labels: Sequence[str]) -> bool:
    """Whether scores are a multi-label task's: every row's ``pred`` lists the classes above the threshold,
    and some row's is not the single most probable class (none, or several).

    Such a task's probabilities are independent yes-answers, one per class, and need not sum to 1.
    """
    from t5cls.tasks.columns import MULTI_LABEL_THRESHOLD

    if len(preds) != len(probs):
        return False
    chosen = [",".join(label for label, p in zip(labels, row) if p > MULTI_LABEL_THRESHOLD) for row in probs]
    if any((pred or "") != names for pred, names in zip(preds, chosen)):
        return False
    return any(names != labels[best] for names, best in zip(chosen, probs.argmax(axis=1)))
