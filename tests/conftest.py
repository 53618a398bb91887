"""Shared fixtures: tiny random models saved to temp folders, and a brute-force reference scorer."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
import torch
from transformers import AutoModelForSeq2SeqLM, AutoTokenizer

from tiny_models import build_bart, build_t5

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # a test must never reach the network
# Tiny models gain nothing from threads, and OpenMP threads on a loaded 2-core machine stall.
SINGLE_THREAD = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
os.environ.update(SINGLE_THREAD)
torch.set_num_threads(1)


@pytest.fixture(scope="session")
def t5_dir(tmp_path_factory):
    return build_t5(tmp_path_factory.mktemp("tiny-t5"))


@pytest.fixture(scope="session")
def t5_v11_dir(tmp_path_factory):
    """T5 v1.1 / Flan-T5 style: untied LM head, no d_model**-0.5 output scaling."""
    return build_t5(tmp_path_factory.mktemp("tiny-t5-v11"), seed=1, scale_decoder_outputs=False)


@pytest.fixture(scope="session")
def bart_dir(tmp_path_factory):
    return build_bart(tmp_path_factory.mktemp("tiny-bart"))


def brute_force_logprobs(model_dir, texts, labels, max_length=None):
    """log p(label | text) with one full forward per (row, label), read from model(...).logits."""
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForSeq2SeqLM.from_pretrained(model_dir).eval()
    rows = []
    for text in texts:
        enc = tokenizer(text, return_tensors="pt", truncation=max_length is not None, max_length=max_length)
        row = []
        for label in labels:
            target = torch.tensor([tokenizer(text_target=label).input_ids])
            with torch.no_grad():
                logits = model(**enc, labels=target).logits[0]
            row.append(logits.log_softmax(-1)[torch.arange(target.shape[1]), target[0]].sum().item())
        rows.append(row)
    return torch.tensor(rows, dtype=torch.float64).numpy()


def run_cli(*args, stdin=None, env=None, timeout=300, **kwargs):
    """Run the real `t5cls` entry point in a subprocess."""
    full_env = {**os.environ, "HF_HUB_OFFLINE": "1", **SINGLE_THREAD, **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "t5cls.cli", *map(str, args)],
        input=stdin, capture_output=True, env=full_env, timeout=timeout, **kwargs,
    )


def assert_one_line_error(result, *fragments, code=2):
    """The run failed with ``code`` and exactly one stderr line, ``t5cls: error: ...``, holding ``fragments``."""
    stderr = result.stderr.decode()
    assert result.returncode == code, stderr
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("t5cls: error: "), stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
