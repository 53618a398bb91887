"""The ``t5cls.toml`` of a trained model: its tasks, as `t5cls score --config` reads them, with fitted temperatures."""

from __future__ import annotations

from collections.abc import Sequence

from t5cls.eval.calibration import toml_string
from t5cls.tasks.config import DEFAULT_ANSWERS, Task


def config_text(tasks: Sequence[Task], temperatures: Sequence[float], header: Sequence[str]) -> str:
    """Every task as a ``[[task]]`` table with its temperature; ``header`` lines become comments."""
    lines = [f"# {line}" for line in header]
    for task, temperature in zip(tasks, temperatures):
        lines += ["", "[[task]]", *task_lines(task, temperature)]
    return "\n".join(lines) + "\n"


def task_lines(task: Task, temperature: float) -> list[str]:
    """``key = value`` lines of one task; defaults are left out, so the file reads like a hand-written one."""
    lines = [
        f"name = {toml_string(task.name)}",
        f"template = {toml_string(task.template.template)}",
        f"text_column = {toml_string(task.template.text_column)}",
        f"labels = {_labels(task)}",
    ]
    if task.mode != "sum":
        lines.append(f"mode = {toml_string(task.mode)}")
    lines.append(f"temperature = {float(temperature)!r}")
    if task.multi_label:
        lines.append("multi_label = true")
        if task.answers != DEFAULT_ANSWERS:
            lines.append(f"answers = {_strings(task.answers)}")
    if task.values is not None:
        lines.append(f"values = [{', '.join(repr(float(v)) for v in task.values)}]")
    if task.positive is not None:
        lines.append(f"positive = {toml_string(task.positive)}")
    if task.rank_by is not None:
        lines.append(f"rank_by = {toml_string(task.rank_by)}")
    return lines


def _labels(task: Task) -> str:
    """A list of classes, or an inline table class -> forms when some class has verbalizers."""
    if all(forms == (name,) for name, forms in zip(task.classes, task.forms)):
        return _strings(task.classes)
    pairs = (f"{toml_string(name)} = {_strings(forms)}" for name, forms in zip(task.classes, task.forms))
    return "{ " + ", ".join(pairs) + " }"


def _strings(values: Sequence[str]) -> str:
    return "[" + ", ".join(toml_string(value) for value in values) + "]"
