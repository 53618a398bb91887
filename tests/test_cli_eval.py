"""`t5cls eval` and `t5cls calibrate` through their CLI, as a user runs them.

Most run in this process (`helpers.cli.invoke`, Typer's runner: the same command, parsing and
error handling, without a Python start per test); the exit code and the one stderr line are
also checked in a real subprocess (`helpers.cli.run_cli`).
"""

from __future__ import annotations

import json
import subprocess
import tomllib
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn import metrics as sk

from helpers.cli import assert_one_line_error, invoke, run_cli
from helpers.files import write_lines
from helpers.labels import SENTIMENT as LABELS
from t5cls.eval.calibration import calibrate

SAMPLE = Path(__file__).resolve().parents[1] / "sample_data" / "reviews.csv"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def t5cls(*args: str) -> subprocess.CompletedProcess:
    result = invoke(*args)
    return subprocess.CompletedProcess(args, result.returncode, result.stdout.decode(), result.stderr.decode())


def scored_frame(rows: int = 200, seed: int = 0, prefix: str = "") -> pd.DataFrame:
    """A `t5cls score`-shaped table whose gold labels include two values that are not labels."""
    rng = np.random.default_rng(seed)
    probs = rng.dirichlet(np.ones(len(LABELS)), size=rows)
    gold = [LABELS[rng.choice(3, p=0.6 * p + 0.4 / 3)] for p in probs]
    gold[3], gold[7], gold[11] = "mixed", "mixed", "Positive"
    frame = pd.DataFrame({"id": range(rows), "text": [f"row {i}" for i in range(rows)], "label": gold})
    for index, label in enumerate(LABELS):
        frame[f"{prefix}p_{label}"] = probs[:, index]
    frame[f"{prefix}pred"] = [LABELS[i] for i in probs.argmax(axis=1)]
    frame[f"{prefix}entropy"] = -(probs * np.log(probs)).sum(axis=1)
    return frame


def write(frame: pd.DataFrame, path: Path) -> str:
    if path.suffix == ".csv":
        frame.to_csv(path, index=False)
    elif path.suffix == ".jsonl":
        frame.to_json(path, orient="records", lines=True, force_ascii=False)
    else:
        frame.to_parquet(path, index=False)
    return str(path)


@pytest.mark.parametrize("suffix", [".csv", ".jsonl", ".parquet"])
def test_json_report_matches_sklearn_and_reports_unknown_gold(tmp_path, suffix):
    frame = scored_frame()
    result = t5cls("eval", write(frame, tmp_path / f"scored{suffix}"), "--gold", "label", "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    pred = frame["pred"].tolist()
    known = frame["label"].isin(LABELS)
    ordered = sorted(LABELS)  # log_loss wants probability columns in sorted label order
    probs = frame[[f"p_{label}" for label in ordered]].to_numpy()
    assert report["labels"] == LABELS and report["rows"] == 200
    assert report["accuracy"] == pytest.approx(sk.accuracy_score(frame["label"], pred))
    assert report["macro_f1"] == pytest.approx(sk.f1_score(frame["label"], pred, labels=LABELS, average="macro"))
    assert report["nll"] == pytest.approx(sk.log_loss(frame["label"][known], probs[known], labels=ordered))
    assert report["confusion_matrix"] == sk.confusion_matrix(frame["label"], pred, labels=LABELS).tolist()
    assert report["unknown_gold"] == {"rows": 3, "values": {"mixed": 2, "Positive": 1}}
    assert report["calibration_rows"] == 197 and report["ece_bins"] == 15


def test_tables_show_the_metrics_and_the_unknown_gold_values(tmp_path):
    result = t5cls("eval", write(scored_frame(), tmp_path / "scored.csv"), "--gold", "label")
    assert result.returncode == 0, result.stderr
    for text in (
        "accuracy",
        "macro-F1",
        "NLL",
        "Brier",
        "ECE (15 bins)",
        "Per class",
        "Confusion matrix",
        "'mixed' (2)",
    ):
        assert text in result.stdout


def test_task_option_reads_the_prefixed_columns(tmp_path):
    frame = scored_frame(prefix="sentiment_")
    path = write(frame, tmp_path / "scored.parquet")
    result = t5cls("eval", path, "--gold", "label", "--task", "sentiment", "--json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["labels"] == LABELS
    alone = t5cls("eval", path, "--gold", "label", "--json")  # the file's only task, without --task
    assert alone.returncode == 0 and json.loads(alone.stdout) == json.loads(result.stdout)


def test_plots_are_valid_png_files(tmp_path):
    folder = tmp_path / "plots" / "nested"
    result = t5cls("eval", write(scored_frame(), tmp_path / "scored.csv"), "--gold", "label", "--plots", str(folder))
    assert result.returncode == 0, result.stderr
    for name in ("reliability.png", "confusion_matrix.png", "entropy.png"):
        data = (folder / name).read_bytes()
        assert data.startswith(PNG_SIGNATURE) and len(data) > 1000, name


def test_missing_gold_column_is_a_one_line_error_listing_the_columns(tmp_path):
    result = t5cls("eval", write(scored_frame(), tmp_path / "scored.csv"), "--gold", "gold")
    assert_one_line_error(result, "no gold column 'gold'", "columns are: id, text, label, p_positive")


def test_probabilities_that_do_not_sum_to_one_are_a_one_line_error(tmp_path):
    frame = scored_frame()
    frame.loc[5, "p_neutral"] += 0.01
    result = t5cls("eval", write(frame, tmp_path / "scored.csv"), "--gold", "label")
    assert_one_line_error(result, "row 6:", "sum to", "not 1")


def test_a_probability_that_is_not_a_number_is_a_one_line_error(tmp_path):
    path = write(scored_frame(), tmp_path / "scored.csv")
    lines = Path(path).read_text().splitlines()
    lines[2] = lines[2].replace(lines[2].split(",")[3], "n/a", 1)
    Path(path).write_text("\n".join(lines) + "\n")
    assert_one_line_error(t5cls("eval", path, "--gold", "label"), "row 2:", "'p_positive' holds 'n/a'")


def test_a_file_without_probability_columns_is_a_one_line_error():
    assert_one_line_error(t5cls("eval", str(SAMPLE), "--gold", "label"), "no p_<label> probability columns")


def test_a_missing_file_is_a_one_line_error(tmp_path):
    assert_one_line_error(t5cls("eval", str(tmp_path / "nope.csv"), "--gold", "label"), "no such file")


def test_a_missing_file_is_a_one_line_error_and_exit_2_from_a_real_process(tmp_path):
    assert_one_line_error(run_cli("eval", tmp_path / "nope.csv", "--gold", "label"), "no such file")


def calibrate_sample(model, output, *extra: str, labels: str = ",".join(LABELS)) -> subprocess.CompletedProcess:
    """``t5cls calibrate`` of the sample reviews against their ``label`` column, writing ``output``."""
    return t5cls(
        "calibrate",
        str(SAMPLE),
        "--gold",
        "label",
        "--labels",
        labels,
        "--model",
        str(model),
        *extra,
        "-o",
        str(output),
    )


def test_calibrate_writes_a_config_with_a_fitted_temperature(tmp_path, t5_dir):
    output = tmp_path / "fitted.toml"
    result = calibrate_sample(t5_dir, output, "--device", "cpu", "--batch-size", "16", "--task", "sentiment")
    assert result.returncode == 0, result.stderr
    text = output.read_text()
    assert text.startswith("# fitted by t5cls calibrate on ") and "(50 rows)" in text.splitlines()[0]
    (task,) = tomllib.loads(text)["task"]
    assert task["name"] == "sentiment" and task["labels"] == LABELS and task["text_column"] == "text"
    assert task["template"] == "{text}\n\nOptions: {labels}\nAnswer:"
    assert 0.01 <= task["temperature"] <= 100
    assert "before (T = 1)" in result.stdout and "NLL" in result.stdout and "ECE" in result.stdout


def test_calibrate_refuses_a_gold_label_outside_the_label_set_before_loading_a_model(tmp_path):
    # a hub name, offline: loading it would fail with exit 3
    result = calibrate_sample("no-such-org/no-model", tmp_path / "fitted.toml", labels="positive,negative")
    assert_one_line_error(result, "row 3: gold label 'neutral' is not one of the labels (positive, negative)")
    assert not (tmp_path / "fitted.toml").exists()


def test_calibrate_a_decoder_only_model_with_the_label_end_it_will_score_with(tmp_path):
    """Calibrate fits the scores `score --label-end eos` gives (its NLL at T = 1), not the default label end's."""
    from helpers.tiny_causal_models import build_causal
    from t5cls import LabelScorer
    from t5cls.eval.calibration import read_dev_file
    from t5cls.tasks.prompts import PromptTemplate

    model_dir = build_causal(tmp_path / "llama", "llama")
    template = "Review: {text}\nSentiment:"
    result = calibrate_sample(model_dir, tmp_path / "fitted.toml", "-t", template, "--label-end", "eos")
    assert result.returncode == 0, result.stderr
    dev = read_dev_file(str(SAMPLE), PromptTemplate(template), LABELS, "label")
    prompts = PromptTemplate(template).render(dev.columns, LABELS)
    nll_row = next(line for line in result.stdout.splitlines() if "NLL" in line)
    for label_end in ("eos", "none"):
        logprobs = LabelScorer.from_pretrained(str(model_dir), label_end=label_end).score(prompts, LABELS).logprobs
        before = f"{calibrate(logprobs, dev.gold).nll_before:.4f}"
        assert (before in nll_row) == (label_end == "eos"), (label_end, before, nll_row)


def test_eval_uses_the_only_task_of_the_file(tmp_path):
    path = write_lines(
        tmp_path / "scored.csv",
        "text,label,default_p_yes,default_p_no,default_pred,default_entropy",
        "a,yes,0.75,0.25,yes,0.56",
        "b,no,0.5,0.5,yes,0.69",
    )
    result = invoke("eval", path, "--gold", "label", "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["task"] == "default" and report["labels"] == ["yes", "no"] and report["accuracy"] == 0.5


def test_eval_names_the_tasks_it_sees(tmp_path):
    path = write_lines(
        tmp_path / "scored.csv",
        "text,label,topic_p_a,topic_p_b,topic_entropy,mood_p_x,mood_p_y,mood_entropy",
        "t,a,0.5,0.5,0.69,0.5,0.5,0.69",
    )
    assert_one_line_error(invoke("eval", path, "--gold", "label"), "tasks topic, mood: choose one with --task")
    assert_one_line_error(invoke("eval", path, "--gold", "label", "--task", "topc"), "tasks in the file: topic, mood")


@pytest.mark.parametrize(
    "header, row, gold, message",
    [
        (
            "text,label,aspects_p_food,aspects_p_service,aspects_p_price,aspects_pred,aspects_entropy",
            't,food,0.9,0.8,0.1,"food,service",1.1',
            "label",
            "task 'aspects' is multi-label",
        ),
        (
            "text,stars,rating_p_low,rating_p_high,rating_pred,rating_entropy,rating_expected,rating_std",
            "t,4.5,0.2,0.8,high,0.5,4.2,1.6",
            "stars",
            "task 'rating' is a regression task",
        ),
    ],
    ids=["multi-label", "regression"],
)
def test_eval_refuses_a_task_it_cannot_score_by_name(tmp_path, header, row, gold, message):
    path = write_lines(tmp_path / "scored.csv", header, row)
    assert_one_line_error(invoke("eval", path, "--gold", gold), message)
