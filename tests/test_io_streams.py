"""`t5cls.io.streams` and the readers on damaged files: one line naming the file and the place, exit 2."""

from __future__ import annotations

import gzip
import io
import os

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from helpers.cli import assert_one_line_error, score
from helpers.generated import NUMBERED_CSV, compress


@pytest.mark.parametrize("codec", ["gz", "bz2", "zst"])
def test_a_truncated_compressed_csv_is_one_line_and_exit_2(t5_dir, tmp_path, codec):
    data = compress(NUMBERED_CSV, codec)
    source = tmp_path / f"in.csv.{codec}"
    source.write_bytes(data[: len(data) * 2 // 3])
    out = tmp_path / "out.csv"
    assert_one_line_error(score(t5_dir, source, "-o", out), str(source), "line ", "damaged or cut short")
    assert set(os.listdir(tmp_path)) <= {source.name, ".out.csv.t5cls-parts"}  # the chunks read before stay resumable


def test_a_gz_file_that_is_not_gzip_is_one_line(t5_dir, tmp_path):
    source = tmp_path / "in.csv.gz"
    source.write_bytes(NUMBERED_CSV)
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
