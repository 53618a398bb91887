"""Time to a usage error and to the first scored row, in real `t5cls` processes, measured in one run.

    python benchmarks/bench_startup.py [--repeats 3] [--model DIR]

Model: the t5-small architecture (``../shared/t5-small-tokenizer/config.json``) with random
weights and the real T5 tokenizer, saved to a temporary folder, so a run loads it as it would
load flan-t5-small from disk (``--model DIR`` times a local folder instead). Input: 200
review-like rows in a CSV. Each case is a fresh ``python -m t5cls.cli`` process; the best of
``--repeats`` wall times is shown (a shared machine's slow spells fall on one try, not all):

  version:       ``t5cls --version``
  usage error:   ``--text-column body`` on a file without that column (exit 2)
  model path:    ``-m ./models/typo``, a folder that does not exist (exit 2)
  first row:     ``t5cls score`` until the first scored CSV row reaches stdout

and the ratio usage error / first row: what a mistake that needs no model costs next to a run
that loads one. Before issue 22 a usage error came after torch and transformers were imported.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_scoring import WORDS, load

ENV = {**os.environ, "HF_HUB_OFFLINE": "1"}


def wall(args: list[str], cwd: Path, code: int) -> float:
    """Seconds of one ``t5cls ARGS`` process that must exit with ``code``."""
    started = time.perf_counter()
    result = subprocess.run([sys.executable, "-m", "t5cls.cli", *args], cwd=cwd, env=ENV, capture_output=True)
    seconds = time.perf_counter() - started
    assert result.returncode == code, result.stderr.decode()
    return seconds


def first_row(args: list[str], cwd: Path) -> float:
    """Seconds until a scoring process writes its first row (the header is the line before it)."""
    started = time.perf_counter()
    process = subprocess.Popen(
        [sys.executable, "-m", "t5cls.cli", *args], cwd=cwd, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    process.stdout.readline()
    assert process.stdout.readline(), process.stderr.read().decode()
    seconds = time.perf_counter() - started
    process.kill()
    process.wait()
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--model", help="a local model folder (default: random t5-small saved to a temp folder)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        folder = Path(folder)
        model_dir = args.model or save_random_t5(folder / "t5-small")
        reviews = folder / "reviews.csv"
        lines = (f"{i},{WORDS[i % len(WORDS)]} film with {i} stars\n" for i in range(200))
        reviews.write_text("id,text\n" + "".join(lines))
        score = ["score", str(reviews), "-l", "positive,negative,neutral", "-m", str(model_dir), "-q"]
        cases = {
            "version": lambda: wall(["--version"], folder, 0),
            "usage error": lambda: wall([*score, "--text-column", "body"], folder, 2),
            "model path": lambda: wall([*score[:-3], "-m", "./models/typo"], folder, 2),
            "first row": lambda: first_row([*score, "--chunk-size", "8", "--batch-size", "8"], folder),
        }
        best = {name: min(case() for _ in range(args.repeats)) for name, case in cases.items()}
    for name, seconds in best.items():
        print(f"{name:12s} {seconds:6.2f} s")
    print(f"usage error / first row: {best['usage error'] / best['first row']:.2f}")


def save_random_t5(folder: Path) -> Path:
    model, tokenizer = load(None, "t5-small", torch.device("cpu"), torch.float32)
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


if __name__ == "__main__":
    main()
