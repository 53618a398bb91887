"""A training run killed at any moment resumes with --resume and ends exactly where an uninterrupted run ends."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
import tomllib

import pytest
import torch
from safetensors.torch import load_file

from helpers.cli import SINGLE_THREAD, assert_one_line_error, invoke, train_args
from t5cls.io.paths import sidecar

ROWS = 48  # 12 steps per epoch at 4 rows per step


@pytest.fixture(scope="module")
def labelled(tmp_path_factory):
    path = tmp_path_factory.mktemp("resume-data") / "train.csv"
    words = ["great", "terrible", "question"]
    labels = ["positive", "negative", "not sure"]
    lines = [f"the movie was {words[i % 3]} {i},{labels[i % 3]}" for i in range(ROWS)]
    path.write_text("text,label\n" + "\n".join(lines) + "\n")
    return path


def resume_args(model, source, out, *extra):
    """Five epochs of 12 steps at a learning rate that moves the model, quiet: long enough to be killed mid-run."""
    return train_args(model, source, out, "--lr", "1e-3", "-q", *extra, epochs=5)


@pytest.fixture(scope="module")
def uninterrupted(t5_dir, labelled, tmp_path_factory):
    out = tmp_path_factory.mktemp("uninterrupted") / "model"
    result = invoke(*resume_args(t5_dir, labelled, out))
    assert result.returncode == 0, result.stderr.decode()
    return out


def complete_checkpoints(out) -> list[int]:
    folder = sidecar(out, "train") / "checkpoints"
    steps = []
    for path in folder.glob("checkpoint-*"):
        try:
            json.loads((path / "trainer_state.json").read_text())
        except (OSError, ValueError):
            continue
        steps.append(int(path.name.split("-")[1]))
    return steps


def start_and_wait_for_a_checkpoint(args, out) -> subprocess.Popen:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", **SINGLE_THREAD}
    process = subprocess.Popen([sys.executable, "-m", "t5cls.cli", *map(str, args)], stderr=subprocess.PIPE, env=env)
    deadline = time.monotonic() + 300
    while not complete_checkpoints(out) and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    assert process.poll() is None, "the run finished before it could be interrupted; give it more steps"
    return process


def assert_same_model(out, reference):
    ours, theirs = load_file(out / "model.safetensors"), load_file(reference / "model.safetensors")
    assert ours.keys() == theirs.keys()
    for name in theirs:
        torch.testing.assert_close(ours[name], theirs[name], rtol=0, atol=1e-6, msg=name)
    # The same temperature, fitted on the same dev scores (the comments name the output folders, which differ).
    assert tomllib.loads((out / "t5cls.toml").read_text()) == tomllib.loads((reference / "t5cls.toml").read_text())


def test_sigkill_then_resume_ends_as_the_uninterrupted_run(t5_dir, labelled, uninterrupted, tmp_path):
    out = tmp_path / "model"
    process = start_and_wait_for_a_checkpoint(resume_args(t5_dir, labelled, out), out)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert not out.exists(), "a killed run must not leave a folder at the output path"
    changed = invoke(*resume_args(t5_dir, labelled, out, "--resume", "--seed", "1"))
    assert_one_line_error(changed, "cannot resume", "--seed changed (was 0, now 1)", "without --resume")
    resumed = invoke(*resume_args(t5_dir, labelled, out, "--resume"))
    assert resumed.returncode == 0, resumed.stderr.decode()
    report = json.loads((out / "training.json").read_text())
    assert report["optimisation"]["resumed_from_step"] in range(12, 60, 12)  # an epoch's checkpoint, not step 0
    assert_same_model(out, uninterrupted)
    assert not sidecar(out, "train").exists()


def test_sigterm_saves_a_checkpoint_mid_epoch_and_resume_finishes_the_same(t5_dir, labelled, uninterrupted, tmp_path):
    out = tmp_path / "model"
    process = start_and_wait_for_a_checkpoint(resume_args(t5_dir, labelled, out), out)
    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=300)
    assert process.returncode == 143, stderr.decode()
    assert "checkpoint kept, rerun the same command with --resume" in stderr.decode()
    stopped_at = int(stderr.decode().split("stopped at step ")[1].split(";")[0])
    assert stopped_at % 12 and stopped_at in complete_checkpoints(out) and not out.exists()
    resumed = invoke(*resume_args(t5_dir, labelled, out, "--resume"))
    assert resumed.returncode == 0, resumed.stderr.decode()
    assert json.loads((out / "training.json").read_text())["optimisation"]["resumed_from_step"] == stopped_at
    assert_same_model(out, uninterrupted)


def test_a_base_model_changed_in_place_is_not_resumed_from(t5_dir, labelled, tmp_path):
    base = tmp_path / "base"
    shutil.copytree(t5_dir, base)
    out = tmp_path / "model"
    process = start_and_wait_for_a_checkpoint(resume_args(base, labelled, out), out)
    process.send_signal(signal.SIGKILL)
    process.wait()
    config = json.loads((base / "config.json").read_text())
    (base / "config.json").write_text(json.dumps({**config, "dropout_rate": 0.2}))  # the same name, other files
    changed = invoke(*resume_args(base, labelled, out, "--resume"))
    assert_one_line_error(changed, "cannot resume", "the model's files changed", "without --resume")
    assert complete_checkpoints(out), "a refused resume must keep the checkpoint"
