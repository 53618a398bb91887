"""``--engine ray`` against the local engine on the same files, through the real CLI, in one run.

    python benchmarks/bench_ray.py [--files 4] [--rows 400] [--workers 2]

Model: the t5-small architecture with random weights and the real T5 tokenizer (as in
``bench_scoring.py``), saved to a temporary folder. Input: ``--files`` CSV files of ``--rows``
review-like rows each. It times

  (a) local: ``t5cls score FILE`` for each file in turn (what a user without Ray runs), and
  (b) ray:   ``t5cls score FOLDER --engine ray --num-workers W`` on local Ray, start-up included;

checks that (b) wrote exactly the rows and probabilities of (a), and prints rows/s and the ratio.
Both get all the machine's cores: (a) as torch threads, (b) as one core per worker.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
from transformers import AutoTokenizer

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_scoring import SHARED, load, make_texts

LABELS = "positive,negative,neutral"


def cli(*args: str) -> float:
    """Run ``t5cls`` and return its wall time in seconds."""
    started = time.monotonic()
    subprocess.run(
        [sys.executable, "-m", "t5cls.cli", *args, "-q"], check=True, env={**os.environ, "HF_HUB_OFFLINE": "1"}
    )
    return time.monotonic() - started


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
        ray = cli(
            "score",
            str(root / "data"),
            "-l",
            LABELS,
            "-m",
            str(root / "model"),
            "--engine",
            "ray",
            "--num-workers",
            str(args.workers),
            "-o",
            str(root / "ray"),
        )
        manifest = json.loads((root / "ray" / "_t5cls.json").read_text())
        for entry, path in zip(manifest["inputs"], files):
            parts = pd.concat([pd.read_parquet(root / "ray" / part) for part in entry["parts"]], ignore_index=True)
            assert parts.equals(pq.read_table(root / f"{path.stem}.parquet").to_pandas()), f"{path}: outputs differ"
        total = args.files * args.rows
        print(f"{args.files} files x {args.rows} rows; outputs identical")
        print(f"local, file by file: {local:6.1f} s  {total / local:6.1f} rows/s")
        print(f"ray, {args.workers} workers:     {ray:6.1f} s  {total / ray:6.1f} rows/s  ({local / ray:.2f}x local)")


if __name__ == "__main__":
    main()
