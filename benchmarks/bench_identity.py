"""What a local model's identity costs: the SHA-256 of a 1 GB folder, cold and cached, in one run.

    python benchmarks/bench_identity.py [--gib 1] [--repeats 3]

A folder like a saved model (``config.json``, a tokenizer file, ``--gib`` GiB of weights in
``model.safetensors``) is written to a temporary folder, then `t5cls.models.identity.folder_digest`
is timed (best of ``--repeats``) four ways:

  read, no cache:    the weights' pages dropped from the page cache (``posix_fadvise``), no digest cached:
                     the first run after a copy or a retraining on a disk (reading + hashing)
  hashed, no cache:  the pages in memory, no digest cached: right after the model was written
  cached on disk:    a new process (the in-memory cache cleared) whose digests are on disk: every later run
  cached in memory:  the same process asking again (a run's checkpoint, provenance, up-to-date check)

next to a plain read of the same bytes (pages dropped, 16 MiB blocks), the least a run that loads
the weights spends on them anyway.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from t5cls.models import identity

BLOCK = 16 << 20


def write_folder(folder: Path, gib: float) -> Path:
    folder.mkdir()
    (folder / "config.json").write_text('{"model_type": "t5"}')
    (folder / "tokenizer.json").write_bytes(os.urandom(2 << 20))
    block = os.urandom(BLOCK)
    with open(folder / "model.safetensors", "wb") as stream:
        for _ in range(int(gib * (1 << 30)) // BLOCK):
            stream.write(block)
    return folder


def drop_pages(folder: Path) -> None:
    for path in folder.iterdir():
        with open(path, "rb") as stream:
            os.fsync(stream.fileno())
            os.posix_fadvise(stream.fileno(), 0, 0, os.POSIX_FADV_DONTNEED)


def best(repeats: int, prepare, measure) -> float:
    times = []
    for _ in range(repeats):
        prepare()
        started = time.perf_counter()
        measure()
        times.append(time.perf_counter() - started)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gib", type=float, default=1.0)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        os.environ["XDG_CACHE_HOME"] = str(Path(scratch) / "cache")
        folder = write_folder(Path(scratch) / "model", args.gib)
        time.sleep(identity.SETTLED_NS / 1e9 + 0.1)  # the files settle, so their digests may be cached
        size = sum(path.stat().st_size for path in folder.iterdir())

        def no_cache(drop: bool):
            def prepare():
                identity._memory.clear()
                for entry in identity.cache_folder().glob("*.json"):
                    entry.unlink()
                if drop:
                    drop_pages(folder)

            return prepare

        def read_all():
            for path in folder.iterdir():
                with open(path, "rb", buffering=0) as stream:
                    while stream.read(BLOCK):
                        pass

        digest = lambda: identity.folder_digest(folder)  # noqa: E731
        rows = [
            ("plain read (pages dropped)", best(args.repeats, no_cache(True), read_all)),
            ("read, no cache", best(args.repeats, no_cache(True), digest)),
            ("hashed, no cache", best(args.repeats, no_cache(False), digest)),
            ("cached on disk", best(args.repeats, identity._memory.clear, digest)),
            ("cached in memory", best(args.repeats, lambda: None, digest)),
        ]
    print(f"folder: {size / (1 << 30):.2f} GiB, best of {args.repeats}")
    print(f"{'case':<28} {'seconds':>9} {'GB/s':>7}")
    for name, seconds in rows:
        print(f"{name:<28} {seconds:9.4f} {size / seconds / 1e9:7.2f}")


if __name__ == "__main__":
    main()
