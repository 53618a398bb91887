"""Temperature fitting, the dev-file reader and the TOML config `t5cls calibrate` writes."""

from __future__ import annotations

import tomllib

import numpy as np
import pytest

from t5cls.errors import InputError, OptionError
from t5cls.eval import metrics
from t5cls.eval.calibration import (
    Calibration,
    bound_warning,
    calibrate,
    fit_temperature,
    fitted_comment,
    read_dev_file,
    toml_string,
)
from t5cls.options import CalibrateOptions, ModelOptions
from t5cls.probability import scaled_nll, softmax
from t5cls.run.calibrate import calibrate_file
from t5cls.tasks.config import config_toml
from t5cls.tasks.prompts import DEFAULT_TEMPLATE, PromptTemplate


def synthetic(temperature: float, rows: int = 20_000, classes: int = 4, seed: int = 0):
    """Logits whose gold labels are drawn from softmax(logits / temperature)."""
    rng = np.random.default_rng(seed)
    logits = rng.normal(0.0, 4.0, size=(rows, classes))
    probs = softmax(logits, temperature)
    gold = (probs.cumsum(axis=1) > rng.random((rows, 1))).argmax(axis=1)
    return logits, gold


@pytest.mark.parametrize("true_temperature", [0.5, 1.0, 2.5])
def test_fit_recovers_the_temperature_that_generated_the_labels(true_temperature):
    logits, gold = synthetic(true_temperature)
    assert fit_temperature(logits, gold) == pytest.approx(true_temperature, rel=0.05)


def test_fitted_temperature_minimises_the_nll_over_a_grid():
    logits, gold = synthetic(2.5, rows=2000, seed=1)
    fitted = fit_temperature(logits, gold)
    grid = np.exp(np.linspace(np.log(0.5), np.log(10), 400))
    assert scaled_nll(logits, gold, fitted) <= min(scaled_nll(logits, gold, t) for t in grid) + 1e-9


def test_scaled_nll_matches_the_metric_on_the_softmax():
    logits, gold = synthetic(1.5, rows=500)
    assert scaled_nll(logits, gold, 1.7) == pytest.approx(metrics.nll(softmax(logits, 1.7), gold))


def test_calibrate_lowers_nll_and_ece_of_overconfident_scores():
    logits, gold = synthetic(2.5)
    result = calibrate(logits, gold)
    assert result.rows == len(gold)
    assert result.nll_after < result.nll_before
    assert result.ece_after < result.ece_before


@pytest.mark.parametrize(
    "value", ['say "yes"', "back\\slash", "line\nbreak\ttab", "café 東京 🙂", "del\x7fchar", "\x01bell"]
)
def test_toml_string_round_trips(value):
    assert tomllib.loads(f"key = {toml_string(value)}")["key"] == value


def test_config_parses_with_tomllib_and_has_the_fields():
    task = {
        "name": "sentiment",
        "template": DEFAULT_TEMPLATE,
        "text_column": "body",
        "labels": {"positive": ["positive", 'say "no"'], "café": ["café"]},
        "examples": {"file": "../dev.csv", "gold": "label", "per_class": 2, "seed": 0, "separator": "\n---\n"},
        "temperature": 1.2345678901234,
    }
    result = Calibration(1.2345678901234, 120, 0.9, 0.8, 0.12, 0.03, left_out=4)
    text = config_toml([task], [fitted_comment(result, "dev\n.csv", "some/model")])
    assert text.startswith("# fitted by t5cls calibrate on ")
    assert "(120 rows, 4 demonstration rows left out)" in text.splitlines()[0]
    assert "NLL 0.9000 -> 0.8000, ECE 0.1200 -> 0.0300" in text.splitlines()[0]
    assert tomllib.loads(text) == {"task": [task]}


def test_temperature_is_written_as_a_toml_float_even_when_whole():
    task = {"name": "default", "template": "{text}", "text_column": "text", "labels": ["a", "b"], "temperature": 3.0}
    comment = fitted_comment(Calibration(3.0, 1, 1, 1, 0, 0), "d.csv", "m")
    temperature = tomllib.loads(config_toml([task], [comment]))["task"][0]["temperature"]
    assert isinstance(temperature, float) and temperature == 3.0


def write_dev(tmp_path, rows: str):
    path = tmp_path / "dev.csv"
    path.write_text("id,text,label\n" + rows)
    return str(path)


def test_read_dev_file_reads_the_template_columns_and_gold_indexes(tmp_path):
    path = write_dev(tmp_path, "1,good,pos\n2,bad,neg\n")
    dev = read_dev_file(path, PromptTemplate("{text} ({labels})"), ["neg", "pos"], "label")
    assert dev.columns == {"text": ["good", "bad"]}
    assert dev.gold.tolist() == [1, 0]


def test_read_dev_file_names_the_first_gold_value_outside_the_labels(tmp_path):
    path = write_dev(tmp_path, "1,good,pos\n2,meh,neutral\n")
    with pytest.raises(InputError, match=r"row 2: gold label 'neutral' is not one of the labels \(neg, pos\)"):
        read_dev_file(path, PromptTemplate(DEFAULT_TEMPLATE), ["neg", "pos"], "label")


def test_read_dev_file_lists_the_columns_when_the_gold_column_is_missing(tmp_path):
    path = write_dev(tmp_path, "1,good,pos\n")
    with pytest.raises(InputError, match="no gold column 'gold'; columns are: id, text, label"):
        read_dev_file(path, PromptTemplate(DEFAULT_TEMPLATE), ["neg", "pos"], "gold")


def test_read_dev_file_refuses_an_empty_text(tmp_path):
    path = write_dev(tmp_path, "1,good,pos\n2,,neg\n")
    with pytest.raises(InputError, match="row 2: column 'text' is empty or null"):
        read_dev_file(path, PromptTemplate(DEFAULT_TEMPLATE), ["neg", "pos"], "label")


def test_calibrate_options_name_their_parameters():
    with pytest.raises(OptionError, match=r"^give either labels or config, not both$"):
        CalibrateOptions("dev.csv", "label", "o.toml", labels="a,b", config="tasks.toml")
    with pytest.raises(OptionError, match=r"^template and text_column go with labels; with config") as raised:
        CalibrateOptions("dev.csv", "label", "o.toml", config="tasks.toml", text_column="body")
    assert raised.value.for_flags({"template": "--template", "config": "--config"}).startswith("--template and")
    with pytest.raises(OptionError, match=r"^gold must name the column"):
        CalibrateOptions("dev.csv", " ", "o.toml", labels="a,b")


def test_calibrate_file_refuses_a_bad_task_name_before_the_model_loads(tmp_path):
    dev = write_dev(tmp_path, "1,good,pos\n")
    options = CalibrateOptions(dev, "label", str(tmp_path / "o.toml"), labels="neg,pos", task="no spaces")
    with pytest.raises(OptionError, match=r"^task 'no spaces' must be letters, digits, '_' or '-'"):
        calibrate_file(options, ModelOptions(name_or_path="no-such-org/no-such-model"))  # never loaded
    assert not (tmp_path / "o.toml").exists()


def test_a_temperature_at_a_bound_is_flagged():
    gold = np.array([0, 1] * 20)
    informative = np.where(np.eye(2)[gold] > 0, 0.0, -5.0)  # the gold class always scores higher
    assert "lower bound" in bound_warning(calibrate(informative, gold))
    assert "carry no information" in bound_warning(calibrate(-informative, gold))  # always lower
    noisy = informative + np.random.default_rng(0).normal(0, 4, informative.shape)
    assert bound_warning(calibrate(noisy, gold)) is None
