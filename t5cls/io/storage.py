"""Folders on a local disk or in object storage (``s3://``, ``gs://``, ``abfs://``, ``hdfs://``), through pyarrow.

A `Location` is a folder or file that t5cls writes whole objects into. On a local disk (a path
or ``file://``) an object is written beside its name, flushed and renamed (`write_atomically`).
Object stores have no rename, but an object written in one upload becomes visible only when the
upload completes, so there it is written straight under its final name: either way a reader sees
an object whole or not at all. (HDFS shows a file while it is written: there only the manifest
that lists the finished parts is to be trusted, as everywhere.)

Credentials and endpoints are pyarrow's, read from the environment (``AWS_ACCESS_KEY_ID``,
``AWS_SECRET_ACCESS_KEY``, ``AWS_ENDPOINT_URL``, ...). A URI that carries a secret (``user:pw@``,
``?secret_key=``) is refused, so none can reach a manifest, a checkpoint, provenance or a message.
"""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO
from urllib.parse import parse_qsl, urlsplit

import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from t5cls.errors import InputError
from t5cls.io.atomic import write_atomically
from t5cls.io.paths import filesystem_of, is_uri

BUCKET_STORES = ("s3", "gcs", "abfs")  # pyarrow's type_name of a filesystem whose URIs start with a bucket (container)
FOLDERLESS_STORES = ("s3", "gcs")  # where a folder is only an empty marker object
SECRET_QUERY_KEYS = ("access_key", "secret_key", "session_token", "password", "token", "credential", "sas")


def check_no_secret(uri: str) -> None:
    """Refuse a URI with credentials in it: they would be recorded wherever the URI is."""
    if not is_uri(uri):
        return
    parts = urlsplit(uri)
    keys = [key.lower() for key, _ in parse_qsl(parts.query, keep_blank_values=True)]
    if "@" in parts.netloc or any(secret in key for key in keys for secret in SECRET_QUERY_KEYS):
        host = parts.netloc.rpartition("@")[2]
        raise InputError(
            f"{parts.scheme}://{host}{parts.path}: credentials in a URI would be recorded in the output; "
            "set them in the environment instead (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, ...)"
        )


@contextlib.contextmanager
def storage_errors(uri: str) -> Iterator[None]:
    """An error of the filesystem or object store (no bucket, bad credentials) as one line naming ``uri``."""
    try:
        yield
    except (OSError, pa.ArrowException) as err:
        if not is_uri(uri):  # a local path's OSError is left to the caller, as before
            raise
        raise InputError(
            f"{uri}: {str(err).splitlines()[0] if str(err) else type(err).__name__}; check the location "
            "and the credentials in the environment (AWS_*, GOOGLE_APPLICATION_CREDENTIALS, AZURE_*)"
        ) from None


def check_output_object(uri: str) -> None:
    """An output file named by a URI: its bucket must exist, and the name must not be a folder (one line each)."""
    target = Location.of(uri)  # no secret in it
    target.sibling(target.name)  # not a bucket itself, before any request to the store
    target.check_bucket()
    if target.kind() == pafs.FileType.Directory:
        raise InputError(f"{target.uri}: is a folder; name an output file")


@dataclass(frozen=True)
class Location:
    """A folder (or file) on a pyarrow filesystem, named by ``uri`` as the user wrote it, less any ``?query``.

    The query (``?region=...&endpoint_override=...``) is kept apart in ``query``, for `address`.
    """

    uri: str
    filesystem: pafs.FileSystem
    path: str
    query: str = ""

    @classmethod
    def of(cls, uri: str) -> Location:
        check_no_secret(uri)
        base, _, query = uri.partition("?") if is_uri(uri) else (uri, "", "")
        base = base.rstrip("/") or base  # "scored/" is the folder "scored"
        with storage_errors(base):
            filesystem, path = filesystem_of(uri)
        return cls(base, filesystem, path.rstrip("/"), query)

    @property
    def address(self) -> str:
        """What `of` opens again elsewhere (in a Ray actor): the local path, or the URI with its query."""
        if self.local:
            return self.path
        return f"{self.uri}?{self.query}" if self.query else self.uri

    @property
    def local(self) -> bool:
        """A local disk, where files are renamed into place and folders can be moved whole."""
        return isinstance(self.filesystem, pafs.LocalFileSystem)

    def child(self, name: str) -> Location:
        return Location(f"{self.uri}/{name}", self.filesystem, f"{self.path}/{name}", self.query)

    def sibling(self, name: str) -> Location:
        """``name`` beside this location (in the same folder or bucket prefix)."""
        if is_uri(self.uri) and "/" not in self.path:
            raise InputError(f"{self.uri}: name a folder inside the bucket, not the bucket itself")
        uri_parent, uri_sep, _ = self.uri.rpartition("/")
        path_parent, path_sep, _ = self.path.rpartition("/")
        return Location(uri_parent + uri_sep + name, self.filesystem, path_parent + path_sep + name, self.query)

    def check_bucket(self) -> None:
        """In a store whose URIs start with a bucket (S3, GCS, Azure): that bucket must exist, one line if not."""
        if self.filesystem.type_name not in BUCKET_STORES:
            return
        bucket = self.path.split("/")[0]
        if not Location(self.uri, self.filesystem, bucket, self.query).exists():
            raise InputError(f"{self.uri}: bucket {bucket!r} does not exist; create it first or name another -o")

    @property
    def name(self) -> str:
        return self.path.rpartition("/")[2]

    def kind(self) -> pafs.FileType:
        with storage_errors(self.uri):
            return self.filesystem.get_file_info(self.path).type

    def exists(self) -> bool:
        return self.kind() != pafs.FileType.NotFound

    def names(self) -> list[str]:
        """The names of the files directly in this folder (none if it does not exist)."""
        with storage_errors(self.uri):
            infos = self.filesystem.get_file_info(pafs.FileSelector(self.path, allow_not_found=True))
        return sorted(info.base_name for info in infos if info.type == pafs.FileType.File)

    def write(self, write: Callable[[BinaryIO], None], *, streamed: bool = False) -> None:
        """``write(stream)`` to this file, which appears whole or not at all (see the module docstring).

        ``streamed`` is for a file too large to hold in memory (a joined output). On a local disk it
        goes through the fixed temporary ``.<name>.t5cls-tmp``, which a kill leaves as one file that
        the next attempt overwrites. In a store its bytes are uploaded as ``write`` makes them: a
        killed process never completes the upload, so no object appears; but a stream is completed
        when it is closed, even after ``write`` raised, so the object is then deleted at once (best
        effort). ``write`` must leave what it wrote unreadable as a whole file when it raises (a
        Parquet writer discarded before its footer), for the moment that object may be seen.
        """
        if self.local:
            # the path as the user wrote it (relative or not): what a message about it names
            write_atomically(Path(self.uri if not is_uri(self.uri) else self.path), write, fixed_temporary=streamed)
            return
        if streamed:
            with storage_errors(self.uri):
                try:
                    with self.filesystem.open_output_stream(self.path) as stream:
                        write(stream)
                except BaseException:
                    with contextlib.suppress(OSError, pa.ArrowException):
                        self.filesystem.delete_file(self.path)
                    raise
            return
        # Rendered in memory first: a stream that raises mid-way is still closed, which would
        # complete its upload and publish half an object. (Parts and records are a chunk at most.)
        buffer = pa.BufferOutputStream()
        write(buffer)
        with storage_errors(self.uri), self.filesystem.open_output_stream(self.path) as stream:
            stream.write(buffer.getvalue())

    def write_text(self, text: str) -> None:
        self.write(lambda stream: stream.write(text.encode("utf-8")))

    def read_text(self) -> str:
        with storage_errors(self.uri), self.filesystem.open_input_stream(self.path) as stream:
            return stream.read().decode("utf-8")

    def read_parquet(self, columns: list[str] | None = None) -> pa.Table:
        """This Parquet file (only ``columns``, if given), with its schema's metadata."""
        with storage_errors(self.uri), self.filesystem.open_input_file(self.path) as file:
            return pq.read_table(file, columns=columns)

    def make_folder(self) -> None:
        with storage_errors(self.uri):
            self.filesystem.create_dir(self.path, recursive=False)

    def prepare_folder(self) -> None:
        """Make this new folder to write files into, where folders are real.

        On a local disk it is made as ``mkdir`` would (its parent exists: output paths are checked
        first); on HDFS or Azure with its parents. Object stores (S3, GCS) need none: an object's
        name is its whole path, and a folder there would be an empty marker object left behind.
        """
        if self.local:
            with storage_errors(self.uri):
                os.mkdir(self.path)
            return
        if self.filesystem.type_name not in FOLDERLESS_STORES:
            with storage_errors(self.uri):
                self.filesystem.create_dir(self.path, recursive=True)

    def read_bytes_into(self, sink: BinaryIO) -> None:
        """Copy this file's bytes as stored into ``sink``, a block at a time."""
        with storage_errors(self.uri), self.filesystem.open_input_stream(self.path, compression=None) as source:
            shutil.copyfileobj(source, sink)

    def remove(self) -> None:
        """Remove this file, or this folder and all it holds; nothing there is fine."""
        kind = self.kind()
        with storage_errors(self.uri):
            if kind == pafs.FileType.Directory:
                if self.local:
                    shutil.rmtree(self.path)
                else:
                    self.filesystem.delete_dir(self.path)
            elif kind != pafs.FileType.NotFound:
                self.filesystem.delete_file(self.path)
