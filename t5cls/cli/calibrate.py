"""``t5cls calibrate``: the flags of a temperature fit, mapped onto `t5cls.options.CalibrateOptions`, then one call."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from t5cls.cli import flags as o
from t5cls.cli.flags import defaults, model_flags, one_line_errors, option, unescape
from t5cls.options import CalibrateOptions, ModelOptions

CALIBRATE = defaults(CalibrateOptions)

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
Coverage = Annotated[
    float | None,
    option(
        "coverage",
        "--coverage",
        help="Also fit prediction sets that hold the true label for this share of rows, e.g. 0.9 "
        "(score writes <task>_set and <task>_set_size).",
    ),
]
Conformal = Annotated[
    str,
    option(
        "conformal",
        "--conformal",
        help="With --coverage: lac (every class with p ≥ 1 − q) or aps (classes by descending p while the mass "
        "above the next is ≤ q).",
    ),
]


@one_line_errors
@model_flags
def calibrate_command(
    dev: Dev,
    gold: o.Gold,
    output: ConfigOut,
    labels: o.Labels = None,
    config: ConfigIn = None,
    model_options: ModelOptions = None,
    template: o.Template = None,
    text_column: o.TextColumn = CALIBRATE["text_column"],
    task: TaskName = CALIBRATE["task"],
    coverage: Coverage = CALIBRATE["coverage"],
    conformal: Conformal = CALIBRATE["conformal"],
    debug: o.Debug = False,
) -> None:
    """Fit a softmax temperature on a labelled dev file and write it as a task config for `score --config`.

    The task is --labels (with --template, --text-column) or one task of a --config file, scored as `score` would.
    Fit with the model options you will score with (--label-end, --chat, --max-length): T belongs to those scores.
    --coverage 0.9 also fits prediction sets on the calibrated dev probabilities (split conformal prediction).
    """
    from rich.console import Console

    from t5cls.eval.calibration import bound_warning, calibration_table, sets_line
    from t5cls.run.calibrate import calibrate_file

    options = CalibrateOptions(
        dev=dev,
        gold=gold,
        output=output,
        labels=labels,
        config=config,
        template=None if template is None else unescape(template, "template"),
        text_column=text_column,
        task=task,
        coverage=coverage,
        conformal=conformal,
    )
    result = calibrate_file(options, model_options)
    Console().print(calibration_table(result))
    if result.sets is not None:
        print(f"t5cls: {sets_line(result)}", file=sys.stderr)
    if warning := bound_warning(result):
        print(f"t5cls: warning: {warning}", file=sys.stderr)
    print(f"t5cls: wrote {output}", file=sys.stderr)
