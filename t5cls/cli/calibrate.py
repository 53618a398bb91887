"""``t5cls calibrate``: fit a softmax temperature on a labelled dev file and write it as a task config."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from t5cls.cli import options as o
from t5cls.cli.options import model_options, one_line_errors, option, unescape
from t5cls.errors import OptionError

Dev = Annotated[str, typer.Argument(metavar="DEV", help="Labelled dev file (CSV, JSONL or Parquet) to fit on.")]
ConfigOut = Annotated[
    str, option("output", "--output", "-o", shown="-o", help="Config file to write, e.g. fitted.toml.")
]
ConfigIn = Annotated[
    str | None,
    option(
        "config",
        "--config",
        "-c",
        help="TOML file of \\[\\[task]] tables; --task picks the one to fit (instead of --labels).",
    ),
]
TaskName = Annotated[
    str | None,
    option(
        "task",
        "--task",
        help="With --config: the task to fit (needed when it has several). "
        "With --labels: the task's name in the written config \\[default: default].",
    ),
]


@one_line_errors
def calibrate_command(
    dev: Dev,
    gold: o.Gold,
    output: ConfigOut,
    labels: o.Labels = None,
    config: ConfigIn = None,
    model: o.Model = None,
    revision: o.Revision = None,
    template: o.Template = None,
    text_column: o.TextColumn = "text",
    task: TaskName = None,
    device: o.Device = "auto",
    dtype: o.Dtype = "auto",
    batch_size: o.BatchSize = "auto",
    max_length: o.MaxLength = None,
    label_end: o.LabelEnd = None,
    chat: o.Chat = False,
    debug: o.Debug = False,
) -> None:
    """Fit a softmax temperature on a labelled dev file and write it as a task config for `score --config`.

    The task is --labels (with --template, --text-column) or one task of a --config file, scored as `score` would.
    Fit with the model options you will score with (--label-end, --chat, --max-length): T belongs to those scores.
    """
    from rich.console import Console

    from t5cls.eval.calibration import bound_warning, calibrate_dev_file, calibration_table
    from t5cls.tasks.config import load_config

    loaded = None
    if config is not None:
        _check_config_alone(labels, template, text_column)
        loaded = load_config(config)
        fitted = loaded.task(task)
    else:
        fitted = _labels_task(labels, template, text_column, task)
    settings = model_options(model, revision, device, dtype, batch_size, max_length, label_end, chat)
    result = calibrate_dev_file(dev, gold, fitted, settings, output, loaded)
    Console().print(calibration_table(result))
    if warning := bound_warning(result):
        print(f"t5cls: warning: {warning}", file=sys.stderr)
    print(f"t5cls: wrote {output}", file=sys.stderr)


def _check_config_alone(labels: str | None, template: str | None, text_column: str) -> None:
    """A config's task carries its own labels, template and text column, as with ``score --config``."""
    if labels is not None:
        raise OptionError("give either {labels} or {config}, not both")
    if template is not None or text_column != "text":
        raise OptionError("{template} and {text_column} go with {labels}; with {config}, set them in the [[task]]")


def _labels_task(labels: str | None, template: str | None, text_column: str, name: str | None):
    """The task of ``--labels``, named ``name`` (default ``default``) in the written config."""
    from t5cls.tasks.config import quick_task
    from t5cls.tasks.labels import parse_labels
    from t5cls.tasks.prompts import DEFAULT_TEMPLATE

    if labels is None:
        raise OptionError("give the labels with {labels} a,b,... or a task with {config} FILE")
    prompt = DEFAULT_TEMPLATE if template is None else unescape(template, "template")
    return quick_task(parse_labels(labels), prompt, text_column, name=name or "default")
