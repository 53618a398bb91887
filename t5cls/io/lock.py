"""One run per output at a time: an OS lock on a hidden ``.<name>.t5cls-lock`` beside the output.

Two runs of the same output (cron jobs that overlap, a scheduler's retry) would write parts into
the same folder and each other's temporary files. A run therefore takes ``flock(LOCK_EX)`` on the
lock file before it touches anything of the output, and holds it until the output is complete (the
ranking pass included). The kernel releases the lock when the process dies, however it dies, so a
killed run never leaves a stale lock: the file may stay, but nobody holds it. A second run finds
the lock held and stops at once with `OutputBusyError` (exit 2), naming the holder that the first
run wrote into the file (pid, host, since when).

Object storage has no such lock (`output_lock` does nothing for a URI): there, one run per output
is the user's to keep.

Within one process the lock is re-entrant (the CLI takes it before the model loads, the library
again when it opens the output). On a filesystem without locks (some network mounts), the run
warns and goes on unlocked.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import socket
import time
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from t5cls.errors import OutputBusyError, T5clsWarning
from t5cls.io.oserrors import filesystem_errors
from t5cls.io.paths import Destination, output_target, sidecar

NO_LOCKS = (errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOSYS)
_held: dict[Path, int] = {}  # lock file -> how many holders in this process (its descriptor lives in _fds)
_fds: dict[Path, int] = {}


@contextmanager
def output_lock(output: Destination | str | Path | None) -> Iterator[None]:
    """Hold the lock of ``output`` (a file or a folder) for the ``with`` block; `OutputBusyError` if another has it.

    Stdout (``None``, ``-``) and streams (a FIFO, a device) have nothing to lock: writes to them do
    not replace anything. A URI (object storage) is not locked either: pyarrow offers no lock
    there, so keeping one run per URI is the user's to do.
    """
    destination = output if isinstance(output, Destination) else Destination.of(output)
    if not destination.lockable:
        yield
        return
    output = destination.target
    lock = sidecar(output_target(output), "lock")
    if lock in _held:
        _held[lock] += 1
    else:
        _fds[lock] = _acquire(lock, output)
        _held[lock] = 1
    try:
        yield
    finally:
        _held[lock] -= 1
        if not _held[lock]:
            del _held[lock]
            _release(lock, _fds.pop(lock))


def _acquire(lock: Path, output: str | Path) -> int:
    """Open and lock ``lock``; a file that was removed while we waited for it is opened again."""
    while True:
        with filesystem_errors(lock):
            fd = os.open(lock, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _holder(fd)
            os.close(fd)
            raise OutputBusyError(
                f"{output}: another t5cls run is writing it ({holder}); wait for it to finish or stop it, "
                "then rerun (with --resume to keep its finished work)"
            ) from None
        except OSError as err:
            if err.errno not in NO_LOCKS:
                os.close(fd)
                raise
            warnings.warn(
                f"{lock}: this filesystem has no locks; nothing stops a second run", T5clsWarning, stacklevel=2
            )
        if _same_file(fd, lock):
            _write_holder(fd)
            return fd
        os.close(fd)  # the holder before us removed the file after we opened it: lock the new one


def _release(lock: Path, fd: int) -> None:
    """Remove the lock file while still holding it (so no one can lock the old file after), then unlock."""
    with contextlib.suppress(OSError):  # a read-only folder: the file stays, unlocked, and the next run takes it
        lock.unlink(missing_ok=True)
    os.close(fd)


def _same_file(fd: int, lock: Path) -> bool:
    try:
        return os.path.samestat(os.fstat(fd), os.stat(lock))
    except FileNotFoundError:
        return False


def _write_holder(fd: int) -> None:
    """Who holds the lock, for the message of the run that finds it taken."""
    holder = {"pid": os.getpid(), "host": socket.gethostname(), "since": time.strftime("%Y-%m-%d %H:%M:%S %z")}
    try:
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(holder).encode(), 0)
    except OSError:
        pass  # a full disk: the lock holds without its description


def _holder(fd: int) -> str:
    try:
        holder = json.loads(os.pread(fd, 4096, 0))
        return f"pid {holder['pid']} on {holder['host']}, since {holder['since']}"
    except (OSError, ValueError, KeyError, TypeError):
        return "holder unknown: it has just started"
