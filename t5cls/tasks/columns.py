"""A task's scores as output columns: ``p_<class>``, ``pred``, ``entropy`` and the rest, in order.

A column that holds several classes (a multi-label ``pred``, a prediction ``set``) joins them
with commas in label order (`joined_classes`); `split_classes` reads such a value back.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from t5cls import probability
from t5cls.tasks.config import Task
from t5cls.tasks.modes import expectation

MULTI_LABEL_THRESHOLD = 0.5


@dataclass(frozen=True)
class TaskResult:
    """One task's scores for N rows.

    ``log_scores`` are the class log-scores S of the task's mode before the temperature (for a
    multi-label task, S of the yes answer of each class's question); ``probs`` the reported
    probabilities: a distribution over classes, or independent yes-probabilities.
    """

    log_scores: np.ndarray  # (N, C)
    probs: np.ndarray  # (N, C)
    truncated: np.ndarray  # (N,) bool: a prompt of the row was cut to the model's maximum length

    @classmethod
    def empty(cls, task: Task) -> TaskResult:
        """A zero-row result: the output columns of an empty input."""
        empty = np.zeros((0, len(task.classes)))
        return cls(empty, empty, np.zeros(0, dtype=bool))


def output_columns(task: Task, result: TaskResult, logprobs: bool) -> dict[str, pa.Array]:
    """The task's columns in output order: p_<class>, pred, entropy, expected/std, score, set/set_size, logp_<class>."""
    columns = {task.column(f"p_{name}"): _floats(result.probs[:, i]) for i, name in enumerate(task.classes)}
    columns[task.column("pred")] = _predictions(task, result.probs)
    entropy = probability.binary_entropy if task.multi_label else probability.entropy
    columns[task.column("entropy")] = _floats(entropy(result.probs))
    if task.values is not None:
        expected, std = expectation(result.probs, task.values)
        columns[task.column("expected")] = _floats(expected)
        columns[task.column("std")] = _floats(std)
    if task.positive is not None:
        columns[task.column("score")] = _floats(result.probs[:, task.classes.index(task.positive)])
    if task.conformal is not None:
        chosen = task.conformal.sets(result.probs)
        columns[task.column("set")] = joined_classes(task.classes, chosen)
        columns[task.column("set_size")] = pa.array(chosen.sum(axis=1), pa.int64())
    if logprobs:
        columns.update(
            {task.column(f"logp_{name}"): _floats(result.log_scores[:, i]) for i, name in enumerate(task.classes)}
        )
    return columns


def with_scores(table: pa.Table, tasks: Sequence[Task], results: Sequence[TaskResult], logprobs: bool) -> pa.Table:
    """Append each task's columns after the input columns."""
    for task, result in zip(tasks, results):
        for name, values in output_columns(task, result, logprobs).items():
            table = table.append_column(name, values)
    return table


def added_columns(tasks: Sequence[Task], logprobs: bool) -> list[str]:
    """The names of the columns the tasks add, in output order."""
    return [name for task in tasks for name in output_columns(task, TaskResult.empty(task), logprobs)]


def _predictions(task: Task, probs: np.ndarray) -> pa.Array:
    """The argmax class (ties to the first), or for a multi-label task every class above the threshold."""
    if task.multi_label:
        return joined_classes(task.classes, probs > MULTI_LABEL_THRESHOLD)
    return pa.array([task.classes[i] for i in probs.argmax(axis=1)], pa.string())


def joined_classes(classes: Sequence[str], chosen: np.ndarray) -> pa.Array:
    """Each row's chosen classes of the (N, C) bool ``chosen``, comma-joined in label order; none is ""."""
    return pa.array([",".join(name for name, yes in zip(classes, row) if yes) for row in chosen], pa.string())


def split_classes(value: str, classes: Sequence[str]) -> list[int] | None:
    """The class indexes of a `joined_classes` value, or ``None`` when it is not one.

    Class names may hold commas themselves, so a value is matched against the names in label
    order (trying each name that fits at each point), not split blindly.
    """
    if value == "":
        return []
    if not any("," in name for name in classes):
        position = {name: index for index, name in enumerate(classes)}
        indexes = [position.get(part, -1) for part in value.split(",")]
        return indexes if min(indexes) >= 0 and indexes == sorted(set(indexes)) else None
    return _match(value, classes, 0)


def _match(value: str, classes: Sequence[str], start: int) -> list[int] | None:
    for index in range(start, len(classes)):
        name = classes[index]
        if value == name:
            return [index]
        if value.startswith(name + ",") and (rest := _match(value[len(name) + 1 :], classes, index + 1)) is not None:
            return [index, *rest]
    return None


def _floats(values: np.ndarray) -> pa.Array:
    return pa.array(values, pa.float64())
