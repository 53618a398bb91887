"""``t5cls calibrate``: fit a softmax temperature on a labelled dev file and write it as a task config."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from t5cls.cli import options as o
from t5cls.cli.options import model_options, one_line_errors, option, unescape

Dev = Annotated[str, typer.Argument(help="Labelled dev file (CSV, JSONL or Parquet) to fit on.")]
ConfigOut = Annotated[
    str, option("output", "--output", "-o", shown="-o", help="Config file to write, e.g. fitted.toml.")
]
TaskName = Annotated[str, option("task", "--task", help="Name of the task in the written config.")]


@one_line_errors
def calibrate_command(
    dev: Dev,
    gold: o.Gold,
    labels: o.Labels,
    output: ConfigOut,
    model: o.Model = None,
    revision: o.Revision = None,
    template: o.Template = None,
    text_column: o.TextColumn = "text",
    task: TaskName = "default",
    device: o.Device = "auto",
    dtype: o.Dtype = "auto",
    batch_size: o.BatchSize = "auto",
    max_length: o.MaxLength = None,
    label_end: o.LabelEnd = None,
    chat: o.Chat = False,
    debug: o.Debug = False,
) -> None:
    """Fit a softmax temperature on a labelled dev file and write it as a task config for `score --config`.

    Fit with the model options you will score with (--label-end, --chat, --max-length): T belongs to those scores.
    """
    from rich.console import Console

    from t5cls.eval.calibration import calibrate_dev_file, calibration_table
    from t5cls.tasks.config import quick_task
    from t5cls.tasks.labels import parse_labels
    from t5cls.tasks.prompts import DEFAULT_TEMPLATE

    prompt = DEFAULT_TEMPLATE if template is None else unescape(template, "template")
    fitted = quick_task(parse_labels(labels), prompt, text_column, name=task)
    settings = model_options(model, revision, device, dtype, batch_size, max_length, label_end, chat)
    result = calibrate_dev_file(dev, gold, fitted, settings, output)
    Console().print(calibration_table(result))
    print(f"t5cls: wrote {output}", file=sys.stderr)
