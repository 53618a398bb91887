"""`t5cls.run.calibrate.calibrate_file`: the dev file goes through the chunk step a scoring run uses."""

from __future__ import annotations

import os
import re

import numpy as np
import pytest

import t5cls.run.calibrate
from helpers.cli import SCORE_LABELS, assert_one_line_error, invoke
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


def test_calibrate_refuses_a_task_name_score_would_reject_before_loading_the_model(tmp_path):
    dev = tmp_path / "dev.csv"
    dev.write_text("text,label\ngood,positive\nbad,negative\n")
    out = tmp_path / "fitted.toml"
    result = invoke(
        "calibrate", dev, "--gold", "label", "-l", SCORE_LABELS, "-o", out, "--task", "my task", "-m", "no-such/model"
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
