"""Graceful stop on SIGINT/SIGTERM: finish the chunk in hand, keep the checkpoint, then exit.

The first signal only sets a flag that the job checks after each written chunk; a second
SIGINT/SIGTERM stops at once with one line saying so (the checkpoint is consistent at every moment anyway).
"""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from contextlib import contextmanager

from t5cls.errors import EXIT_CODES

SECOND_SIGNAL = (
    "stopped at once by a second {}; what was finished before it is kept: rerun the same command with --resume"
)


class StopRequest:
    """Remembers the first stop signal received while `installed`."""

    def __init__(self):
        self.signum: int | None = None

    @property
    def requested(self) -> bool:
        return self.signum is not None

    def _handle(self, signum, frame) -> None:
        if self.signum is not None:
            # os.write: a print could land inside another write to stderr, which Python refuses
            os.write(2, f"t5cls: error: {SECOND_SIGNAL.format(signal.Signals(signum).name)}\n".encode())
            raise SystemExit(EXIT_CODES[signum])
        self.signum = signum

    @contextmanager
    def installed(self) -> Iterator[StopRequest]:
        previous = {sig: signal.signal(sig, self._handle) for sig in EXIT_CODES}
        try:
            yield self
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
