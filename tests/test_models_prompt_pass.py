"""Decoder-only prompts that share a prefix: the prefix runs once, and every score is still the full prompt's."""

from __future__ import annotations

import numpy as np
import pyarrow.parquet as pq
import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from helpers.tiny_causal_models import build_causal
from t5cls import LabelScorer, ScoreOptions, score_file

INSTRUCTION = "You are a careful annotator. Answer with the sentiment of the review: positive, negative or not sure. "
REVIEWS = [
    "the movie was great and the acting was wonderful",
    "terrible plot, boring characters",
    "mixed feelings about this one",
    "café naïve 東京 🙂 quotes and commas, everywhere",
    "not entailment at all",
    "strongly positive!",
]
TEXTS = [f"{INSTRUCTION}Review: {review}\nSentiment:" for review in REVIEWS]
LABELS = ["positive", "negative", "not sure", "mixed feelings"]
KINDS = ["gpt2", "llama", "qwen3"]


@pytest.fixture(scope="module", params=KINDS)
def model_dir(request, tmp_path_factory):
    return build_causal(tmp_path_factory.mktemp(f"tiny-{request.param}-prefix"), request.param)


def recorded_prefixes(scorer) -> list[int]:
    """Make the scorer record the length of every shared prefix it runs."""
    lengths: list[int] = []
    original = scorer.backend.prompts.shared_prefix

    def shared_prefix(input_ids, row_lengths):
        prefix = original(input_ids, row_lengths)
        lengths.append(prefix.length)
        return prefix

    scorer.backend.prompts.shared_prefix = shared_prefix
    return lengths


def brute_force(model_dir, scorer, texts, labels) -> np.ndarray:
    """One unpadded forward of (prompt ids + label ids) per (row, label), with the scorer's own token ids."""
    model = AutoModelForCausalLM.from_pretrained(model_dir).eval()
    prompts = scorer.tokenize(texts, scorer.label_room(labels)).ids
    rows = []
    for prompt in prompts:
        row = []
        for label_ids in scorer.label_ids(labels):
            ids = prompt + label_ids
            with torch.no_grad():
                logprobs = model(torch.tensor([ids])).logits[0].log_softmax(-1)
            row.append(sum(logprobs[t - 1, ids[t]].item() for t in range(len(prompt), len(ids))))
        rows.append(row)
    return np.array(rows)


def test_a_shared_instruction_runs_once_and_scores_stay_exact(model_dir):
    scorer = LabelScorer.from_pretrained(str(model_dir), device="cpu", batch_size=4)
    prefixes = recorded_prefixes(scorer)
    scores = scorer.score(TEXTS, LABELS)
    assert not scores.truncated.any()  # the tiny models have 128 positions
    instruction = len(scorer.tokenize([INSTRUCTION]).ids[0])
    assert prefixes and min(prefixes) >= instruction - 2  # the whole instruction, give or take a merged boundary
    np.testing.assert_allclose(scores.logprobs, brute_force(model_dir, scorer, TEXTS, LABELS), atol=1e-4)


def test_scores_do_not_depend_on_sharing_batch_order_or_chunks(model_dir, tmp_path):
    scorer = LabelScorer.from_pretrained(str(model_dir), device="cpu", batch_size=len(TEXTS))
    together = scorer.score(TEXTS, LABELS).logprobs
    scorer.backend.prompts.share = False
    np.testing.assert_allclose(scorer.score(TEXTS, LABELS).logprobs, together, atol=1e-5)
    scorer.backend.prompts.share = True
    for batch_size in (1, 2, 3):  # other batches share other prefixes (a batch of one shares none)
        scorer.batch_size = batch_size
        np.testing.assert_allclose(scorer.score(TEXTS, LABELS).logprobs, together, atol=1e-5)
    order = [3, 0, 5, 2, 1, 4]
    np.testing.assert_allclose(scorer.score([TEXTS[i] for i in order], LABELS).logprobs, together[order], atol=1e-5)
    source = tmp_path / "in.csv"
    source.write_text("text\n" + "".join('"' + text.replace('"', '""') + '"\n' for text in REVIEWS))
    template = INSTRUCTION + "Review: {text}\nSentiment:"
    for chunk_rows in (1, 4, 100):
        out = tmp_path / f"out-{chunk_rows}.parquet"
        options = ScoreOptions(
            input=str(source), labels=LABELS, template=template, output=str(out), chunk_rows=chunk_rows, logprobs=True
        )
        score_file(options, scorer)
        table = pq.read_table(out)
        written = np.column_stack([table[f"logp_{label}"].to_numpy() for label in LABELS])
        np.testing.assert_allclose(written, together, atol=1e-5)


def test_left_truncated_prompts_share_less_and_stay_exact(model_dir):
    """Cut from the left, prompts lose the instruction's start: what they still share is shared, exactly."""
    scorer = LabelScorer.from_pretrained(str(model_dir), device="cpu", max_length=40)
    prefixes = recorded_prefixes(scorer)
    scores = scorer.score(TEXTS, LABELS)
    assert scores.truncated.all()
    np.testing.assert_allclose(scores.logprobs, brute_force(model_dir, scorer, TEXTS, LABELS), atol=1e-4)
    full = len(scorer.tokenize([INSTRUCTION], 0).ids[0])
    assert all(length < full for length in prefixes)


CHAT_TEMPLATE = (
    "{% for m in messages %}<s>{{ m['role'] }}\n{{ m['content'] }}</s>\n{% endfor %}"
    "{% if add_generation_prompt %}<s>assistant\n{% endif %}"
)


def test_the_chat_template_head_is_shared(tmp_path):
    model_dir = build_causal(tmp_path / "llama", "llama")
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    tokenizer.chat_template = CHAT_TEMPLATE
    model = AutoModelForCausalLM.from_pretrained(model_dir).eval()
    scorer = LabelScorer(model, tokenizer, chat=True)
    scorer.backend.prompts.min_shared = 1
    prefixes = recorded_prefixes(scorer)
    reviews = [f"Sentiment of: {review}" for review in REVIEWS]
    scores = scorer.score(reviews, LABELS).logprobs
    head = len(tokenizer("<s>user\nSentiment of:", add_special_tokens=False).input_ids)
    assert prefixes and min(prefixes) >= head - 1
    np.testing.assert_allclose(scores, brute_force(model_dir, scorer, reviews, LABELS), atol=1e-4)
