"""`t5cls.io.paths.Destination`: the output's kind, decided once for the plan, the runner, the lock and the record."""

from __future__ import annotations

import os

import pytest

from t5cls.io.paths import Destination
from t5cls.options import ScoreOptions
from t5cls.run.plan import ScorePlan


@pytest.mark.parametrize(
    ("output", "folder", "kind", "lockable"),
    [
        (None, False, "stdout", False),
        ("-", False, "stdout", False),
        ("s3://bucket/out.parquet", False, "uri", False),
        ("s3://bucket/scored", True, "folder", False),
        ("scored", True, "folder", True),
    ],
)
def test_the_kind_of_an_output(output, folder, kind, lockable):
    destination = Destination.of(output, folder=folder)
    assert (destination.kind, destination.lockable) == (kind, lockable)
    assert destination.target == (None if kind == "stdout" else output)


def test_a_local_file_a_file_uri_and_a_fifo(tmp_path):
    path = tmp_path / "out.csv"
    assert Destination.of(str(path)) == Destination("file", str(path))
    assert Destination.of(f"file://{path}") == Destination("file", str(path))  # a local path, locked and resumable
    assert Destination.of(str(path)).lockable
    os.mkfifo(tmp_path / "pipe")
    assert Destination.of(str(tmp_path / "pipe")) == Destination("stream", str(tmp_path / "pipe"))
    assert not Destination.of(str(tmp_path / "pipe")).lockable


def test_the_plan_carries_the_destination_it_checked(tmp_path):
    (tmp_path / "in.csv").write_text("text\na\n")
    options = ScoreOptions(str(tmp_path / "in.csv"), ("a", "b"), f"file://{tmp_path}/out.csv")
    plan = ScorePlan.build(options)
    assert plan.destination == Destination("file", f"{tmp_path}/out.csv")
    assert plan.options.output == plan.destination.target
    assert ScorePlan.build(ScoreOptions(str(tmp_path / "in.csv"), ("a", "b"))).destination.kind == "stdout"
