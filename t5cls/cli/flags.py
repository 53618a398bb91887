"""The CLI's options, declared once and shared by every command, and how its errors are shown.

Each option names the Python parameter it sets (`option`), so an `t5cls.errors.OptionError`
raised deep in the library, which names parameters, is shown with the flag the user typed. The
flags of a run's options are not written here: `options_flags` reads them off their declaration
(`t5cls.options.option`: `ModelOptions`, `ScoreOptions`, `CalibrateOptions`, `TrainOptions`...).
`one_line_errors` is the only place that turns exceptions into exit codes.
"""

from __future__ import annotations

import inspect
import re
import sys
import warnings
from collections.abc import Callable
from dataclasses import MISSING, Field, fields
from functools import wraps
from typing import Annotated, get_type_hints

import typer

from t5cls.errors import EXIT_INTERNAL, OptionError, T5clsError, T5clsWarning, literal, one_line
from t5cls.io.oserrors import NOT_THE_FILESYSTEM, as_filesystem_error
from t5cls.options import (
    GOLD,
    Flag,
    ModelOptions,
    ProgressOptions,
    RayOptions,
    ScoreOptions,
    TaskSource,
    declared,
    flag_of,
)

FLAGS: dict[str, str] = {"ray": "--engine ray"}  # Python parameter -> the flag that sets it


def option(parameter: str, *flags: str, help: str, shown: str | None = None, **settings) -> typer.models.OptionInfo:
    """A Typer option for ``parameter``; error messages show ``shown`` for it, else its first flag."""
    FLAGS.setdefault(parameter, shown or flags[0])
    return typer.Option(*flags, help=help, **settings)


def flag(parameter: str, *flags: str, help: str, shown: str | None = None) -> typer.models.OptionInfo:
    """An on/off `option`: its help shows no value (Typer would show ``<bool>``, as if it took one)."""
    return option(parameter, *flags, help=help, shown=shown, metavar="")


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


def parse_auto(value: str, parameter: str) -> int | None:
    """A flag that takes ``auto`` (None: the library picks, e.g. the batch size) or a positive number."""
    if value == "auto":
        return None
    if not value.isdigit() or int(value) < 1:
        raise OptionError(f"{{{parameter}}} must be a positive number or 'auto', got {literal(repr(value))}")
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

# The flags of eval and inspect, which take no options object (the run commands' are `options_flags`).
Gold = Annotated[str, option("gold", "--gold", "-g", help=GOLD)]
TaskName = Annotated[
    str | None, option("task", "--task", help="Use task NAME's columns (NAME_p_<label>, NAME_entropy).")
]


def output_option(help: str) -> typer.models.OptionInfo:
    """``--output``/``-o``, whose errors say ``-o``: each command says what it writes there."""
    return option("output", "--output", "-o", shown="-o", help=help)


# A `ScoreOptions` flag for a command that builds its own (``t5cls serve``); and score's own flags.
Logprobs = Annotated[bool, flag("logprobs", "--logprobs", help=flag_of(ScoreOptions, "logprobs").text)]
DryRun = Annotated[
    bool, flag("dry_run", "--dry-run", help="Print the plan (prompt, label token ids) and do nothing else.")
]
Engine = Annotated[
    str,
    option(
        "engine", "--engine", help="local, or ray: INPUT may be a folder, glob or URI, -o a folder of Parquet parts."
    ),
]


def options_flags(
    options_class: type, parameter: str, helps: dict[str, str] | None = None, rest: tuple[str, str] | None = None
) -> Callable[[Callable], Callable]:
    """A decorator: a flag for every declared field of ``options_class``, and one ``parameter`` holding them all.

    The flags are read off the fields' declarations (`t5cls.options.option`: flags, help, choices,
    ``auto``, escapes; a field without flags is a positional argument, one without a default is
    required) and take the place of the command's ``parameter``, which receives an
    ``options_class`` made of them, so a field added there is a flag of every command so decorated,
    as sqlite-utils' option decorators do (``--help`` lists them where the command declares ``parameter``).
    ``helps`` replaces the help of some fields (by name) where a command means them its own way;
    ``rest`` = (field, command parameter) lists the flags from that field on after that parameter
    instead (score, calibrate and train show the model's flags between a run's files and its settings)::

        @one_line_errors
        @model_flags
        def serve_command(port: Port = 8000, model_options: ModelOptions = None, debug: Debug = False): ...
    """
    fields_ = declared(options_class)
    hints = get_type_hints(options_class)

    def decorate(command: Callable) -> Callable:
        signature = inspect.signature(command, eval_str=True)
        added = [_parameter(each, spec, hints[each.name], (helps or {}).get(each.name)) for each, spec in fields_]
        clash = {each.name for each in added} & set(signature.parameters)
        if clash:
            raise TypeError(f"{command.__name__} declares {', '.join(sorted(clash))}, which {parameter} adds")
        split = [each.name for each, _ in fields_].index(rest[0]) if rest else len(added)
        after = rest[1] if rest else parameter
        if after not in signature.parameters:
            raise TypeError(f"{command.__name__} has no parameter {after} for the flags of {parameter}")
        parameters = []
        for each in signature.parameters.values():
            parameters += added[:split] if each.name == parameter else [each]
            parameters += added[split:] if each.name == after else []

        @wraps(command)
        def run(*args, **kwargs):
            values = {each.name: _read(each, spec, kwargs.pop(spec.keyword or each.name)) for each, spec in fields_}
            return command(*args, **{parameter: options_class(**values)}, **kwargs)

        run.__signature__ = signature.replace(parameters=parameters)
        return run

    return decorate


model_flags = options_flags(ModelOptions, "model_options")  # score, calibrate, train (and any command with a model)
progress_flags = options_flags(ProgressOptions, "progress")  # score, train
ray_flags = options_flags(RayOptions, "ray_options")  # score (used with --engine ray)
task_flags = options_flags(TaskSource, "task_source")  # serve (score, calibrate and train: their options hold them)


def _parameter(each: Field, spec: Flag, kind: type, help: str | None = None) -> inspect.Parameter:
    """The Typer parameter of a declared field: an argument or its flags, and its help; text where ``auto``
    stands for ``None``."""
    kind, default = (str, "auto") if spec.auto else (spec.kind or kind, each.default)
    if not spec.names:
        info = typer.Argument(metavar=each.name.upper(), help=help or spec.text)
    else:
        info = (flag if kind is bool else option)(each.name, *spec.names, help=help or spec.text, shown=spec.shown)
    return inspect.Parameter(
        spec.keyword or each.name,
        inspect.Parameter.POSITIONAL_OR_KEYWORD,
        default=inspect.Parameter.empty if default is MISSING else default,
        annotation=Annotated[kind, info],
    )


def _read(each: Field, spec: Flag, value):
    """A flag's value as the field takes it: ``auto`` as ``None``, TOML escapes read where the field says so."""
    if spec.auto:
        return parse_auto(value, each.name)
    if spec.escapes and value is not None:
        return unescape(value, each.name)
    return value
