"""``t5cls calibrate``: the flags of a temperature fit, read off `t5cls.options.CalibrateOptions`, then one call."""

from __future__ import annotations

import sys

from t5cls.cli import flags as o
from t5cls.cli.flags import model_flags, one_line_errors, options_flags
from t5cls.options import CalibrateOptions, ModelOptions

CONFIG_IN = "TOML file of \\[\\[task]] tables; --task picks the one to fit (instead of --labels)."
calibrate_flags = options_flags(
    CalibrateOptions, "options", helps={"config": CONFIG_IN}, rest=("task", "model_options")
)


@one_line_errors
@model_flags
@calibrate_flags
def calibrate_command(
    options: CalibrateOptions = None, model_options: ModelOptions = None, debug: o.Debug = False
) -> None:
    """Fit a softmax temperature on a labelled dev file and write it as a task config for `score --config`.

    The task is --labels (with --template, --text-column) or one task of a --config file, scored as `score` would.
    Fit with the model options you will score with (--label-end, --chat, --max-length): T belongs to those scores.
    --coverage 0.9 also fits prediction sets on the calibrated dev probabilities (split conformal prediction).
    """
    from rich.console import Console

    from t5cls.eval.calibration import bound_warning, calibration_table, sets_line
    from t5cls.run.calibrate import calibrate_file

    result = calibrate_file(options, model_options)
    Console().print(calibration_table(result))
    if result.sets is not None:
        print(f"t5cls: {sets_line(result)}", file=sys.stderr)
    if warning := bound_warning(result):
        print(f"t5cls: warning: {warning}", file=sys.stderr)
    print(f"t5cls: wrote {options.output}", file=sys.stderr)
