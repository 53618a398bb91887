"""`t5cls calibrate --coverage`: prediction sets fitted on the dev file, written to the config, used by `score`."""

from __future__ import annotations

import math
import tomllib
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from helpers.cli import assert_one_line_error, invoke
from helpers.labels import SENTIMENT as LABELS

SAMPLE = Path(__file__).resolve().parents[1] / "sample_data" / "reviews.csv"
CONFIGS = Path(__file__).resolve().parents[1] / "configs"
NO_MODEL = "no-such-org/no-model"  # a hub name, offline: loading it would be exit 3, so a 2 comes first


def calibrate(*args, model=NO_MODEL):
    return invoke("calibrate", *args, "--gold", "label", "-m", model, "--device", "cpu")


def test_sets_from_the_written_config_equal_lac_computed_from_the_calibrated_dev_probabilities(tmp_path, t5_dir):
    fitted = tmp_path / "fitted.toml"
    result = calibrate(SAMPLE, "-l", ",".join(LABELS), "-o", fitted, "--coverage", "0.8", model=t5_dir)
    assert result.returncode == 0, result.stderr.decode()
    assert "prediction sets (lac, coverage 0.8): q = " in result.stderr.decode()
    [task] = tomllib.loads(fitted.read_text())["task"]
    assert (task["coverage"], task["conformal"]) == (0.8, "lac")

    scored = tmp_path / "scored.parquet"  # the dev file itself: its p columns are the calibrated probabilities
    result = invoke("score", SAMPLE, "--config", fitted, "-m", t5_dir, "--device", "cpu", "-o", scored)
    assert result.returncode == 0, result.stderr.decode()
    table = pq.read_table(scored).to_pydict()
    probs = np.column_stack([table[f"default_p_{label}"] for label in LABELS])
    gold = [LABELS.index(value) for value in table["label"]]
    gold_scores = sorted(1.0 - probs[row, g] for row, g in enumerate(gold))
    q = gold_scores[math.ceil((len(gold) + 1) * 0.8) - 1]  # the ⌈(n+1)·0.8⌉-th smallest of n = 50
    assert task["conformal_threshold"] == q
    expected = [",".join(label for label, p in zip(LABELS, row) if 1.0 - p <= q) for row in probs]
    assert table["default_set"] == expected
    assert table["default_set_size"] == [len(value.split(",")) if value else 0 for value in expected]
    assert sum(LABELS[g] in value.split(",") for g, value in zip(gold, expected)) >= 0.8 * 50

    refitted = tmp_path / "refitted.toml"  # calibrating the fitted config again without --coverage drops the sets
    result = invoke(
        "calibrate", SAMPLE, "--gold", "label", "-c", fitted, "-m", t5_dir, "--device", "cpu", "-o", refitted
    )
    assert result.returncode == 0, result.stderr.decode()
    [task] = tomllib.loads(refitted.read_text())["task"]
    assert not {"coverage", "conformal", "conformal_threshold"} & set(task)


def test_aps_is_written_as_the_method(tmp_path, t5_dir):
    fitted = tmp_path / "fitted.toml"
    result = calibrate(
        SAMPLE, "-l", ",".join(LABELS), "-o", fitted, "--coverage", "0.9", "--conformal", "aps", model=t5_dir
    )
    assert result.returncode == 0, result.stderr.decode()
    [task] = tomllib.loads(fitted.read_text())["task"]
    assert (task["coverage"], task["conformal"]) == (0.9, "aps") and 0 <= task["conformal_threshold"] < 1


def test_a_dev_file_too_small_for_the_level_is_one_line_before_the_model_loads(tmp_path):
    dev = tmp_path / "dev.csv"
    dev.write_text("text,label\n" + "".join(f"row {i},{LABELS[i % 3]}\n" for i in range(8)))
    result = calibrate(dev, "-l", ",".join(LABELS), "-o", tmp_path / "f.toml", "--coverage", "0.9")
    assert_one_line_error(result, f"{dev}: 8 dev rows are too few for coverage 0.9", "needs n ≥ 9 rows")
    assert not (tmp_path / "f.toml").exists()


@pytest.mark.parametrize("level", ["0", "1", "1.5", "-0.2", "nan"])
def test_a_coverage_outside_0_1_is_one_line(tmp_path, level):
    result = calibrate(SAMPLE, "-l", ",".join(LABELS), "-o", tmp_path / "f.toml", "--coverage", level)
    assert_one_line_error(result, "--coverage must be a level strictly between 0 and 1, e.g. 0.9")


def test_conformal_needs_coverage_and_a_known_method(tmp_path):
    args = (SAMPLE, "-l", ",".join(LABELS), "-o", tmp_path / "f.toml")
    assert_one_line_error(calibrate(*args, "--conformal", "aps"), "--conformal chooses", "with --coverage")
    result = calibrate(*args, "--coverage", "0.9", "--conformal", "raps")
    assert_one_line_error(result, "--conformal must be lac or aps; got 'raps'")


def test_coverage_with_a_multi_label_task_is_refused_by_name(tmp_path):
    result = calibrate(
        SAMPLE, "-c", CONFIGS / "topic.toml", "--task", "aspects", "-o", tmp_path / "f.toml", "--coverage", "0.9"
    )
    assert_one_line_error(result, "task 'aspects': --coverage: a multi-label task has no single true class per row")


def test_coverage_with_a_regression_task_is_refused_by_name(tmp_path):
    dev = tmp_path / "dev.csv"
    dev.write_text("text,label\n" + "".join(f"row {i},{i % 3 + 1}\n" for i in range(30)))
    result = calibrate(dev, "-l", "1,2,3", "--task", "stars", "-o", tmp_path / "f.toml", "--coverage", "0.9")
    assert_one_line_error(result, "task 'stars': --coverage: a regression task")


@pytest.mark.parametrize("name", ["c.csv", "fitted.json", "fitted"])
def test_an_output_that_is_not_toml_is_refused_before_anything_is_written(tmp_path, name):
    dev = tmp_path / "dev.csv"
    dev.write_text("text,label\ngood,positive\nbad,negative\n")
    result = invoke("calibrate", dev, "--gold", "label", "-l", "positive,negative", "-m", "unused", "-o", name,
                    cwd=tmp_path)  # fmt: skip
    assert_one_line_error(result, f"-o {name}: calibrate writes a TOML task config", "name it .toml")
    assert sorted(path.name for path in tmp_path.iterdir()) == ["dev.csv"]
