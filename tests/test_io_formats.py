"""`t5cls.io.formats`: ``--input-format`` names a format, stdin is read in it, an output folder is refused as one."""

from __future__ import annotations

import io
import json

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from helpers.cli import SCORE_LABELS, assert_one_line_error, invoke, score
from helpers.generated import NUMBERED_CSV, drifting_rows
from t5cls import LabelScorer
from t5cls.errors import InputError
from t5cls.io.formats import file_name_suffix, output_format


def test_an_unknown_input_format_is_refused(t5_dir, tmp_path):
    source = tmp_path / "in.csv"
    source.write_bytes(NUMBERED_CSV[:100])
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

    prompts = PromptTemplate(DEFAULT_TEMPLATE).render({"text": [row["text"] for row in rows]}, SCORE_LABELS.split(","))
    expected = reference.score(prompts, SCORE_LABELS.split(",")).probs
    np.testing.assert_allclose([[row["p_positive"], row["p_negative"]] for row in rows], expected, atol=1e-6)


@pytest.mark.parametrize("name", ["some_folder/", "existing"])
def test_an_output_that_is_a_folder_is_named_a_folder(tmp_path, name):
    (tmp_path / "existing").mkdir()
    path = f"{tmp_path}/{name}"
    with pytest.raises(InputError, match="names a folder; name an output file in it"):
        output_format(path)


def test_the_cli_says_the_output_is_a_folder(tmp_path):
    (tmp_path / "in.csv").write_text("text\ngood\n")
    (tmp_path / "some_folder").mkdir()
    result = invoke("score", "in.csv", "-l", "a,b", "-m", "unused", "-o", "some_folder/", cwd=tmp_path)
    assert_one_line_error(result, "some_folder/: names a folder", "some_folder/scored.csv", "--engine ray")


@pytest.mark.parametrize(
    "name, suffix",
    [("o/r1.csv", ".csv"), ("o/r1.JSONL.gz", ".jsonl.gz"), ("s3://b/x.json?region=x", ".json"), ("o/r4/", None),
     ("o/scored.parquet", None), ("scored", None)],
)  # fmt: skip
def test_file_name_suffix_names_text_formats_only(name, suffix):
    assert file_name_suffix(name) == suffix
