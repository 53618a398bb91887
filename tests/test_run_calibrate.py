"""`t5cls.run.calibrate.calibrate_file`: the dev file goes through the chunk step a scoring run uses."""

from __future__ import annotations

import re

import pytest

import t5cls.run.calibrate
from helpers.files import write_csv
from helpers.runs import poison
from t5cls import LabelScorer
from t5cls.errors import NumericError
from t5cls.options import CalibrateOptions, ModelOptions
from t5cls.run.calibrate import calibrate_file


def test_a_dev_row_that_scores_nan_is_named_by_its_file_and_row_and_nothing_is_written(t5_dir, tmp_path, monkeypatch):
    rows = [("good", "positive"), ("bad", "negative"), ("the poisoned review", "negative"), ("fine", "positive")]
    dev = write_csv(tmp_path / "dev.csv", ["text", "label"], rows)
    scorer = LabelScorer.from_pretrained(str(t5_dir), device="cpu")
    poison(monkeypatch, scorer, ["the poisoned review"])
    monkeypatch.setattr(t5cls.run.calibrate.LabelScorer, "from_options", lambda options: scorer)
    output = tmp_path / "fitted.toml"
    options = CalibrateOptions(
        dev=str(dev), gold="label", output=str(output), labels=("positive", "negative"), template="{text}"
    )
    with pytest.raises(NumericError, match=rf"^{re.escape(str(dev))}: row 3: non-finite"):
        calibrate_file(options, ModelOptions(str(t5_dir), device="cpu"))
    assert sorted(path.name for path in tmp_path.iterdir()) == ["dev.csv"]
