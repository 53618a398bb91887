"""`t5cls.io.writers` and outputs when every row is skipped: an empty output that still has every column."""

from __future__ import annotations

import io
import os

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from helpers.cli import SCORE_LABELS, score
from t5cls.errors import InputError

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
    options = ScoreOptions(str(tmp_path / "data"), SCORE_LABELS, str(tmp_path / "scored"))
    with pytest.raises(InputError, match=r"c\.parquet: column 'id' is string, but in .*a\.parquet it is int64"):
        RayRunner(ScorePlan.build(options, folder_output=True), ModelOptions(str(t5_dir)), RayOptions())  # no Ray yet
