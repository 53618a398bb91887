"""The bytes of an input: a file or URI (decompressed by its extension) or stdin, and where a reader is in them.

Every decoder error (gzip, bz2, zstd, lz4, Parquet, Arrow) that reading can raise becomes one
`InputError` naming the file and the place (`decoding`), so a damaged or cut-short file is exit
2 with a line a user can act on, never an internal error.

Why the position: CSV files have no row count, so progress and ETA come from the bytes read out
of the file as stored (compressed bytes for ``.gz``), which the reader knows as it goes.
"""

from __future__ import annotations

import shutil
import sys
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import pyarrow as pa

from t5cls.errors import InputError
from t5cls.io.formats import compression
from t5cls.io.paths import existing_file


@dataclass
class ByteStream:
    """Decompressed bytes to read, the size of the data as stored, and how far into it reading is."""

    stream: object  # a binary file object
    size: int | None = None  # bytes as stored (compressed), when known
    position: Callable[[], int | None] = lambda: None
    resources: list = field(default_factory=list)  # closed by `close`, innermost last

    def close(self) -> None:
        for resource in self.resources:
            resource.close()


def open_bytes(path: str) -> ByteStream:
    """The decompressed bytes of a file or URI; the position counts the bytes read from storage."""
    filesystem, inner = existing_file(path)
    codec = compression(path)
    with decoding(path, None):
        raw = filesystem.open_input_file(inner)
        size = raw.size()
        stream = pa.CompressedInputStream(raw, codec) if codec else raw
    resources = [stream, raw] if codec else [raw]
    return ByteStream(stream, size, lambda: raw.tell() if not raw.closed else size, resources)


def stdin_bytes() -> ByteStream:
    """Stdin as it comes (stdin is not closed: it is the process's)."""
    return ByteStream(sys.stdin.buffer)


def peek_stdin() -> bytes:
    """The first bytes of stdin, left in place for the reader (waits for them; empty at end of input).

    A stream that cannot peek (a test runner's stand-in for stdin) gives nothing, read as CSV.
    """
    peek = getattr(sys.stdin.buffer, "peek", None)
    return peek(64)[:64] if peek is not None else b""


def spooled_stdin() -> ByteStream:
    """Stdin copied to an unnamed temporary file, for readers that seek (Parquet) or read twice (JSONL).

    The file has no name from the start (`tempfile.TemporaryFile`), so nothing is left behind
    whatever happens to the process.
    """
    spool = tempfile.TemporaryFile(prefix="t5cls-stdin-")  # noqa: SIM115 (closed by the input's owner)
    shutil.copyfileobj(sys.stdin.buffer, spool, 1 << 20)
    size = spool.tell()
    spool.seek(0)
    return ByteStream(spool, size, spool.tell, [spool])


@contextmanager
def decoding(path: str, where: str | None) -> Iterator[None]:
    """Turn a decoder error inside the block into one line naming ``path`` and ``where`` (a line, rows)."""
    try:
        yield
    except (OSError, pa.ArrowException, EOFError) as err:
        raise InputError(f"{path}: {where + ': ' if where else ''}{describe_decoder_error(path, err)}") from None


def describe_decoder_error(path: str, err: BaseException) -> str:
    """What a decoder's error means for the file, and what to do about it."""
    detail = getattr(err, "strerror", None) or str(err) or type(err).__name__
    if compression(path):
        return (
            f"the compressed data is damaged or cut short ({detail}); "
            "check the file (e.g. gzip -t, bzip2 -t, zstd -t) or write it again"
        )
    return f"cannot read the file ({detail})"


NOT_UTF8 = "bytes that are not UTF-8; convert the file, e.g. iconv -f latin1 -t utf-8"


def has_bad_text(value: str) -> bool:
    """True for text that is not Unicode: undecodable bytes (read as lone surrogates) or ``\\ud800``-style escapes."""
    if value.isascii():
        return False
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False
