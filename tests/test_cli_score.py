"""``t5cls score --resume`` against a local model folder changed in place, in real (forked) processes.

A retraining (or a tokenizer edit) that keeps every file's name and size, its mtime put back,
must still be seen: after a finished run the output is scored again, with a note saying why; an
interrupted run's checkpoint is refused, naming the model, and never continued with the new files.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from helpers.cli import assert_one_line_error, run_forked
from helpers.model_files import retrain_in_place, swap_tokens_in_place
from helpers.tiny_models import build_t5

ROWS = 12


@pytest.fixture
def model(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))  # the digests these runs cache stay here
    return build_t5(tmp_path / "m")


@pytest.fixture
def reviews(tmp_path):
    path = tmp_path / "in.csv"
    words = ["great", "terrible", "boring", "wonderful"]
    path.write_text("text\n" + "".join(f"the movie was {words[i % 4]} {i}\n" for i in range(ROWS)))
    return path


def score(source, model, out, *extra):
    return run_forked("score", source, "-l", "positive,negative", "-m", model, "-o", out, "--chunk-size", "4", *extra)


CHANGES = {
    "weights": lambda folder, scratch: retrain_in_place(folder, scratch, seed=7),
    "tokenizer": lambda folder, scratch: swap_tokens_in_place(folder),
}


@pytest.mark.parametrize("change", sorted(CHANGES))
def test_a_finished_run_is_scored_again_once_the_model_changed_in_place(model, reviews, tmp_path, change):
    out = tmp_path / "out.csv"
    first = score(reviews, model, out, "--resume", "-q")
    assert first.returncode == 0, first.stderr.decode()
    before = out.read_bytes()
    for path in model.iterdir():  # touched, not changed: the content is what counts
        path.touch()
    again = score(reviews, model, out, "--resume")
    assert again.stderr.decode().strip() == f"t5cls: {out} is up to date (an identical run finished it); nothing scored"

    CHANGES[change](model, tmp_path / "scratch")
    rescored = score(reviews, model, out, "--resume", "-q")
    assert rescored.returncode == 0, rescored.stderr.decode()
    note, summary = rescored.stderr.decode().strip().splitlines()
    assert note == f"t5cls: note: the model's files changed since {out} was written; scoring it again"
    assert summary.startswith(f"t5cls: {ROWS} rows, 0 skipped")
    fresh = tmp_path / "fresh.csv"
    assert score(reviews, model, fresh, "-q").returncode == 0
    assert out.read_bytes() == fresh.read_bytes()
    if change == "weights":
        assert out.read_bytes() != before  # the new weights' scores, not the old ones kept
    up_to_date = score(reviews, model, out, "--resume")
    assert b"is up to date" in up_to_date.stderr


@pytest.mark.parametrize("change", sorted(CHANGES))
def test_an_interrupted_run_is_not_continued_with_the_model_changed_in_place(model, reviews, tmp_path, change):
    """A null row in the third chunk stops the first run with two chunks checkpointed; ``--on-null skip`` may resume
    it (the error's own advice), unless the model's files changed meanwhile."""
    lines = reviews.read_text().splitlines()
    lines[9] = '""'
    reviews.write_text("\n".join(lines) + "\n")
    out = tmp_path / "out.csv"
    stopped = score(reviews, model, out, "--resume", "-q")
    assert_one_line_error(stopped, "row 9", "--on-null skip", code=2)
    parts = tmp_path / ".out.csv.t5cls-parts"
    finished = sorted(p.name for p in parts.iterdir() if p.name.startswith("part-"))
    assert finished == ["part-000000.csv", "part-000001.csv"]

    CHANGES[change](model, tmp_path / "scratch")
    refused = score(reviews, model, out, "--resume", "--on-null", "skip", "-q")
    assert_one_line_error(
        refused,
        f"cannot resume {out}: the files of model {model} changed (weights, config or tokenizer) since the checkpoint",
        "rerun without --resume to start over (the 2 finished chunks are scored again)",
    )
    assert not out.exists()
    started_over = score(reviews, model, out, "--on-null", "skip", "-q")
    assert started_over.returncode == 0, started_over.stderr.decode()
    assert len(out.read_text().splitlines()) == ROWS  # a header and the 11 rows left


def test_a_resume_with_another_batch_size_equals_the_uninterrupted_run_within_float_rounding(model, reviews, tmp_path):
    """``--batch-size`` is outside the fingerprint: a resume may change it. Summation order moves probabilities in
    their last bits (README: what a resume promises), never a prediction or a column."""
    lines = reviews.read_text().splitlines()
    lines[9] = '""'
    reviews.write_text("\n".join(lines) + "\n")
    out, whole = tmp_path / "out.csv", tmp_path / "whole.csv"
    assert score(reviews, model, out, "--resume", "--batch-size", "1", "-q").returncode == 2
    resumed = score(reviews, model, out, "--resume", "--on-null", "skip", "--batch-size", "auto", "-q")
    assert resumed.returncode == 0, resumed.stderr.decode()
    assert score(reviews, model, whole, "--on-null", "skip", "--batch-size", "auto", "-q").returncode == 0
    got, want = pd.read_csv(out), pd.read_csv(whole)
    assert list(got.columns) == list(want.columns) and got[["text", "pred"]].equals(want[["text", "pred"]])
    probabilities = ["p_positive", "p_negative", "entropy"]
    assert np.abs(got[probabilities].to_numpy() - want[probabilities].to_numpy()).max() <= 1e-6
