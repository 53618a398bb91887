"""Peak memory of ``t5cls score`` must not grow with the input: 20k rows vs 200k rows.

    python benchmarks/bench_memory.py [--rows 20000 200000] [--format parquet]

Generates CSVs of each size, scores each through the real CLI in a subprocess with a tiny
random T5 (the pipeline is what is measured, not the model), and prints each run's peak RSS
from ``wait4``'s resource usage, plus the ratio of the largest to the smallest.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from helpers.tiny_models import build_t5


def write_csv(path: Path, rows: int) -> None:
    with open(path, "w", encoding="utf-8") as stream:
        stream.write("id,text,extra\n")
        for i in range(rows):
            stream.write(f'{i:07d},"review {i}: the food was {("good", "bad", "fine")[i % 3]}, really",x{i % 97}\n')


def peak_rss_mib(args: list[str]) -> tuple[float, float]:
    """Run a command; return (peak RSS in MiB, seconds)."""
    started = time.monotonic()
    process = subprocess.Popen(args, stdout=subprocess.DEVNULL, env={**os.environ, "HF_HUB_OFFLINE": "1"})
    _, status, usage = os.wait4(process.pid, 0)
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"{' '.join(args)} failed")
    return usage.ru_maxrss / 1024, time.monotonic() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[20_000, 200_000])
    parser.add_argument("--format", default="parquet", choices=["csv", "jsonl", "parquet"])
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        model = build_t5(Path(folder) / "model")
        peaks = {}
        for rows in args.rows:
            source, out = Path(folder) / f"in-{rows}.csv", Path(folder) / f"out-{rows}.{args.format}"
            write_csv(source, rows)
            command = [
                sys.executable,
                "-m",
                "t5cls.cli",
                "score",
                str(source),
                "-l",
                "positive,negative,not sure",
                "-m",
                str(model),
                "-o",
                str(out),
                "-q",
                "--batch-size",
                "64",
            ]
            peaks[rows], seconds = peak_rss_mib(command)
            print(f"{rows:>9,} rows: peak RSS {peaks[rows]:7.1f} MiB  ({seconds:.0f} s, {rows / seconds:.0f} rows/s)")
        smallest, largest = min(args.rows), max(args.rows)
        print(f"peak RSS {largest:,} rows / {smallest:,} rows = {peaks[largest] / peaks[smallest]:.3f}")


if __name__ == "__main__":
    main()
