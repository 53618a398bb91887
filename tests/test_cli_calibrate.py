"""``t5cls calibrate``'s command line: what it refuses before any model loads."""

from __future__ import annotations

import pytest

from helpers.cli import assert_one_line_error, invoke


@pytest.mark.parametrize("name", ["c.csv", "fitted.json", "fitted"])
def test_an_output_that_is_not_toml_is_refused_before_anything_is_written(tmp_path, name):
    dev = tmp_path / "dev.csv"
    dev.write_text("text,label\ngood,positive\nbad,negative\n")
    result = invoke("calibrate", dev, "--gold", "label", "-l", "positive,negative", "-m", "unused", "-o", name,
                    cwd=tmp_path)  # fmt: skip
    assert_one_line_error(result, f"-o {name}: calibrate writes a TOML task config", "name it .toml")
    assert sorted(path.name for path in tmp_path.iterdir()) == ["dev.csv"]
