"""``--engine ray`` against the local engine on the same files, through the real CLI, in one run.

    python benchmarks/bench_ray.py [--files 4] [--rows 400] [--workers 2]

Model: the t5-small architecture with random weights and the real T5 tokenizer (as in
``bench_scoring.py``), saved to a temporary folder. Input: ``--files`` CSV files of ``--rows``
review-like rows each. It times

  (a) local: ``t5cls score FILE`` for each file in turn (what a user without Ray runs),
  (b) ray:   ``t5cls score FOLDER --engine ray --num-workers W`` on local Ray, start-up included, and
  (c) ray, object storage: (b) with the files in a bucket and ``-o s3://...``, against a local S3
      endpoint (``moto_server`` on 127.0.0.1, as in the tests; skipped without ``moto[server]``);

checks that (b) and (c) wrote the rows and predictions of (a), probabilities up to float rounding
(one thread per actor against two), and prints rows/s and the
ratios. All get all the machine's cores: (a) as torch threads, (b) and (c) as one core per worker
(the S3 server shares them).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from transformers import AutoTokenizer

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_scoring import SHARED, load, make_texts

LABELS = "positive,negative,neutral"


def cli(*args: str, env: dict[str, str] | None = None) -> float:
    """Run ``t5cls`` and return its wall time in seconds."""
    started = time.monotonic()
    subprocess.run(
        [sys.executable, "-m", "t5cls.cli", *args, "-q"],
        check=True,
        env={**os.environ, "HF_HUB_OFFLINE": "1", **(env or {})},
    )
    return time.monotonic() - started


def check_parts(manifest: dict, read_part, files: list[Path], root: Path, what: str) -> None:
    """Each input's parts, read back with ``read_part(name)``, equal its local run.

    Up to float rounding: the local runs use every core's thread, each Ray actor one, and a matrix
    product summed in another order differs in its last bits. (The tests check bit equality at
    equal thread counts.) Every row, text and prediction must be the same.
    """
    for entry, path in zip(manifest["inputs"], files):
        parts = pd.concat([read_part(part) for part in entry["parts"]], ignore_index=True)
        local = pq.read_table(root / f"{path.stem}.parquet").to_pandas()
        try:
            pd.testing.assert_frame_equal(parts, local, check_exact=False, rtol=1e-5, atol=1e-7)
            assert parts["pred"].equals(local["pred"])
        except AssertionError as err:
            raise AssertionError(f"{what}: {path}: outputs differ ({err})") from None


def object_storage_run(root: Path, files: list[Path], workers: int) -> float | None:
    """(c): the same Ray run with input and output in a bucket of a local S3 endpoint; None without moto."""
    import pytest  # helpers.s3 skips, a pytest outcome, where moto cannot start

    try:
        from helpers import s3  # the tests' S3 endpoint (bench_scoring put tests/ on the path)
    except ImportError:
        return None
    with contextlib.ExitStack() as stack:
        try:
            server = stack.enter_context(s3.start())
        except (Exception, pytest.skip.Exception) as err:
            print(f"object storage row skipped: {err}")
            return None
        server.filesystem().create_dir("bench")
        server.upload(root / "data", "s3://bench/data")
        seconds = cli(*ray_args(root, workers, "s3://bench/data", "s3://bench/scored"), env=server.environment())
        written = server.objects("bench/scored")
        manifest = json.loads(written["_t5cls.json"])
        check_parts(manifest, lambda part: pq.read_table(pa.BufferReader(written[part])).to_pandas(), files, root, "s3")
        return seconds


def ray_args(root: Path, workers: int, source: str, output: str) -> list[str]:
    model = str(root / "model")
    return ["score", source, "-l", LABELS, "-m", model, "--engine", "ray", "--num-workers", str(workers), "-o", output]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=4)
    parser.add_argument("--rows", type=int, default=400)
    parser.add_argument("--workers", type=int, default=os.cpu_count())
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        model, tokenizer = load(None, "t5-small", "cpu", None)
        model.save_pretrained(root / "model")
        AutoTokenizer.from_pretrained(SHARED).save_pretrained(root / "model")
        (root / "data").mkdir()
        texts = make_texts(args.files * args.rows, tokenizer)
        for index in range(args.files):
            rows = texts[index * args.rows : (index + 1) * args.rows]
            pd.DataFrame({"id": range(len(rows)), "text": rows}).to_csv(root / "data" / f"f{index}.csv", index=False)
        files = sorted((root / "data").iterdir())
        local = sum(
            cli("score", str(path), "-l", LABELS, "-m", str(root / "model"), "-o", str(root / f"{path.stem}.parquet"))
            for path in files
        )
        ray = cli(*ray_args(root, args.workers, str(root / "data"), str(root / "ray")))
        manifest = json.loads((root / "ray" / "_t5cls.json").read_text())
        check_parts(manifest, lambda part: pd.read_parquet(root / "ray" / part), files, root, "ray")
        s3 = object_storage_run(root, files, args.workers)
        total = args.files * args.rows
        print(f"{args.files} files x {args.rows} rows; outputs equal (up to float rounding)")
        print(f"local, file by file: {local:6.1f} s  {total / local:6.1f} rows/s")
        print(f"ray, {args.workers} workers:     {ray:6.1f} s  {total / ray:6.1f} rows/s  ({local / ray:.2f}x local)")
        if s3 is not None:
            print(f"ray, S3 in and out:  {s3:6.1f} s  {total / s3:6.1f} rows/s  ({ray / s3:.2f}x ray on local disk)")


if __name__ == "__main__":
    main()
