"""A long shared instruction before short rows: the prefix-cached path against today's and against its limit.

    python benchmarks/bench_prefix.py [--rows 128] [--today-rows 16] [--batch-size 16] [--instruction-tokens 500]

Model: a random SmolLM-135M-shaped Llama (`bench_scoring.CAUSAL_SIZES`) with a byte-level BPE
tokenizer. Every prompt is the same ~500-token instruction followed by a ~40-token review and
``Sentiment:``; three labels; all rows in one scoring call, as a chunk of a file is. It times, on
the same length-sorted batches,

  (a) today:   every row runs its whole prompt (`PromptPass.share = False`), on the first
               ``--today-rows`` rows only (it is slow, and its cost per row does not depend on the count);
  (b) t5cls:   the shared prefix runs once for the call, each row its own tokens, then the label trie;
  (c) limit:   each row's own tokens over the prefix's keys and values (computed once, untimed),
               plus one LM head on the last token: what a row costs with the prefix free and no labels;

  (d) bare:    t5cls on the same rows without the instruction (``Review: ...`` alone), timed in
               alternating rounds with (b), so a slow spell of a shared machine falls on both;

asserts that (b) equals (a) within 1e-4 on those rows first, and prints rows/s and the ratios
t5cls/today, t5cls/limit and t5cls/bare: what the instruction costs (1.0 would be free).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_scoring import WORDS, load, timed, wall_time

from t5cls import LabelScorer
from t5cls.models._hf_compat import attention_by
from t5cls.models.tokens import TokenizedTexts
from t5cls.models.tree_attention import AttentionLayout, Context

LABELS = ["positive", "negative", "not sure"]
INSTRUCTION_WORDS = [
    "you",
    "are",
    "a",
    "careful",
    "annotator",
    "of",
    "customer",
    "reviews",
    "for",
    "a",
    "restaurant",
    "guide",
    "and",
    "you",
    "read",
    "every",
    "review",
    "to",
    "the",
    "end",
    "before",
    "you",
    "decide",
    "which",
    "of",
    "the",
    "three",
    "sentiments",
    "it",
    "expresses",
    "where",
    "positive",
    "means",
    "the",
    "writer",
    "would",
    "go",
    "back",
    "negative",
    "means",
    "the",
    "writer",
    "would",
    "not",
    "and",
    "not",
    "sure",
    "means",
    "the",
    "review",
    "is",
    "mixed",
    "or",
    "says",
    "too",
    "little",
    "to",
    "tell",
]


def instruction(tokenizer, tokens: int) -> str:
    """A fixed instruction of about ``tokens`` tokens, ending in a blank line."""
    words, text = [], ""
    while len(tokenizer(text).input_ids) < tokens:
        words.append(INSTRUCTION_WORDS[len(words) % len(INSTRUCTION_WORDS)])
        text = "Instructions: " + " ".join(words) + ".\n\n"
    return text


def reviews(tokenizer, rows: int, tokens: int) -> list[str]:
    """``rows`` review-like texts of about ``tokens`` tokens each (a few more or less), from a fixed seed."""
    rng = np.random.default_rng(0)
    texts = []
    for _ in range(rows):
        target, words = tokens + int(rng.integers(-5, 6)), []
        while len(tokenizer(" ".join(words)).input_ids) < target:
            words.append(str(rng.choice(WORDS)))
        texts.append(" ".join(words))
    return texts


def limit_pass(scorer: LabelScorer, tokens, prefix) -> None:
    """Each batch's own tokens over the shared prefix, and the LM head on each row's last token."""
    model, length = scorer.model, prefix.length
    contexts = [[Context(keys, values)] for keys, values in prefix.keys_values]
    order = np.argsort([len(ids) for ids in tokens.ids], kind="stable")
    for start in range(0, len(order), scorer.batch_size):
        ids, mask = scorer.batches.padded(tokens.ids, order[start : start + scorer.batch_size])
        own, own_mask = ids[:, length:], mask[:, length:]
        layout = AttentionLayout(key_padding=own_mask != 0, contexts=contexts)
        positions = (length + torch.arange(own.shape[1])).expand(len(own), -1)
        with torch.inference_mode(), attention_by(model, layout):
            hidden = model.base_model(input_ids=own, position_ids=positions, use_cache=False).last_hidden_state
            last = hidden[torch.arange(len(own)), own_mask.sum(1) - 1]
            model.lm_head(last).float().log_softmax(-1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=128)
    parser.add_argument("--today-rows", type=int, default=16)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--instruction-tokens", type=int, default=500)
    parser.add_argument("--row-tokens", type=int, default=40)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    device = torch.device("cpu")
    model, tokenizer = load(None, "smollm-135m", device, torch.float32)
    head = instruction(tokenizer, args.instruction_tokens)
    rows = [f"Review: {text}\nSentiment:" for text in reviews(tokenizer, args.rows, args.row_tokens)]
    texts = [head + row for row in rows]
    scorer = LabelScorer(model, tokenizer, batch_size=args.batch_size)
    tokens = scorer.tokenize(texts, scorer.label_room(LABELS))
    lengths = [len(ids) for ids in tokens.ids]
    print(f"prompts of {min(lengths)}-{max(lengths)} tokens, {len(tokenizer(head).input_ids)} of them the instruction")

    first = TokenizedTexts(tokens.ids[: args.today_rows], tokens.truncated[: args.today_rows])
    scorer.backend.prompts.share = False
    today = scorer.score(first, LABELS).logprobs
    today_s = timed(lambda: scorer.score(first, LABELS), args.repeats, device) * args.rows / args.today_rows
    scorer.backend.prompts.share = True
    ours = scorer.score(tokens, LABELS).logprobs
    np.testing.assert_allclose(ours[: args.today_rows], today, atol=1e-4)
    bare = scorer.tokenize(rows, scorer.label_room(LABELS))
    ours_s, bare_s = alternating(
        lambda: scorer.score(tokens, LABELS), lambda: scorer.score(bare, LABELS), args.repeats, device
    )
    ids, mask = scorer.batches.padded(tokens.ids, np.arange(len(texts)))
    with torch.inference_mode():
        prefix = scorer.backend.prompts.shared_prefix(ids, mask.sum(1))
    limit_s = timed(lambda: limit_pass(scorer, tokens, prefix), args.repeats, device)

    difference = np.abs(ours[: args.today_rows] - today).max()
    print(f"shared prefix: {prefix.length} tokens; t5cls matches today's path within {difference:.1e}")
    for name, seconds in (("today", today_s), ("t5cls", ours_s), ("limit", limit_s), ("bare", bare_s)):
        print(f"  {name:6} {args.rows / seconds:8.2f} rows/s")
    print(
        f"  t5cls/today = {today_s / ours_s:.2f}x   t5cls/limit = {limit_s / ours_s:.2f}x   "
        f"t5cls/bare = {bare_s / ours_s:.2f}x (the same rows without the instruction)"
    )


def alternating(first, second, repeats: int, device: torch.device) -> tuple[float, float]:
    """Best wall times of ``first`` and ``second``, run in turn ``repeats`` times after a warm-up of each."""
    first(), second()
    times = [(wall_time(first, device), wall_time(second, device)) for _ in range(repeats)]
    return min(t for t, _ in times), min(t for _, t in times)


if __name__ == "__main__":
    main()
