"""``t5cls calibrate``: the flags of a temperature fit, mapped onto `t5cls.options.CalibrateOptions`, then one call."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from t5cls.cli import flags as o
from t5cls.cli.flags import defaults, model_flags, one_line_errors, option, options_flags, output_option
from t5cls.options import CalibrateOptions, ModelOptions, TaskSource

CALIBRATE = defaults(CalibrateOptions)

Dev = Annotated[str, typer.Argument(metavar="DEV", help="Labelled dev file (CSV, JSONL or Parquet) to fit on.")]
ConfigOut = Annotated[str, output_option("Config file to write, e.g. fitted.toml.")]
CONFIG_IN = "TOML file of \\[\\[task]] tables; --task picks the one to fit (instead of --labels)."
task_flags = options_flags(TaskSource, "task_source", helps={"config": CONFIG_IN})
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
@task_flags
def calibrate_command(
    dev: Dev,
    gold: o.Gold,
    output: ConfigOut,
    task_source: TaskSource = None,
    model_options: ModelOptions = None,
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
        **task_source.keywords(),
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
