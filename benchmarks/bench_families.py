"""Each family in t5cls's table: the tree path against the per-label path, in one process.

    python benchmarks/bench_families.py [--rows 32] [--width 256] [--layers 4] [--vocab 32000] [--threads 1]

For every row of `t5cls.models.families.FAMILIES`, a random model of the family's real class
(`tests/helpers/tiny_families.py`, widened to ``--width`` with ``--layers`` layers and a
``--vocab`` vocabulary, so the LM head costs what it does in real models) scores ``--rows`` rows
against 10 multi-token labels twice: by the family's path in the table and by the per-label path
(one forward of the model per label, the path every family outside the table takes). The two are
timed in alternating rounds (best of 3), so a slow spell of a shared machine falls on both, and
must agree within 1e-3. The ratio is what a family gains from being on the tree path.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from t5cls import LabelScorer
from t5cls.models.families import FAMILIES

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from helpers.tiny_families import build_family

LABELS = [
    "entailment", "not entailment", "neutral", "contradiction", "positive", "negative",
    "strongly positive", "strongly negative", "mixed feelings", "not sure",
]  # fmt: skip
TEXT = "premise: a man sleeps on the sofa after a long day. hypothesis: a person rests. Answer:"


def best_time(scorer: LabelScorer, texts: list[str], tree: bool) -> tuple[float, np.ndarray]:
    scorer.backend.tree_decoding = tree
    start = time.perf_counter()
    logprobs = scorer.score(texts, LABELS).logprobs
    return time.perf_counter() - start, logprobs


def measure(variant: str, args) -> tuple[str, float, float]:
    with tempfile.TemporaryDirectory() as folder:
        build_family(Path(folder), variant, width=args.width, layers=args.layers, vocab=args.vocab)
        scorer = LabelScorer.from_pretrained(folder, device="cpu", batch_size=args.rows)
    family = FAMILIES[scorer.model.config.model_type]
    texts = [f"{TEXT} ({row})" for row in range(args.rows)]
    tree_times, per_label_times = [], []
    for _ in range(3):
        if family.tree:
            seconds, fast = best_time(scorer, texts, True)
            tree_times.append(seconds)
        seconds, slow = best_time(scorer, texts, False)
        per_label_times.append(seconds)
        if family.tree:
            np.testing.assert_allclose(fast, slow, atol=1e-3)
    per_label = args.rows / min(per_label_times)
    return family.path, args.rows / min(tree_times or per_label_times), per_label


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=32)
    parser.add_argument("--width", type=int, default=256)
    parser.add_argument("--layers", type=int, default=4)
    parser.add_argument("--vocab", type=int, default=32000)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("families", nargs="*", default=[*FAMILIES])
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(f"{args.rows} rows x {len(LABELS)} labels, width {args.width}, {args.layers} layers, vocabulary {args.vocab}")
    print("| family | path | path rows/s | per-label rows/s | path / per-label |")
    print("|---|---|---:|---:|---:|")
    for variant in args.families:
        path, fast, slow = measure(variant, args)
        ratio = f"**{fast / slow:.2f}x**" if path == "tree" else "(the same path)"
        print(f"| {variant} | {path} | {fast:.1f} | {slow:.1f} | {ratio} |", flush=True)


if __name__ == "__main__":
    main()
