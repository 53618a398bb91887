"""`t5cls train` from the command line: bad input, several tasks on one model, both backends, both losses."""

from __future__ import annotations

import json
import os

import numpy as np
import pandas as pd
import pytest
import torch
from safetensors.torch import load_file

from helpers.cli import Result, assert_one_line_error, invoke, start_forked, train_args
from helpers.faults import NO_NAMESPACE, grow_tmpfs, private_tmpfs
from helpers.labels import UNSURE_FLAG as LABELS
from helpers.tiny_causal_models import build_causal
from helpers.tiny_models import build_t5
from t5cls import LabelScorer
from t5cls.io.paths import sidecar
from t5cls.probability import softmax
from t5cls.tasks.config import load_config

ROWS = [
    ("the movie was great", "positive", "people,places", "4.5"),
    ("terrible plot, boring characters", "negative", "", "0.5"),
    ("premise and hypothesis", "not sure", "prices", "2"),
    ("wonderful acting", "positive", "people", "5"),
    ("boring, not entailment at all", "negative", "prices,places", "1"),
    ("a question and an answer", "not sure", "", "3"),
] * 3
TASKS = """
[[task]]
name = "sentiment"
template = "Review: {text} Sentiment:"
labels = { positive = ["positive", "great"], negative = ["negative"], "not sure" = ["not sure"] }

[[task]]
name = "aspects"
template = "{text} Does it talk about {label}?"
labels = ["prices", "people", "places"]
multi_label = true

[[task]]
name = "stars"
template = "{text} Stars:"
labels = ["terrible", "neutral", "great"]
values = [0, 2.5, 5]
mode = "mean"
"""


@pytest.fixture
def labelled(tmp_path):
    """A small labelled file with a gold column per task."""
    path = tmp_path / "train.csv"
    pd.DataFrame(ROWS, columns=["text", "label", "aspects", "stars"]).to_csv(path, index=False)
    return path


def train(model, source, out, *extra, labels=LABELS):
    args = ["train", source, "--gold", "label", "-m", model, "-o", out, "--device", "cpu", "--epochs", "1"]
    return invoke(*args, *(["-l", labels] if labels else []), "--batch-size", "4", "-q", *extra)


def assert_nothing_written(out):
    assert not out.exists()
    assert not sidecar(out, "train").exists()


def write(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text)
    return path


@pytest.mark.parametrize(
    "content, extra, fragments",
    [
        ("text,lbl\ngood,positive\n", [], ["no gold column 'label'", "columns are: text, lbl", "--gold"]),
        (
            "text,label\ngood,positive\nbad,awful\n",
            [],
            ["row 2", "column 'label'", "'awful'", "not one of the classes"],
        ),
        ("text,label\ngood,positive\nbad,\n", [], ["row 2", "column 'label' is empty"]),
        ("text,label\ngood,positive\n,negative\n", [], ["row 2", "column 'text' is empty or null", "--on-null"]),
        ("body,label\ngood,positive\n", [], ["no text column 'text'", "--text-column"]),
        ("text,label\ngood,positive\n", ["--dtype", "float16"], ["--dtype float16 trains on CUDA only"]),
        ("text,label\ngood,positive\n", ["--dtype", "int8"], ["--dtype int8 is for scoring on the CPU"]),
        ("text,label\ngood,positive\n", ["--warmup", "1"], ["--warmup must be a number ≥ 0 and < 1"]),
        ("text,label\ngood,positive\n", ["--epochs", "0"], ["--epochs must be a positive whole number"]),
        ("text,label\ngood,positive\n", ["--lr", "0"], ["--learning-rate must be a number > 0"]),
        ("text,label\ngood,positive\n", ["--loss", "contrastive"], ["--loss: unknown loss 'contrastive'"]),
        (
            "text,label\ngood,positive\n",
            ["--loss", "generative", "--class-weights", "balanced"],
            ["--class-weights applies to the label-set loss"],
        ),
        ("text,label\ngood,positive\n", ["-c", "x.toml"], ["give either --labels or --config"]),
    ],
    ids=[
        "no-gold-column",
        "gold-not-a-class",
        "blank-gold",
        "blank-text",
        "no-text-column",
        "float16-on-cpu",
        "int8",
        "warmup",
        "epochs",
        "learning-rate",
        "loss",
        "weights-with-generative",
        "labels-and-config",
    ],
)
def test_bad_input_is_one_line_and_writes_nothing(t5_dir, tmp_path, content, extra, fragments):
    source = write(tmp_path, "train.csv", content)
    out = tmp_path / "model"
    assert_one_line_error(train(t5_dir, source, out, *extra), *fragments)
    assert_nothing_written(out)


def test_bad_dev_file_fails_before_training(t5_dir, labelled, tmp_path):
    dev = write(tmp_path, "dev.csv", "text,label\ngood,positive\nbad,meh\n")
    out = tmp_path / "model"
    assert_one_line_error(train(t5_dir, labelled, out, "--dev", dev), "dev.csv: row 2", "'meh'")
    assert_nothing_written(out)


@pytest.mark.parametrize(
    "tasks, gold, fragments",
    [
        ('mode = "pmi"', "sentiment=label", ["task 'sentiment'", "mode 'pmi' cannot be trained", '"sum" or "mean"']),
        ("", "label", ["the config has 3 tasks", "sentiment=COLUMN,aspects=COLUMN,stars=COLUMN"]),
        ("", "sentiment=label,aspects=aspects", ["no gold column for task 'stars'"]),
        ("", "sentiment=label,topic=x,aspects=aspects,stars=stars", ["no task named 'topic'"]),
    ],
    ids=["untrainable-mode", "one-gold-for-several-tasks", "task-without-gold", "unknown-task"],
)
def test_bad_task_configs(t5_dir, labelled, tmp_path, tasks, gold, fragments):
    text = TASKS.replace('template = "Review: {text} Sentiment:"', f'template = "Review: {{text}} Sentiment:"\n{tasks}')
    config = write(tmp_path, "tasks.toml", text)
    out = tmp_path / "model"
    result = invoke("train", labelled, "-c", config, "--gold", gold, "-m", t5_dir, "-o", out, "--device", "cpu")
    assert_one_line_error(result, *fragments)
    assert_nothing_written(out)


def test_generative_loss_is_refused_for_regression(t5_dir, labelled, tmp_path):
    config = write(tmp_path, "tasks.toml", TASKS)
    gold = "sentiment=label,aspects=aspects,stars=stars"
    result = invoke(
        "train", labelled, "-c", config, "--gold", gold, "-m", t5_dir, "-o", tmp_path / "m", "--loss", "generative"
    )
    assert_one_line_error(result, "--loss generative needs a gold class per row", "regression task 'stars'")


def test_an_existing_path_that_is_not_a_training_output_is_refused(t5_dir, labelled, tmp_path):
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "notes.txt").write_text("mine")
    assert_one_line_error(train(t5_dir, labelled, tmp_path / "taken"), "exists and is not a t5cls output folder")
    assert (tmp_path / "taken" / "notes.txt").read_text() == "mine"


def test_several_tasks_share_one_model_and_score_through_the_cli(t5_dir, labelled, tmp_path):
    config = write(tmp_path, "tasks.toml", TASKS)
    out = tmp_path / "model"
    gold = "sentiment=label,aspects=aspects,stars=stars"
    result = train(t5_dir, labelled, out, "-c", config, "--gold", gold, "--dev", labelled, "--lr", "1e-3", labels=None)
    assert result.returncode == 0, result.stderr.decode()
    written, original = load_config(str(out / "t5cls.toml")).tasks, load_config(str(config)).tasks
    for task, before in zip(written, original):
        assert task.temperature > 0
        assert (task.name, task.template.template, task.classes, task.forms, task.mode) == (
            before.name,
            before.template.template,
            before.classes,
            before.forms,
            before.mode,
        )
        assert (task.multi_label, task.answers, task.values) == (before.multi_label, before.answers, before.values)
    assert written[2].temperature == 1.0  # regression keeps T = 1
    report = json.loads((out / "training.json").read_text())
    assert [task["kind"] for task in report["tasks"]] == ["classes", "multi-label", "regression"]
    assert set(report["tasks"][2]["after"]) == {"mse", "mae"}
    scored = tmp_path / "scored.csv"
    result = invoke("score", labelled, "-m", out, "-c", out / "t5cls.toml", "-o", scored, "-q")
    assert result.returncode == 0, result.stderr.decode()
    columns = pd.read_csv(scored).columns
    assert {"sentiment_p_not sure", "aspects_p_places", "stars_expected"} <= set(columns)
    assert (out / "plots" / "sentiment_reliability.png").exists() and (out / "plots" / "aspects_entropy.png").exists()


@pytest.mark.parametrize("backend", ["bart", "llama"])
@pytest.mark.parametrize("loss", ["label-set", "generative"])
def test_encoder_decoder_and_decoder_only_models_train_with_either_loss(bart_dir, tmp_path, backend, loss):
    model = bart_dir if backend == "bart" else build_causal(tmp_path / "llama", "llama")
    source = write(tmp_path, "train.csv", "text,label\n" + "".join(f'"{t}",{g}\n' for t, g, _, _ in ROWS))
    out = tmp_path / "model"
    result = train(model, source, out, "--dev", source, "--loss", loss, "-t", "{text} Answer:", "--lr", "1e-3")
    assert result.returncode == 0, result.stderr.decode()
    assert json.loads((out / "training.json").read_text())["options"]["loss"] == loss
    scored = tmp_path / "scored.csv"
    assert invoke("score", source, "-m", out, "-c", out / "t5cls.toml", "-o", scored, "-q").returncode == 0
    temperature = load_config(str(out / "t5cls.toml")).tasks[0].temperature
    prompts = [f"{text} Answer:" for text, *_ in ROWS]
    logprobs = LabelScorer.from_pretrained(str(out), device="cpu").score(prompts, LABELS.split(",")).logprobs
    probs = pd.read_csv(scored)[[f"default_p_{label}" for label in LABELS.split(",")]].to_numpy()
    np.testing.assert_allclose(probs, softmax(logprobs, temperature), atol=1e-6)


def test_progress_lines_off_a_terminal(t5_dir, labelled, tmp_path):
    result = invoke(*train_args(t5_dir, labelled, tmp_path / "model"))
    assert result.returncode == 0, result.stderr.decode()
    lines = result.stderr.decode().splitlines()
    evaluations = [line for line in lines if line.startswith("t5cls: step ")]
    assert [line.split(", epoch ")[1].split(":")[0] for line in evaluations] == ["0.00", "1.00", "2.00"]
    assert all(line.startswith("t5cls: ") for line in lines)
    assert lines[-2].startswith("t5cls: trained 10 steps (2.00 epochs) in ")
    assert lines[-1].startswith("t5cls: task default: dev accuracy ")


def evaluations(out) -> list[dict]:
    return [entry for entry in json.loads((out / "training.json").read_text())["history"] if "eval_loss" in entry]


def test_the_best_checkpoint_is_kept_and_training_stops_early(t5_dir, labelled, tmp_path):
    """A dev set whose labels contradict the training labels gets worse as training goes on."""
    flipped = {"positive": "negative", "negative": "positive", "not sure": "positive"}
    dev = tmp_path / "dev.csv"
    pd.DataFrame([(text, flipped[label]) for text, label, *_ in ROWS], columns=["text", "label"]).to_csv(
        dev, index=False
    )
    out = tmp_path / "model"
    result = train(t5_dir, labelled, out, "--dev", dev, "--epochs", "6", "--patience", "2", "--lr", "3e-3")
    assert result.returncode == 0, result.stderr.decode()
    report = json.loads((out / "training.json").read_text())
    trained = evaluations(out)[1:]  # after the evaluation before training
    best = min(range(len(trained)), key=lambda i: trained[i]["eval_loss"])
    assert report["optimisation"]["best_step"] == trained[best]["step"]
    assert len(trained) - 1 - best == 2  # stopped after two evaluations without a lower dev loss
    assert report["optimisation"]["steps"] < report["optimisation"]["max_steps"]
    # The written model is the best checkpoint's, not the last one's: its dev NLL (reloaded) is the best one.
    assert trained[-1]["eval_nll"] != pytest.approx(trained[best]["eval_nll"], rel=1e-3)
    assert report["tasks"][0]["before"]["nll"] == pytest.approx(trained[best]["eval_nll"], rel=1e-5)


def test_gradient_accumulation_equals_the_larger_batch(tmp_path, labelled):
    from helpers.tiny_models import build_t5

    model = build_t5(tmp_path / "t5", dropout_rate=0.0)  # no dropout: both runs see the same network
    outputs = {}
    for rows, accumulate in (("8", "1"), ("4", "2")):
        outputs[accumulate] = tmp_path / f"model-{accumulate}"
        args = ["--batch-size", rows, "--grad-accum", accumulate, "--lr", "1e-3"]
        result = invoke(
            "train",
            labelled,
            "-l",
            LABELS,
            "--gold",
            "label",
            "-m",
            model,
            "-o",
            outputs[accumulate],
            "--device",
            "cpu",
            "--epochs",
            "1",
            "-q",
            *args,
        )
        assert result.returncode == 0, result.stderr.decode()
        assert json.loads((outputs[accumulate] / "training.json").read_text())["optimisation"]["steps"] == 3
    ours, theirs = (load_file(outputs[a] / "model.safetensors") for a in ("1", "2"))
    for name in theirs:
        torch.testing.assert_close(ours[name], theirs[name], rtol=0, atol=1e-6, msg=name)


def test_bfloat16_mixed_precision_trains_under_autocast(t5_dir, labelled, tmp_path):
    losses = {}
    for dtype in ("float32", "bfloat16"):
        out = tmp_path / dtype
        result = train(t5_dir, labelled, out, "--dev", labelled, "--dtype", dtype, "--epochs", "2", "--lr", "1e-3")
        assert result.returncode == 0, result.stderr.decode()
        assert json.loads((out / "training.json").read_text())["optimisation"]["precision"] == dtype
        losses[dtype] = [entry["eval_loss"] for entry in evaluations(out)]
    # Dev scores under bfloat16 autocast are rounded (so not equal) but close to float32's, at every evaluation.
    assert losses["bfloat16"] != losses["float32"]
    np.testing.assert_allclose(losses["bfloat16"], losses["float32"], rtol=0.02)


def test_evaluate_and_checkpoint_every_n_steps(t5_dir, labelled, tmp_path):
    out = tmp_path / "model"
    assert train(t5_dir, labelled, out, "--dev", labelled, "--epochs", "2", "--eval-every", "3").returncode == 0
    assert [entry["step"] for entry in evaluations(out)] == [0, 3, 6, 9, 10]  # and at the last step


def test_without_a_dev_set_the_last_model_is_written_with_temperature_one(t5_dir, labelled, tmp_path):
    out = tmp_path / "model"
    result = invoke(*train_args(t5_dir, labelled, out, dev=False))
    assert result.returncode == 0, result.stderr.decode()
    assert not [line for line in result.stderr.decode().splitlines() if ": dev " in line]
    report = json.loads((out / "training.json").read_text())
    assert report["dev"] is None and report["tasks"] == []
    assert report["optimisation"]["steps"] == report["optimisation"]["max_steps"] == 10
    assert report["optimisation"]["best_step"] is None
    assert load_config(str(out / "t5cls.toml")).tasks[0].temperature == 1.0
    assert not (out / "plots").exists()


def test_a_diverging_run_stops_with_exit_4(t5_dir, labelled, tmp_path):
    result = train(t5_dir, labelled, tmp_path / "model", "--lr", "1e9", "--epochs", "3")
    assert_one_line_error(result, "not finite at step", "training diverged; use a lower learning rate", code=4)
    assert not (tmp_path / "model").exists()


@pytest.fixture
def small_model(tmp_path, monkeypatch):
    """A tiny T5 with a 400-piece tokenizer: checkpoints of about 650 KiB."""
    monkeypatch.setenv("T5CLS_TESTS_WITHOUT_SHARED", "1")
    return build_t5(tmp_path / "model")


def test_train_onto_a_full_tmpfs_is_exit_5_in_one_line_then_resumes(small_model, tmp_path):
    labelled = tmp_path / "train.csv"
    words, labels = ["great", "terrible", "so so"], ["positive", "negative", "not sure"]
    rows = "".join(f"the movie was {words[i % 3]} {i},{labels[i % 3]}\n" for i in range(48))
    labelled.write_text("text,label\n" + rows)
    disk = tmp_path / "disk"
    disk.mkdir()
    out = disk / "out"
    args = ["train", labelled, "-l", ",".join(labels), "--gold", "label", "-m", small_model, "-o", out]
    args += ["--device", "cpu", "--epochs", "2", "--batch-size", "8", "-q"]  # a checkpoint at steps 6 and 12

    def run() -> int:
        if not private_tmpfs(disk, "1m"):
            return NO_NAMESPACE
        failed = invoke(*args)
        (tmp_path / "err").write_bytes(failed.stderr)
        checkpoints = sorted(p.name for p in (disk / ".out.t5cls-train" / "checkpoints").iterdir())
        (tmp_path / "state").write_text(json.dumps([failed.returncode, checkpoints, out.exists()]))
        grow_tmpfs(disk, "16m")
        resumed = invoke(*args, "--resume")
        (tmp_path / "report.json").write_bytes((out / "training.json").read_bytes())
        return resumed.returncode

    code = os.waitstatus_to_exitcode(os.waitpid(start_forked(run), 0)[1])
    if code == NO_NAMESPACE:
        pytest.skip("needs unshare(CLONE_NEWNS): root")
    returncode, checkpoints, published = json.loads((tmp_path / "state").read_text())
    assert_one_line_error(
        Result(returncode, b"", (tmp_path / "err").read_bytes()),
        f"t5cls: error: {disk}/.out.t5cls-train/checkpoints/checkpoint-12: cannot write: No space left on device; ",
        f"free space on {disk} (or raise the quota), then rerun with --resume",
        code=5,
    )
    assert checkpoints == ["checkpoint-6"] and not published  # the half-written checkpoint went, the whole one stays
    assert code == 0
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["optimisation"]["resumed_from_step"] == 6 and report["optimisation"]["steps"] == 12
