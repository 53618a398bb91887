"""`t5cls.io.jsonl`: JSONL whose types drift between chunks is read as one table, one schema."""

from __future__ import annotations

import io
import json
import os

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from helpers.cli import SCORE_LABELS, score
from helpers.generated import drifting_rows, write_jsonl
from t5cls import LabelScorer


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
    options = ScoreOptions(str(source), SCORE_LABELS, str(tmp_path / "out.parquet"), chunk_rows=3)
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
