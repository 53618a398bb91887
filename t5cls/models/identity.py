"""A model's identity: what a run's output depends on about its model, built by one function.

`model_identity` is the only place an identity is made. Every route that records or compares one
calls it: a local run's checkpoint and provenance (through `LabelScorer.identity`), the up-to-date
record of a finished run and Ray's driver (through `describe_pretrained`, which reads the config
and tokenizer but no weights), and Ray's workers (their scorers). A field added here reaches all
of them.

A hub model is known by its commit hash. A local folder is known by its content: the SHA-256 of
every file `from_pretrained` may read (`model_files`), so a model retrained in place (same names,
same sizes, even the modification time put back) is another model. Hashing a large folder costs a
read of it (benchmarks/README.md), so each file's digest is cached, in this process and on disk,
under a key that a rewrite cannot keep (`FileKey`).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from t5cls.errors import ModelLoadError
from t5cls.hub import hub_files
from t5cls.io.oserrors import as_filesystem_error
from t5cls.models._hf_compat import CHAT_TEMPLATE_DIR, commit_hash
from t5cls.models.loading import (
    _first_line,
    default_label_end,
    model_max_length,
    precision_name,
    quiet_model_loading,
    resolve_device,
)
from t5cls.options import ModelOptions

DIGEST = "sha256"
SETTLED_NS = 2_000_000_000  # a file changed less than this long ago may change again within its timestamps' tick


@dataclass(frozen=True)
class ModelIdentity:
    """What a run's output depends on about its model: part of the resume fingerprint and the provenance."""

    name: str
    revision: str  # the Hub commit, or "local"
    dtype: str
    max_length: int
    label_end: str
    chat: bool
    files: str | None = None  # a local folder's content: "sha256:" + the digest of `model_files`; None for the Hub


@dataclass(frozen=True)
class ModelFiles:
    """What an identity reads of a model: its name, config and tokenizer, and the local folder holding its files.

    ``folder`` is None for a hub model (its commit hash names its files) and for a model held in
    memory, whose weights need not be those of any folder. ``loaded_precision`` is the precision
    (`model_precision`) of weights already loaded (a model handed in may be in any); None before they load.
    """

    name: str
    config: Any
    tokenizer: Any
    folder: str | None
    loaded_precision: str | None = None


def model_identity(options: ModelOptions, files: ModelFiles, device: str | torch.device) -> ModelIdentity:
    """The identity of the model in ``files``, run with ``options`` on ``device``: the one builder of an identity."""
    precision = files.loaded_precision or precision_name(options.dtype, device)
    return ModelIdentity(
        name=files.name,
        revision=str(commit_hash(files.config) or "local"),
        dtype=precision,
        max_length=options.max_length or model_max_length(files.config, files.tokenizer),
        label_end=options.label_end or default_label_end(files.config),
        chat=options.chat,
        files=folder_digest(files.folder) if files.folder is not None else None,
    )


def describe_pretrained(options: ModelOptions) -> ModelIdentity:
    """The identity of ``options``, from the config, the tokenizer and the files' digest alone (no weights loaded).

    The up-to-date check and Ray's driver record this before any weights load; a loaded
    `LabelScorer` gives the same identity, from the same builder. ``options.device`` ``auto`` is
    resolved on this machine; Ray's driver passes the device its workers will use.
    """
    from transformers import AutoConfig, AutoTokenizer

    quiet_model_loading()
    files = hub_files(options.name, options.revision)  # without the Hub: the cached copy, or one line at once
    try:
        config = AutoConfig.from_pretrained(options.name, revision=options.revision, **files)
        tokenizer = AutoTokenizer.from_pretrained(options.name, revision=options.revision, **files)
    except (OSError, ValueError, KeyError) as err:
        raise ModelLoadError(f"could not load model {options.name!r}: {_first_line(err)}") from err
    device = str(resolve_device("auto")) if options.device == "auto" else options.device
    return model_identity(options, ModelFiles(options.name, config, tokenizer, local_folder(options.name)), device)


def local_folder(name: str) -> str | None:
    """``name`` when it is a local folder (known by its content), None for a hub name (known by its commit)."""
    return name if os.path.isdir(name) else None


def model_files(folder: str | Path) -> list[Path]:
    """The files of ``folder`` that loading may read, sorted: every file at its top level, and the chat templates.

    Weights, configs, the tokenizer's files and the generation config all sit at the top level
    (``from_pretrained`` reads no other subfolder but the tokenizer's extra chat templates).
    Hidden files (``.gitattributes``, a download's ``.cache/``) are left out; symlinks (a hub
    cache's snapshot) are followed.
    """
    folder = Path(folder)
    found = [path for path in folder.iterdir() if not path.name.startswith(".") and path.is_file()]
    templates = folder / CHAT_TEMPLATE_DIR
    if templates.is_dir():
        found += [path for path in templates.iterdir() if not path.name.startswith(".") and path.is_file()]
    return sorted(found)


def folder_digest(folder: str | Path) -> str:
    """``sha256:`` + the digest of ``folder``'s `model_files`: each one's name (relative) and content digest."""
    whole = hashlib.new(DIGEST)
    for path in model_files(folder):
        try:
            digest = file_digest(path)
        except OSError as err:
            raise as_filesystem_error(err, path, "read") from err
        whole.update(json.dumps([path.relative_to(folder).as_posix(), digest]).encode() + b"\n")
    return f"{DIGEST}:{whole.hexdigest()}"


@dataclass(frozen=True)
class FileKey:
    """What a cached digest is kept under: device, inode, size, modification and change times (ns).

    Writing a file changes its ctime, and so does putting its mtime back with ``os.utime``; the
    kernel sets ctime to the present and offers no call that sets it (short of changing the
    system clock), so a file rewritten in place, whatever its size and mtime, has another key. A
    copy or a file replaced by rename has another inode. A key is trusted only once the file has
    been still for `SETTLED_NS`: a rewrite within the same timestamp tick as the write before it
    could otherwise keep every field (the "racy" case, as git's index has it).
    """

    device: int
    inode: int
    size: int
    mtime_ns: int
    ctime_ns: int

    @classmethod
    def of(cls, path: Path) -> FileKey:
        status = path.stat()
        return cls(status.st_dev, status.st_ino, status.st_size, status.st_mtime_ns, status.st_ctime_ns)

    def settled(self, now_ns: int) -> bool:
        return max(self.mtime_ns, self.ctime_ns) < now_ns - SETTLED_NS

    def as_list(self) -> list[int]:
        return [self.device, self.inode, self.size, self.mtime_ns, self.ctime_ns]


_memory: dict[FileKey, str] = {}


def file_digest(path: Path) -> str:
    """The hex SHA-256 of ``path``'s bytes, from the cache where its key is settled and known."""
    now = time.time_ns()
    key = FileKey.of(path)
    if key in _memory:
        return _memory[key]
    cached = _read_cached(key)
    if cached is not None:
        _memory[key] = cached
        return cached
    with open(path, "rb") as stream:
        digest = hashlib.file_digest(stream, DIGEST).hexdigest()
    if key.settled(now) and FileKey.of(path) == key:  # unchanged while it was read, and still for a while before
        _memory[key] = digest
        _write_cached(key, digest)
    return digest


def cache_folder() -> Path:
    """Where digests are kept between runs: ``$XDG_CACHE_HOME/t5cls/digests`` (``~/.cache`` by default)."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "t5cls" / "digests"


def _cache_entry(key: FileKey) -> Path:
    return cache_folder() / f"{key.device}-{key.inode}.json"


def _read_cached(key: FileKey) -> str | None:
    try:
        entry = json.loads(_cache_entry(key).read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(entry, dict) or entry.get("key") != key.as_list() or entry.get("algorithm") != DIGEST:
        return None
    return entry.get("digest") if isinstance(entry.get("digest"), str) else None


def _write_cached(key: FileKey, digest: str) -> None:
    """Keep ``digest`` for the next run, written whole; a cache that cannot be written only costs time."""
    entry = _cache_entry(key)
    try:
        entry.parent.mkdir(parents=True, exist_ok=True)
        handle, temp = tempfile.mkstemp(dir=entry.parent, prefix=".", suffix=".tmp")
    except OSError:
        return
    try:
        with os.fdopen(handle, "w") as stream:
            json.dump({"key": key.as_list(), "algorithm": DIGEST, "digest": digest}, stream)
        os.replace(temp, entry)
    except OSError:
        with contextlib.suppress(OSError):
            os.unlink(temp)
