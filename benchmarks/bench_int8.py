"""``--dtype int8`` on the CPU against float32 (and bfloat16), speed and agreement, in one process.

    python benchmarks/bench_int8.py [--labels 3 10] [--rows 64] [--batch-size 32] [--threads 2] [--rounds 4]

Model: the t5-small architecture with random weights and the real T5 tokenizer (``--size`` for
another, ``--model DIR`` for a local folder), the review-like rows of `bench_scoring`, the intent
labels of `bench_labels`. Per label count, the float32 model, its int8 copy
(`t5cls.models.quantize.quantize_int8`, the code behind ``--dtype int8``) and a bfloat16 copy
score the same rows through `LabelScorer.score`, in alternating rounds (best of ``--rounds``
each), so a slow spell of a shared machine falls on all of them. Printed per label count and
precision: rows/s, the ratio to float32, max |Δ log p(label)| against float32 and the share of
rows whose argmax is float32's.

Random weights make the errors unrepresentative (their label scores are flatter than a trained
model's); the tests check int8 accuracy on the trained tiny model.
"""

from __future__ import annotations

import argparse
import copy
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_labels import intent_labels
from bench_scoring import SIZES, load, make_texts, wall_time

from t5cls import LabelScorer
from t5cls.models.quantize import quantize_int8


def precisions(model) -> dict:
    """The float32 model and its int8 and bfloat16 copies."""
    return {
        "float32": model,
        "int8": quantize_int8(copy.deepcopy(model)),
        "bfloat16": copy.deepcopy(model).to(torch.bfloat16),
    }


def one_label_count(models: dict, tokenizer, texts: list[str], count: int, args) -> dict:
    """Best seconds, max |Δ log p| and argmax agreement per precision for ``count`` labels."""
    labels = intent_labels(count)
    scorers = {name: LabelScorer(model, tokenizer, batch_size=args.batch_size) for name, model in models.items()}
    scores = {name: scorer.score(texts, labels).logprobs for name, scorer in scorers.items()}  # also the warm-up
    best = dict.fromkeys(scorers, float("inf"))
    for _ in range(args.rounds):
        for name, scorer in scorers.items():
            seconds = wall_time(lambda scorer=scorer: scorer.score(texts, labels), torch.device("cpu"))
            best[name] = min(best[name], seconds)
    reference = scores["float32"]
    return {
        name: {
            "rows_s": len(texts) / best[name],
            "ratio": best["float32"] / best[name],
            "max_delta": float(np.abs(scores[name] - reference).max()),
            "mean_delta": float(np.abs(scores[name] - reference).mean()),
            "argmax": float((scores[name].argmax(1) == reference.argmax(1)).mean()),
        }
        for name in scorers
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--labels", type=int, nargs="+", default=[3, 10])
    parser.add_argument("--rows", type=int, default=64)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--size", default="t5-small", choices=sorted(SIZES))
    parser.add_argument("--model", help="local model folder instead of random weights")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    model, tokenizer = load(args.model, args.size, torch.device("cpu"), torch.float32)
    texts = make_texts(args.rows, tokenizer)
    models = precisions(model)
    print(f"{args.model or args.size + ' (random weights)'}, batch {args.batch_size}, {args.threads} threads, cpu")
    print("| labels | precision | rows/s | / float32 | max Δ log p | mean Δ log p | argmax = float32 |")
    print("|---:|---|---:|---:|---:|---:|---:|")
    for count in args.labels:
        for name, r in one_label_count(models, tokenizer, texts, count, args).items():
            print(
                f"| {count} | {name} | {r['rows_s']:.1f} | {r['ratio']:.2f}x | {r['max_delta']:.3f} | "
                f"{r['mean_delta']:.3f} | {r['argmax']:.1%} |",
                flush=True,
            )


if __name__ == "__main__":
    main()
