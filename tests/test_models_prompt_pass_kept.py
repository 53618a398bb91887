"""A shared instruction kept across the scoring calls of a file: run once, and every score the per-row path's."""

from __future__ import annotations

import numpy as np
import pyarrow.parquet as pq
import pytest

from helpers.labels import UNSURE as LABELS
from helpers.tiny_causal_models import build_causal
from t5cls import LabelScorer, ScoreOptions, score_file

INSTRUCTION = "Read the review to its end, then say whether the writer would go back: positive, negative or not sure. "
REVIEWS = ["great food", "terrible service, cold soup", "fine", "never again", "mixed feelings, café naïve", "yes!"]
TEXTS = [f"{INSTRUCTION}Review: {review}\nSentiment:" for review in REVIEWS]


@pytest.fixture(scope="module", params=["llama", "qwen3"])
def scorer(request, tmp_path_factory):
    model_dir = build_causal(tmp_path_factory.mktemp(f"tiny-{request.param}-kept"), request.param)
    return LabelScorer.from_pretrained(str(model_dir), device="cpu", batch_size=3)


def prefix_runs(scorer) -> list[int]:
    """Record the length of every one-row forward of the model: with batches of 3 rows, the shared prefix runs."""
    runs: list[int] = []

    def record(module, args, kwargs):
        ids = kwargs.get("input_ids")
        if ids is not None and ids.shape[0] == 1:
            runs.append(ids.shape[1])

    scorer.model.base_model.register_forward_pre_hook(record, with_kwargs=True)
    return runs


def per_row(scorer) -> np.ndarray:
    """Every row runs its whole prompt: nothing shared."""
    scorer.backend.prompts.share = False
    try:
        return scorer.score(TEXTS, LABELS).logprobs
    finally:
        scorer.backend.prompts.share = True


def test_the_prefix_kept_across_calls_runs_once_and_scores_equal_the_per_row_path(scorer):
    expected = per_row(scorer)
    runs = prefix_runs(scorer)
    chunks = [scorer.score(TEXTS[:3], LABELS).logprobs, scorer.score(TEXTS[3:], LABELS).logprobs]
    assert len(runs) == 2  # without keeping: once per call
    np.testing.assert_allclose(np.concatenate(chunks), expected, atol=1e-5)
    runs.clear()
    with scorer.keeping_prefixes():
        chunks = [scorer.score(TEXTS[:3], LABELS).logprobs, scorer.score(TEXTS[3:], LABELS).logprobs]
    assert len(runs) == 1 and runs[0] >= len(scorer.tokenize([INSTRUCTION]).ids[0]) - 2
    np.testing.assert_allclose(np.concatenate(chunks), expected, atol=1e-5)
    runs.clear()
    scorer.score(TEXTS[:3], LABELS)  # outside the block nothing is kept
    assert len(runs) == 1


def test_a_file_in_chunks_runs_its_instruction_once(scorer, tmp_path):
    expected = per_row(scorer)
    runs = prefix_runs(scorer)
    source, out = tmp_path / "in.csv", tmp_path / "out.parquet"
    source.write_text("text\n" + "".join('"' + text.replace('"', '""') + '"\n' for text in REVIEWS))
    template = INSTRUCTION + "Review: {text}\nSentiment:"
    options = ScoreOptions(
        input=str(source), labels=LABELS, template=template, output=str(out), chunk_rows=3, logprobs=True
    )
    score_file(options, scorer)
    assert len(runs) == 1
    table = pq.read_table(out)
    written = np.column_stack([table[f"logp_{label}"].to_numpy() for label in LABELS])
    np.testing.assert_allclose(written, expected, atol=1e-5)
