"""The same command gives the same bytes, whatever the thread timing, chunk size or batch size.

A run tokenizes the next chunk in a background thread while the main thread scores this one,
and the main thread calls the same tokenizer too: decoder-only models check every chunk's label
boundaries, ``contextual`` tasks score their content-free prompts. Fast tokenizers keep their
truncation settings as state shared by both threads, so without one owner of every call
(`t5cls.models.tokens.PromptTokenizer`) a prompt could be cut at the other thread's length. Long
prompts that must be cut, and chunks of 2 rows (the threads overlap on every chunk), make such a
mix-up show as different bytes between runs, or against one big chunk read before any scoring.
(Without the tokenizer's lock the decoder-only case fails here every time.)

Every prompt is cut to the same length and both runs use the same ``--batch-size``, so the batches
of the small and the big chunks have the same shapes: the bytes must then be equal. A different
``--batch-size`` is not expected to give the same bytes: float32 kernels on the CPU may pick
another summation order for another number of rows (seen on some CPUs for 3 rows against 16,
about 1e-7 in p), and with prompts of mixed lengths differently padded batches round differently.
"""

from __future__ import annotations

import random

import pytest

from helpers.cli import invoke
from helpers.tiny_causal_models import build_causal

RUNS = 4
WORDS = "the movie was great terrible plot acting wonderful boring not sure café 東京 🙂 quotes"


@pytest.fixture(scope="module")
def gpt2_dir(tmp_path_factory):
    return build_causal(tmp_path_factory.mktemp("determinism-gpt2"), "gpt2")


@pytest.fixture(scope="module")
def long_reviews(tmp_path_factory):
    """80 reviews of 20 to 120 words: most are longer than --max-length and get cut."""
    rng = random.Random(13)
    words = WORDS.split()
    path = tmp_path_factory.mktemp("determinism") / "reviews.csv"
    rows = [f'{i},"{" ".join(rng.choices(words, k=rng.randint(20, 120)))}"' for i in range(80)]
    path.write_text("id,text\n" + "\n".join(rows) + "\n")
    return path


@pytest.fixture(scope="module")
def contextual_config(tmp_path_factory):
    path = tmp_path_factory.mktemp("determinism-config") / "tasks.toml"
    path.write_text(
        '[[task]]\nname = "sentiment"\ntemplate = "Review: {text}\\nSentiment:"\n'
        'labels = ["positive", "negative", "not sure"]\nmode = "contextual"\n'
    )
    return path


def scored_bytes(tmp_path, model, source, *options) -> bytes:
    out = tmp_path / "out.csv"
    result = invoke("score", source, "-m", model, "-o", out, "--max-length", 24, "--logprobs", "-q", *options)
    assert result.returncode == 0, result.stderr
    assert "truncated" in result.stderr.decode() and " 0 truncated" not in result.stderr.decode()
    data = out.read_bytes()
    out.unlink()
    return data


@pytest.mark.parametrize("model", ["t5", "gpt2"])
def test_same_bytes_every_run_and_for_any_chunk_size(
    t5_dir, gpt2_dir, long_reviews, contextual_config, tmp_path, model
):
    model_dir = t5_dir if model == "t5" else gpt2_dir
    task = (
        ["--config", contextual_config]
        if model == "t5"
        else ["-l", "positive,negative,not sure", "-t", "{text} Answer:"]
    )
    runs = [
        scored_bytes(tmp_path, model_dir, long_reviews, *task, "--chunk-size", 2, "--batch-size", 3)
        for _ in range(RUNS)
    ]
    assert all(run == runs[0] for run in runs[1:])
    whole = scored_bytes(tmp_path, model_dir, long_reviews, *task, "--chunk-size", 1000, "--batch-size", 3)
    assert whole == runs[0]
