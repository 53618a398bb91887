"""A new user's first hour (issue 22): labels as typed, usage errors before the heavy imports, model paths,
resume that names what changed and knows when it is up to date, eval's task names, output folders."""

from __future__ import annotations

import csv
import io
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from helpers.cli import SINGLE_THREAD, assert_one_line_error, invoke, run_cli
from t5cls import __version__
from t5cls.errors import OptionError
from t5cls.eval.calibration import bound_warning, calibrate
from t5cls.tasks.labels import parse_labels


@pytest.fixture
def reviews(tmp_path):
    path = tmp_path / "reviews.csv"
    path.write_text("id,text\n1,good\n2,bad\n3,fine\n")
    return path


def rows(data: bytes) -> list[dict]:
    return list(csv.DictReader(io.StringIO(data.decode())))


# Item 3: labels are stripped around commas.


def test_labels_typed_with_spaces_are_the_labels_without_them(t5_dir, reviews):
    spaced = invoke("score", reviews, "-l", " positive ,  negative", "-m", t5_dir)
    plain = invoke("score", reviews, "-l", "positive,negative", "-m", t5_dir)
    assert spaced.returncode == 0, spaced.stderr
    assert spaced.stdout == plain.stdout
    assert {row["pred"] for row in rows(spaced.stdout)} <= {"positive", "negative"}


def test_a_list_of_labels_keeps_its_spaces():
    assert parse_labels("a, b ,c") == ["a", "b", "c"]
    assert parse_labels([" a", "b"]) == [" a", "b"]  # a decoder-only word boundary, on purpose
    with pytest.raises(OptionError, match="given twice"):
        parse_labels("a, a")


# Item 4: mistakes that need no model are reported before torch or transformers is imported.

PROBE = """
import sys
from t5cls.cli import main
sys.argv = ["t5cls", *sys.argv[1:]]
try:
    main()
finally:
    heavy = sorted(name for name in ("torch", "transformers") if name in sys.modules)
    print("imported:", ",".join(heavy) or "nothing", file=sys.stderr)
"""


def run_probe(*args, cwd) -> subprocess.CompletedProcess:
    """``t5cls ARGS`` in a real process that says at exit whether it imported torch or transformers."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1", **SINGLE_THREAD}
    command = [sys.executable, "-c", PROBE, *map(str, args)]
    return subprocess.run(command, capture_output=True, env=env, cwd=cwd, timeout=120)


@pytest.mark.parametrize(
    "args, fragment",
    [
        (["--text-column", "body"], "no text column 'body'"),
        (["-m", "./models/typo"], "--model ./models/typo: no such folder"),
        (["-m", "/nonexistent/model"], "--model /nonexistent/model: no such folder"),
        (["-m", "empty-folder"], "the folder has no config.json"),
        (["-m", "models/typo"], "--model models/typo: no such folder"),
        (["--on-null", "skp"], "choose error, skip or empty"),
        (["-o", "a-file/out.csv"], "cannot create the output folder"),
    ],
    ids=["text-column", "dot-path", "absolute-path", "empty-folder", "under-existing-folder", "on-null", "output"],
)
def test_usage_errors_come_before_the_heavy_imports(reviews, tmp_path, args, fragment):
    (tmp_path / "models").mkdir()
    (tmp_path / "empty-folder").mkdir()
    (tmp_path / "a-file").write_text("x")
    result = run_probe("score", reviews, "-l", "positive,negative", *args, cwd=tmp_path)
    *lines, imported = result.stderr.decode().strip().splitlines()
    assert imported == "imported: nothing"
    assert_one_line_error(subprocess.CompletedProcess([], result.returncode, b"", "\n".join(lines).encode()), fragment)


def test_a_hub_name_is_not_taken_for_a_path(tmp_path, monkeypatch):
    from t5cls.options import looks_like_path

    monkeypatch.chdir(tmp_path)
    assert not looks_like_path("google/flan-t5-small")
    assert looks_like_path("./x") and looks_like_path("~/x") and looks_like_path("/x")
    (tmp_path / "google").mkdir()
    assert looks_like_path("google/flan-t5-small")  # a folder of that name is there: a path is meant


# Item 5: resume names the changed flags, follows the null error's advice, and knows a finished run.


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
    assert [row["id"] for row in rows(out.read_bytes())] == ["1", "2", "4"]


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


def test_resume_of_a_finished_identical_run_is_up_to_date(t5_dir, reviews, tmp_path, monkeypatch):
    out = tmp_path / "out.csv"
    assert score_to(t5_dir, reviews, out, "--resume").returncode == 0
    written = out.read_bytes(), out.stat().st_mtime_ns

    from t5cls.models.scorer import LabelScorer

    def no_loading(*_, **__):
        raise AssertionError("an up-to-date run must not load the model")

    monkeypatch.setattr(LabelScorer, "from_options", no_loading)
    again = score_to(t5_dir, reviews, out, "--resume")
    assert again.returncode == 0, again.stderr
    assert b"is up to date" in again.stderr
    assert (out.read_bytes(), out.stat().st_mtime_ns) == written
    monkeypatch.undo()

    changed = score_to(t5_dir, reviews, out, "--resume", "--logprobs")  # another option: scored again
    assert changed.returncode == 0 and b"up to date" not in changed.stderr
    assert "logp_positive" in rows(out.read_bytes())[0]
    os.utime(out, ns=(1, 1))  # the output touched since: scored again
    touched = score_to(t5_dir, reviews, out, "--resume", "--logprobs")
    assert touched.returncode == 0 and b"up to date" not in touched.stderr
    assert score_to(t5_dir, reviews, out).returncode == 0  # without --resume: no record left behind
    assert not (tmp_path / ".out.csv.t5cls-done").exists()


# Item 6: eval finds the only task, names the tasks it sees, refuses multi-label tasks by name.


def scored_file(path, header: str, *lines: str):
    path.write_text(header + "\n" + "\n".join(lines) + "\n")
    return path


def test_eval_uses_the_only_task_of_the_file(tmp_path):
    path = scored_file(
        tmp_path / "scored.csv",
        "text,label,default_p_yes,default_p_no,default_pred,default_entropy",
        "a,yes,0.75,0.25,yes,0.56",
        "b,no,0.5,0.5,yes,0.69",
    )
    result = invoke("eval", path, "--gold", "label", "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["task"] == "default" and report["labels"] == ["yes", "no"] and report["accuracy"] == 0.5


def test_eval_names_the_tasks_it_sees(tmp_path):
    path = scored_file(
        tmp_path / "scored.csv",
        "text,label,topic_p_a,topic_p_b,topic_entropy,mood_p_x,mood_p_y,mood_entropy",
        "t,a,0.5,0.5,0.69,0.5,0.5,0.69",
    )
    assert_one_line_error(invoke("eval", path, "--gold", "label"), "tasks topic, mood: choose one with --task")
    assert_one_line_error(invoke("eval", path, "--gold", "label", "--task", "topc"), "tasks in the file: topic, mood")


def test_eval_refuses_a_multi_label_task_by_name(tmp_path):
    path = scored_file(
        tmp_path / "scored.csv",
        "text,label,aspects_p_food,aspects_p_service,aspects_p_price,aspects_pred,aspects_entropy",
        't,food,0.9,0.8,0.1,"food,service",1.1',
    )
    assert_one_line_error(invoke("eval", path, "--gold", "label"), "task 'aspects' is multi-label")


def test_eval_refuses_a_regression_task_by_name(tmp_path):
    path = scored_file(
        tmp_path / "scored.csv",
        "text,stars,rating_p_low,rating_p_high,rating_pred,rating_entropy,rating_expected,rating_std",
        "t,4.5,0.2,0.8,high,0.5,4.2,1.6",
    )
    assert_one_line_error(invoke("eval", path, "--gold", "stars"), "task 'rating' is a regression task")


def test_a_temperature_at_a_bound_is_flagged():
    gold = np.array([0, 1] * 20)
    informative = np.where(np.eye(2)[gold] > 0, 0.0, -5.0)  # the gold class always scores higher
    assert "lower bound" in bound_warning(calibrate(informative, gold))
    assert "carry no information" in bound_warning(calibrate(-informative, gold))  # always lower
    noisy = informative + np.random.default_rng(0).normal(0, 4, informative.shape)
    assert bound_warning(calibrate(noisy, gold)) is None


# Item 7: missing parent folders of an output are created.


def test_missing_output_folders_are_created(t5_dir, reviews, tmp_path):
    out = tmp_path / "new" / "deeper" / "scored.csv"
    result = invoke("score", reviews, "-l", "positive,negative", "-m", t5_dir, "-o", out)
    assert result.returncode == 0, result.stderr
    assert [row["id"] for row in rows(out.read_bytes())] == ["1", "2", "3"]


# Item 8: the smaller ones.


def test_version_and_help_texts():
    version = invoke("--version")
    assert version.returncode == 0 and version.stdout.decode() == f"t5cls {__version__}\n"
    score_help = invoke("score", "--help").stdout.decode()
    flags = [line for line in score_help.splitlines() if "<bool>" in line]
    assert [line for line in flags if "--help" not in line] == []  # Typer's own --help aside
    assert "INPUT" in score_help and ".bz2" in score_help
    wide = {"COLUMNS": "300", "TERMINAL_WIDTH": "300"}
    assert "or 'auto' (16 rows)" in invoke("train", "--help", env=wide).stdout.decode()


def test_every_exported_name_resolves_and_the_readme_imports_only_exported_names():
    import t5cls

    expected = {
        "LabelScorer",
        "LabelScores",
        "LocalRunner",
        "ModelOptions",
        "NumericError",
        "ScoreOptions",
        "ScorePlan",
        "__version__",
        "open_input",
        "score_file",
        "score_frame",
    }
    assert set(t5cls.__all__) == expected and len(t5cls.__all__) == len(expected)
    for name in expected - {"__version__"}:
        assert getattr(t5cls, name).__name__ == name
    readme = (Path(__file__).parents[1] / "README.md").read_text()
    imported = re.findall(r"^(?:>>> )?from t5cls import (.+)$", readme, flags=re.MULTILINE)
    assert imported and {name.strip() for line in imported for name in line.split(",")} <= expected


def test_inspect_prints_even_digits_and_says_what_it_wrote(tmp_path):
    path = scored_file(tmp_path / "scored.csv", "text,p_a,p_b,pred,entropy", "x,0.5,0.5,a,0.6931471805599453")
    shown = invoke("inspect", path, "--highest-entropy", "1").stdout.decode()
    assert "0.5000" in shown and "0.6931" in shown
    written = invoke("inspect", path, "--highest-entropy", "1", "-o", tmp_path / "top.csv")
    assert written.returncode == 0 and written.stderr.decode() == f"t5cls: wrote {tmp_path / 'top.csv'}\n"


def test_a_folder_as_input_points_to_the_ray_engine(t5_dir, tmp_path):
    (tmp_path / "parts").mkdir()
    assert_one_line_error(invoke("score", tmp_path / "parts", "-l", "a,b", "-m", t5_dir), "is a folder", "--engine ray")


def test_jsonl_on_stdin_is_recognised_and_its_bools_are_written_as_json_spells_them(t5_dir, tmp_path):
    lines = b'{"text": "good", "flag": true}\n{"text": "bad", "flag": false}\n'
    piped = run_cli("score", "-", "-l", "positive,negative", "-m", t5_dir, stdin=lines)
    assert piped.returncode == 0, piped.stderr
    (tmp_path / "in.jsonl").write_bytes(lines)
    named = invoke("score", tmp_path / "in.jsonl", "-l", "positive,negative", "-m", t5_dir)
    assert piped.stdout == named.stdout
    assert [(row["text"], row["flag"]) for row in rows(piped.stdout)] == [("good", "true"), ("bad", "false")]
