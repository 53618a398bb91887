"""Progress on stderr: a rich bar on a terminal, a plain log line every few seconds otherwise.

Cron jobs and CI capture stderr to a file, where a redrawn bar is noise; they get one line per
``log_every`` seconds instead. ``quiet`` shows neither. The final summary line is printed by the
CLI in every case.
"""

from __future__ import annotations

import sys
import time

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskProgressColumn, TextColumn, TimeRemainingColumn

from t5cls.options import ProgressOptions


class RowProgress:
    """Counts scored rows and reports them in the form that suits stderr."""

    def __init__(self, quiet: bool = False, log_every: float = 30.0, stream=None):
        self.stream = stream or sys.stderr
        self.quiet = quiet
        self.log_every = log_every
        self.total: int | None = None
        self.done = self.initial = 0
        self.started = time.monotonic()
        self.last_log = self.started
        self.bar: Progress | None = None
        self.task = None

    @classmethod
    def from_options(cls, options: ProgressOptions) -> RowProgress:
        return cls(quiet=options.quiet, log_every=options.log_every)

    def start(self, total: int | None, already_done: int = 0) -> None:
        self.total = total
        self.done = self.initial = already_done
        if self.quiet or not self.stream.isatty():
            return
        self.bar = Progress(
            TextColumn("scoring"),
            BarColumn(),
            MofNCompleteColumn(),
            TaskProgressColumn(),
            TextColumn("{task.fields[rate]} rows/s"),
            TimeRemainingColumn(),
            console=Console(file=self.stream),
            transient=True,
        )
        self.bar.start()
        self.task = self.bar.add_task("scoring", total=total, completed=already_done, rate="-")

    def advance(self, rows: int) -> None:
        self.done += rows
        now = time.monotonic()
        if self.bar is not None:
            self.bar.update(self.task, completed=self.done, rate=f"{self.rate:.1f}")
        elif not self.quiet and now - self.last_log >= self.log_every:
            self.last_log = now
            of_total = f"/{self.total}" if self.total is not None else ""
            print(f"t5cls: {self.done}{of_total} rows, {self.rate:.1f} rows/s", file=self.stream, flush=True)

    @property
    def rate(self) -> float:
        """Rows per second scored by this run (rows resumed from a checkpoint do not count)."""
        return (self.done - self.initial) / max(time.monotonic() - self.started, 1e-9)

    def stop(self) -> None:
        if self.bar is not None:
            self.bar.stop()
