"""The options of a run, as frozen dataclasses validated once, where they are made.

Every layer takes these objects instead of loose keyword arguments, so an option cannot be
dropped on the way, and every check lives in one ``__post_init__``. Messages name the Python
parameters (`t5cls.errors.OptionError`); the CLI shows its own flags in their place.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass

from t5cls.errors import OptionError, literal
from t5cls.io.formats import INPUT_FORMATS, OUTPUT_FORMATS
from t5cls.tasks.labels import parse_labels
from t5cls.tasks.prompts import DEFAULT_TEXT_COLUMN

DEFAULT_MODEL = "google/flan-t5-small"
DEVICES = ("auto", "cpu", "cuda", "mps")
DTYPES = ("auto", "float32", "bfloat16", "float16", "int8")
NULL_POLICIES = ("error", "skip", "empty")
DEFAULT_CHUNK_ROWS = 1000
DEFAULT_LOG_EVERY = 30.0
DEFAULT_TASK_NAME = "default"  # the name of the --labels task in a config that calibrate or train writes
LOSSES = ("label-set", "generative")
CLASS_WEIGHTS = ("none", "balanced")
DEFAULT_TRAIN_BATCH_SIZE = 16


def default_model() -> str:
    """The model used when none is given: ``$T5CLS_MODEL`` or Flan-T5 small."""
    return os.environ.get("T5CLS_MODEL") or DEFAULT_MODEL


def one_of(parameter: str, value, choices) -> None:
    """``value`` must be one of ``choices``."""
    if value not in choices:
        shown = ", ".join(map(str, choices[:-1])) + f" or {choices[-1]}"
        raise OptionError(
            f"{{{parameter}}}: unknown {parameter.replace('_', ' ')} {literal(repr(value))}; choose {shown}"
        )


def positive(parameter: str, value: int | None) -> None:
    """``value`` must be None or a whole number ≥ 1."""
    if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
        raise OptionError(f"{{{parameter}}} must be a positive whole number, got {literal(repr(value))}")


def number_in(parameter: str, value, low: float, high: float, closed_low=True, closed_high=True) -> None:
    """``value`` must be a finite number between ``low`` and ``high`` (each bound in or out)."""
    number = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    if (
        not number
        or not (low <= value <= high)
        or (value == low and not closed_low)
        or (value == high and not closed_high)
    ):
        upper = "" if high == math.inf else f" and {'≤' if closed_high else '<'} {high:g}"
        bounds = f"{'≥' if closed_low else '>'} {low:g}{upper}"
        raise OptionError(f"{{{parameter}}} must be a number {bounds}, got {literal(repr(value))}")


def looks_like_path(name: str) -> bool:
    """Whether a ``--model`` value means a local folder: it exists, starts with ``.``, ``/`` or ``~``, or names
    an existing parent folder (``models/typo`` beside a ``models/`` folder). Anything else is a hub name."""
    path = os.path.expanduser(name)
    parent = os.path.dirname(path)
    return name.startswith((".", "/", "~", os.sep)) or os.path.exists(path) or (bool(parent) and os.path.isdir(parent))


def check_model_path(name: str) -> None:
    """A model that looks like a local folder must be one, holding a ``config.json``; checked before any import.

    Without this the Hub client reads the path as a malformed repo id, after seconds of imports.
    """
    if not looks_like_path(name):
        return
    path = os.path.expanduser(name)
    if not os.path.exists(path):
        raise OptionError(f"{{name_or_path}} {literal(name)}: no such folder; give a local model folder or a hub name")
    if not os.path.isdir(path):
        raise OptionError(f"{{name_or_path}} {literal(name)}: not a folder; give the folder the model was saved to")
    if not os.path.isfile(os.path.join(path, "config.json")):
        raise OptionError(
            f"{{name_or_path}} {literal(name)}: the folder has no config.json, so it holds no saved model "
            "(save_pretrained or t5cls train writes one)"
        )


def check_task_source(labels, config: str | None, template: str | None, text_column: str) -> None:
    """The tasks come from ``labels`` (with ``template`` and ``text_column``) or from a ``config``, not both."""
    if config is None:
        if labels is None:
            raise OptionError("give the labels with {labels} a,b,... or a task with {config} FILE")
        return
    if labels is not None:
        raise OptionError("give either {labels} or {config}, not both")
    if template is not None or text_column != DEFAULT_TEXT_COLUMN:
        raise OptionError("{template} and {text_column} go with {labels}; with {config}, set them in each [[task]]")


@dataclass(frozen=True)
class ModelOptions:
    """Which model to load and how to run it; see `t5cls.models.scorer.LabelScorer`.

    ``batch_size=None`` is automatic (CPU: 32; CUDA: 256, halved on out-of-memory). ``label_end``
    (decoder-only models) is ``none``, ``eos`` or a text; ``None`` is the backend's default.
    """

    name_or_path: str | None = None
    revision: str | None = None
    device: str = "auto"
    dtype: str = "auto"
    batch_size: int | None = None
    max_length: int | None = None
    label_end: str | None = None
    chat: bool = False

    def __post_init__(self):
        one_of("device", self.device, DEVICES)
        one_of("dtype", self.dtype, DTYPES)
        positive("batch_size", self.batch_size)
        positive("max_length", self.max_length)
        if self.label_end is not None and not self.label_end:
            raise OptionError("{label_end} must be none, eos or a non-empty text")
        check_model_path(self.name)

    @property
    def name(self) -> str:
        """The hub name or local folder to load (a leading ``~`` expanded: the Hub client would not)."""
        name = self.name_or_path or default_model()
        return os.path.expanduser(name) if name.startswith("~") else name


@dataclass(frozen=True)
class ScoreOptions:
    """Everything that decides what a scoring run writes, the model aside.

    Give ``labels`` (a list, or ``"a,b,c"``) for one task, or ``config`` (a TOML file) for the
    tasks it holds. ``output=None`` (or ``"-"``) writes to stdout.
    """

    input: str
    labels: tuple[str, ...] | None = None
    output: str | None = None
    config: str | None = None
    template: str | None = None  # None: DEFAULT_TEMPLATE on the labels path
    text_column: str = DEFAULT_TEXT_COLUMN
    input_format: str | None = None
    output_format: str | None = None
    logprobs: bool = False
    on_null: str = "error"
    chunk_rows: int = DEFAULT_CHUNK_ROWS
    resume: bool = False
    rank_by: str | None = None

    def __post_init__(self):
        if self.labels is not None:
            object.__setattr__(self, "labels", tuple(parse_labels(self.labels)))
        self._check_tasks()
        one_of("on_null", self.on_null, NULL_POLICIES)
        positive("chunk_rows", self.chunk_rows)
        if self.input_format is not None:
            one_of("input_format", self.input_format, sorted(set(INPUT_FORMATS.values())))
        if self.output_format is not None:
            one_of("output_format", self.output_format, sorted(set(OUTPUT_FORMATS.values())))
        if self.resume and self.to_stdout:
            raise OptionError("{resume} needs an output file ({output} PATH); stdout cannot be resumed")

    def _check_tasks(self) -> None:
        check_task_source(self.labels, self.config, self.template, self.text_column)
        if self.config is None and self.rank_by is not None:
            raise OptionError(
                "{rank_by} needs {config} with a task that sets 'positive' (the class whose probability it ranks by)"
            )

    @property
    def to_stdout(self) -> bool:
        return self.output in (None, "-")


@dataclass(frozen=True)
class CalibrateOptions:
    """A temperature fit: the labelled ``dev`` file, its ``gold`` column, the task, and the config to write.

    The task is ``labels`` (with ``template`` and ``text_column``; called ``task`` in the written
    config) or the task ``task`` of ``config`` (``None``: its only task).
    """

    dev: str
    gold: str
    output: str
    labels: tuple[str, ...] | None = None
    config: str | None = None
    template: str | None = None
    text_column: str = DEFAULT_TEXT_COLUMN
    task: str | None = None

    def __post_init__(self):
        if self.labels is not None:
            object.__setattr__(self, "labels", tuple(parse_labels(self.labels)))
        check_task_source(self.labels, self.config, self.template, self.text_column)
        if not self.gold.strip():
            raise OptionError("{gold} must name the column of the gold labels")

    @property
    def task_name(self) -> str | None:
        """The name of the labels task in the written config (``None`` with a config: its tasks are named)."""
        return None if self.config is not None else self.task or DEFAULT_TASK_NAME


@dataclass(frozen=True)
class RayOptions:
    """How a Ray actor pool is laid out: one model per worker.

    ``num_workers=None``: one worker per ``gpus_per_worker`` GPUs of the cluster when workers
    use GPUs (every GPU busy), else one worker.
    """

    num_workers: int | None = None
    gpus_per_worker: float = 0.0
    cpus_per_worker: float = 1.0

    def __post_init__(self):
        if self.num_workers is not None and self.num_workers < 1:
            raise OptionError("{num_workers} must be at least 1")
        if self.gpus_per_worker < 0 or self.cpus_per_worker <= 0:
            raise OptionError("{gpus_per_worker} must be ≥ 0 and {cpus_per_worker} > 0")


@dataclass(frozen=True)
class ProgressOptions:
    """What a run prints while it works: nothing (``quiet``), or a line every ``log_every`` seconds off a terminal."""

    quiet: bool = False
    log_every: float = DEFAULT_LOG_EVERY

    def __post_init__(self):
        if not self.log_every > 0:
            raise OptionError(
                f"{{log_every}} must be a positive number of seconds, got {literal(repr(self.log_every))}"
            )


@dataclass(frozen=True)
class TrainOptions:
    """What to train on, what to write, and how the optimisation goes; the model aside (`ModelOptions`).

    Give ``labels`` for one task (named ``task_name`` in the written config) or ``config`` for the
    tasks it holds. ``gold`` is a column name, or ``task=column,...`` for several tasks.
    ``batch_size=None`` trains on `DEFAULT_TRAIN_BATCH_SIZE` rows per step. ``warmup`` is the share
    of the optimisation steps spent warming the learning rate up from 0 (then it decays linearly
    to 0). ``eval_every=None`` evaluates and checkpoints once per epoch. ``patience`` evaluations
    without a better dev loss stop training (0: never).
    """

    train: str
    output: str
    gold: str
    labels: tuple[str, ...] | None = None
    config: str | None = None
    template: str | None = None
    text_column: str = DEFAULT_TEXT_COLUMN
    task_name: str = DEFAULT_TASK_NAME
    dev: str | None = None
    on_null: str = "error"
    loss: str = "label-set"
    class_weights: str = "none"
    epochs: int = 3
    learning_rate: float = 1e-4
    batch_size: int | None = None
    grad_accum: int = 1
    warmup: float = 0.06
    weight_decay: float = 0.0
    seed: int = 0
    patience: int = 2
    eval_every: int | None = None
    resume: bool = False

    def __post_init__(self):
        if self.labels is not None:
            object.__setattr__(self, "labels", tuple(parse_labels(self.labels)))
        check_task_source(self.labels, self.config, self.template, self.text_column)
        one_of("on_null", self.on_null, NULL_POLICIES)
        one_of("loss", self.loss, LOSSES)
        one_of("class_weights", self.class_weights, CLASS_WEIGHTS)
        for name in ("epochs", "batch_size", "grad_accum", "eval_every"):
            positive(name, getattr(self, name))
        number_in("learning_rate", self.learning_rate, 0.0, math.inf, closed_low=False)
        number_in("warmup", self.warmup, 0.0, 1.0, closed_high=False)
        number_in("weight_decay", self.weight_decay, 0.0, math.inf)
        if isinstance(self.patience, bool) or not isinstance(self.patience, int) or self.patience < 0:
            raise OptionError(f"{{patience}} must be a whole number ≥ 0 (0: no early stopping), got {self.patience!r}")
        if not self.gold.strip():
            raise OptionError("{gold} must name the column of the gold labels")
        if self.class_weights != "none" and self.loss == "generative":
            raise OptionError("{class_weights} applies to the label-set loss, not to {loss} generative")

    @property
    def rows_per_step(self) -> int:
        return self.batch_size or DEFAULT_TRAIN_BATCH_SIZE
