"""Many labels: speed against the limit and the arithmetic bound, and peak memory, per label count.

    python benchmarks/bench_labels.py [--labels 3 10 50 150 500 1000] [--rows 64] [--repeats 3] [--bf16]

Model: the t5-small architecture with random weights and the real T5 tokenizer (or ``--size``),
64 review-like rows of ~45 tokens, batch 32, intent-like labels of one to three words. Each label
count runs in a fresh process (so its peak RSS is its own) that

  1. checks that the scores with the default memory budget equal the one-block scores (every row
     in one decoder call, every position in one LM-head call) on the first rows;
  2. times t5cls (`LabelScorer.score`) and the limit (encoder + one decoder step + LM head on
     the same batches: `bench_scoring.limit_pass`) in alternating rounds, best of each;
  3. computes the arithmetic bound from the model config: the multiply-adds an exact scorer
     cannot avoid relative to the limit's, per row
         (E + X + 1 x (decoder + head)) / (E + X + P x (decoder + head))
     with E the encoder, X the cross-attention keys/values, P the trie positions, and attention
     between trie positions counted only over each position's ancestors;
  4. reports peak memory: RSS on the CPU, ``torch.cuda.max_memory_allocated`` on CUDA.

``--bf16`` adds, per label count, bfloat16 speed and its agreement with float32 on the same rows
(max |Δ log p| and the share of equal argmax).
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_scoring import SIZES, limit_pass, load, make_texts, timed, wall_time

from t5cls import LabelScorer
from t5cls.models.batching import MemoryBudget
from t5cls.models.loading import DTYPES

VERBS = [
    "book",
    "cancel",
    "change",
    "check",
    "find",
    "update",
    "report",
    "order",
    "pay",
    "track",
    "renew",
    "reset",
    "transfer",
    "schedule",
    "confirm",
    "request",
    "share",
    "remove",
    "add",
    "compare",
]
OBJECTS = [
    "flight",
    "hotel",
    "card",
    "balance",
    "password",
    "order",
    "refund",
    "payment",
    "account",
    "address",
    "meeting",
    "reminder",
    "alarm",
    "playlist",
    "recipe",
    "insurance",
    "loan",
    "bill",
    "car rental",
    "delivery",
    "subscription",
    "appointment",
    "ticket",
    "reservation",
    "transaction",
    "limit",
    "pin",
    "statement",
    "exchange rate",
    "credit score",
    "direct deposit",
    "travel alert",
    "lost luggage",
    "gas station",
    "restaurant",
    "weather",
    "timezone",
    "calendar",
    "shopping list",
    "todo list",
    "bank branch",
    "spending history",
    "interest rate",
    "tax form",
    "pay day",
    "phone plan",
    "smart home",
    "music",
    "translation",
    "definition",
]
QUALIFIERS = ["status", "history", "fee", "details", "problem"]
COUNTS = (3, 10, 50, 150, 500, 1000)
CHECK_ROWS = 8
LIMIT_REPEATS = 5  # runs of the limit per run of t5cls


def intent_labels(count: int) -> list[str]:
    """``count`` CLINC-style intent names: a tenth of one word, three tenths of three words, the rest of two."""
    one = list(OBJECTS)
    two = [f"{verb} {obj}" for obj in OBJECTS for verb in VERBS]
    three = [f"{verb} {obj} {detail}" for detail in QUALIFIERS for obj in OBJECTS for verb in VERBS]
    singles, triples = min(len(one), count // 10), (count * 3) // 10
    return one[:singles] + two[: count - singles - triples] + three[:triples]


def decoder_macs(config, tokens: float, attended: float) -> float:
    """Multiply-adds of one decoder position: self-attention over ``attended`` keys, cross-attention, feed-forward."""
    d, inner, ff = config.d_model, config.num_heads * config.d_kv, config.d_ff
    gated = 3 if config.is_gated_act else 2
    per_layer = 4 * d * inner + 2 * attended * inner + 2 * d * inner + 2 * tokens * inner + gated * d * ff
    return config.num_decoder_layers * per_layer


def arithmetic_bound(config, tokens: float, trie) -> float:
    """The best t5cls / limit an exact scorer can reach on these rows (see the module docstring)."""
    d, inner, ff = config.d_model, config.num_heads * config.d_kv, config.d_ff
    gated = 3 if config.is_gated_act else 2
    encoder = tokens * config.num_layers * (4 * d * inner + 2 * tokens * inner + gated * d * ff)
    cross = tokens * config.num_decoder_layers * 2 * d * inner
    head = d * config.vocab_size
    ancestors = float(np.mean(trie.depths + 1))
    positions = trie.num_positions * (decoder_macs(config, tokens, ancestors) + head)
    return (encoder + cross + decoder_macs(config, tokens, 1) + head) / (encoder + cross + positions)


def peak_memory_mib(device: torch.device) -> float:
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def one_label_count(args) -> dict:
    """Everything for one label count, in this (fresh) process."""
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    model, tokenizer = load(None, args.size, device, DTYPES[args.dtype])
    texts = make_texts(args.rows, tokenizer)
    labels = intent_labels(args.count)
    scorer = LabelScorer(model, tokenizer, batch_size=args.batch_size)
    trie = scorer.label_trie(labels)
    tokens = float(np.mean([len(tokenizer(text).input_ids) for text in texts]))
    result = {"labels": len(labels), "positions": trie.num_positions, "tokens": tokens}
    result["seconds"], result["limit_seconds"] = interleaved_best(
        lambda: scorer.score(texts, labels), lambda: limit_pass(model, tokenizer, texts, args.batch_size), args, device
    )
    result["peak_mib"] = peak_memory_mib(device)
    result["bound"] = arithmetic_bound(model.config, tokens, trie)
    result["block_error"] = _one_block_error(scorer, texts[:CHECK_ROWS], labels, device)
    if args.bf16:
        result.update(_bf16(args, scorer, texts, labels, device))
    return result


def interleaved_best(scoring, limit, args, device: torch.device) -> tuple[float, float]:
    """Best wall times of t5cls and of the limit over ``args.repeats`` rounds, each one t5cls run then
    ``LIMIT_REPEATS`` limit runs (the limit takes a second where t5cls takes up to a minute), so that
    a slow spell of a shared machine falls on both rather than on one."""
    scoring()  # warm-up
    limit()
    seconds, limit_seconds = [], []
    for _ in range(args.repeats):
        seconds.append(wall_time(scoring, device))
        limit_seconds += [wall_time(limit, device) for _ in range(LIMIT_REPEATS)]
    return min(seconds), min(limit_seconds)


def _one_block_error(scorer: LabelScorer, texts: list[str], labels: list[str], device: torch.device) -> float:
    """max |Δ log p| between the default blocks and one block of every row and position."""
    blocked = scorer.score(texts, labels).logprobs
    scorer.backend.budget = MemoryBudget(device, 1 << 60)
    whole = scorer.score(texts, labels).logprobs
    scorer.backend.budget = MemoryBudget(device)
    return float(np.abs(blocked - whole).max())


def _bf16(args, scorer: LabelScorer, texts: list[str], labels: list[str], device: torch.device) -> dict:
    """bfloat16 speed, and how its scores compare with float32's on the same rows."""
    reference = scorer.score(texts, labels).logprobs
    scorer.model.to(torch.bfloat16)
    seconds = timed(lambda: scorer.score(texts, labels), args.repeats, device)
    scores = scorer.score(texts, labels).logprobs
    return {
        "bf16_seconds": seconds,
        "bf16_max_delta": float(np.abs(scores - reference).max()),
        "bf16_argmax_agreement": float((scores.argmax(1) == reference.argmax(1)).mean()),
    }


def run_child(args, count: int) -> dict:
    command = [
        sys.executable,
        __file__,
        "--child",
        str(count),
        "--rows",
        str(args.rows),
        "--batch-size",
        str(args.batch_size),
        "--threads",
        str(args.threads),
        "--repeats",
        str(args.repeats),
        "--device",
        args.device,
        "--size",
        args.size,
        "--dtype",
        args.dtype,
    ] + (["--bf16"] if args.bf16 else [])
    finished = subprocess.run(command, capture_output=True, text=True, check=True)
    return json.loads(finished.stdout.strip().splitlines()[-1])


def report(args, results: list[dict]) -> None:
    print(
        f"{args.size} (random weights, {args.dtype}), {args.rows} rows, batch {args.batch_size}, "
        f"{args.threads} threads, {args.device}; {results[0]['tokens']:.1f} tokens per row"
    )
    header = "| labels | trie positions | t5cls rows/s | limit rows/s | t5cls / limit | bound | share of bound | peak |"
    print(header + (" bf16 rows/s | bf16 / fp32 | max Δlogp | argmax agree |" if args.bf16 else ""))
    print("|" + "---:|" * (header.count("|") - 1 + (4 if args.bf16 else 0)))
    for r in results:
        speed, limit = args.rows / r["seconds"], args.rows / r["limit_seconds"]
        ratio = speed / limit
        line = (
            f"| {r['labels']} | {r['positions']} | {speed:.1f} | {limit:.1f} | {ratio:.3f} | {r['bound']:.3f} | "
            f"{ratio / r['bound']:.0%} | {r['peak_mib']:.0f} MiB |"
        )
        if args.bf16:
            bf16 = args.rows / r["bf16_seconds"]
            line += (
                f" {bf16:.1f} | {bf16 / speed:.2f}x | {r['bf16_max_delta']:.3f} | {r['bf16_argmax_agreement']:.1%} |"
            )
        print(line)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--labels", type=int, nargs="+", default=list(COUNTS))
    parser.add_argument("--rows", type=int, default=64)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--size", default="t5-small", choices=sorted(SIZES))
    parser.add_argument("--dtype", default="float32", choices=sorted(DTYPES))
    parser.add_argument("--bf16", action="store_true", help="also time bfloat16 and compare it with --dtype float32")
    parser.add_argument("--child", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child is not None:
        args.count = args.child
        print(json.dumps(one_label_count(args)))
        return
    results = [run_child(args, count) for count in args.labels]
    for result in results:
        assert result["block_error"] < 1e-4, f"blocked scores differ from one block: {result}"
    report(args, results)


if __name__ == "__main__":
    main()
