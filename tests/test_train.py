"""`t5cls train` end to end on the project's own trained model: a tiny T5 trained from random weights
on a generated task with a rare class (`helpers.trained_model`, the session fixture ``trained_t5``)."""

from __future__ import annotations

import json
import math
import tomllib

import numpy as np
import pandas as pd
import pytest
from transformers import AutoModelForSeq2SeqLM, AutoTokenizer

from helpers.cli import invoke
from helpers.trained_model import LABELS, RARE, TEMPLATE
from t5cls import LabelScorer
from t5cls.options import CalibrateOptions, ModelOptions
from t5cls.probability import softmax
from t5cls.run.calibrate import calibrate_file
from t5cls.tasks.config import load_config


def dev_prompts(trained) -> tuple[list[str], pd.DataFrame]:
    dev = pd.read_csv(trained.data.dev, dtype=str, keep_default_na=False)
    return [TEMPLATE.format(text=text) for text in dev["text"]], dev


def scored_dev(trained, tmp_path):
    """The dev file scored through the CLI with the output folder's model and config, and its `eval` report."""
    scored = tmp_path / "scored.csv"
    model = trained.folder
    result = invoke("score", trained.data.dev, "--model", model, "--config", model / "t5cls.toml", "-o", scored, "-q")
    assert result.returncode == 0, result.stderr.decode()
    report = invoke("eval", scored, "--gold", "label", "--task", "default", "--json")
    assert report.returncode == 0, report.stderr.decode()
    return pd.read_csv(scored), json.loads(report.stdout)


def test_the_tiny_model_learns_the_task_rare_class_included(trained_t5, tmp_path):
    _, report = scored_dev(trained_t5, tmp_path)
    assert report["accuracy"] >= 0.95
    recall = {row["label"]: row["recall"] for row in report["classes"]}
    assert recall[RARE] >= 0.8
    # The training report measured the same model on the same dev file the same way.
    training = json.loads((trained_t5.folder / "training.json").read_text())
    assert training["tasks"][0]["after"]["accuracy"] == pytest.approx(report["accuracy"])
    assert training["tasks"][0]["report"]["classes"] == report["classes"]


def test_calibrate_lowers_its_ece_with_the_temperature_train_wrote(trained_t5, tmp_path):
    dev, fitted = str(trained_t5.data.dev), str(tmp_path / "fitted.toml")
    options = CalibrateOptions(dev=dev, gold="label", output=fitted, labels=LABELS, template=TEMPLATE)
    result = calibrate_file(options, ModelOptions(str(trained_t5.folder), device="cpu"))
    assert result.ece_after < result.ece_before
    assert result.nll_after < result.nll_before
    written = load_config(str(trained_t5.folder / "t5cls.toml")).tasks[0]
    assert written.temperature == pytest.approx(result.temperature, rel=1e-6)


def test_bfloat16_and_float32_agree_on_the_predictions(trained_t5):
    prompts, _ = dev_prompts(trained_t5)
    predictions = [
        LabelScorer.from_pretrained(str(trained_t5.folder), device="cpu", dtype=dtype).score(prompts, LABELS).pred_index
        for dtype in ("float32", "bfloat16")
    ]
    assert np.mean(predictions[0] == predictions[1]) >= 0.99


def test_the_output_folder_loads_with_from_pretrained_and_scores_through_the_cli(trained_t5, tmp_path):
    AutoModelForSeq2SeqLM.from_pretrained(trained_t5.folder)
    AutoTokenizer.from_pretrained(trained_t5.folder)
    scored, _ = scored_dev(trained_t5, tmp_path)
    prompts, dev = dev_prompts(trained_t5)
    temperature = tomllib.loads((trained_t5.folder / "t5cls.toml").read_text())["task"][0]["temperature"]
    logprobs = LabelScorer.from_pretrained(str(trained_t5.folder), device="cpu").score(prompts, LABELS).logprobs
    expected = softmax(logprobs, temperature)
    np.testing.assert_allclose(scored[[f"default_p_{label}" for label in LABELS]].to_numpy(), expected, atol=1e-6)
    assert list(scored["text"]) == list(dev["text"])


def test_the_report_has_every_epoch_and_the_plots(trained_t5):
    report = json.loads((trained_t5.folder / "training.json").read_text())
    evaluations = [entry for entry in report["history"] if "eval_loss" in entry]
    epochs = report["options"]["epochs"]
    assert [entry["epoch"] for entry in evaluations] == list(range(epochs + 1))  # before training, then each epoch
    best = min(evaluations, key=lambda entry: entry["eval_loss"])
    assert report["optimisation"]["best_step"] == best["step"]
    assert report["optimisation"]["best_dev_loss"] == pytest.approx(best["eval_loss"])
    for name in ("reliability.png", "confusion_matrix.png", "entropy.png"):
        assert (trained_t5.folder / "plots" / name).stat().st_size > 0


def test_the_learning_rate_warms_up_then_decays_linearly_to_zero(trained_t5):
    report = json.loads((trained_t5.folder / "training.json").read_text())
    peak, steps = report["options"]["learning_rate"], report["optimisation"]["max_steps"]
    warmup = math.ceil(steps * report["options"]["warmup"])
    logged = [(entry["step"], entry["learning_rate"]) for entry in report["history"] if "learning_rate" in entry]
    assert logged
    for step, rate in logged:  # the rate of step k, after k - 1 scheduler steps
        assert rate == pytest.approx(peak * min((step - 1) / warmup, (steps - step + 1) / (steps - warmup)))
