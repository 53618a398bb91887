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

from helpers.cli import SINGLE_THREAD, assert_one_line_error, csv_rows, invoke, run_cli

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


@pytest.fixture
def null_at_row_3(tmp_path):
    path = tmp_path / "nulls.csv"
    path.write_text("id,text\n1,good\n2,bad\n3,\n4,fine\n")
    return path


def score_to(model, source, out, *extra):
    return invoke("score", source, "-l", "positive,negative", "-m", model, "-o", out, "--chunk-size", "1", *extra)


def test_resume_after_the_null_error_with_its_advice_continues(t5_dir, null_at_row_3, tmp_path):
    out = tmp_path / "out.csv"
    assert_one_line_error(score_to(t5_dir, null_at_row_3, out), "row 3", "--on-null")
    checkpoint = json.loads((tmp_path / ".out.csv.t5cls-parts" / "checkpoint.json").read_text())
    assert len(checkpoint["parts"]) == 2
    resumed = score_to(t5_dir, null_at_row_3, out, "--resume", "--on-null", "skip")
    assert resumed.returncode == 0, resumed.stderr
    fresh = tmp_path / "fresh.csv"
    assert score_to(t5_dir, null_at_row_3, fresh, "--on-null", "skip").returncode == 0
    assert out.read_bytes() == fresh.read_bytes()
    assert [row["id"] for row in csv_rows(out.read_bytes())] == ["1", "2", "4"]


def test_a_refused_resume_names_the_flags_and_both_values(t5_dir, null_at_row_3, tmp_path):
    out = tmp_path / "out.csv"
    score_to(t5_dir, null_at_row_3, out)
    refused = invoke(
        "score", null_at_row_3, "-l", "positive, neutral", "-m", t5_dir, "-o", out, "--chunk-size", "2", "--resume"
    )
    assert_one_line_error(
        refused,
        "--chunk-size changed (was 1, now 2)",
        "--labels changed (was positive,negative, now positive,neutral)",
        "rerun without --resume to start over (the 2 finished chunks are scored again)",
    )
    assert "chunk_rows" not in refused.stderr.decode()


def test_resume_of_a_finished_identical_run_is_up_to_date(t5_dir, short_reviews, tmp_path, monkeypatch):
    out = tmp_path / "out.csv"
    assert score_to(t5_dir, short_reviews, out, "--resume").returncode == 0
    written = out.read_bytes(), out.stat().st_mtime_ns

    from t5cls.models.scorer import LabelScorer

    def no_loading(*_, **__):
        raise AssertionError("an up-to-date run must not load the model")

    monkeypatch.setattr(LabelScorer, "from_options", no_loading)
    again = score_to(t5_dir, short_reviews, out, "--resume")
    assert again.returncode == 0, again.stderr
    assert b"is up to date" in again.stderr
    assert (out.read_bytes(), out.stat().st_mtime_ns) == written
    monkeypatch.undo()

    changed = score_to(t5_dir, short_reviews, out, "--resume", "--logprobs")  # another option: scored again
    assert changed.returncode == 0 and b"up to date" not in changed.stderr
    assert "logp_positive" in csv_rows(out.read_bytes())[0]
    os.utime(out, ns=(1, 1))  # the output touched since: scored again
    touched = score_to(t5_dir, short_reviews, out, "--resume", "--logprobs")
    assert touched.returncode == 0 and b"up to date" not in touched.stderr
    assert score_to(t5_dir, short_reviews, out).returncode == 0  # without --resume: no record left behind
    assert not (tmp_path / ".out.csv.t5cls-done").exists()
