"""The CLI's options, declared once and shared by every command, and how its errors are shown.

Each option names the Python parameter it sets (`option`), so an `t5cls.errors.OptionError`
raised deep in the library, which names parameters, is shown with the flag the user typed.
`one_line_errors` is the only place that turns exceptions into exit codes.
"""

from __future__ import annotations

import re
import sys
import warnings
from collections.abc import Callable, Mapping
from dataclasses import fields
from functools import wraps
from typing import Annotated

import typer

from t5cls.errors import EXIT_INTERNAL, OptionError, T5clsError, T5clsWarning, literal, one_line
from t5cls.io.oserrors import NOT_THE_FILESYSTEM, as_filesystem_error
from t5cls.options import ModelOptions

FLAGS: dict[str, str] = {"ray": "--engine ray"}  # Python parameter -> the flag that sets it


def option(parameter: str, *flags: str, help: str, shown: str | None = None, **settings) -> typer.models.OptionInfo:
    """A Typer option for ``parameter``; error messages show ``shown`` for it, else its first flag."""
    FLAGS.setdefault(parameter, shown or flags[0])
    return typer.Option(*flags, help=help, **settings)


def flag(parameter: str, *flags: str, help: str) -> typer.models.OptionInfo:
    """An on/off `option`: its help shows no value (Typer would show ``<bool>``, as if it took one)."""
    return option(parameter, *flags, help=help, metavar="")


def fail(message: str, code: int) -> None:
    """Print the error on one line (whatever wrapped it: Ray's errors carry tracebacks) and exit with ``code``."""
    print(f"t5cls: error: {one_line(message)}", file=sys.stderr, flush=True)
    raise typer.Exit(code)


def one_line_errors(command: Callable) -> Callable:
    """Turn `T5clsError` into a one-line message and its exit code; tracebacks only with --debug."""

    @wraps(command)
    def run(*args, debug: bool = False, **kwargs):
        try:
            with warnings.catch_warnings():
                warnings.showwarning = _show_notes(warnings.showwarning)
                return command(*args, **kwargs)
        except T5clsError as err:
            if debug:
                raise
            fail(err.for_flags(FLAGS), err.exit_code)
        except (typer.Exit, typer.Abort, SystemExit):
            raise
        except OSError as err:  # one that no writer named: still the machine's, not a bug (a closed pipe aside)
            if debug or err.errno in NOT_THE_FILESYSTEM:
                raise
            filesystem_error = as_filesystem_error(err, None, "read or write")
            fail(str(filesystem_error), filesystem_error.exit_code)
        except Exception as err:
            if debug:
                raise
            fail(f"internal error: {type(err).__name__}: {err} (rerun with --debug for a traceback)", EXIT_INTERNAL)

    return run


def _show_notes(show: Callable) -> Callable:
    """``show`` for other warnings; a `T5clsWarning` (e.g. a model family scored the slow way) as one note line."""

    def show_or_note(message, category, *args, **kwargs):
        if issubclass(category, T5clsWarning):
            print(f"t5cls: note: {one_line(message)}", file=sys.stderr, flush=True)
        else:
            show(message, category, *args, **kwargs)

    return show_or_note


def defaults(options_class: type) -> dict[str, object]:
    """The defaults of an options dataclass's fields: a flag's default is written once, there."""
    return {field.name: field.default for field in fields(options_class)}


def parse_batch_size(value: str) -> int | None:
    """``--batch-size``: ``auto`` (None: the scorer picks, and adapts on CUDA) or a positive number."""
    if value == "auto":
        return None
    if not value.isdigit() or int(value) < 1:
        raise OptionError(f"{{batch_size}} must be a positive number or 'auto', got {literal(repr(value))}")
    return int(value)


ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "b": "\b", "f": "\f", '"': '"', "\\": "\\"}
ESCAPE = re.compile(r"\\(u[0-9A-Fa-f]{4}|U[0-9A-Fa-f]{8}|.?)", re.S)


def unescape(text: str, parameter: str) -> str:
    """Read TOML's basic-string escapes in a value typed in a shell: ``\\n``, ``\\t``, ``\\\\``, ``\\uXXXX``...

    ``--template "Review: {text}\\nSentiment:"`` then means what the same template means in a
    config file. An unknown escape is an error, as in TOML, rather than a silent backslash.
    """

    def replace(match: re.Match) -> str:
        code = match.group(1)
        if code[:1] in ("u", "U") and len(code) > 1:
            point = int(code[1:], 16)
            if point > 0x10FFFF or 0xD800 <= point <= 0xDFFF:
                raise OptionError(f"{{{parameter}}} has the escape \\{code}, which is not a Unicode character")
            return chr(point)
        if code not in ESCAPES:
            raise OptionError(f"{{{parameter}}} has an unknown escape \\{literal(code)}; write \\\\ for a backslash")
        return ESCAPES[code]

    return ESCAPE.sub(replace, text)


Debug = Annotated[bool, flag("debug", "--debug", help="Show tracebacks instead of one-line errors.")]

# Model options: `score`, `calibrate` and `train` take the same ones, with the same help.
Model = Annotated[
    str | None,
    option(
        "name_or_path",
        "--model",
        "-m",
        help="Hub name or local folder \\[default: $T5CLS_MODEL or google/flan-t5-small].",
    ),
]
Revision = Annotated[
    str | None, option("revision", "--revision", help="Model revision (branch, tag or commit) on the Hub.")
]
Device = Annotated[str, option("device", "--device", help="auto, cpu, cuda or mps.")]
Dtype = Annotated[
    str,
    option("dtype", "--dtype", help="auto (bfloat16 on CUDA, else float32), float32, bfloat16, float16 or int8 (CPU)."),
]
BatchSize = Annotated[
    str,
    option("batch_size", "--batch-size", help="Rows per model batch, or 'auto' (CPU: 32; CUDA: largest that fits)."),
]
MaxLength = Annotated[
    int | None,
    option("max_length", "--max-length", help="Truncate inputs to this many tokens \\[default: the model's]."),
]
LabelEnd = Annotated[
    str | None,
    option(
        "label_end",
        "--label-end",
        help="What completes a label for decoder-only models: none, eos or a text (escapes as in --template) "
        "\\[default: none; seq2seq: eos].",
    ),
]
Chat = Annotated[
    bool,
    flag("chat", "--chat", help="Decoder-only instruct models: wrap each prompt in the tokenizer's chat template."),
]

# Task and file options.
Labels = Annotated[
    str | None, option("labels", "--labels", "-l", help="Comma-separated labels, e.g. positive,negative.")
]
Config = Annotated[
    str | None,
    option(
        "config",
        "--config",
        "-c",
        help="TOML file of \\[\\[task]] tables, all scored in one pass (instead of --labels).",
    ),
]
Template = Annotated[
    str | None,
    option(
        "template",
        "--template",
        "-t",
        help="Prompt format string: {text}, any {column}, {labels}; \\n, \\t and \\\\ are read as escapes.",
    ),
]
TextColumn = Annotated[str, option("text_column", "--text-column", help="Column that {text} refers to.")]
Gold = Annotated[str, option("gold", "--gold", "-g", help="Column holding the true label of each row.")]
Task = Annotated[str | None, option("task", "--task", help="Use task NAME's columns (NAME_p_<label>, NAME_entropy).")]
Output = Annotated[
    str | None,
    option(
        "output",
        "--output",
        "-o",
        shown="-o",
        help="Output file (.csv, .jsonl, .parquet); Parquet may go to an s3://, gs://, abfs:// or hdfs:// URI.",
    ),
]
InputFormat = Annotated[
    str | None, option("input_format", "--input-format", help="csv, jsonl or parquet, when the extension does not say.")
]
OutputFormat = Annotated[
    str | None,
    option(
        "output_format",
        "--format",
        help="Output format: csv, jsonl or parquet, where -o's name does not say (stdout, a FIFO, an odd extension).",
    ),
]
ChunkSize = Annotated[int, option("chunk_rows", "--chunk-size", help="Rows read, scored and checkpointed together.")]
OnNull = Annotated[str, option("on_null", "--on-null", help="Rows whose text is empty or null: error, skip or empty.")]

# How a scoring run goes.
RankBy = Annotated[
    str | None,
    option(
        "rank_by", "--rank-by", help="Rank rows by each ranking task's score within groups of this column (needs -o)."
    ),
]
Logprobs = Annotated[
    bool, flag("logprobs", "--logprobs", help="Also write logp_<label>, the raw sequence log-probabilities.")
]
Resume = Annotated[bool, flag("resume", "--resume", help="Continue an interrupted run from its checkpoint.")]
DryRun = Annotated[
    bool, flag("dry_run", "--dry-run", help="Print the plan (prompt, label token ids) and do nothing else.")
]
Quiet = Annotated[bool, flag("quiet", "--quiet", "-q", help="No progress output (the summary line stays).")]
LogEvery = Annotated[
    float, option("log_every", "--log-every", help="Seconds between progress lines when stderr is not a terminal.")
]
Engine = Annotated[
    str,
    option(
        "engine", "--engine", help="local, or ray: INPUT may be a folder, glob or URI, -o a folder of Parquet parts."
    ),
]
NumWorkers = Annotated[
    int | None,
    option(
        "num_workers",
        "--num-workers",
        help="--engine ray: actors, each with its own model \\[default: one per GPU with --gpus-per-worker, else 1].",
    ),
]
GpusPerWorker = Annotated[
    float, option("gpus_per_worker", "--gpus-per-worker", help="--engine ray: GPUs per actor (0: CPU).")
]
CpusPerWorker = Annotated[float, option("cpus_per_worker", "--cpus-per-worker", help="--engine ray: CPUs per actor.")]


def model_options(flags: Mapping[str, object]) -> ModelOptions:
    """The `t5cls.options.ModelOptions` of the shared model flags, taken by name from a command's ``flags``.

    Every command that loads a model declares these flags under the same names (``model``,
    ``revision``, ``device``, ``dtype``, ``batch_size``, ``max_length``, ``label_end``, ``chat``)
    and passes its arguments here, so each goes to its field by name. ``--batch-size`` may be
    ``auto``; ``--label-end`` reads the same escapes as ``--template`` (``"\\n"`` is a newline).
    """
    label_end = flags["label_end"]
    return ModelOptions(
        name_or_path=flags["model"],
        revision=flags["revision"],
        device=flags["device"],
        dtype=flags["dtype"],
        batch_size=parse_batch_size(flags["batch_size"]),
        max_length=flags["max_length"],
        label_end=None if label_end is None else unescape(label_end, "label_end"),
        chat=flags["chat"],
    )
