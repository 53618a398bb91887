"""Graceful stop on SIGINT/SIGTERM: finish the chunk in hand, keep the checkpoint, then exit.

The first signal only sets a flag that the job checks after each written chunk; a second
SIGINT/SIGTERM stops at once (the checkpoint is consistent at every moment anyway).
"""

from __future__ import annotations

import signal
from collections.abc import Iterator
from contextlib import contextmanager

from t5cls.errors import EXIT_CODES


class StopRequest:
    """Remembers the first stop signal received while `installed`."""

    def __init__(self):
        self.signum: int | None = None

    @property
    def requested(self) -> bool:
        return self.signum is not None

    def _handle(self, signum, frame) -> None:
        if self.signum is not None:
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
