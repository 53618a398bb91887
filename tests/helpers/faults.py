"""Faults injected into a run's file operations: the k-th write fails (and every one after), or the process dies.

`WriteFaults` patches the operations a run writes with, for paths under one folder only: opening
a file to write (``open``, ``os.open``), each write that reaches the OS, ``fsync``, ``os.replace``
and ``os.mkdir``. It counts them; from the ``fail_at``-th on, each raises the `OSError` the kernel
would (``ENOSPC``: a full disk, the file name only where the call has one; ``EROFS``: a read-only
filesystem), until it is removed, which is "the fault is gone". With ``kill_at`` the process
SIGKILLs itself at that operation instead: a kill at an exact moment (the join, the final rename,
the ranking pass). A run with neither counts the operations, so a test can go through every k.
"""

from __future__ import annotations

import builtins
import ctypes
import io
import os
import signal
import subprocess
from pathlib import Path

WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_TRUNC


class WriteFaults:
    def __init__(self, root: Path, fail_at: int | None = None, code: int = 28, kill_at: int | None = None):
        self.root = str(Path(root).resolve())
        self.fail_at = fail_at
        self.code = code
        self.kill_at = kill_at
        self.count = 0
        self.paths: list[str | None] = []  # the path of each operation counted, where the call names one
        self.originals: dict = {}

    def hit(self, path=None) -> None:
        """One write operation (on ``path``, where the call names one); fail or die if its turn has come."""
        self.count += 1
        self.paths.append(None if path is None else os.fspath(path))
        if self.kill_at is not None and self.count >= self.kill_at:
            os.kill(os.getpid(), signal.SIGKILL)
        if self.fail_at is not None and self.count >= self.fail_at:
            if path is None:
                raise OSError(self.code, os.strerror(self.code))
            raise OSError(self.code, os.strerror(self.code), str(path))

    def mine(self, path) -> bool:
        try:
            return os.path.abspath(os.fspath(path)).startswith(self.root)
        except TypeError:  # a file descriptor
            return False

    def install(self) -> WriteFaults:
        faults = self
        real_open, real_os_open = builtins.open, os.open
        real_replace, real_mkdir, real_fsync = os.replace, os.mkdir, os.fsync

        class FaultyFile(io.FileIO):
            def write(self, data):
                faults.hit()
                return super().write(data)

        def faulty_open(
            file, mode="r", buffering=-1, encoding=None, errors=None, newline=None, closefd=True, opener=None
        ):
            if not any(flag in mode for flag in "wax+") or not faults.mine(file):
                return real_open(file, mode, buffering, encoding, errors, newline, closefd, opener)
            faults.hit(file)
            raw = FaultyFile(file, mode.replace("b", "").replace("t", ""))
            buffered = io.BufferedRandom(raw) if "+" in mode else io.BufferedWriter(raw)
            return buffered if "b" in mode else io.TextIOWrapper(buffered, encoding or "utf-8", errors, newline)

        def faulty_os_open(path, flags, mode=0o777, *, dir_fd=None):
            if flags & WRITE_FLAGS and faults.mine(path):
                faults.hit(path)
            return real_os_open(path, flags, mode, dir_fd=dir_fd)

        def faulty_replace(source, target, **kwargs):
            if faults.mine(target):
                faults.hit(source)
            return real_replace(source, target, **kwargs)

        def faulty_mkdir(path, mode=0o777, **kwargs):
            if faults.mine(path):
                faults.hit(path)
            return real_mkdir(path, mode, **kwargs)

        def faulty_fsync(fd):
            faults.hit()
            return real_fsync(fd)

        self.originals = {
            (builtins, "open"): real_open,
            (io, "open"): io.open,
            (os, "open"): real_os_open,
            (os, "replace"): real_replace,
            (os, "mkdir"): real_mkdir,
            (os, "fsync"): real_fsync,
        }
        for (module, name), patched in zip(
            self.originals,
            (faulty_open, faulty_open, faulty_os_open, faulty_replace, faulty_mkdir, faulty_fsync),
            strict=True,
        ):
            setattr(module, name, patched)
        return self

    def remove(self) -> None:
        for (module, name), original in self.originals.items():
            setattr(module, name, original)

    def __enter__(self) -> WriteFaults:
        return self.install()

    def __exit__(self, *exc) -> None:
        self.remove()


CLONE_NEWNS = 0x00020000
NO_NAMESPACE = 77  # the exit code of a forked run that could not have mounts of its own (not root)


def private_tmpfs(disk: Path, size: str) -> bool:
    """In this (forked) process's own mount namespace, a tmpfs of ``size`` (``64k``, ``1m``) mounted at ``disk``;
    False where the process may not unshare its mounts."""
    if ctypes.CDLL(None, use_errno=True).unshare(CLONE_NEWNS) != 0:
        return False
    subprocess.run(["mount", "--make-rprivate", "/"], check=True)  # nothing mounted here is seen outside
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", disk], check=True)
    return True


def grow_tmpfs(disk: Path, size: str) -> None:
    """More room on `private_tmpfs`'s ``disk``: the fault is gone."""
    subprocess.run(["mount", "-o", f"remount,size={size}", disk], check=True)
