"""The cases of issue 13 as a user meets them on the command line: each broke a promise before.

Types that drift between JSONL chunks, damaged compressed and Parquet files, every row skipped,
``--input-format``, multi-line messages, ``--template`` escapes and ``calibrate --task``: either
exit 0 with every row, or exit 2 with one line naming the file and the place, nothing half-written.
"""

from __future__ import annotations

import gzip
import io
import json
import os

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from helpers.cli import assert_one_line_error, invoke, score
from helpers.generated import compress
from t5cls import LabelScorer
from t5cls.errors import InputError, one_line

LABELS = "positive,negative"


def drifting_rows(count: int = 12) -> list[dict]:
    """``late`` is null for 5 rows, then ints; ``mixed`` ints, then floats from row 8; ``flag`` bools."""
    return [
        {"id": i, "text": f"review {i}", "late": None if i < 5 else i, "mixed": i if i < 8 else i + 0.5, "flag": i > 3}
        for i in range(count)
    ]


def write_jsonl(path, rows):
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return path


# Types that drift between chunks -------------------------------------------------------------------


@pytest.mark.parametrize("chunk_size", [1, 3, 100])
def test_jsonl_types_drifting_between_chunks_make_one_parquet_schema(t5_dir, tmp_path, chunk_size):
    source = write_jsonl(tmp_path / "in.jsonl", drifting_rows())
    out = tmp_path / "out.parquet"
    result = score(t5_dir, source, "-o", out, "--chunk-size", chunk_size)
    assert result.returncode == 0, result.stderr
    table = pq.read_table(out)
    assert table.schema.field("late").type == pa.int64() and table.schema.field("mixed").type == pa.float64()
    expected = [{**row, "mixed": float(row["mixed"])} for row in drifting_rows()]
    assert table.select(["id", "text", "late", "mixed", "flag"]).to_pylist() == expected
    assert sorted(os.listdir(tmp_path)) == ["in.jsonl", "out.parquet"]


def test_drifting_jsonl_to_parquet_on_stdout(t5_dir, tmp_path):
    source = write_jsonl(tmp_path / "in.jsonl", drifting_rows())
    result = score(t5_dir, source, "--format", "parquet", "--chunk-size", 2)
    assert result.returncode == 0, result.stderr
    assert pq.read_table(io.BytesIO(result.stdout)).column("late").to_pylist() == [None] * 5 + list(range(5, 12))


def test_a_drifting_jsonl_run_stopped_then_resumed_gives_the_whole_output(t5_dir, tmp_path):
    from helpers.runs import StopAfter
    from t5cls.errors import Interrupted
    from t5cls.options import ScoreOptions
    from t5cls.run.job import score_file

    source = write_jsonl(tmp_path / "in.jsonl", drifting_rows())
    scorer = LabelScorer.from_pretrained(str(t5_dir), device="cpu")
    options = ScoreOptions(str(source), LABELS, str(tmp_path / "out.parquet"), chunk_rows=3)
    with pytest.raises(Interrupted):
        score_file(options, scorer, stop=StopAfter(1))  # rows 0-5 written: nulls only in column 'late'
    result = score(t5_dir, source, "-o", tmp_path / "out.parquet", "--chunk-size", 3, "--resume")
    assert result.returncode == 0, result.stderr
    whole = score(t5_dir, source, "-o", tmp_path / "whole.parquet", "--chunk-size", 3)
    assert whole.returncode == 0, whole.stderr
    assert pq.read_table(tmp_path / "out.parquet").equals(pq.read_table(tmp_path / "whole.parquet"))


def test_a_jsonl_column_of_mixed_kinds_is_kept_as_json(t5_dir, tmp_path):
    rows = [
        {"text": "a", "id": 7, "extra": {"k": [1, "x"]}},
        {"text": "b", "id": "007", "extra": None},
        {"text": "c", "id": True, "extra": []},
    ]
    source = write_jsonl(tmp_path / "in.jsonl", rows)
    result = score(t5_dir, source, "--format", "jsonl")
    assert result.returncode == 0, result.stderr
    written = [json.loads(line) for line in result.stdout.decode().splitlines()]
    assert [{key: row[key] for key in ("text", "id", "extra")} for row in written] == rows
    parquet = score(t5_dir, source, "--format", "parquet")
    table = pq.read_table(io.BytesIO(parquet.stdout))
    assert table.schema.field("id").type == pa.json_() and table.column("id").to_pylist() == ["7", '"007"', "true"]


# Damaged files -------------------------------------------------------------------------------------

CSV = b"id,text\n" + b"".join(b"%d,review number %d\n" % (i, i) for i in range(3000))


@pytest.mark.parametrize("codec", ["gz", "bz2", "zst"])
def test_a_truncated_compressed_csv_is_one_line_and_exit_2(t5_dir, tmp_path, codec):
    data = compress(CSV, codec)
    source = tmp_path / f"in.csv.{codec}"
    source.write_bytes(data[: len(data) * 2 // 3])
    out = tmp_path / "out.csv"
    assert_one_line_error(score(t5_dir, source, "-o", out), str(source), "line ", "damaged or cut short")
    assert set(os.listdir(tmp_path)) <= {source.name, ".out.csv.t5cls-parts"}  # the chunks read before stay resumable


def test_a_gz_file_that_is_not_gzip_is_one_line(t5_dir, tmp_path):
    source = tmp_path / "in.csv.gz"
    source.write_bytes(CSV)
    assert_one_line_error(score(t5_dir, source), str(source), "line 1", "damaged or cut short")


def test_a_truncated_gzip_jsonl_names_its_line(t5_dir, tmp_path):
    data = gzip.compress(b"".join(b'{"text": "review %d"}\n' % i for i in range(20000)))
    source = tmp_path / "in.jsonl.gz"
    source.write_bytes(data[: len(data) // 2])
    assert_one_line_error(score(t5_dir, source), str(source), "line ", "damaged or cut short")


def test_a_parquet_file_with_a_damaged_page_is_one_line(t5_dir, tmp_path):
    sink = io.BytesIO()
    pq.write_table(pa.table({"id": list(range(200)), "text": [f"row {i}" for i in range(200)]}), sink)
    data = sink.getvalue()
    source = tmp_path / "in.parquet"
    source.write_bytes(data[:4] + b"\xff" * 6 + data[10:])  # the first page header: pyarrow's message has 3 lines
    out = tmp_path / "out.parquet"
    assert_one_line_error(score(t5_dir, source, "-o", out, "--chunk-size", 30), str(source), "rows 1-30", "thrift")
    assert sorted(os.listdir(tmp_path)) == ["in.parquet"]


def test_a_file_that_is_not_parquet_is_one_line(t5_dir, tmp_path):
    source = tmp_path / "in.parquet"
    source.write_bytes(b"PAR1" + b"garbage" * 30 + b"PAR1")
    assert_one_line_error(score(t5_dir, source), str(source), "not a readable Parquet file")


@pytest.mark.parametrize(
    "line, fragment",
    [
        ('{"text": "a", "x": "\\ud800"}', "lone surrogate"),
        ('{"text": "a", "x": ' + "[" * 100_000 + "]" * 100_000 + "}", "nested too deeply"),
        ('["text", "a"]', "expected a JSON object per line"),
        ('{"text": "a"', "invalid JSON"),
    ],
    ids=["surrogate", "deep", "not-an-object", "cut-short"],
)
def test_jsonl_lines_no_table_can_hold_are_one_line(t5_dir, tmp_path, line, fragment):
    source = tmp_path / "in.jsonl"
    source.write_text('{"text": "fine"}\n' + line + "\n")
    assert_one_line_error(score(t5_dir, source, "-o", tmp_path / "out.csv"), str(source), "line 2", fragment)


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
    source.write_bytes(CSV[:100])
    assert_one_line_error(score(t5_dir, source), "internal error: ValueError: first line second line", code=1)


# Every row skipped: zero-row outputs ---------------------------------------------------------------

ADDED = ["p_positive", "p_negative", "pred", "entropy"]


@pytest.mark.parametrize("output", ["csv", "jsonl", "parquet", "stdout-csv", "stdout-jsonl", "stdout-parquet"])
@pytest.mark.parametrize("chunk_size", [1, 1000])
def test_every_row_skipped_gives_an_empty_output_with_the_columns(t5_dir, tmp_path, output, chunk_size):
    source = tmp_path / "in.csv"
    source.write_text("id,text\n1,\n2,   \n3,\t\n")
    fmt = output.removeprefix("stdout-")
    out = tmp_path / f"out.{fmt}"
    target = ["--format", fmt] if output.startswith("stdout") else ["-o", out]
    result = score(t5_dir, source, *target, "--on-null", "skip", "--chunk-size", chunk_size)
    assert result.returncode == 0, result.stderr
    assert "0 rows, 3 skipped" in result.stderr.decode()
    data = result.stdout if output.startswith("stdout") else out.read_bytes()
    if fmt == "csv":
        assert data == ("id,text," + ",".join(ADDED) + "\n").encode()
    elif fmt == "jsonl":
        assert data == b""
    else:
        schema = pq.read_table(io.BytesIO(data)).schema
        assert schema.names == ["id", "text", *ADDED] and schema.field("p_positive").type == pa.float64()
    assert set(os.listdir(tmp_path)) == ({"in.csv"} if output.startswith("stdout") else {"in.csv", out.name})


def test_a_chunk_whose_rows_are_all_skipped_between_kept_ones(t5_dir, tmp_path):
    source = tmp_path / "in.csv"
    source.write_text("id,text\n1,good\n2,\n3,\n4,bad\n")
    out = tmp_path / "out.csv"
    result = score(t5_dir, source, "-o", out, "--on-null", "skip", "--chunk-size", 1)
    assert result.returncode == 0, result.stderr
    assert [line.split(",")[0] for line in out.read_text().splitlines()] == ["id", "1", "4"]


def test_ray_refuses_files_whose_column_types_cannot_be_read_as_one_table(t5_dir, tmp_path):
    from t5cls.options import ModelOptions, RayOptions, ScoreOptions
    from t5cls.run.plan import ScorePlan
    from t5cls.run.ray import RayRunner

    (tmp_path / "data").mkdir()
    pq.write_table(pa.table({"id": [1, 2], "text": ["a", "b"]}), tmp_path / "data" / "a.parquet")
    pq.write_table(pa.table({"id": [None, None], "text": ["c", "d"]}), tmp_path / "data" / "b.parquet")  # null: fine
    pq.write_table(pa.table({"id": ["x", "y"], "text": ["e", "f"]}), tmp_path / "data" / "c.parquet")
    options = ScoreOptions(str(tmp_path / "data"), LABELS, str(tmp_path / "scored"))
    with pytest.raises(InputError, match=r"c\.parquet: column 'id' is string, but in .*a\.parquet it is int64"):
        RayRunner(ScorePlan.build(options, folder_output=True), ModelOptions(str(t5_dir)), RayOptions())  # no Ray yet


# --input-format ------------------------------------------------------------------------------------


def test_an_unknown_input_format_is_refused(t5_dir, tmp_path):
    source = tmp_path / "in.csv"
    source.write_bytes(CSV[:100])
    assert_one_line_error(score(t5_dir, source, "--input-format", "xlsx"), "--input-format", "'xlsx'", "csv")


@pytest.mark.parametrize("fmt", ["parquet", "jsonl"])
def test_parquet_and_jsonl_on_stdin_are_read(t5_dir, fmt):
    if fmt == "parquet":
        sink = io.BytesIO()
        pq.write_table(pa.table({"id": [1, 2, 3], "text": ["good", "bad", "meh"]}), sink)
        data = sink.getvalue()
    else:
        data = "".join(json.dumps(row) + "\n" for row in drifting_rows()).encode()
    result = score(t5_dir, "-", "--input-format", fmt, "--format", "jsonl", "--chunk-size", 2, stdin=data)
    assert result.returncode == 0, result.stderr
    rows = [json.loads(line) for line in result.stdout.decode().splitlines()]
    assert len(rows) == (3 if fmt == "parquet" else 12)
    reference = LabelScorer.from_pretrained(str(t5_dir), device="cpu")
    from t5cls.tasks.prompts import DEFAULT_TEMPLATE, PromptTemplate

    prompts = PromptTemplate(DEFAULT_TEMPLATE).render({"text": [row["text"] for row in rows]}, LABELS.split(","))
    expected = reference.score(prompts, LABELS.split(",")).probs
    np.testing.assert_allclose([[row["p_positive"], row["p_negative"]] for row in rows], expected, atol=1e-6)


# --template escapes --------------------------------------------------------------------------------


def test_template_escapes_are_read_as_toml_reads_them(t5_dir, tmp_path):
    source = tmp_path / "in.csv"
    source.write_text("id,text\n1,good\n2,bad\n")
    out = tmp_path / "out.parquet"
    result = score(t5_dir, source, "-o", out, "-t", r"Review:\t{text}\nSentiment \u00e9 \\n:")
    assert result.returncode == 0, result.stderr
    table = pq.read_table(out)
    template = "Review:\t{text}\nSentiment é \\n:"
    assert table.schema.metadata[b"t5cls.template"].decode() == template
    prompts = [template.format(text=text) for text in ("good", "bad")]
    expected = LabelScorer.from_pretrained(str(t5_dir), device="cpu").score(prompts, LABELS.split(",")).probs
    np.testing.assert_allclose(np.column_stack([table["p_positive"], table["p_negative"]]), expected, atol=1e-6)


@pytest.mark.parametrize("escape", [r"\q", "\\", r"\u12", r"\ud800", r"\U00110000"])
def test_a_bad_template_escape_is_one_line(t5_dir, tmp_path, escape):
    source = tmp_path / "in.csv"
    source.write_text("id,text\n1,good\n")
    assert_one_line_error(score(t5_dir, source, "-t", "{text}" + escape), "--template", "escape")


# calibrate ------------------------------------------------------------------------------------------


def test_calibrate_refuses_a_task_name_score_would_reject_before_loading_the_model(tmp_path):
    dev = tmp_path / "dev.csv"
    dev.write_text("text,label\ngood,positive\nbad,negative\n")
    out = tmp_path / "fitted.toml"
    result = invoke(
        "calibrate", dev, "--gold", "label", "-l", LABELS, "-o", out, "--task", "my task", "-m", "no-such/model"
    )
    assert_one_line_error(result, "--task", "'my task'", "letters, digits")  # exit 2: the model (exit 3) never loads
    assert not out.exists()


def test_calibrate_writes_its_config_whole_or_not_at_all(tmp_path, monkeypatch):
    from t5cls.eval import calibration
    from t5cls.tasks.config import write_config

    out = tmp_path / "fitted.toml"
    out.write_text("# the previous config\n")
    fitted = {"name": "sentiment", "template": "{text}", "labels": ["positive", "negative"], "temperature": 1.5}
    result = calibration.calibrate(np.log(np.array([[0.9, 0.1], [0.2, 0.8]])), np.array([0, 1]))

    def full_disk(descriptor):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", full_disk)
    with pytest.raises(OSError):
        write_config(str(out), [fitted], [calibration.fitted_comment(result, "dev.csv", "model")])
    assert out.read_text() == "# the previous config\n" and os.listdir(tmp_path) == ["fitted.toml"]
    monkeypatch.undo()
    write_config(str(out), [fitted], [calibration.fitted_comment(result, "dev.csv", "model")])
    assert 'name = "sentiment"' in out.read_text() and os.listdir(tmp_path) == ["fitted.toml"]
