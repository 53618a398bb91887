"""Files that appear whole or not at all: write beside the target, flush to disk, rename."""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

from t5cls.io.paths import sidecar


def write_atomically(path: Path, write: Callable[[BinaryIO], None], temporary: Path | None = None) -> None:
    """``write(stream)`` to a temporary file beside ``path``, flush it to disk, rename it onto ``path``.

    Readers, a resumed run and a retried Ray task see the whole file or none of it. The default
    temporary name is unique, which keeps two writers of the same file (a retried attempt and its
    abandoned one) apart. If ``write`` fails, the temporary file is removed.
    """
    temporary = temporary or path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    try:
        with open(temporary, "wb") as stream:
            write(stream)
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


def write_text_atomically(path: str | Path, text: str) -> None:
    """`write_atomically` for a small UTF-8 text (a config, a manifest, a checkpoint)."""
    write_atomically(Path(path), lambda stream: stream.write(text.encode("utf-8")))


def replace_folder(source: Path, target: Path) -> None:
    """Move ``source`` onto ``target``; an earlier folder there is set aside first and removed after."""
    previous = sidecar(target, "old")
    if target.exists():
        os.replace(target, previous)
    os.replace(source, target)
    if previous.exists():
        shutil.rmtree(previous)
