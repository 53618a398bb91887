"""``t5cls train``: the flags of a training run, read off `t5cls.options.TrainOptions`, then one call to `train`."""

from __future__ import annotations

import sys

from t5cls.cli import flags as o
from t5cls.cli.flags import model_flags, one_line_errors, options_flags, progress_flags
from t5cls.options import ModelOptions, ProgressOptions, TrainOptions

train_flags = options_flags(TrainOptions, "options", rest=("task_name", "model_options"))


@one_line_errors
@model_flags
@progress_flags
@train_flags
def train_command(
    options: TrainOptions = None,
    model_options: ModelOptions = None,
    progress: ProgressOptions = None,
    debug: o.Debug = False,
) -> None:
    """Fine-tune a model as the classifier it will be scored as, and write it with a t5cls.toml for `score --config`.

    --gold names the gold column; with a config of several tasks, give task=column,task=column.
    --batch-size is the rows per forward pass, training (auto: 16) and dev scoring; --grad-accum make a step.
    """
    from t5cls.signals import StopRequest
    from t5cls.train import train as train_model

    with StopRequest().installed() as stop:
        summary = train_model(options, model_options, progress, stop)
    for line in summary.lines():
        print(line, file=sys.stderr)
