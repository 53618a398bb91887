"""``t5cls train -o`` onto a filesystem that fills up: one line, exit 5, and ``--resume`` once there is room.

The Trainer's writes (``torch.save``, safetensors) fail with RuntimeError / SafetensorError, not
OSError; the run must still say what `score` says of a full disk. A real 1 MiB tmpfs, mounted in a
private mount namespace (root only: skipped elsewhere), holds the first checkpoint and not the second.
"""

from __future__ import annotations

import ctypes
import json
import os
import subprocess

import pytest

from helpers.cli import Result, assert_one_line_error, invoke, start_forked
from helpers.tiny_models import build_t5

CLONE_NEWNS = 0x00020000


@pytest.fixture
def small_model(tmp_path, monkeypatch):
    """A tiny T5 with a 400-piece tokenizer: checkpoints of about 650 KiB."""
    monkeypatch.setenv("T5CLS_TESTS_WITHOUT_SHARED", "1")
    return build_t5(tmp_path / "model")


def test_train_onto_a_full_tmpfs_is_exit_5_in_one_line_then_resumes(small_model, tmp_path):
    labelled = tmp_path / "train.csv"
    words, labels = ["great", "terrible", "so so"], ["positive", "negative", "not sure"]
    rows = "".join(f"the movie was {words[i % 3]} {i},{labels[i % 3]}\n" for i in range(48))
    labelled.write_text("text,label\n" + rows)
    disk = tmp_path / "disk"
    disk.mkdir()
    out = disk / "out"
    args = ["train", labelled, "-l", ",".join(labels), "--gold", "label", "-m", small_model, "-o", out]
    args += ["--device", "cpu", "--epochs", "2", "--batch-size", "8", "-q"]  # a checkpoint at steps 6 and 12

    def run() -> int:
        if ctypes.CDLL(None, use_errno=True).unshare(CLONE_NEWNS) != 0:
            return 77
        subprocess.run(["mount", "--make-rprivate", "/"], check=True)  # nothing mounted here is seen outside
        subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", disk], check=True)
        failed = invoke(*args)
        (tmp_path / "err").write_bytes(failed.stderr)
        checkpoints = sorted(p.name for p in (disk / ".out.t5cls-train" / "checkpoints").iterdir())
        (tmp_path / "state").write_text(json.dumps([failed.returncode, checkpoints, out.exists()]))
        subprocess.run(["mount", "-o", "remount,size=16m", disk], check=True)
        resumed = invoke(*args, "--resume")
        (tmp_path / "report.json").write_bytes((out / "training.json").read_bytes())
        return resumed.returncode

    code = os.waitstatus_to_exitcode(os.waitpid(start_forked(run), 0)[1])
    if code == 77:
        pytest.skip("needs unshare(CLONE_NEWNS): root")
    returncode, checkpoints, published = json.loads((tmp_path / "state").read_text())
    assert_one_line_error(
        Result(returncode, b"", (tmp_path / "err").read_bytes()),
        f"t5cls: error: {disk}/.out.t5cls-train/checkpoints/checkpoint-12: cannot write: No space left on device; ",
        f"free space on {disk} (or raise the quota), then rerun with --resume",
        code=5,
    )
    assert checkpoints == ["checkpoint-6"] and not published  # the half-written checkpoint went, the whole one stays
    assert code == 0
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["optimisation"]["resumed_from_step"] == 6 and report["optimisation"]["steps"] == 12
