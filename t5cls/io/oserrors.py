"""The operating system refusing a read or write, told as one line with the path, the reason and the fix.

A full or read-only disk, a folder that cannot be created, a denied permission or too many
open files is not a bug in t5cls and not bad input: `filesystem_errors` turns the `OSError`
into a `t5cls.errors.FileSystemError` (exit 5) that names the path it was about, and says what
to do. Code that keeps finished work for ``--resume`` (checkpointed parts, training
checkpoints) wraps its writes with ``resumable=True``, so the message says so.
"""

from __future__ import annotations

import errno
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from t5cls.errors import FileSystemError

NOT_THE_FILESYSTEM = (errno.EPIPE,)  # a closed pipe (``| head``) ends a run quietly, elsewhere


@contextmanager
def filesystem_errors(path: str | Path, action: str = "write", resumable: bool = False) -> Iterator[None]:
    """Turn an `OSError` raised inside into a `FileSystemError` about ``path`` (an inner one's path is kept)."""
    try:
        yield
    except FileSystemError as err:
        if resumable and not err.resumable:
            raise err.kept_for_resume() from err
        raise
    except OSError as err:
        if err.errno in NOT_THE_FILESYSTEM:
            raise
        raise as_filesystem_error(err, path, action, resumable) from err


def as_filesystem_error(
    err: OSError, path: str | Path | None, action: str = "write", resumable: bool = False
) -> FileSystemError:
    """``err`` as one line: the path, the reason and the fix.

    ``path`` is what the caller was writing (a part, not the temporary file it went through, which
    is gone); the error's own file name serves where the caller has none.
    """
    named = path if path is not None else err.filename
    reason = err.strerror or str(err) or type(err).__name__
    where = f"{named}: " if named is not None else ""
    error = FileSystemError(f"{where}cannot {action}: {reason}; {_fix(err.errno, named, action)}, then rerun")
    return error.kept_for_resume() if resumable else error


def _fix(code: int | None, path: str | Path | None, action: str) -> str:
    """What the user does about error ``code`` on ``path``."""
    folder = _existing_folder(path)
    if code in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG):
        return f"free space on {mount_point(folder)} (or raise the quota)"
    if code == errno.EROFS:
        return f"{mount_point(folder)} is mounted read-only: write to a writable filesystem"
    if code in (errno.EACCES, errno.EPERM):
        return f"let this user {action} {path if action == 'read' else folder} (or choose another path)"
    if code in (errno.EMFILE, errno.ENFILE):
        return "raise the limit of open files (ulimit -n)"
    if code in (errno.ENOENT, errno.ENOTDIR):
        return f"check that {folder} exists and takes new files, or choose another folder"
    if code == errno.EIO:
        return f"check the disk holding {folder}"
    return f"fix {folder}"


def _existing_folder(path: str | Path | None) -> Path:
    """The nearest existing folder at or above ``path`` (the working directory when there is none)."""
    folder = Path(os.path.abspath(path if path is not None else "."))
    while not folder.is_dir() and folder != folder.parent:
        folder = folder.parent
    return folder


def mount_point(folder: Path) -> Path:
    """The mount point holding ``folder``: what a user frees space on, or remounts."""
    while not os.path.ismount(folder) and folder != folder.parent:
        folder = folder.parent
    return folder
