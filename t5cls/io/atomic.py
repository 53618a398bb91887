"""Files that appear whole or not at all: write beside the target, flush to disk, rename.

What a path names decides how it is written: a symlink is followed and its target replaced
atomically in the target's folder; a character device, FIFO or socket is written as a stream
(``> path``), since renaming a file onto it would destroy it. Every `OSError` on the way becomes
a one-line `t5cls.errors.FileSystemError` naming the path (`t5cls.io.oserrors`).
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

from t5cls.io.oserrors import filesystem_errors
from t5cls.io.paths import is_stream, output_target, sidecar


def write_atomically(path: str | Path, write: Callable[[BinaryIO], None], fixed_temporary: bool = False) -> None:
    """``write(stream)`` to a temporary file beside ``path``, flush it to disk, rename it onto ``path``.

    Readers, a resumed run and a retried Ray task see the whole file or none of it. The default
    temporary name is unique, which keeps two writers of the same file (a retried attempt and its
    abandoned one) apart; ``fixed_temporary`` uses ``.<name>.t5cls-tmp`` instead, which a kill
    leaves as one file that the next attempt overwrites. If ``write`` fails, the temporary file is
    removed.
    """
    target = output_target(path)
    if is_stream(target):
        with filesystem_errors(target, "write"), open(target, "wb") as stream:
            write(stream)
            stream.flush()
        return
    temporary = (
        sidecar(target, "tmp") if fixed_temporary else target.with_name(f".{target.name}.{uuid.uuid4().hex}.tmp")
    )
    with filesystem_errors(target, "write"):
        try:
            with open(temporary, "wb") as stream:
                write(stream)
                stream.flush()
                os.fsync(stream.fileno())
            os.replace(temporary, target)
        except BaseException:
            temporary.unlink(missing_ok=True)
            raise


def write_text_atomically(path: str | Path, text: str) -> None:
    """`write_atomically` for a small UTF-8 text (a config, a manifest, a checkpoint)."""
    write_atomically(Path(path), lambda stream: stream.write(text.encode("utf-8")))


def replace_folder(source: Path, target: Path) -> None:
    """Move ``source`` onto ``target``; an earlier folder there is set aside first and removed after."""
    previous = sidecar(target, "old")
    with filesystem_errors(target, "write"):
        if target.exists():
            os.replace(target, previous)
        os.replace(source, target)
        if previous.exists():
            shutil.rmtree(previous)
