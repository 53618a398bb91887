"""Tasks: the questions `score`, `calibrate` and `train` ask about every row, from labels or a TOML config.

This module is the one place that knows what a task is: where tasks come from (`load_tasks`:
labels with a template, or a config file), how they are checked, and how they are written back
as a config (`config_toml`, which ``t5cls calibrate`` and ``t5cls train`` both write with).

A config file (``t5cls score INPUT --config FILE``) holds one or more ``[[task]]`` tables; all
of them are scored in one pass over the input and their output columns carry the task's name as
a prefix. Everything here is checked before the model loads, and every mistake is a one-line
`InputError` naming the file, the task and the key; a task's few-shot ``examples`` file is read
and its demonstrations picked here too (`t5cls.tasks.examples`).
"""

from __future__ import annotations

import math
import os
import re
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from itertools import pairwise

import tomli_w

from t5cls.errors import InputError, OptionError, literal
from t5cls.eval.conformal import METHODS, ConformalSets, is_level
from t5cls.io.atomic import write_text_atomically
from t5cls.tasks.examples import Examples, load_examples, parse_spec
from t5cls.tasks.modes import CONTENT_FREE_MODES, MODES
from t5cls.tasks.prompts import DEFAULT_TEMPLATE, DEFAULT_TEXT_COLUMN, LABEL_FIELD, PromptTemplate

DEFAULT_CONTENT_FREE = ("N/A", "", "[MASK]")
DEFAULT_ANSWERS = ("yes", "no")
KEYS = (
    "name",
    "template",
    "text_column",
    "labels",
    "mode",
    "temperature",
    "content_free",
    "multi_label",
    "answers",
    "values",
    "positive",
    "rank_by",
    "examples",
    "coverage",
    "conformal",
    "conformal_threshold",
)
CONFORMAL_KEYS = ("coverage", "conformal", "conformal_threshold")  # written together by `calibrate --coverage`
NAME_PATTERN = re.compile(r"[A-Za-z0-9_-]+")
NAME_RULE = "must be letters, digits, '_' or '-' (it prefixes the output columns)"
RANK_NEEDS_POSITIVE = "needs 'positive', the class whose probability is the score to rank by"


@dataclass(frozen=True)
class Task:
    """One question asked of every row.

    ``forms[c]`` are the surface forms (verbalizers) of class ``classes[c]``. A multi-label task
    asks one question per class (``{label}`` in its template) and scores ``answers`` = (yes, no)
    for each. ``name`` is empty for the ``--labels`` quick path, whose columns have no prefix.
    """

    name: str
    template: PromptTemplate
    classes: tuple[str, ...]
    forms: tuple[tuple[str, ...], ...]
    mode: str = "sum"
    temperature: float = 1.0
    content_free: tuple[str, ...] = DEFAULT_CONTENT_FREE
    multi_label: bool = False
    answers: tuple[str, ...] = DEFAULT_ANSWERS
    values: tuple[float, ...] | None = None
    positive: str | None = None
    rank_by: str | None = None
    examples: Examples | None = None
    conformal: ConformalSets | None = None  # prediction sets: `calibrate --coverage` fitted them

    def column(self, suffix: str) -> str:
        """An output column of this task: ``<name>_<suffix>``, or just ``suffix`` on the quick path."""
        return f"{self.name}_{suffix}" if self.name else suffix

    @property
    def scored_labels(self) -> list[str]:
        """The label strings the model scores for each prompt: every form, or the answers."""
        if self.multi_label:
            return list(self.answers)
        return [form for forms in self.forms for form in forms]

    def rendered_prompts(self, columns: Mapping[str, Sequence[str]]) -> list[str]:
        """The prompts of a chunk: one per row, or for a multi-label task one block of rows per class."""
        if not self.multi_label:
            return self.template.render(columns, self.classes)
        return [prompt for name in self.classes for prompt in self.template.render(columns, self.classes, label=name)]

    def demonstration_prompts(self) -> list[str]:
        """The prompts of the few-shot demonstrations, without their answers (none without ``examples``)."""
        if self.examples is None:
            return []
        return self.template.render(self.examples.columns(), self.classes)

    @property
    def groups(self) -> list[list[int]]:
        """Indexes into `scored_labels` of each outcome's forms (multi-label: yes, then no)."""
        if self.multi_label:
            return [[0], [1]]
        starts = [0]
        for forms in self.forms:
            starts.append(starts[-1] + len(forms))
        return [list(range(start, end)) for start, end in pairwise(starts)]


def quick_task(labels: Sequence[str], template: str, text_column: str, name: str = "") -> Task:
    """The task of ``--labels``: one form per class, ``sum`` mode, no temperature; unnamed unless ``name``."""
    return Task(name, PromptTemplate(template, text_column), tuple(labels), tuple((label,) for label in labels))


@dataclass(frozen=True)
class Config:
    """A loaded config file: its text (part of the resume fingerprint) and its tasks in file order."""

    path: str
    text: str
    tasks: list[Task]

    def task(self, name: str | None) -> Task:
        """The task called ``name``; ``None`` means the only task (``t5cls calibrate --config`` fits one task)."""
        names = [task.name for task in self.tasks]
        if name is None and len(names) == 1:
            return self.tasks[0]
        if name is None:
            raise OptionError(f"{literal(self.path)} has tasks {literal(', '.join(names))}: choose one with {{task}}")
        if name not in names:
            raise OptionError(
                f"{literal(self.path)} has no task {literal(repr(name))}; its tasks are: {literal(', '.join(names))}"
            )
        return self.tasks[names.index(name)]

    def table(self, name: str) -> dict:
        """The ``[[task]]`` table of task ``name`` as written (a fresh copy: the file was checked when loaded)."""
        return next(table for table in tomllib.loads(self.text)["task"] if table["name"] == name)


@dataclass(frozen=True)
class TaskSet:
    """The tasks of a run and the config file they came from (``None``: one task from labels)."""

    config: Config | None
    tasks: tuple[Task, ...]

    def ranked_by(self, rank_by: str | None) -> TaskSet:
        """``rank_by`` (the option) set on every task that has a 'positive' class; one of them must have it."""
        if rank_by is None:
            return self
        if not any(task.positive for task in self.tasks):
            where = f"{literal(self.config.path)}: " if self.config is not None else ""
            raise OptionError(f"{where}{{rank_by}} {RANK_NEEDS_POSITIVE}, and no task sets it")
        tasks = tuple(replace(task, rank_by=rank_by) if task.positive else task for task in self.tasks)
        return replace(self, tasks=tasks)

    def where(self, task: Task) -> str:
        """How errors name a task: its config file and name (empty on the labels path)."""
        return f"{self.config.path}: task {task.name!r}" if self.config is not None else ""

    def check_columns(self, task: Task, columns: Sequence[str], source: str) -> None:
        """Every column ``task``'s template reads must be in ``source``; on a config, the error names the task."""
        if self.config is None:
            task.template.check_columns(columns, source)
            return
        for column in task.template.missing_columns(columns):
            raise InputError(
                f"{self.where(task)}: 'template' reads column {column!r}, which {source} lacks; "
                f"columns are: {', '.join(columns)}"
            )

    def only(self, name: str | None) -> TaskSet:
        """The set of the one task called ``name`` (``None``: the only task); see `Config.task`."""
        if self.config is None:
            return self
        return TaskSet(self.config, (self.config.task(name),))

    def table(self, task: Task, folder: str) -> dict:
        """``task`` as a ``[[task]]`` table for a config written in ``folder``: every key as its file wrote it.

        A task from labels has its name, template, text column and labels. A relative examples
        ``file`` is rewritten relative to ``folder``, where the written config reads it from.
        Prediction sets (`CONFORMAL_KEYS`) are left out: ``calibrate`` and ``train`` write the task
        with a new temperature, and a set threshold fits only the probabilities it was fitted on.
        """
        if self.config is None:
            return {
                "name": task.name,
                "template": task.template.template,
                "text_column": task.template.text_column,
                "labels": list(task.classes),
            }
        table = self.config.table(task.name)
        for key in CONFORMAL_KEYS:
            table.pop(key, None)
        if task.examples is not None:
            table["examples"]["file"] = task.examples.file_from(folder)
        return table


def check_task_name(name: str) -> None:
    """The name given to the task of ``labels`` (``task``) must be one that a config accepts."""
    if problem := name_problem(name):
        raise OptionError(f"{{task}} {literal(problem)}")


def name_problem(name: str) -> str | None:
    """What is wrong with a task's name (``None``: nothing): the one rule of config tables and ``{task}``."""
    return None if NAME_PATTERN.fullmatch(name) else f"{name!r} {NAME_RULE}"


def load_tasks(
    labels: Sequence[str] | None,
    config: str | None,
    template: str | None = None,
    text_column: str = DEFAULT_TEXT_COLUMN,
    name: str | None = None,
) -> TaskSet:
    """The tasks of ``config``, or the one task of ``labels`` (``template`` None: `DEFAULT_TEMPLATE`) named ``name``.

    The arguments come from options that checked them (`t5cls.options.check_task_source`).

    ``name`` is None for a scoring run, whose one task's columns have no prefix; a task that is
    written back as a config (``calibrate``, ``train``) needs a valid one.
    """
    if config is not None:
        loaded = load_config(config)
        return TaskSet(loaded, tuple(loaded.tasks))
    if name is not None:
        check_task_name(name)
    return TaskSet(None, (quick_task(labels, template or DEFAULT_TEMPLATE, text_column, name=name or ""),))


def config_toml(tables: Sequence[dict], comments: Sequence[str]) -> str:
    """A config file's text: ``comments`` (say where it came from), then each ``[[task]]`` table.

    tomli-w writes the TOML (`tomllib` only reads), so every key a table holds round-trips:
    verbalizer tables, the examples table, multi-line templates.
    """
    header = "".join(f"# {line}\n" for line in comments)
    return header + tomli_w.dumps({"task": list(tables)})


def write_config(path: str | os.PathLike, tables: Sequence[dict], comments: Sequence[str]) -> None:
    """Write `config_toml` to ``path`` atomically: a failed write leaves the earlier file, never half a config."""
    write_text_atomically(path, config_toml(tables, comments))


def load_config(path: str) -> Config:
    """Read and validate a config file."""
    try:
        with open(path, encoding="utf-8") as stream:
            text = stream.read()
        data = tomllib.loads(text)
    except FileNotFoundError:
        raise InputError(f"{path}: no such config file") from None
    except OSError as err:
        raise InputError(f"{path}: cannot read config ({err.strerror or err})") from None
    except UnicodeDecodeError:
        raise InputError(f"{path}: config is not UTF-8 text") from None
    except tomllib.TOMLDecodeError as err:
        raise InputError(f"{path}: not valid TOML ({err})") from None
    unknown = [key for key in data if key != "task"]
    if unknown:
        raise InputError(f"{path}: unknown top-level key {unknown[0]!r}; a config holds [[task]] tables")
    tables = data.get("task")
    if not isinstance(tables, list) or not tables:
        raise InputError(f"{path}: no [[task]] tables; write each task as a [[task]] table")
    if not all(isinstance(table, dict) for table in tables):
        raise InputError(f"{path}: 'task' must be [[task]] tables")
    tasks = [_task(_Where(path, index, table), table) for index, table in enumerate(tables, start=1)]
    _check_unique_names(path, tasks)
    return Config(path, text, tasks)


class _Where:
    """Names the file and task in error messages: ``configs/x.toml: task 'sentiment': …``."""

    def __init__(self, path: str, index: int, table: dict):
        self.path = path
        name = table.get("name")
        self.task = f"task {name!r}" if isinstance(name, str) and name else f"task #{index}"

    def error(self, message: str) -> InputError:
        return InputError(f"{self.path}: {self.task}: {message}")


def _task(where: _Where, table: dict) -> Task:
    for key in table:
        if key not in KEYS:
            raise where.error(f"unknown key {key!r} (keys are: {', '.join(KEYS)})")
    for key in ("name", "template", "labels"):
        if key not in table:
            raise where.error(f"missing key {key!r}")
    name = _string(where, table, "name")
    if problem := name_problem(name):
        raise where.error(f"'name' {problem}")
    multi_label = _typed(where, table, "multi_label", bool, False)
    classes, forms = _labels(where, table["labels"], multi_label)
    mode = _string(where, table, "mode", "sum")
    if mode not in MODES:
        raise where.error(f"'mode' must be one of {', '.join(MODES)}; got {mode!r}")
    template = _template(where, table, multi_label)
    return Task(
        name=name,
        template=template,
        classes=classes,
        forms=forms,
        mode=mode,
        temperature=_temperature(where, table),
        content_free=_content_free(where, table, mode),
        multi_label=multi_label,
        answers=_answers(where, table, multi_label),
        values=_values(where, table, classes, multi_label),
        positive=_positive(where, table, classes, multi_label),
        rank_by=_rank_by(where, table),
        examples=_examples(where, table, template, dict(zip(classes, forms)), multi_label),
        conformal=_conformal(where, table, classes, multi_label),
    )


def _string(where: _Where, table: dict, key: str, default: str | None = None) -> str:
    value = table.get(key, default)
    if not isinstance(value, str):
        raise where.error(f"{key!r} must be a string, got {value!r}")
    return value


def _typed(where: _Where, table: dict, key: str, kind: type, default):
    value = table.get(key, default)
    if not isinstance(value, kind):
        raise where.error(f"{key!r} must be a {kind.__name__}, got {value!r}")
    return value


def _strings(where: _Where, value, key: str) -> tuple[str, ...]:
    """A list of non-empty, distinct strings."""
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise where.error(f"{key!r} must be a list of strings, got {value!r}")
    for item in value:
        if not item.strip():
            raise where.error(f"{key!r} has an empty string")
        if value.count(item) > 1:
            raise where.error(f"{key!r} has {item!r} twice")
    return tuple(value)


def _labels(where: _Where, value, multi_label: bool) -> tuple[tuple[str, ...], tuple[tuple[str, ...], ...]]:
    """Classes and their forms: a list (one form each) or a table class -> list of forms."""
    if isinstance(value, dict):
        if multi_label:
            raise where.error(
                "'labels' must be a list of class names when multi_label = true (the answers are 'answers')"
            )
        classes = tuple(value)
        forms = tuple(_strings(where, forms, f"labels.{name}") for name, forms in value.items())
        for name, class_forms in zip(classes, forms):
            if not name.strip() or not class_forms:
                raise where.error(f"'labels' class {name!r} needs a name and at least one form")
        everything = [form for class_forms in forms for form in class_forms]
        for form in everything:
            if everything.count(form) > 1:
                raise where.error(f"'labels' form {form!r} belongs to two classes; a form can only mean one class")
    else:
        classes = _strings(where, value, "labels")
        forms = tuple((label,) for label in classes)
    if len(classes) < 2 and not multi_label:
        raise where.error(f"'labels' needs at least two classes to compare, got {list(classes)!r}")
    if not classes:
        raise where.error("'labels' is empty")
    return classes, forms


def _template(where: _Where, table: dict, multi_label: bool) -> PromptTemplate:
    text_column = _string(where, table, "text_column", DEFAULT_TEXT_COLUMN)
    try:
        template = PromptTemplate(_string(where, table, "template"), text_column, asks_label=multi_label)
    except InputError as err:
        raise where.error(f"'template': {err}") from None
    if multi_label and LABEL_FIELD not in template.fields:
        raise where.error(
            "'template' must contain {label}, the class each question asks about, when multi_label = true"
        )
    return template


def _temperature(where: _Where, table: dict) -> float:
    value = table.get("temperature", 1.0)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not (0 < value < math.inf):
        raise where.error(f"'temperature' must be a positive number, got {value!r}")
    return float(value)


def _content_free(where: _Where, table: dict, mode: str) -> tuple[str, ...]:
    if "content_free" not in table:
        return DEFAULT_CONTENT_FREE
    if mode not in CONTENT_FREE_MODES:
        raise where.error(f"'content_free' only applies to mode {' or '.join(CONTENT_FREE_MODES)}, not {mode!r}")
    value = table["content_free"]
    if not isinstance(value, list) or not value or not all(isinstance(item, str) for item in value):
        raise where.error(f"'content_free' must be a non-empty list of strings, got {value!r}")
    return tuple(value)


def _answers(where: _Where, table: dict, multi_label: bool) -> tuple[str, ...]:
    if "answers" not in table:
        return DEFAULT_ANSWERS
    if not multi_label:
        raise where.error("'answers' only applies when multi_label = true")
    answers = _strings(where, table["answers"], "answers")
    if len(answers) != 2:
        raise where.error(f"'answers' must be two strings, the yes and the no answer; got {list(answers)!r}")
    return answers


def _values(where: _Where, table: dict, classes: tuple[str, ...], multi_label: bool) -> tuple[float, ...] | None:
    """Numbers for regression: ``values``, else the class names when they all read as numbers."""
    if "values" not in table:
        numbers = [_number(name) for name in classes]
        return None if multi_label or None in numbers else tuple(numbers)
    if multi_label:
        raise where.error("'values' needs a single-label task; multi-label classes are independent")
    value = table["values"]
    if (
        not isinstance(value, list)
        or len(value) != len(classes)
        or not all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in value)
    ):
        raise where.error(
            f"'values' must be {len(classes)} finite numbers, one per class in 'labels' order; got {value!r}"
        )
    return tuple(float(v) for v in value)


def _number(text: str) -> float | None:
    try:
        number = float(text)
    except ValueError:
        return None
    return number if math.isfinite(number) else None


def _positive(where: _Where, table: dict, classes: tuple[str, ...], multi_label: bool) -> str | None:
    if "positive" not in table:
        return None
    positive = _string(where, table, "positive")
    if multi_label:
        raise where.error("'positive' needs a single-label task; a multi-label task reports every class already")
    if positive not in classes:
        raise where.error(f"'positive' {positive!r} is not one of the classes ({', '.join(classes)})")
    return positive


def _rank_by(where: _Where, table: dict) -> str | None:
    if "rank_by" not in table:
        return None
    if "positive" not in table:
        raise where.error(f"'rank_by' {RANK_NEEDS_POSITIVE}")
    return _string(where, table, "rank_by")


def _examples(
    where: _Where, table: dict, template: PromptTemplate, forms: dict[str, tuple[str, ...]], multi_label: bool
) -> Examples | None:
    """Few-shot demonstrations, read and picked now, so a bad examples file fails before the model loads."""
    if "examples" not in table:
        return None
    if multi_label:
        raise where.error("'examples' needs a single-label task; a multi-label task asks one question per class")
    try:
        return load_examples(parse_spec(table["examples"], where.path), template, forms)
    except InputError as err:
        raise where.error(f"'examples': {err}") from None


def conformal_refusal(classes: Sequence[str], multi_label: bool, values: object) -> str | None:
    """Why a task cannot have prediction sets, or ``None``: sets are of classes, one of which is the row's.

    A multi-label task has no one true class per row; a regression task (``values``, or class
    names that are all numbers) is measured by its expected value, and `t5cls eval` refuses it.
    """
    if multi_label:
        return "a multi-label task has no single true class per row to cover; prediction sets need one"
    if values is not None or all(_number(name) is not None for name in classes):
        return (
            "a regression task (its classes are numbers) is scored by its expected value; "
            "prediction sets are for tasks with one class per row"
        )
    return None


def _conformal(where: _Where, table: dict, classes: tuple[str, ...], multi_label: bool) -> ConformalSets | None:
    """The set rule ``calibrate --coverage`` wrote: the three keys together, checked as the fit made them."""
    present = [key for key in CONFORMAL_KEYS if key in table]
    if not present:
        return None
    if len(present) < len(CONFORMAL_KEYS):
        missing = ", ".join(repr(key) for key in CONFORMAL_KEYS if key not in table)
        raise where.error(
            f"{', '.join(map(repr, present))} needs {missing} too; `t5cls calibrate --coverage` writes all three"
        )
    if refusal := conformal_refusal(classes, multi_label, table.get("values")):
        raise where.error(f"'coverage': {refusal}")
    coverage, method, threshold = (table[key] for key in CONFORMAL_KEYS)
    if not is_level(coverage):
        raise where.error(f"'coverage' must be a level strictly between 0 and 1, got {coverage!r}")
    if method not in METHODS:
        raise where.error(f"'conformal' must be {' or '.join(map(repr, METHODS))}, got {method!r}")
    if isinstance(threshold, bool) or not isinstance(threshold, (int, float)) or not 0 <= threshold < math.inf:
        raise where.error(f"'conformal_threshold' must be a number ≥ 0, got {threshold!r}")
    return ConformalSets(method, float(coverage), float(threshold))


def _check_unique_names(path: str, tasks: list[Task]) -> None:
    seen: set[str] = set()
    for task in tasks:
        if task.name in seen:
            raise InputError(
                f"{path}: task {task.name!r}: 'name' is used by two tasks; "
                "names prefix the columns, so they must differ"
            )
        seen.add(task.name)
