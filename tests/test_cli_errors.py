"""Every bad input ends with one line on stderr, a non-zero exit, and no output file."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from helpers.cli import SINGLE_THREAD, assert_one_line_error, invoke, run_cli, score
from helpers.generated import NUMBERED_CSV
from t5cls import LabelScorer
from t5cls.errors import InputError, one_line


@pytest.fixture
def good_csv(tmp_path):
    path = tmp_path / "in.csv"
    path.write_text("id,text\n1,good\n2,bad\n")
    return path


@pytest.mark.parametrize(
    "content, fragments",
    [
        (b'id,text\n1,good\n2,"never closed\n3,bad\n', ["line 3", "unclosed quote"]),
        (b"id,text\n1,good\n2,bad,extra\n", ["line 3", "expected 2 fields", "got 3"]),
        (b"id,text\n1,good\n2,caf\xe9\n", ["line 3", "not UTF-8"]),
        (b"id,body\n1,good\n", ["no text column 'text'", "columns are: id, body", "--text-column"]),
        (b"id,text\n1,good\n2,\n", ["row 2", "column 'text' is empty or null", "--on-null"]),
        (b"", ["empty CSV file"]),
        (b"id,id\n1,2\n", ["column 'id' appears twice"]),
    ],
    ids=[
        "unclosed-quote",
        "ragged-row",
        "non-utf8",
        "missing-text-column",
        "null-text",
        "empty-file",
        "duplicate-column",
    ],
)
def test_bad_csv_input(t5_dir, tmp_path, content, fragments):
    source = tmp_path / "bad.csv"
    source.write_bytes(content)
    out = tmp_path / "out.csv"
    assert_one_line_error(score(t5_dir, source, "-o", out), str(source), *fragments)
    assert not out.exists()


def test_bad_jsonl_line(t5_dir, tmp_path):
    source = tmp_path / "bad.jsonl"
    source.write_text('{"text": "good"}\n{"text": oops}\n')
    assert_one_line_error(score(t5_dir, source), "line 2", "invalid JSON")


@pytest.mark.parametrize(
    "labels, fragment",
    [
        ("positive,,negative", "label 2 is empty"),
        ("positive,positive", "given twice"),
        ("☃,☄", "tokenize to the same ids"),
    ],
)
def test_bad_labels(t5_dir, good_csv, labels, fragment):
    assert_one_line_error(score(t5_dir, good_csv, labels=labels), fragment)


def test_unknown_template_placeholder(t5_dir, good_csv):
    assert_one_line_error(score(t5_dir, good_csv, "-t", "{text} {topic}"), "{topic}", "columns are: id, text")


def test_missing_and_non_file_input(t5_dir, tmp_path):
    assert_one_line_error(score(t5_dir, tmp_path / "nope.csv"), "nope.csv: no such file")
    (tmp_path / "folder.csv").mkdir()
    assert_one_line_error(score(t5_dir, tmp_path / "folder.csv"), "not a regular file")


def test_output_problems(t5_dir, good_csv, tmp_path):
    (tmp_path / "a-file").write_text("x")
    assert_one_line_error(
        score(t5_dir, good_csv, "-o", tmp_path / "a-file" / "out.csv"), "cannot create the output folder"
    )
    assert_one_line_error(score(t5_dir, good_csv, "-o", good_csv), "output path is the input file")
    assert_one_line_error(score(t5_dir, good_csv, "-o", tmp_path / "out.xlsx"), "unsupported output extension")
    assert good_csv.read_text() == "id,text\n1,good\n2,bad\n"


def test_unsupported_input_extension(t5_dir, tmp_path):
    (tmp_path / "in.xlsx").write_text("x")
    assert_one_line_error(score(t5_dir, tmp_path / "in.xlsx"), "unsupported input extension")


def test_unknown_model_offline_exits_3_and_says_how_to_use_a_folder(good_csv):
    # A real process: the exit code and the single stderr line are what a shell script sees.
    result = run_cli("score", good_csv, "-l", "a,b", "-m", "no-such-org/no-such-model")
    assert_one_line_error(result, "could not load model 'no-such-org/no-such-model'", "--model", code=3)


def test_bad_option_values(t5_dir, good_csv):
    assert_one_line_error(score(t5_dir, good_csv, "--on-null", "maybe"), "--on-null")
    assert_one_line_error(score(t5_dir, good_csv, "--batch-size", "lots"), "--batch-size")
    assert_one_line_error(score(t5_dir, good_csv, "--device", "tpu"), "unknown device")
    assert_one_line_error(score(t5_dir, good_csv, "--resume"), "--resume needs an output file")


def test_non_finite_scores_are_refused(t5_dir, monkeypatch):
    import torch

    from t5cls.errors import NumericError

    scorer = LabelScorer.from_pretrained(str(t5_dir), device="cpu")
    monkeypatch.setattr(
        scorer.backend, "label_logprobs", lambda ids, mask, trie: torch.full((len(ids), 2), float("nan"))
    )
    with pytest.raises(NumericError, match="bfloat16 or float32"):
        scorer.score(["good"], ["positive", "negative"])


def test_bad_row_deep_in_the_file_leaves_no_output(t5_dir, tmp_path):
    source = tmp_path / "in.csv"
    source.write_text("id,text\n" + "".join(f"{i},row {i}\n" for i in range(25)) + "25,a,b\n")
    out = tmp_path / "out.csv"
    out.write_text("previous results\n")
    result = score(t5_dir, source, "-o", out, "--chunk-size", "5")
    assert_one_line_error(result, "line 27", "expected 2 fields")
    assert out.read_text() == "previous results\n"


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
def test_usage_errors_come_before_the_heavy_imports(short_reviews, tmp_path, args, fragment):
    (tmp_path / "models").mkdir()
    (tmp_path / "empty-folder").mkdir()
    (tmp_path / "a-file").write_text("x")
    result = run_probe("score", short_reviews, "-l", "positive,negative", *args, cwd=tmp_path)
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


def test_a_folder_as_input_points_to_the_ray_engine(t5_dir, tmp_path):
    (tmp_path / "parts").mkdir()
    assert_one_line_error(invoke("score", tmp_path / "parts", "-l", "a,b", "-m", t5_dir), "is a folder", "--engine ray")


def test_messages_are_folded_onto_one_line():
    assert str(InputError("in.parquet: cannot read (Couldn't deserialize\nDeserializing failed.\n)")) == (
        "in.parquet: cannot read (Couldn't deserialize Deserializing failed. )"
    )
    assert one_line("a\r\n  b\n\nc") == "a b c"


def test_an_internal_error_is_one_line_with_exit_1(t5_dir, tmp_path, monkeypatch):
    from t5cls.run.local import LocalRunner

    def broken(*args, **kwargs):
        raise ValueError("first line\nsecond line")

    monkeypatch.setattr(LocalRunner, "run", broken)
    source = tmp_path / "in.csv"
    source.write_bytes(NUMBERED_CSV[:100])
    assert_one_line_error(score(t5_dir, source), "internal error: ValueError: first line second line", code=1)
