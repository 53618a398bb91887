"""``score_frame`` on a DataFrame against ``score_file`` on the same rows in Parquet: rows/s and peak memory.

    python benchmarks/bench_frames.py [--rows 20000] [--rounds 3] [--model DIR]

The rows (an id, a review text, a float) are written once to Parquet. Each round runs two fresh
processes, one per way in, in alternating order (so a slow spell of a shared machine falls on
both): ``file`` scores the Parquet file to a Parquet file with `score_file`; ``frame`` reads the
same file into a pandas DataFrame (the caller's frame, outside the timing) and scores it with
`score_frame`. Both load the same model (default: a tiny random T5, so the pipeline is what is
measured, not the model) and score the same 1,000-row warm-up frame first. Printed: each way's best rows/s,
the ratio frame / file (target ≥ 0.95), and each way's peak RSS (``wait4``) with the DataFrame's own
size, so what ``score_frame`` adds beyond the frame shows.
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

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

LABELS = ["positive", "negative", "not sure"]


def write_rows(path: Path, rows: int) -> None:
    import pandas as pd

    moods = ("good", "bad", "fine")
    frame = pd.DataFrame(
        {
            "id": [f"{i:07d}" for i in range(rows)],
            "text": [f"review {i}: the food was {moods[i % 3]}, really" for i in range(rows)],
            "stars": [float(i % 5) for i in range(rows)],
        }
    )
    frame.to_parquet(path, index=False)


def child(way: str, model: str, source: Path, output: Path) -> None:
    """Score ``source`` one way, print {"seconds", "rows", "frame_mib"} as JSON on stdout."""
    import pandas as pd

    from t5cls import LabelScorer, ScoreOptions, score_file, score_frame

    scorer = LabelScorer.from_pretrained(model, device="cpu", batch_size=64)
    warm_up = pd.DataFrame({"text": [f"warm-up review {i}: the food was fine" for i in range(1000)]})
    score_frame(warm_up, LABELS, model=scorer)  # both ways: the first calls pay for lazy set-up
    frame = pd.read_parquet(source) if way == "frame" else None  # the caller's frame, outside the timing
    started = time.perf_counter()
    if way == "frame":
        rows = len(score_frame(frame, LABELS, model=scorer))
    else:
        rows = score_file(ScoreOptions(str(source), LABELS, str(output)), scorer).rows
    seconds = time.perf_counter() - started
    frame_mib = 0.0 if frame is None else frame.memory_usage(deep=True).sum() / 2**20
    print(json.dumps({"seconds": seconds, "rows": rows, "frame_mib": frame_mib}))


def run_child(way: str, model: str, source: Path, output: Path) -> dict:
    """Run one way in a fresh process; its JSON line plus its peak RSS in MiB."""
    command = [
        sys.executable,
        __file__,
        "--child",
        way,
        "--model",
        model,
        "--source",
        str(source),
        "--out",
        str(output),
    ]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, env={**os.environ, "HF_HUB_OFFLINE": "1"})
    stdout = process.stdout.read()
    _, status, usage = os.wait4(process.pid, 0)
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"{way} run failed")
    return {**json.loads(stdout.decode().strip().splitlines()[-1]), "peak_mib": usage.ru_maxrss / 1024}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--model", help="model folder (default: a tiny random T5 built here)")
    parser.add_argument("--child", choices=["file", "frame"], help=argparse.SUPPRESS)
    parser.add_argument("--source", help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.model, Path(args.source), Path(args.out))
        return
    with tempfile.TemporaryDirectory() as folder:
        from helpers.tiny_models import build_t5

        model = args.model or str(build_t5(Path(folder) / "model"))
        source = Path(folder) / "rows.parquet"
        write_rows(source, args.rows)
        results: dict[str, list[dict]] = {"file": [], "frame": []}
        for round_ in range(args.rounds):
            for way in ("file", "frame") if round_ % 2 == 0 else ("frame", "file"):
                result = run_child(way, model, source, Path(folder) / f"out-{way}.parquet")
                results[way].append(result)
                rate = result["rows"] / result["seconds"]
                print(f"round {round_ + 1} {way:>5}: {rate:8.0f} rows/s, peak RSS {result['peak_mib']:7.1f} MiB")
        best = {way: max(r["rows"] / r["seconds"] for r in runs) for way, runs in results.items()}
        peak = {way: min(r["peak_mib"] for r in runs) for way, runs in results.items()}
        frame_mib = results["frame"][0]["frame_mib"]
        print(
            f"{args.rows:,} rows, best of {args.rounds}: "
            f"file {best['file']:.0f} rows/s, frame {best['frame']:.0f} rows/s"
        )
        print(f"rows/s frame / file = {best['frame'] / best['file']:.3f} (target >= 0.95)")
        print(
            f"peak RSS: file {peak['file']:.1f} MiB, frame {peak['frame']:.1f} MiB "
            f"(the DataFrame itself: {frame_mib:.1f} MiB; frame - file = {peak['frame'] - peak['file']:+.1f} MiB)"
        )


if __name__ == "__main__":
    main()
