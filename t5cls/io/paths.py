"""Where files live: local paths and URIs, the input files a spec names, and t5cls's sidecar files.

A sidecar is a hidden file or folder beside an output, ``.<name>.t5cls-<kind>``: the resumable
parts of a run, a file being joined, scores waiting for their ranks, an output set aside. Their
names are built here only, so a cleanup that looks for them finds every one.
"""

from __future__ import annotations

import fnmatch
import hashlib
import os
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import pyarrow as pa
import pyarrow.fs as pafs

from t5cls.errors import InputError
from t5cls.io.formats import input_format
from t5cls.io.oserrors import as_filesystem_error

GLOB_CHARACTERS = "*?["
S3_REQUEST_SECONDS = 60.0
S3_CONNECT_SECONDS = 10.0


def sidecar(path: str | Path, kind: str) -> Path:
    """The hidden ``.<name>.t5cls-<kind>`` beside ``path`` (kinds: parts, ranked, tmp, unranked, old, lock, done)."""
    path = Path(path)
    return path.with_name(sidecar_name(path.name, kind))


def sidecar_name(name: str, kind: str) -> str:
    """The name of the sidecar of kind ``kind`` for a file or folder named ``name``."""
    return f".{name}.t5cls-{kind}"


def file_uri_path(output: str) -> str:
    """A ``file://`` URI as the local path it names (so every guarantee of a local path holds); else ``output``."""
    if not output.lower().startswith("file://"):
        return output
    return filesystem_of(output)[1]


def is_uri(path: str | Path) -> bool:
    """Whether ``path`` is a URI (``s3://``, ``gs://``, ``file://``...) rather than a local path."""
    return "://" in str(path)


@dataclass(frozen=True)
class Destination:
    """What kind of place an output is, decided once (`Destination.of`) and read by every step that writes it.

    - ``stdout``: ``None`` or ``-``; ``target`` is ``None``.
    - ``stream``: an existing FIFO, socket or character device, written as ``> path`` would.
    - ``file``: a local file, replaced atomically and resumable (``file://`` URIs are local paths).
    - ``uri``: an object in object storage.
    - ``folder``: a Ray run's folder of Parquet parts, local or in object storage.
    """

    kind: Literal["stdout", "stream", "file", "uri", "folder"]
    target: str | None

    @classmethod
    def of(cls, output: str | Path | None, *, folder: bool = False) -> Destination:
        """The destination ``output`` names; ``folder``: a folder of parts (Ray)."""
        if output is None or str(output) == "-":
            return cls("stdout", None)
        if folder:
            return cls("folder", str(output))
        target = file_uri_path(str(output))
        if is_uri(target):
            return cls("uri", target)
        return cls("stream" if is_stream(target) else "file", target)

    @property
    def lockable(self) -> bool:
        """Whether a run holds a lock file beside it: only local files and folders (streams replace nothing)."""
        return self.kind in ("file", "folder") and not is_uri(self.target)


def output_target(output: str | Path) -> Path:
    """The file an output path names: a symlink's target (written there, in its folder), else the path itself.

    An atomic rename onto a symlink would replace the link and leave its target untouched, so
    writers resolve the link first. A dangling link names the file it would create.
    """
    path = Path(output)
    return Path(os.path.realpath(path)) if path.is_symlink() else path


def is_stream(output: str | Path) -> bool:
    """Whether ``output`` is an existing character device, FIFO or socket: written as a stream, as ``> path`` would.

    Such a path is not a file to replace (renaming a file onto ``/dev/null`` would destroy the
    device), and there is nothing to make atomic or to resume.
    """
    try:
        mode = os.stat(output).st_mode
    except OSError:
        return False
    return stat.S_ISCHR(mode) or stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode)


def check_output_file(output: str | Path, input_path: str | None = None) -> None:
    """An output file must not be the input or a folder; its missing parent folders are created.

    A symlink is checked as its target, which is what will be written.
    """
    path = _in_existing_directory(output_target(output))
    if path.is_dir():
        raise InputError(f"{output}: is a directory; name an output file")
    if (
        input_path not in (None, "-")
        and not is_uri(input_path)
        and path.exists()
        and os.path.samefile(path, input_path)
    ):
        raise InputError(f"{output}: output path is the input file; write to a different path")


def check_output_folder(output: str | Path, marker: str) -> None:
    """An output folder may be new, or an earlier one of t5cls (it holds ``marker``): nothing else is replaced.

    Its missing parent folders are created, as ``save_pretrained`` does.
    """
    path = _in_existing_directory(output)
    if path.exists() and not (path / marker).is_file():
        raise not_an_output_folder(output)


def not_an_output_folder(output: str | Path) -> InputError:
    """The error for an existing folder that t5cls did not write, which it will not replace."""
    return InputError(f"{output}: exists and is not a t5cls output folder; remove it or choose another -o")


def _in_existing_directory(output: str | Path) -> Path:
    """``output`` as a path, its parent folders created first (``-o models/x`` works in a fresh folder).

    They are made when the run is checked, before anything is scored, so a path that cannot be
    made (a file where a folder should be, no permission) fails in a second, not after the work.
    """
    path = Path(output)
    directory = Path(os.path.abspath(output)).parent
    if directory.is_dir():
        return path
    if is_uri(output):  # not a local path: nothing to create here
        raise InputError(f"{output}: output directory {directory} does not exist")
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except (NotADirectoryError, FileExistsError) as err:  # a file in the way: the path is wrong (exit 2)
        raise InputError(f"{output}: cannot create the output folder {directory} ({err.strerror})") from None
    except OSError as err:  # the machine refuses: disk, permissions, read-only (exit 5)
        raise as_filesystem_error(err, directory, "create the output folder") from None
    return path


def filesystem_of(path: str) -> tuple[pafs.FileSystem, str]:
    """The filesystem and inner path of a local path or of a URI (``s3://``, ``gs://``, ``file://``...)."""
    if not is_uri(path):
        return pafs.LocalFileSystem(), os.path.abspath(path)
    try:
        filesystem, inner = pafs.FileSystem.from_uri(path)
    except (pa.ArrowException, ValueError, OSError) as err:
        raise InputError(f"{path}: cannot open this location ({err})") from None
    return _patient(filesystem), inner


def _patient(filesystem: pafs.FileSystem) -> pafs.FileSystem:
    """S3 with requests that may take up to `S3_REQUEST_SECONDS` instead of the AWS SDK's 3 s.

    A batch job would rather wait than fail on a busy S3-compatible server. The filesystem is
    rebuilt from its own pickling arguments (everything else as pyarrow read it from the URI and
    the environment).
    """
    if not isinstance(filesystem, pafs.S3FileSystem):
        return filesystem
    rebuild, (settings,) = filesystem.__reduce__()
    if settings.get("request_timeout", -1) >= 0:
        return filesystem
    return rebuild({**settings, "request_timeout": S3_REQUEST_SECONDS, "connect_timeout": S3_CONNECT_SECONDS})


def existing_file(path: str) -> tuple[pafs.FileSystem, str]:
    """`filesystem_of` for a path that must be an existing regular file."""
    filesystem, inner = filesystem_of(path)
    kind = filesystem.get_file_info(inner).type
    if kind == pafs.FileType.NotFound:
        raise InputError(f"{path}: no such file")
    if kind != pafs.FileType.File:
        raise InputError(f"{path}: not a regular file")
    return filesystem, inner


def list_input_files(spec: str) -> list[str]:
    """The files a spec names, sorted: a file, a folder (searched recursively), or a glob; paths or URIs.

    Files and folders whose names start with ``.`` or ``_`` are skipped inside folders, as Spark,
    Ray and pyarrow datasets do (``_SUCCESS``, ``.crc``, hidden parts).
    """
    scheme = spec[: spec.index("://") + 3] if is_uri(spec) else ""
    glob_at = min((spec.index(char) for char in GLOB_CHARACTERS if char in spec), default=None)
    if glob_at is not None:  # a URI cannot hold glob characters: open the folder before the first one
        folder = spec[:glob_at].rpartition("/")[0]
        filesystem, base = filesystem_of(folder or ".")
        pattern = base.rstrip("/") + "/" + spec[len(folder) :].lstrip("/")
        found = [info.path for info in _files_under(filesystem, base) if fnmatch.fnmatchcase(info.path, pattern)]
    else:
        filesystem, inner = filesystem_of(spec)
        if filesystem.get_file_info(inner).type != pafs.FileType.Directory:
            existing_file(spec)
            return [spec]
        found = [info.path for info in _files_under(filesystem, inner) if _is_data_file(info.path, inner)]
    if not found:
        raise InputError(f"{spec}: no CSV, JSONL or Parquet files found there")
    relative = not scheme and not os.path.isabs(spec)
    return [os.path.relpath(path) if relative else scheme + path for path in sorted(found)]


def _files_under(filesystem: pafs.FileSystem, folder: str) -> list[pafs.FileInfo]:
    selector = pafs.FileSelector(folder, recursive=True, allow_not_found=True)
    return [info for info in filesystem.get_file_info(selector) if info.type == pafs.FileType.File]


def _is_data_file(path: str, folder: str) -> bool:
    """Not hidden (``.``/``_`` anywhere below ``folder``) and with an input extension."""
    parts = os.path.relpath(path, folder).split(os.sep)
    if any(part.startswith((".", "_")) for part in parts):
        return False
    try:
        input_format(path)
    except InputError:
        return False
    return True


def file_identity(path: str, head_bytes: int = 1 << 20) -> list:
    """Size, modification time and SHA-256 of the first MiB: enough to notice a changed input on resume."""
    filesystem, inner = existing_file(path)
    info = filesystem.get_file_info(inner)
    with filesystem.open_input_stream(inner, compression=None) as stream:  # the bytes as stored
        head = hashlib.sha256(stream.read(head_bytes)).hexdigest()
    return [info.size, info.mtime_ns, head]
