"""Progress on stderr: a rich bar on a terminal, a plain log line every few seconds otherwise.

Cron jobs and CI capture stderr to a file, where a redrawn bar is noise; they get one line per
``log_every`` seconds instead. ``quiet`` shows neither. The final summary line is printed by the
CLI in every case.

How far a run is: the share of rows scored when the row count is known (Parquet, JSONL), else the
share of the file's bytes read (CSV; compressed bytes for ``.gz``), else only the row count
(stdin). The ETA extrapolates this run's own pace over what is left (rows resumed from a
checkpoint do not count as pace). The bar and the log lines show the same `status` text.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable

from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn

from t5cls.options import DEFAULT_LOG_EVERY, ProgressOptions


class RowProgress:
    """Counts scored rows and reports them in the form that suits stderr."""

    def __init__(
        self,
        quiet: bool = False,
        log_every: float = DEFAULT_LOG_EVERY,
        stream=None,
        clock: Callable[[], float] | None = None,
    ):
        self.stream = stream or sys.stderr
        self.quiet = quiet
        self.log_every = log_every
        self.clock = clock or time.monotonic
        self.total: int | None = None
        self.total_bytes: int | None = None
        self.done = self.initial = 0
        self.bytes_done: int | None = None
        self.bytes_initial: int | None = None
        self.started = self.last_log = self.clock()
        self.bar: Progress | None = None
        self.task = None

    @classmethod
    def from_options(cls, options: ProgressOptions) -> RowProgress:
        return cls(quiet=options.quiet, log_every=options.log_every)

    def start(self, total: int | None, already_done: int = 0, total_bytes: int | None = None) -> None:
        """Begin counting: ``total`` rows if known, else ``total_bytes`` of input (`advance` says where reading is)."""
        self.total, self.total_bytes = total, total_bytes if total is None else None
        self.done = self.initial = already_done
        self.started = self.last_log = self.clock()
        if self.quiet or not self.stream.isatty():
            return
        self.bar = Progress(
            BarColumn(), TextColumn("{task.description}"), console=Console(file=self.stream), transient=True
        )
        self.bar.start()
        self.task = self.bar.add_task(self.status(), total=100 if self.fraction is not None else None)

    def advance(self, rows: int, bytes_read: tuple[int, int] | None = None) -> None:
        """``rows`` more rows done; ``bytes_read``: the input's position before and after reading them."""
        self.done += rows
        if bytes_read is not None:
            if self.bytes_initial is None:
                self.bytes_initial = bytes_read[0]
            self.bytes_done = bytes_read[1]
        now = self.clock()
        if self.bar is not None:
            done = None if self.fraction is None else 100 * self.fraction
            self.bar.update(self.task, description=self.status(), completed=done)
        elif not self.quiet and now - self.last_log >= self.log_every:
            self.last_log = now
            print(f"t5cls: {self.status()}", file=self.stream, flush=True)

    @property
    def fraction(self) -> float | None:
        """The share of the input done, from rows or bytes; None when neither total is known."""
        if self.total:
            return min(self.done / self.total, 1.0)
        if self.total_bytes:
            return min((self.bytes_done or 0) / self.total_bytes, 1.0)
        return None

    def _fraction_at_start(self) -> float:
        if self.total:
            return self.initial / self.total
        return (self.bytes_initial or 0) / self.total_bytes

    @property
    def rate(self) -> float:
        """Rows per second scored by this run (rows resumed from a checkpoint do not count)."""
        return (self.done - self.initial) / max(self.clock() - self.started, 1e-9)

    def eta(self) -> float | None:
        """Seconds left at this run's pace so far; None before there is a pace to go by."""
        fraction = self.fraction
        if fraction is None:
            return None
        pace = (fraction - self._fraction_at_start()) / max(self.clock() - self.started, 1e-9)
        return (1.0 - fraction) / pace if pace > 0 else None

    def status(self) -> str:
        """``8000/20000 rows, 40%, 41.7 rows/s, ETA 4m47s``; the parts that are unknown are left out."""
        parts = [f"{self.done}/{self.total} rows" if self.total is not None else f"{self.done} rows"]
        if self.fraction is not None:
            parts.append(f"{100 * self.fraction:.0f}%")
        parts.append(f"{self.rate:.1f} rows/s")
        eta = self.eta()
        if eta is not None:
            parts.append(f"ETA {_duration(eta)}")
        return ", ".join(parts)

    def stop(self) -> None:
        if self.bar is not None:
            self.bar.stop()
            self.bar = None


def _duration(seconds: float) -> str:
    """``45s``, ``4m07s``, ``2h05m``."""
    seconds = round(seconds)
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"
