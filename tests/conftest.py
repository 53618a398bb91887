"""Session fixtures: tiny random models saved to temp folders (shared helpers live in `helpers`)."""

from __future__ import annotations

import os

import hypothesis.internal.conjecture.optimiser  # noqa: F401 (see below)
import pytest
import torch
from hypothesis import HealthCheck, settings

from helpers.cli import SINGLE_THREAD
from helpers.tiny_models import build_bart, build_t5
from helpers.trained_model import train_tiny_model

# Property tests: "ci" (the default) runs a fixed sequence of examples (derandomize: the same in
# every run, under a minute in all); "local" draws four times as many afresh and keeps failures in
# .hypothesis/ to replay: python -m pytest tests/test_io_properties.py --hypothesis-profile local
SLOW_IS_FINE = [HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much]
settings.register_profile(
    "ci", max_examples=150, derandomize=True, database=None, deadline=None, suppress_health_check=SLOW_IS_FINE
)
settings.register_profile("local", max_examples=600, deadline=None, suppress_health_check=SLOW_IS_FINE)
settings.load_profile("ci")
# The optimiser is imported above, not lazily inside a property test: under hypothesis's raised
# recursion limit, CPython 3.11.7 fails to compile a module that pytest rewrites on import
# ("SystemError: AST constructor recursion depth mismatch").

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # a test must never reach the network
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


@pytest.fixture(scope="session")
def trained_t5(tmp_path_factory):
    """A tiny T5 trained from random weights by `t5cls train` on a generated task (see helpers.trained_model)."""
    return train_tiny_model(tmp_path_factory.mktemp("trained-t5"))


@pytest.fixture
def short_reviews(tmp_path):
    """A three-row CSV of ``id`` and ``text`` (good, bad, fine): the input of many CLI tests."""
    path = tmp_path / "reviews.csv"
    path.write_text("id,text\n1,good\n2,bad\n3,fine\n")
    return path
