"""Formats from names: an output named as a folder is refused as one, not as an odd extension."""

from __future__ import annotations

import pytest

from helpers.cli import assert_one_line_error, invoke
from t5cls.errors import InputError
from t5cls.io.formats import file_name_suffix, output_format


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
