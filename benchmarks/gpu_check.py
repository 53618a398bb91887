"""The GPU check: one command to run whenever a CUDA machine is lent, printing one table.

    python benchmarks/gpu_check.py                 # on a CUDA machine (about 10 minutes on an H100)
    python benchmarks/gpu_check.py --device cpu --quick   # a smoke test of the script itself

It checks, on the device:

  1. exactness in float32: tiny random T5, BART and Llama models (built here, as the tests do)
     scored on the device against a brute-force full forward per (row, label) on the CPU;
  2. bf16 agreement: a t5-base-sized random model, bf16 against float32 on the same rows
     (max |Δ log p|, share of equal argmax);
  3. ``batch_size=None`` (auto) with 1,000 labels and no memory budget (every row and position in
     one block), so the first batches run out of memory: the batch halves until it fits, and
     every row is scored once and equals the budgeted scores;
  4. speed: `bench_scoring.py` and `bench_labels.py` on t5-base and flan-t5-large-sized random models.

Then it prints one table of every figure (also written as JSON with ``--json PATH``).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "benchmarks"))
from bench_labels import intent_labels  # noqa: E402
from bench_scoring import load, make_texts  # noqa: E402

from helpers.reference import brute_force_causal_logprobs, brute_force_logprobs  # noqa: E402
from helpers.tiny_causal_models import build_causal  # noqa: E402
from helpers.tiny_models import build_bart, build_t5  # noqa: E402
from t5cls import LabelScorer  # noqa: E402
from t5cls.models.batching import MemoryBudget  # noqa: E402

TEXTS = ["the movie was great and the acting was wonderful", "terrible plot", "café naïve 東京 🙂", "not sure"]
LABELS = ["entailment", "not entailment", "neutral", "positive", "positive review", "mixed feelings"]


def exactness(device: torch.device) -> list[tuple[str, str]]:
    """max |Δ log p| of each tiny model on ``device`` (float32) against the CPU brute force."""
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        for name, build, reference in (
            ("t5", build_t5, brute_force_logprobs),
            ("bart", build_bart, brute_force_logprobs),
            ("llama", lambda path: build_causal(path, "llama"), brute_force_causal_logprobs),
        ):
            model_dir = build(Path(folder) / name)
            scorer = LabelScorer.from_pretrained(str(model_dir), device=device.type, dtype="float32")
            delta = np.abs(scorer.score(TEXTS, LABELS).logprobs - reference(model_dir, TEXTS, LABELS)).max()
            rows.append((f"exact float32 {name}: max |Δ log p| vs brute force", f"{delta:.1e} ({_ok(delta < 1e-4)})"))
    return rows


def bf16_agreement(device: torch.device, size: str, rows: int) -> list[tuple[str, str]]:
    model, tokenizer = load(None, size, device, torch.float32)
    texts = make_texts(rows, tokenizer)
    scorer = LabelScorer(model, tokenizer)
    labels = intent_labels(10)
    reference = scorer.score(texts, labels).logprobs
    scorer.model.to(torch.bfloat16)
    scores = scorer.score(texts, labels).logprobs
    agreement = float((scores.argmax(1) == reference.argmax(1)).mean())
    return [
        (f"bf16 vs float32 ({size}, {rows} rows, 10 labels): max |Δ log p|", f"{np.abs(scores - reference).max():.3f}"),
        ("bf16 vs float32: argmax agreement", f"{agreement:.1%} ({_ok(agreement >= 0.99)})"),
    ]


def out_of_memory_path(device: torch.device, size: str, rows: int, count: int) -> list[tuple[str, str]]:
    """Auto batch size with no budget on a label set big enough to run out of memory: halve, and lose nothing."""
    model, tokenizer = load(None, size, device, torch.bfloat16 if device.type == "cuda" else torch.float32)
    texts = make_texts(rows, tokenizer)
    labels = intent_labels(count)
    scorer = LabelScorer(model, tokenizer)
    budgeted = scorer.score(texts, labels).logprobs
    scorer.backend.budget = MemoryBudget(device, 1 << 50)
    started = scorer.batch_size
    began = time.perf_counter()
    unbudgeted = scorer.score(texts, labels).logprobs
    seconds = time.perf_counter() - began
    same = float(np.abs(unbudgeted - budgeted).max())
    return [
        (f"auto batch, {count} labels, no budget ({size}, {rows} rows)", f"batch {started} -> {scorer.batch_size}"),
        ("  scores after halving vs the budgeted run: max |Δ log p|", f"{same:.1e} in {seconds:.1f} s"),
    ]


def speed(device: str, sizes: list[str], quick: bool) -> list[tuple[str, str]]:
    """The speed and label-count benchmarks, run as their own processes; their tables are kept whole."""
    rows = []
    for size in sizes:
        scoring = ["bench_scoring.py", "--device", device, "--dtype", "bfloat16", "--size", size]
        labels = ["bench_labels.py", "--device", device, "--size", size, "--dtype", "bfloat16"]
        if quick:
            scoring += ["--rows", "8", "--repeats", "1"]
            labels += ["--rows", "8", "--repeats", "1", "--labels", "3", "50"]
        else:
            scoring += ["--rows", "4096", "--batch-size", "256"]
            labels += ["--rows", "1024", "--batch-size", "256"]
        for command in (scoring, labels):
            finished = subprocess.run(
                [sys.executable, str(ROOT / "benchmarks" / command[0]), *command[1:]],
                capture_output=True,
                text=True,
                check=True,
            )
            rows.append((f"{command[0]} {size}", "\n" + finished.stdout.strip()))
    return rows


def _ok(passed: bool) -> str:
    return "ok" if passed else "FAILED"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--quick", action="store_true", help="small sizes: check the script, not the machine")
    parser.add_argument("--json", help="also write the table as JSON here")
    args = parser.parse_args()
    device = torch.device(args.device)
    if device.type == "cuda":
        print(f"device: {torch.cuda.get_device_name(device)}, torch {torch.__version__}")
    size = "t5-small" if args.quick else "t5-base"
    table = exactness(device)
    table += bf16_agreement(device, size, 16 if args.quick else 256)
    table += out_of_memory_path(device, size, 8 if args.quick else 512, 100 if args.quick else 1000)
    table += speed(args.device, ["t5-small"] if args.quick else ["t5-base", "flan-t5-large"], args.quick)
    width = max(len(name) for name, _ in table)
    for name, value in table:
        print(f"{name:<{width}}  {value}")
    if args.json:
        Path(args.json).write_text(json.dumps(dict(table), indent=1))


if __name__ == "__main__":
    main()
