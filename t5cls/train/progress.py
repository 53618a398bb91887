"""What a training run prints on stderr, and how it stops on a signal: two `TrainerCallback`s.

On a terminal, a rich progress bar over the optimisation steps; elsewhere (cron, CI, a log file)
a plain line every ``log_every`` seconds. Each dev evaluation prints one line in both cases.
``quiet`` prints nothing. The `Trainer`'s own tqdm bar and printed log dicts are not used.
"""

from __future__ import annotations

import sys
import time

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from transformers import TrainerCallback

from t5cls.options import ProgressOptions
from t5cls.signals import StopRequest

METRIC_NAMES = {"macro_f1": "macro-F1", "nll": "NLL", "ece": "ECE", "mse": "MSE", "mae": "MAE"}


class TrainProgress(TrainerCallback):
    """Steps done, the latest training loss and every dev evaluation, in the form that suits stderr."""

    def __init__(self, options: ProgressOptions, stream=None):
        self.options = options
        self.stream = stream or sys.stderr
        self.bar: Progress | None = None
        self.task = None
        self.loss: float | None = None
        self.last_line = time.monotonic()

    def on_train_begin(self, args, state, control, **kwargs):
        if self.options.quiet or not self.stream.isatty():
            return
        self.bar = Progress(
            TextColumn("training"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("steps, epoch {task.fields[epoch]}, loss {task.fields[loss]}"),
            TimeRemainingColumn(),
            console=Console(file=self.stream),
            transient=True,
        )
        self.bar.start()
        self.task = self.bar.add_task(
            "training", total=state.max_steps, completed=state.global_step, epoch="-", loss="-"
        )

    def on_log(self, args, state, control, logs=None, **kwargs):
        if logs and "loss" in logs:
            self.loss = float(logs["loss"])

    def on_step_end(self, args, state, control, **kwargs):
        loss = "-" if self.loss is None else f"{self.loss:.4f}"
        if self.bar is not None:
            self.bar.update(self.task, completed=state.global_step, epoch=f"{state.epoch or 0:.2f}", loss=loss)
        elif not self.options.quiet and time.monotonic() - self.last_line >= self.options.log_every:
            self.last_line = time.monotonic()
            self._print(f"step {state.global_step}/{state.max_steps}, epoch {state.epoch or 0:.2f}, loss {loss}")

    def on_evaluate(self, args, state, control, metrics=None, **kwargs):
        if not self.options.quiet and metrics:
            self._print(f"step {state.global_step}, epoch {state.epoch or 0:.2f}: dev {describe_metrics(metrics)}")

    def on_train_end(self, args, state, control, **kwargs):
        if self.bar is not None:
            self.bar.stop()
            self.bar = None

    def _print(self, line: str) -> None:
        if self.bar is not None:
            self.bar.console.print(f"t5cls: {line}", markup=False, highlight=False)
        else:
            print(f"t5cls: {line}", file=self.stream, flush=True)


def describe_metrics(metrics: dict[str, float]) -> str:
    """``accuracy 0.9500, macro-F1 0.9400, ...`` from ``eval_<metric>`` (or ``eval_<task>_<metric>``) entries.

    The dev loss is left out when it is the one task's NLL.
    """
    names = [key.removeprefix("eval_") for key in metrics if key.startswith("eval_")]
    shown = [name for name in names if not (name == "loss" and "nll" in names)]
    return ", ".join(f"{metric_name(name)} {metrics['eval_' + name]:.4f}" for name in shown)


def metric_name(key: str) -> str:
    """``macro_f1`` -> ``macro-F1``, ``aspects_nll`` -> ``aspects NLL``."""
    for metric, name in METRIC_NAMES.items():
        if key == metric or key.endswith(f"_{metric}"):
            return f"{key.removesuffix(metric).replace('_', ' ')}{name}"
    task, _, metric = key.rpartition("_")
    return f"{task} {metric}" if task else key


class StopOnSignal(TrainerCallback):
    """After SIGINT/SIGTERM: finish the step in hand, save a checkpoint and stop (the run then exits 130/143)."""

    def __init__(self, stop: StopRequest):
        self.stop = stop

    def on_step_end(self, args, state, control, **kwargs):
        if self.stop.requested:
            control.should_save = True
            control.should_training_stop = True
