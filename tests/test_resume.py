"""Kill -9 at any moment, rerun with --resume, and get exactly the uninterrupted output."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pyarrow.parquet as pq
import pytest

from helpers.cli import SINGLE_THREAD, run_cli

ROWS = 300
CHUNK = "10"


@pytest.fixture(scope="module")
def big_csv(tmp_path_factory):
    path = tmp_path_factory.mktemp("resume") / "big.csv"
    lines = ["id,text"] + [
        f'{i:05d},"row {i}: {"good " * (i % 7)}, ""quoted"" and\nnewline {"bad " * (i % 5)}"' for i in range(ROWS)
    ]
    path.write_text("\n".join(lines) + "\n")
    return path


def score_args(model, source, out, *extra):
    return [
        "score",
        source,
        "-l",
        "positive,negative,not sure",
        "-m",
        model,
        "-o",
        out,
        "--chunk-size",
        CHUNK,
        "--batch-size",
        "2",
        "-q",
        *extra,
    ]


def start(args):
    env = {**os.environ, "HF_HUB_OFFLINE": "1", **SINGLE_THREAD}
    return subprocess.Popen(
        [sys.executable, "-m", "t5cls.cli", *map(str, args)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env
    )


def parts_done(out):
    checkpoint = out.with_name(f".{out.name}.t5cls-parts") / "checkpoint.json"
    try:
        return len(json.loads(checkpoint.read_text())["parts"])
    except (OSError, ValueError):
        return 0


def run_until_parts(args, out, parts):
    """Start a run and return it once ``parts`` chunks are checkpointed (0: as soon as it starts)."""
    process = start(args)
    deadline = time.monotonic() + 120
    while parts_done(out) < parts and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.005)
    assert process.poll() is None, "the run finished before it could be interrupted; make the input bigger"
    return process


@pytest.fixture(scope="module")
def reference_outputs(t5_dir, big_csv, tmp_path_factory):
    folder = tmp_path_factory.mktemp("reference")
    outputs = {}
    for fmt in ("csv", "jsonl", "parquet"):
        outputs[fmt] = folder / f"ref.{fmt}"
        assert run_cli(*score_args(t5_dir, big_csv, outputs[fmt])).returncode == 0
    return outputs


@pytest.mark.parametrize("fmt, kill_after_parts", [("csv", 0), ("csv", 1), ("csv", 7), ("jsonl", 3), ("parquet", 4)])
def test_sigkill_then_resume_gives_identical_output(
    t5_dir, big_csv, tmp_path, reference_outputs, fmt, kill_after_parts
):
    out = tmp_path / f"out.{fmt}"
    process = run_until_parts(score_args(t5_dir, big_csv, out), out, kill_after_parts)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert not out.exists(), "a killed run must not leave a file at the output path"
    resumed = run_cli(*score_args(t5_dir, big_csv, out, "--resume"))
    assert resumed.returncode == 0, resumed.stderr
    if fmt == "parquet":
        assert pq.read_table(out).equals(pq.read_table(reference_outputs[fmt]))
    else:
        assert out.read_bytes() == reference_outputs[fmt].read_bytes()
    hidden = [path.name for path in tmp_path.glob(".*")]  # checkpoint folder and temp files are gone:
    assert hidden == [f".out.{fmt}.t5cls-done"]  # only the record that makes the next --resume a no-op


@pytest.mark.parametrize("sig, code", [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_stop_signal_finishes_the_chunk_keeps_checkpoint_and_exits(
    t5_dir, big_csv, tmp_path, reference_outputs, sig, code
):
    out = tmp_path / "out.csv"
    process = run_until_parts(score_args(t5_dir, big_csv, out), out, 2)
    process.send_signal(sig)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == code, stderr
    assert "rerun the same command with --resume" in stderr.decode()
    assert parts_done(out) >= 2 and not out.exists()
    assert run_cli(*score_args(t5_dir, big_csv, out, "--resume")).returncode == 0
    assert out.read_bytes() == reference_outputs["csv"].read_bytes()


def test_resume_refuses_a_changed_input_or_option(t5_dir, big_csv, tmp_path):
    source = tmp_path / "in.csv"
    source.write_bytes(big_csv.read_bytes())
    out = tmp_path / "out.csv"
    process = run_until_parts(score_args(t5_dir, source, out), out, 1)
    process.send_signal(signal.SIGKILL)
    process.wait()
    changed_option = run_cli(*score_args(t5_dir, source, out, "--resume", "--logprobs"))
    assert changed_option.returncode == 2 and b"--logprobs changed (was false, now true)" in changed_option.stderr
    with open(source, "a") as stream:
        stream.write("99999,one more row\n")
    changed_input = run_cli(*score_args(t5_dir, source, out, "--resume"))
    assert changed_input.returncode == 2 and b"input file changed" in changed_input.stderr


def test_sigpipe_ends_quietly(t5_dir, big_csv):
    pipeline = (
        f"{sys.executable} -m t5cls.cli score {big_csv} -l a,b -m {t5_dir} --chunk-size 5 | head -c 100 >/dev/null"
    )
    result = subprocess.run(
        ["bash", "-o", "pipefail", "-c", pipeline],
        capture_output=True,
        timeout=120,
        env={**os.environ, "HF_HUB_OFFLINE": "1", **SINGLE_THREAD},
    )
    assert result.stderr == b""
    assert result.returncode in (0, 128 + signal.SIGPIPE)
