"""Output to stdout: nothing at all is written when the first chunk fails, not even a header."""

from __future__ import annotations

import pytest

from helpers.cli import assert_one_line_error, invoke


@pytest.mark.parametrize(
    "content, fragment",
    [(b"id,text\n1,good\n2,\n", "row 2: column 'text' is empty or null"), (b'id,text\n1,good\n2,"open\n', "line 3")],
    ids=["null-row", "damaged-file"],
)
@pytest.mark.parametrize("fmt", ["csv", "jsonl", "parquet"])
def test_a_first_chunk_that_fails_writes_nothing_to_stdout(t5_dir, tmp_path, content, fragment, fmt):
    (tmp_path / "in.csv").write_bytes(content)
    result = invoke("score", "in.csv", "-l", "a,b", "-m", t5_dir, "--format", fmt, cwd=tmp_path)
    assert_one_line_error(result, fragment)
    assert result.stdout == b""  # `> out.csv` would have kept a header-only file


def test_an_input_without_rows_still_writes_its_header(t5_dir, tmp_path):
    (tmp_path / "in.csv").write_text("id,text\n")
    result = invoke("score", "in.csv", "-l", "a,b", "-m", t5_dir, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout == b"id,text,p_a,p_b,pred,entropy\n"
