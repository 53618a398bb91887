"""A saved model changed in place as a retraining would leave it: same file names, same sizes, mtimes put back.

What a stat cannot see: only the bytes differ. The tests of a model's identity use these to show
that a run notices anyway (`t5cls.models.identity`).
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

from helpers.tiny_models import build_t5


def rewrite_in_place(path: Path, data: bytes) -> None:
    """``data`` written over ``path`` in the same inode, of the same size, with its access and modification times
    put back (``os.utime``)."""
    before = path.stat()
    assert len(data) == before.st_size, "an in-place rewrite keeps the size"
    with open(path, "r+b") as stream:
        stream.write(data)
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))
    after = path.stat()
    assert (after.st_ino, after.st_size, after.st_mtime_ns) == (before.st_ino, before.st_size, before.st_mtime_ns)


def retrain_in_place(folder: Path, scratch: Path, seed: int) -> None:
    """``folder``'s weights replaced by those of the same tiny T5 drawn with ``seed`` (the same size, other values)."""
    other = build_t5(scratch, seed=seed)
    rewrite_in_place(folder / "model.safetensors", (other / "model.safetensors").read_bytes())


def swap_tokens_in_place(folder: Path) -> tuple[str, str]:
    """Two vocabulary pieces of the same length swapped in ``tokenizer.json`` (their ids trade places); the pair.

    The pieces are renamed everywhere in the file, so the tokenizer stays valid (a BPE's merges too).
    """
    path = folder / "tokenizer.json"
    text = path.read_text(encoding="utf-8")
    vocab = json.loads(text)["model"]["vocab"]
    pieces = [entry[0] for entry in vocab] if isinstance(vocab, list) else list(vocab)
    words = [piece for piece in pieces if re.fullmatch("\u2581[a-z]{4}", piece)]
    first, second = words[0], words[1]  # all five characters long
    pair = json.dumps(first, ensure_ascii=False), json.dumps(second, ensure_ascii=False)
    quoted = {pair[0]: pair[1], pair[1]: pair[0]}
    swapped = re.sub("|".join(map(re.escape, quoted)), lambda match: quoted[match.group(0)], text)
    rewrite_in_place(path, swapped.encode("utf-8"))
    return first, second
