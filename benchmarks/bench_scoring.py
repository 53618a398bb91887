"""Scoring throughput against the naive baseline and the compute limit, in one process.

    python benchmarks/bench_scoring.py [--threads 2] [--rows 128] [--batch-size 32] [--device cpu]

Model: the t5-small architecture (``../shared/t5-small-tokenizer/config.json``) with random
weights and the real T5 tokenizer; random weights give meaningless but well-defined scores,
which is all timing needs. For each label set it times

  (a) naive:  one full forward per label (encoder re-run for every label), as peers do;
  (b) t5cls:  `LabelScorer.score` (encoder once, label trie in one decoder pass);
  (c) limit:  encoder + one decoder step + LM head for the batch, with no label work at all;

asserts that (b) equals (a) within 1e-4, and prints rows/s with the ratios t5cls/naive and
t5cls/limit. ``--model DIR`` times any local model folder instead.

``--size smollm-135m`` times the decoder-only backend instead (a random SmolLM-135M-shaped
Llama with a byte-level BPE tokenizer and prompts ending in ``Sentiment:``): naive is one full
forward of prompt + label per label, limit is one prompt forward with the LM head on its last
token.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch
from transformers import (
    AutoModelForSeq2SeqLM,
    AutoTokenizer,
    LlamaConfig,
    LlamaForCausalLM,
    T5Config,
    T5ForConditionalGeneration,
)

from t5cls import LabelScorer
from t5cls.models.loading import resolve_dtype

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
SHARED = Path(__file__).resolve().parents[2] / "shared" / "t5-small-tokenizer"
LABEL_SETS = {
    "10 multi-token labels": [
        "entailment",
        "not entailment",
        "neutral",
        "contradiction",
        "positive",
        "negative",
        "strongly positive",
        "strongly negative",
        "mixed feelings",
        "not sure",
    ],
    "3 single-token labels": ["positive", "negative", "neutral"],
}
WORDS = [
    "the",
    "service",
    "was",
    "slow",
    "but",
    "the",
    "food",
    "made",
    "up",
    "for",
    "it",
    "and",
    "we",
    "would",
    "come",
    "back",
    "again",
    "although",
    "the",
    "prices",
    "were",
    "a",
    "little",
    "high",
    "for",
    "what",
    "you",
    "get",
    "on",
    "a",
    "busy",
    "friday",
    "night",
]


def make_texts(rows: int, tokenizer, target_tokens: int = 45) -> list[str]:
    """Review-like texts of about ``target_tokens`` tokens each (± a few), shortest first."""
    rng = np.random.default_rng(0)
    texts = []
    for _ in range(rows):
        words = list(rng.choice(WORDS, size=int(target_tokens * 0.8) + int(rng.integers(-6, 7))))
        texts.append("review: " + " ".join(words))
    lengths = [len(tokenizer(t).input_ids) for t in texts]
    print(f"{rows} rows, {statistics.mean(lengths):.1f} tokens on average (min {min(lengths)}, max {max(lengths)})")
    # Sorted by length, so naive and limit get the same low-padding batches that t5cls forms itself.
    return [texts[i] for i in np.argsort(lengths, kind="stable")]


SIZES = {  # overrides of the t5-small config, for random-weight models of the published sizes
    "t5-small": {},
    "t5-base": dict(d_model=768, d_ff=3072, num_layers=12, num_decoder_layers=12, num_heads=12),
    "flan-t5-large": dict(
        d_model=1024,
        d_ff=2816,
        num_layers=24,
        num_decoder_layers=24,
        num_heads=16,
        feed_forward_proj="gated-gelu",
        tie_word_embeddings=False,
    ),
}


CAUSAL_SIZES = {
    "smollm-135m": dict(
        vocab_size=49152,
        hidden_size=576,
        intermediate_size=1536,
        num_hidden_layers=30,
        num_attention_heads=9,
        num_key_value_heads=3,
        max_position_embeddings=2048,
        tie_word_embeddings=True,
    ),
}


def load(model_dir: str | None, size: str, device: torch.device, dtype: torch.dtype):
    if size in CAUSAL_SIZES:
        from helpers.tiny_causal_models import byte_level_tokenizer

        torch.manual_seed(0)
        model = LlamaForCausalLM(LlamaConfig(**CAUSAL_SIZES[size])).to(device=device, dtype=dtype).eval()
        tokenizer = byte_level_tokenizer(bos=True)
        tokenizer.pad_token = tokenizer.eos_token
        return model, tokenizer
    if model_dir:
        return AutoModelForSeq2SeqLM.from_pretrained(model_dir, dtype=dtype).to(
            device
        ).eval(), AutoTokenizer.from_pretrained(model_dir)
    torch.manual_seed(0)
    config = T5Config.from_pretrained(SHARED, **SIZES[size])
    model = T5ForConditionalGeneration(config).to(device=device, dtype=dtype).eval()
    return model, AutoTokenizer.from_pretrained(SHARED)


@torch.inference_mode()
def naive_logprobs(model, tokenizer, texts, labels, batch_size) -> np.ndarray:
    """One full teacher-forced forward per (batch, label): the encoder runs once per label."""
    out = np.empty((len(texts), len(labels)))
    for start in range(0, len(texts), batch_size):
        enc = tokenizer(texts[start : start + batch_size], return_tensors="pt", padding=True).to(model.device)
        for j, label in enumerate(labels):
            target = torch.tensor([tokenizer(text_target=label).input_ids], device=model.device).repeat(
                len(enc.input_ids), 1
            )
            logits = model(**enc, labels=target).logits.float()
            out[start : start + batch_size, j] = (
                logits.log_softmax(-1).gather(-1, target.unsqueeze(-1)).sum((1, 2)).cpu().numpy()
            )
    return out


@torch.inference_mode()
def limit_pass(model, tokenizer, texts, batch_size) -> None:
    """Encoder + a single decoder step + LM head: what one row costs with no label work."""
    for start in range(0, len(texts), batch_size):
        enc = tokenizer(texts[start : start + batch_size], return_tensors="pt", padding=True).to(model.device)
        start_ids = torch.full((len(enc.input_ids), 1), model.config.decoder_start_token_id, device=model.device)
        model(**enc, decoder_input_ids=start_ids, use_cache=False).logits.float().log_softmax(-1)


def causal_naive_and_limit(model, tokenizer, texts, batch_size):
    """Baselines for a decoder-only model: per-label full forwards, and the prompt pass alone."""
    baseline = LabelScorer(model, tokenizer, batch_size=batch_size)
    baseline.backend.tree_decoding = False  # one forward of prompt + label per label, no shared cache

    def limit() -> None:
        for start in range(0, len(texts), batch_size):
            enc = tokenizer(texts[start : start + batch_size], return_tensors="pt", padding=True).to(model.device)
            baseline.backend.first_token_logits(enc.input_ids, enc.attention_mask).log_softmax(-1)

    return (lambda labels: baseline.score(texts, labels).logprobs), limit


def timed(function, repeats: int, device: torch.device) -> float:
    """Best wall time of ``repeats`` runs after one warm-up run."""
    function()
    return min(wall_time(function, device) for _ in range(repeats))


def wall_time(function, device: torch.device) -> float:
    """Seconds one run of ``function`` takes, the device's queued work included."""
    if device.type == "cuda":
        torch.cuda.synchronize()
    started = time.perf_counter()
    function()
    if device.type == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rows", type=int, default=128)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--dtype", default="auto")
    parser.add_argument(
        "--size", default="t5-small", choices=sorted(SIZES | CAUSAL_SIZES), help="random-weight architecture"
    )
    parser.add_argument("--model", help="local model folder instead of random weights")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    dtype = resolve_dtype(args.dtype, device)
    model, tokenizer = load(args.model, args.size, device, dtype)
    print(
        f"model {args.model or args.size + ' (random weights)'}, {dtype}, {device}, "
        f"{args.threads} threads, batch {args.batch_size}"
    )
    texts = make_texts(args.rows, tokenizer)
    scorer = LabelScorer(model, tokenizer, batch_size=args.batch_size)
    if args.size in CAUSAL_SIZES:
        texts = [text + "\nSentiment:" for text in texts]
        naive, limit = causal_naive_and_limit(model, tokenizer, texts, args.batch_size)
    else:
        naive = lambda labels: naive_logprobs(model, tokenizer, texts, labels, args.batch_size)  # noqa: E731
        limit = lambda: limit_pass(model, tokenizer, texts, args.batch_size)  # noqa: E731
    limit_s = timed(limit, args.repeats, device)
    for name, labels in LABEL_SETS.items():
        reference = naive(labels)
        ours = scorer.score(texts, labels).logprobs
        tolerance = 1e-4 if dtype == torch.float32 else 5e-2
        np.testing.assert_allclose(ours, reference, atol=tolerance)
        naive_s = timed(lambda labels=labels: naive(labels), args.repeats, device)
        ours_s = timed(lambda labels=labels: scorer.score(texts, labels), args.repeats, device)
        trie = scorer.label_trie(labels)
        print(f"\n{name}: {labels}")
        print(
            f"  trie: {trie.num_positions} decoder positions per row "
            f"(vs {int(trie.label_lengths.sum())} label tokens, {len(labels) * int(trie.label_lengths.max())} padded)"
        )
        print(f"  matches naive within {np.abs(ours - reference).max():.1e}")
        print(f"  naive  {args.rows / naive_s:8.1f} rows/s")
        print(f"  t5cls  {args.rows / ours_s:8.1f} rows/s")
        print(f"  limit  {args.rows / limit_s:8.1f} rows/s")
        print(f"  t5cls/naive = {naive_s / ours_s:.2f}x   t5cls/limit = {limit_s / ours_s:.2f}x")


if __name__ == "__main__":
    main()
