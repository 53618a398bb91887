"""The options of a run, as frozen dataclasses validated once, where they are made.

Every layer takes these objects instead of loose keyword arguments, so an option cannot be
dropped on the way, and every check lives in one ``__post_init__``. Messages name the Python
parameters (`t5cls.errors.OptionError`); the CLI shows its own flags in their place.

A field declared with `option` carries what every front end needs to offer it (`Flag`: its flags,
help, choices, its keyword in the Python API), so a field added to `ModelOptions` reaches ``t5cls
score``/``calibrate``/``train`` (`t5cls.cli.flags.model_flags`), `t5cls.score_frame` and
`t5cls.sklearn.T5Classifier` (`keywords`) without another edit. Every field of `ScoreOptions`,
`CalibrateOptions` and `TrainOptions` is declared so too (their commands are built from them:
`t5cls.cli.flags.options_flags`), and the task fields they share once, in `TaskSource`, which each inherits.
"""

from __future__ import annotations

import difflib
import inspect
import math
import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import KW_ONLY, MISSING, Field, dataclass, field, fields

from t5cls.errors import OptionError, literal
from t5cls.eval.conformal import DEFAULT_METHOD, check_coverage, check_method
from t5cls.io.formats import INPUT_FORMATS, OUTPUT_FORMATS
from t5cls.tasks.config import RANK_NEEDS_POSITIVE
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
REQUIRED = MISSING  # the default of an `option` that has none: the front ends require it


@dataclass(frozen=True)
class Flag:
    """How the front ends offer one options field.

    ``names`` are the CLI's flags (errors show ``shown``, else the first); without any the field is
    a positional argument, shown as its name in capitals (``INPUT``). ``help`` may say
    ``{choices}``, filled from ``choices``. ``keyword`` is the field's name in the Python front
    ends when it is not the field's own (``name_or_path`` is ``model`` there). On the command line
    ``auto`` stands for ``None`` where ``auto`` is set, ``escapes`` reads TOML's escapes
    (``\\n``...) in the value, as ``--template`` does, and ``kind`` is the type the value is read as
    when it is not the field's (``--labels`` is text, the field a tuple of labels).
    """

    names: tuple[str, ...]
    help: str
    choices: tuple[str, ...] = ()
    keyword: str | None = None
    shown: str | None = None
    auto: bool = False
    escapes: bool = False
    kind: type | None = None

    @property
    def text(self) -> str:
        """The help, its ``{choices}`` filled in."""
        return self.help.format(choices=choice_list(self.choices)) if self.choices else self.help


def option(default, *names: str, help: str, kw_only: bool = MISSING, **settings) -> Field:
    """A dataclass field with its `Flag`: the one declaration of an option (``default`` `REQUIRED`: none)."""
    return field(default=default, kw_only=kw_only, metadata={"flag": Flag(names, help, **settings)})


def declared(options_class: type) -> list[tuple[Field, Flag]]:
    """The fields of ``options_class`` declared with `option`, in their order, with their flags."""
    return [(each, each.metadata["flag"]) for each in fields(options_class) if "flag" in each.metadata]


def flag_of(options_class: type, name: str) -> Flag:
    """The `Flag` of ``options_class``'s field ``name``, declared with `option`."""
    return options_class.__dataclass_fields__[name].metadata["flag"]


def keywords(options_class: type) -> dict[str, Field]:
    """The Python front ends' keyword for each declared field of ``options_class`` (``model`` for ``name_or_path``)."""
    return {flag.keyword or each.name: each for each, flag in declared(options_class)}


def keyword_names(options_class: type) -> dict[str, str]:
    """Field name -> keyword where they differ: how a front end's errors name ``options_class``'s fields."""
    return {each.name: flag.keyword for each, flag in declared(options_class) if flag.keyword}


def with_keywords(function: Callable, options_class: type, skip: Iterable[str] = ()) -> Callable:
    """``function`` (which takes ``**options``) shown with ``options_class``'s keywords as keyword-only parameters.

    `inspect.signature`, ``help()`` and scikit-learn's ``get_params`` then list every field, one
    added later included; ``skip`` names those the function declares itself.
    """
    signature = inspect.signature(function)
    own = [parameter for parameter in signature.parameters.values() if parameter.kind != parameter.VAR_KEYWORD]
    added = [
        inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=each.default, annotation=each.type)
        for name, each in keywords(options_class).items()
        if name not in skip and name not in signature.parameters
    ]
    function.__signature__ = signature.replace(parameters=[*own, *added])
    return function


def check_keywords(function: str, given: Mapping[str, object], known: Iterable[str]) -> None:
    """A keyword ``function`` does not take is a `TypeError` naming it and the nearest one it does take."""
    known = list(known)
    for name in given:
        if name not in known:
            near = difflib.get_close_matches(name, known, n=1)
            hint = f"; did you mean {near[0]!r}?" if near else f"; it takes {', '.join(sorted(known))}"
            raise TypeError(f"{function}() got an unexpected keyword argument {name!r}{hint}")


def choice_list(choices: Sequence[str]) -> str:
    """``a, b or c``."""
    return ", ".join(map(str, choices[:-1])) + f" or {choices[-1]}" if len(choices) > 1 else "".join(choices)


def default_model() -> str:
    """The model used when none is given: ``$T5CLS_MODEL`` or Flan-T5 small."""
    return os.environ.get("T5CLS_MODEL") or DEFAULT_MODEL


def one_of(parameter: str, value, choices) -> None:
    """``value`` must be one of ``choices``."""
    if value not in choices:
        unknown = f"unknown {parameter.replace('_', ' ')} {literal(repr(value))}"
        raise OptionError(f"{{{parameter}}}: {unknown}; choose {choice_list(choices)}")


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


def read_task_source(options: TaskSource) -> None:
    """Read the `TaskSource` fields of frozen ``options`` in place: ``labels`` (a list or ``"a,b,c"``) as a tuple,
    the whole checked by `check_task_source`."""
    if options.labels is not None:
        object.__setattr__(options, "labels", tuple(parse_labels(options.labels)))
    check_task_source(options.labels, options.config, options.template, options.text_column)


GOLD = "Column holding the true label of each row."
ON_NULL = "Rows whose text is empty or null: {choices}."
RESUME = "Continue an interrupted run from its checkpoint."
RANK_BY = "Rank rows by each ranking task's score within groups of this column (needs -o)."


@dataclass(frozen=True)
class TaskSource:
    """Where a run's tasks come from: ``labels`` (a list or ``"a,b,c"``, with ``template`` and ``text_column``)
    or a ``config`` file; the one declaration of these fields.

    `ScoreOptions`, `CalibrateOptions` and `TrainOptions` inherit them (the Python API keeps them
    flat: ``labels`` positional after the files, the others keyword-only) and check them with
    `read_task_source`. On its own it carries the task flags of a command that builds its options
    itself (`t5cls.cli.flags.task_flags`: ``t5cls serve``), which spreads them (`keywords`).
    """

    labels: tuple[str, ...] | None = option(
        None, "--labels", "-l", kind=str, help="Comma-separated labels, e.g. positive,negative."
    )
    config: str | None = option(
        None,
        "--config",
        "-c",
        kw_only=True,
        help="TOML file of \\[\\[task]] tables, all scored in one pass (instead of --labels).",
    )
    template: str | None = option(  # None: DEFAULT_TEMPLATE on the labels path
        None,
        "--template",
        "-t",
        kw_only=True,
        escapes=True,
        help="Prompt format string: {text}, any {column}, {labels}; \\n, \\t and \\\\ are read as escapes.",
    )
    text_column: str = option(DEFAULT_TEXT_COLUMN, "--text-column", kw_only=True, help="Column that {text} refers to.")

    def keywords(self) -> dict[str, object]:
        """The fields as keyword arguments of `ScoreOptions`, `CalibrateOptions` or `TrainOptions`."""
        return {each.name: getattr(self, each.name) for each in fields(self)}


@dataclass(frozen=True)
class ModelOptions:
    """Which model to load and how to run it; see `t5cls.models.scorer.LabelScorer`.

    ``batch_size`` is the rows per forward pass, scoring and training alike (a training step is
    ``batch_size`` × ``grad_accum`` rows); ``None`` is automatic (scoring: CPU 32, CUDA 256 halved on
    out-of-memory; training: `DEFAULT_TRAIN_BATCH_SIZE`). ``label_end`` (decoder-only models) is
    ``none``, ``eos`` or a text; ``None`` is the backend's default.

    Every field is declared with `option`, so each front end offers it (see the module's docstring).
    """

    name_or_path: str | None = option(
        None,
        "--model",
        "-m",
        keyword="model",
        help="Hub name or local folder \\[default: $T5CLS_MODEL or google/flan-t5-small].",
    )
    revision: str | None = option(None, "--revision", help="Model revision (branch, tag or commit) on the Hub.")
    device: str = option("auto", "--device", choices=DEVICES, help="{choices}.")
    dtype: str = option("auto", "--dtype", choices=DTYPES, help="{choices}: auto is bfloat16 on CUDA, else float32.")
    batch_size: int | None = option(
        None,
        "--batch-size",
        auto=True,
        help="Rows per forward pass, or 'auto' (scoring: CPU 32, CUDA the largest that fits; training: 16).",
    )
    max_length: int | None = option(
        None, "--max-length", help="Truncate inputs to this many tokens \\[default: the model's]."
    )
    label_end: str | None = option(
        None,
        "--label-end",
        escapes=True,
        help="What completes a label for decoder-only models: none, eos or a text (escapes as in --template) "
        "\\[default: none; seq2seq: eos].",
    )
    chat: bool = option(
        False, "--chat", help="Decoder-only instruct models: wrap each prompt in the tokenizer's chat template."
    )

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

    @property
    def training_batch_size(self) -> int:
        """Rows per training forward and backward pass: ``batch_size``, or `DEFAULT_TRAIN_BATCH_SIZE` when automatic."""
        return self.batch_size or DEFAULT_TRAIN_BATCH_SIZE


@dataclass(frozen=True)
class _ScoreInput:
    """`ScoreOptions`' input, a base so that it comes before the `TaskSource` fields (``ScoreOptions(in, labels)``)."""

    input: str = option(
        REQUIRED,
        help="CSV, JSONL or Parquet file (text optionally .gz, .bz2, .zst or .lz4); '-' reads stdin "
        "(CSV, or JSONL/Parquet by its first bytes).",
    )


@dataclass(frozen=True)
class ScoreOptions(TaskSource, _ScoreInput):
    """Everything that decides what a scoring run writes, the model aside.

    Give ``labels`` (a list, or ``"a,b,c"``) for one task, or ``config`` (a TOML file) for the
    tasks it holds. ``output=None`` (or ``"-"``) writes to stdout. Positional: ``input``,
    ``labels``, ``output``; the others are keywords.
    """

    rank_by: str | None = option(None, "--rank-by", kw_only=True, help=RANK_BY)
    output: str | None = option(
        None,
        "--output",
        "-o",
        shown="-o",
        help="Output file (.csv, .jsonl, .parquet); Parquet may go to an s3://, gs://, abfs:// or hdfs:// URI.",
    )
    _: KW_ONLY
    input_format: str | None = option(
        None, "--input-format", help="csv, jsonl or parquet, when the extension does not say."
    )
    output_format: str | None = option(
        None,
        "--format",
        help="Output format: csv, jsonl or parquet, where -o's name does not say (stdout, a FIFO, an odd extension).",
    )
    chunk_rows: int = option(DEFAULT_CHUNK_ROWS, "--chunk-size", help="Rows read, scored and checkpointed together.")
    logprobs: bool = option(False, "--logprobs", help="Also write logp_<label>, the raw sequence log-probabilities.")
    on_null: str = option("error", "--on-null", choices=NULL_POLICIES, help=ON_NULL)
    resume: bool = option(False, "--resume", help=RESUME)

    def __post_init__(self):
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
        read_task_source(self)
        if self.config is None and self.rank_by is not None:
            raise OptionError(f"{{rank_by}} {RANK_NEEDS_POSITIVE}, which only a task of a {{config}} sets")

    @property
    def to_stdout(self) -> bool:
        return self.output in (None, "-")


@dataclass(frozen=True)
class _CalibrateFiles:
    """`CalibrateOptions`' files, a base so that they come before the `TaskSource` fields."""

    dev: str = option(REQUIRED, help="Labelled dev file (CSV, JSONL or Parquet) to fit on.")
    gold: str = option(REQUIRED, "--gold", "-g", help=GOLD)
    output: str = option(REQUIRED, "--output", "-o", shown="-o", help="Config file to write, e.g. fitted.toml.")


@dataclass(frozen=True)
class CalibrateOptions(TaskSource, _CalibrateFiles):
    """A temperature fit: the labelled ``dev`` file, its ``gold`` column, the task, and the config to write.

    The task is ``labels`` (with ``template`` and ``text_column``; called ``task`` in the written
    config) or the task ``task`` of ``config`` (``None``: its only task). ``coverage`` also fits
    prediction sets of that level with the ``conformal`` method (`t5cls.eval.conformal`).
    Positional: ``dev``, ``gold``, ``output``, ``labels``; the others are keywords.
    """

    _: KW_ONLY
    task: str | None = option(
        None,
        "--task",
        help="With --config: the task to fit (needed when it has several). "
        "With --labels: the task's name in the written config \\[default: default].",
    )
    coverage: float | None = option(
        None,
        "--coverage",
        help="Also fit prediction sets that hold the true label for this share of rows, e.g. 0.9 "
        "(score writes <task>_set and <task>_set_size).",
    )
    conformal: str = option(
        DEFAULT_METHOD,
        "--conformal",
        help="With --coverage: lac (every class with p ≥ 1 − q) or aps (classes by descending p while the mass "
        "above the next is ≤ q).",
    )

    def __post_init__(self):
        read_task_source(self)
        if not self.gold.strip():
            raise OptionError("{gold} must name the column of the gold labels")
        check_method(self.conformal)
        if self.coverage is not None:
            check_coverage(self.coverage)
        elif self.conformal != DEFAULT_METHOD:
            raise OptionError("{conformal} chooses how prediction sets are fitted: give their level with {coverage}")

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

    num_workers: int | None = option(
        None,
        "--num-workers",
        help="--engine ray: actors, each with its own model \\[default: one per GPU with --gpus-per-worker, else 1].",
    )
    gpus_per_worker: float = option(0.0, "--gpus-per-worker", help="--engine ray: GPUs per actor (0: CPU).")
    cpus_per_worker: float = option(1.0, "--cpus-per-worker", help="--engine ray: CPUs per actor.")

    def __post_init__(self):
        if self.num_workers is not None and self.num_workers < 1:
            raise OptionError("{num_workers} must be at least 1")
        if self.gpus_per_worker < 0 or self.cpus_per_worker <= 0:
            raise OptionError("{gpus_per_worker} must be ≥ 0 and {cpus_per_worker} > 0")


@dataclass(frozen=True)
class ProgressOptions:
    """What a run prints while it works: nothing (``quiet``), or a line every ``log_every`` seconds off a terminal."""

    quiet: bool = option(False, "--quiet", "-q", help="No progress output (the summary line stays).")
    log_every: float = option(
        DEFAULT_LOG_EVERY, "--log-every", help="Seconds between progress lines when stderr is not a terminal."
    )

    def __post_init__(self):
        if not self.log_every > 0:
            raise OptionError(
                f"{{log_every}} must be a positive number of seconds, got {literal(repr(self.log_every))}"
            )


@dataclass(frozen=True)
class _TrainFiles:
    """`TrainOptions`' files, a base so that they come before the `TaskSource` fields."""

    train: str = option(REQUIRED, help="Labelled training file (CSV, JSONL or Parquet).")
    output: str = option(
        REQUIRED, "--output", "-o", shown="-o", help="Output folder: model, tokenizer, t5cls.toml, report."
    )
    gold: str = option(REQUIRED, "--gold", "-g", help=GOLD)


@dataclass(frozen=True)
class TrainOptions(TaskSource, _TrainFiles):
    """What to train on, what to write, and how the optimisation goes; the model aside (`ModelOptions`).

    Give ``labels`` for one task (named ``task_name`` in the written config) or ``config`` for the
    tasks it holds. ``gold`` is a column name, or ``task=column,...`` for several tasks.
    The rows per forward pass are the model's (`ModelOptions.training_batch_size`). ``warmup`` is the share
    of the optimisation steps spent warming the learning rate up from 0 (then it decays linearly
    to 0). ``eval_every=None`` evaluates and checkpoints once per epoch. ``patience`` evaluations
    without a better dev loss stop training (0: never). Positional: ``train``, ``output``, ``gold``,
    ``labels``; the others are keywords.
    """

    _: KW_ONLY
    task_name: str = option(DEFAULT_TASK_NAME, "--task", help="Name of the --labels task in the written t5cls.toml.")
    dev: str | None = option(
        None, "--dev", help="Labelled dev file: evaluated every epoch, picks the best checkpoint, fits T."
    )
    on_null: str = option("error", "--on-null", choices=NULL_POLICIES, help=ON_NULL)
    loss: str = option(
        "label-set", "--loss", help="label-set (cross-entropy over the exact class scores) or generative."
    )
    class_weights: str = option(
        "none", "--class-weights", help="none, or balanced: weigh each class by n / (k · n_class)."
    )
    epochs: int = option(3, "--epochs", help="Passes over the training file.")
    learning_rate: float = option(1e-4, "--learning-rate", "--lr", help="AdamW's peak learning rate.")
    grad_accum: int = option(1, "--grad-accum", help="Batches whose gradients add up to one optimisation step.")
    warmup: float = option(
        0.06, "--warmup", help="Share of the steps that warm the learning rate up (then linear decay)."
    )
    weight_decay: float = option(0.0, "--weight-decay", help="AdamW's weight decay.")
    seed: int = option(0, "--seed", help="Seed of the data order, dropout and initialisation.")
    patience: int = option(
        2, "--patience", help="Stop after this many evaluations without a lower dev loss (0: never)."
    )
    eval_every: int | None = option(
        None, "--eval-every", help="Evaluate and checkpoint every N steps \\[default: every epoch]."
    )
    resume: bool = option(False, "--resume", help=RESUME)

    def __post_init__(self):
        read_task_source(self)
        one_of("on_null", self.on_null, NULL_POLICIES)
        one_of("loss", self.loss, LOSSES)
        one_of("class_weights", self.class_weights, CLASS_WEIGHTS)
        for name in ("epochs", "grad_accum", "eval_every"):
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


DEFAULT_PORT = 8000


@dataclass(frozen=True)
class ServeOptions:
    """How ``t5cls serve`` listens and what it accepts; the tasks are a `ScoreOptions`', the model a `ModelOptions`.

    ``max_rows`` and ``max_bytes`` bound one request (413 past them), ``queue_size`` the requests
    waiting for the scorer (503 past it), ``batch_wait_ms`` how long an idle scorer waits for more
    requests to join a batch. ``api_key_env`` names the environment variable holding the key that
    requests must present as ``Authorization: Bearer <key>`` (``None``: no key).
    """

    host: str = option("127.0.0.1", "--host", help="Address to listen on (0.0.0.0: every interface).")
    port: int = option(DEFAULT_PORT, "--port", help="Port to listen on (0: any free port, printed on start).")
    max_rows: int = option(1024, "--max-rows", help="Most rows (inputs, documents) in one request.")
    max_bytes: int = option(4 * 1024 * 1024, "--max-bytes", help="Largest request body, in bytes.")
    queue_size: int = option(256, "--queue-size", help="Requests that may wait for the model; past it, 503.")
    batch_wait_ms: float = option(
        5.0, "--batch-wait-ms", help="How long an idle model waits for more requests to batch."
    )
    api_key_env: str | None = option(
        None,
        "--api-key-env",
        help="Environment variable holding the key requests must send as 'Authorization: Bearer <key>'.",
    )

    def __post_init__(self):
        if isinstance(self.port, bool) or not isinstance(self.port, int) or not 0 <= self.port <= 65535:
            raise OptionError(f"{{port}} must be a port number from 0 to 65535 (0: any free port), got {self.port!r}")
        for name in ("max_rows", "max_bytes", "queue_size"):
            positive(name, getattr(self, name))
        number_in("batch_wait_ms", self.batch_wait_ms, 0.0, 10_000.0)
        if self.api_key_env is not None:
            self.api_key  # noqa: B018 (checked now, not at the first request)

    @property
    def api_key(self) -> str | None:
        """The key requests must present, read from ``api_key_env`` (``None``: no key needed)."""
        if self.api_key_env is None:
            return None
        key = os.environ.get(self.api_key_env, "")
        if not key.strip():
            raise OptionError(
                f"{{api_key_env}} {literal(self.api_key_env)}: that environment variable is unset or empty; "
                "export the key there (the key itself never goes on the command line)"
            )
        return key
