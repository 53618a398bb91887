"""Few-shot task configs with models: exact against the whole prompt scored as one string, and the round trips
through ``score`` (dry run, provenance), ``--resume`` and ``calibrate --config``."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import signal
import tomllib
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
from transformers import AutoModelForCausalLM, AutoTokenizer

from helpers.cli import assert_one_line_error, invoke
from helpers.few_shot import expected_rows, few_shot_prompt
from helpers.files import write_csv
from helpers.reference import brute_force_causal_logprobs, brute_force_logprobs
from helpers.tiny_causal_models import build_causal
from t5cls import LabelScorer, ScoreOptions, score_file
from t5cls.errors import InputError, Interrupted, T5clsWarning
from t5cls.eval.calibration import fit_temperature
from t5cls.options import ModelOptions, ProgressOptions
from t5cls.probability import scaled_nll, softmax
from t5cls.signals import StopRequest
from t5cls.task_scorer import TaskScorer
from t5cls.tasks.config import TaskSet, load_config
from t5cls.train import TrainOptions, train
from t5cls.train.data import read_labelled

CLASSES = ["positive", "negative", "neutral"]
DEV = [
    ("the movie was great", "positive"),
    ("terrible plot, boring characters", "negative"),
    ("it was fine, nothing special", "neutral"),
    ("wonderful acting", "positive"),
    ("not sure what to think", "neutral"),
    ("boring and terrible", "negative"),
    ("great fun", "positive"),
    ("mixed feelings about it", "neutral"),
    ("never again", "negative"),
    ("the acting was wonderful", "positive"),
]
ROWS = ["a great film", "awful, never again", "café 東京 🙂", "the plot was fine", "wonderful"]
TEMPLATE = "Review: {text}\nSentiment:"
SEED, PER_CLASS = 7, 2


@pytest.fixture(scope="module")
def causal_dirs(tmp_path_factory):
    return {kind: build_causal(tmp_path_factory.mktemp(f"tiny-{kind}"), kind) for kind in ("gpt2", "llama")}


@pytest.fixture
def files(tmp_path):
    """``data/dev.csv`` (the labelled examples), ``data/in.csv`` (rows to score) and ``configs/``."""
    for folder in ("data", "configs", "out"):
        (tmp_path / folder).mkdir()
    write_csv(tmp_path / "data" / "dev.csv", ["text", "label"], DEV)
    write_csv(tmp_path / "data" / "in.csv", ["text"], [(text,) for text in ROWS])
    return tmp_path


def write_config(folder, labels=CLASSES, extra="", examples_extra="", per_class=PER_CLASS) -> str:
    path = folder / "configs" / "fewshot.toml"
    path.write_text(
        f'[[task]]\nname = "s"\ntemplate = {json.dumps(TEMPLATE)}\n{extra}'
        f'examples = {{ file = "../data/dev.csv", gold = "label", per_class = {per_class}, seed = {SEED}'
        f"{examples_extra} }}\n"
        + (f"labels = {json.dumps(labels)}\n" if isinstance(labels, list) else f"[task.labels]\n{labels}")
    )
    return str(path)


def demonstrations(answers=None, per_class=PER_CLASS) -> list[tuple[str, str]]:
    """(prompt, answer) of each demonstration the documented rule picks from `DEV`, in order."""
    rows = expected_rows([gold for _, gold in DEV], CLASSES, SEED, per_class)
    answers = answers or {}
    return [(TEMPLATE.format(text=DEV[row - 1][0]), answers.get(DEV[row - 1][1], DEV[row - 1][1])) for row in rows]


def full_prompts(separator="\n\n", end="", answers=None, per_class=PER_CLASS) -> list[str]:
    shown = demonstrations(answers, per_class)
    return [few_shot_prompt(shown, TEMPLATE.format(text=text), separator, end) for text in ROWS]


def logp_columns(table, task="s", classes=CLASSES) -> np.ndarray:
    return np.column_stack([table[f"{task}_logp_{name}"].to_numpy() for name in classes])


def score(model, files, config, *extra):
    out = files / "out" / "scored.parquet"
    result = invoke("score", files / "data" / "in.csv", "-c", config, "-m", model, "--logprobs", "-o", out, *extra)
    assert result.returncode == 0, result.stderr
    return pq.read_table(out)


def test_seq2seq_few_shot_equals_the_whole_prompt_scored_by_brute_force(t5_dir, files):
    """Verbalizers: the answer is the class's first form; the class score is the log-sum-exp of its forms."""
    forms = {"positive": ["good", "positive"], "negative": ["bad", "negative"], "neutral": ["okay", "neutral"]}
    labels = "".join(f"{name} = {json.dumps(words)}\n" for name, words in forms.items())
    table = score(t5_dir, files, write_config(files, labels, examples_extra=', separator = "\\n###\\n"'))
    texts = full_prompts("\n###\n", answers={name: words[0] for name, words in forms.items()})
    flat = [form for words in forms.values() for form in words]
    reference = brute_force_logprobs(t5_dir, texts, flat)
    expected = np.column_stack([np.logaddexp(reference[:, 2 * c], reference[:, 2 * c + 1]) for c in range(3)])
    np.testing.assert_allclose(logp_columns(table), expected, atol=1e-4)


def test_content_free_prompts_of_pmi_carry_the_demonstrations_too(t5_dir, files):
    """PMI subtracts log P(c | cf) of the same few-shot prompt with a content-free row (Zhao et al., 2021)."""
    table = score(t5_dir, files, write_config(files, extra='mode = "pmi"\ncontent_free = ["N/A", "[MASK]"]\n'))
    content_free = [few_shot_prompt(demonstrations(), TEMPLATE.format(text=text)) for text in ("N/A", "[MASK]")]
    reference = brute_force_logprobs(t5_dir, full_prompts() + content_free, CLASSES)
    expected = reference[: len(ROWS)] - reference[len(ROWS) :].mean(axis=0)
    np.testing.assert_allclose(logp_columns(table), expected, atol=1e-4)


@pytest.mark.parametrize("kind", ["gpt2", "llama"])
@pytest.mark.parametrize("label_end", ["none", "\n"], ids=["no-end", "newline-end"])
def test_decoder_only_few_shot_equals_the_whole_prompt_scored_by_brute_force(causal_dirs, files, kind, label_end):
    """The answer follows its prompt as a label does: right-stripped prompt, a space, the label, the label end.

    One demonstration per class: the tiny models read 128 positions."""
    table = score(causal_dirs[kind], files, write_config(files, per_class=1), "--label-end", label_end)
    texts = full_prompts(end="" if label_end == "none" else label_end, per_class=1)
    expected = brute_force_causal_logprobs(causal_dirs[kind], texts, CLASSES, label_end)
    np.testing.assert_allclose(logp_columns(table), expected, atol=1e-4)


CHAT_TEMPLATE = (
    "{% for m in messages %}<s>{{ m['role'] }}\n{{ m['content'] }}</s>\n{% endfor %}"
    "{% if add_generation_prompt %}<s>assistant\n{% endif %}"
)


def test_with_chat_the_demonstrations_are_plain_text_in_the_user_turn(causal_dirs, files):
    """--chat: the label is scored with no space after the assistant header, but a worked example inside the
    user's text keeps the plain rule (and shows no EOS, which is a token, not text)."""
    tokenizer = AutoTokenizer.from_pretrained(causal_dirs["llama"])
    tokenizer.chat_template = CHAT_TEMPLATE
    model = AutoModelForCausalLM.from_pretrained(causal_dirs["llama"]).eval()
    scorer = LabelScorer(model, tokenizer, chat=True, label_end="eos")
    [task] = load_config(write_config(files, per_class=1)).tasks
    bound = TaskScorer(task, scorer)
    texts = full_prompts(per_class=1)
    assert bound.scored_prompts({"text": ROWS}) == texts
    np.testing.assert_allclose(
        bound.score(bound.tokenize({"text": ROWS})).log_scores, scorer.score(texts, CLASSES).logprobs
    )


def test_dry_run_shows_the_whole_prompt_and_where_the_demonstrations_come_from(t5_dir, files):
    result = invoke("score", files / "data" / "in.csv", "-c", write_config(files), "-m", t5_dir, "--dry-run")
    assert result.returncode == 0, result.stderr
    shown = result.stdout.decode()
    rows = ", ".join(map(str, expected_rows([gold for _, gold in DEV], CLASSES, SEED, PER_CLASS)))
    assert f"examples: 6 demonstrations from {files / 'configs' / '../data/dev.csv'} (rows {rows};" in shown
    prompt = "\n".join(f"    {line}" if line else "    " for line in full_prompts()[0].splitlines())
    assert prompt in shown


def test_parquet_provenance_records_the_file_and_every_demonstration(t5_dir, files):
    table = score(t5_dir, files, write_config(files))
    record = json.loads(table.schema.metadata[b"t5cls.examples"])["s"]
    assert record["sha256"] == hashlib.sha256((files / "data" / "dev.csv").read_bytes()).hexdigest()
    assert (record["gold"], record["per_class"], record["seed"], record["separator"]) == ("label", 2, SEED, "\n\n")
    rows = expected_rows([gold for _, gold in DEV], CLASSES, SEED, PER_CLASS)
    assert record["demonstrations"] == [
        {"row": row, "gold": DEV[row - 1][1], "answer": DEV[row - 1][1], "values": {"text": DEV[row - 1][0]}}
        for row in rows
    ]


def test_demonstrations_longer_than_the_model_reads_are_a_one_line_error(t5_dir, files):
    result = invoke("score", files / "data" / "in.csv", "-c", write_config(files), "-m", t5_dir, "--max-length", "20")
    assert_one_line_error(result, "fewshot.toml: task 's': 'examples': the 6 demonstrations alone are longer than")
    assert "raise --max-length" in result.stderr.decode()


def read_text(path) -> str:
    return path.read_text(encoding="utf-8")


def test_resume_continues_a_few_shot_run_and_refuses_a_changed_examples_file(t5_dir, files):
    config = write_config(files)
    args = ["score", files / "data" / "in.csv", "-c", config, "-m", t5_dir, "-q", "--chunk-size", "2"]
    reference = files / "out" / "reference.csv"
    assert invoke(*args, "-o", reference).returncode == 0
    out = files / "out" / "resumed.csv"
    stop = StopRequest()
    stop.signum = signal.SIGTERM  # as if SIGTERM came during the first chunk: that chunk is written, then it stops
    scorer = LabelScorer.from_pretrained(str(t5_dir), device="cpu")
    options = ScoreOptions(input=str(files / "data" / "in.csv"), config=config, output=str(out), chunk_rows=2)
    with pytest.raises(Interrupted):
        score_file(options, scorer, stop=stop)
    assert not out.exists()
    dev = files / "data" / "dev.csv"
    original = dev.read_bytes()
    dev.write_bytes(original.replace(b"never again", b"never ever again"))  # not a picked row: only the file changes
    changed = invoke(*args, "-o", out, "--resume")
    assert_one_line_error(changed, f"cannot resume {out}: a few-shot examples file changed since the checkpoint")
    dev.write_bytes(original)  # same content, new modification time: the content is what counts
    resumed = invoke(*args, "-o", out, "--resume")
    assert resumed.returncode == 0, resumed.stderr
    assert out.read_bytes() == reference.read_bytes()


def test_calibrate_fits_the_few_shot_scores_of_score_and_writes_a_config_that_keeps_the_examples(t5_dir, files):
    """Mode contextual and verbalizers: calibrate scores the dev file as `score --logprobs` does, leaves the
    demonstration rows out of the fit (the dev file is the examples file), and the written config, in another
    folder, reads the same examples and scores with the fitted temperature."""
    labels = 'positive = ["positive", "good"]\nnegative = ["negative"]\nneutral = ["neutral"]\n'
    config = write_config(files, labels, extra='mode = "contextual"\n')
    dev = files / "data" / "dev.csv"
    fitted_path = files / "out" / "fitted.toml"
    result = invoke("calibrate", dev, "--gold", "label", "-c", config, "--task", "s", "-m", t5_dir, "-o", fitted_path)
    assert result.returncode == 0, result.stderr
    assert "fitted on 4 rows (6 demonstration rows left out)" in " ".join(result.stdout.decode().split())

    scored = invoke("score", dev, "-c", config, "-m", t5_dir, "-q", "--logprobs", "-o", files / "out" / "dev.parquet")
    assert scored.returncode == 0, scored.stderr
    scores = logp_columns(pq.read_table(files / "out" / "dev.parquet"))
    keep = np.ones(len(DEV), dtype=bool)
    keep[[row - 1 for row in expected_rows([gold for _, gold in DEV], CLASSES, SEED, PER_CLASS)]] = False
    gold = np.array([CLASSES.index(label) for _, label in DEV])
    temperature = fit_temperature(scores[keep], gold[keep])
    nll = [scaled_nll(scores[keep], gold[keep], t) for t in (1.0, temperature)]
    assert "(4 rows, 6 demonstration rows left out)" in read_text(fitted_path).splitlines()[0]
    assert f"NLL {nll[0]:.4f} -> {nll[1]:.4f}" in read_text(fitted_path).splitlines()[0]

    [table] = tomllib.loads(read_text(fitted_path))["task"]
    [original] = tomllib.loads(read_text(files / "configs" / "fewshot.toml"))["task"]
    assert table["temperature"] == pytest.approx(temperature, rel=1e-6)
    relocated = {**original["examples"], "file": "../data/dev.csv"}
    assert table == {**original, "temperature": table["temperature"], "examples": relocated}
    [source_task], [fitted_task] = load_config(config).tasks, load_config(str(fitted_path)).tasks
    assert fitted_task.examples.demonstrations == source_task.examples.demonstrations

    rescored = invoke("score", dev, "-c", fitted_path, "-m", t5_dir, "-q", "--logprobs", "-o", files / "out" / "t.csv")
    assert rescored.returncode == 0, rescored.stderr
    rows = list(csv.DictReader(io.StringIO(read_text(files / "out" / "t.csv"), newline="")))
    probs = np.array([[float(row[f"s_p_{name}"]) for name in CLASSES] for row in rows])
    np.testing.assert_allclose(probs, softmax(scores, table["temperature"]), atol=1e-9)


@pytest.mark.parametrize(
    "extra, config_text, fragments",
    [
        (["-l", "a,b"], None, ["give either --labels or --config, not both"]),
        (["-t", "{text}"], None, ["--template and --text-column go with --labels"]),
        ([], "two", ["fewshot.toml has tasks s, t: choose one with --task"]),
        (["--task", "x"], None, ["fewshot.toml has no task 'x'; its tasks are: s"]),
        ([], "multi", ["task 'm': a multi-label task has no softmax over classes"]),
    ],
    ids=["with-labels", "with-template", "several-tasks", "unknown-task", "multi-label"],
)
def test_calibrate_config_errors_are_one_line_before_the_model_loads(files, extra, config_text, fragments):
    config = write_config(files)
    if config_text == "two":
        with open(config, "a") as stream:
            stream.write('[[task]]\nname = "t"\ntemplate = "{text}"\nlabels = ["x", "y"]\n')
    if config_text == "multi":
        (files / "configs" / "fewshot.toml").write_text(
            '[[task]]\nname = "m"\ntemplate = "{text} {label}?"\nlabels = ["x", "y"]\nmulti_label = true\n'
        )
    dev = files / "data" / "dev.csv"
    out = files / "f.toml"
    result = invoke("calibrate", dev, "-g", "label", "-c", config, "-m", "no-such/model", "-o", out, *extra)
    assert_one_line_error(result, *fragments)
    assert not (files / "f.toml").exists()


def test_calibrate_needs_labels_or_a_config(files):
    dev = files / "data" / "dev.csv"
    result = invoke("calibrate", dev, "-g", "label", "-m", "no-such/model", "-o", files / "f.toml")
    assert_one_line_error(result, "give the labels with --labels a,b,... or a task with --config FILE")


# t5cls train with a few-shot config ------------------------------------------------------------------

TRAIN_KEYS = 'mode = "mean"\npositive = "positive"\n'


def train_few_shot(model, files, config, train_file, out):
    """One short epoch of training on ``train_file`` with ``config``'s task; the summary's final training loss."""
    options = TrainOptions(train=str(train_file), output=str(out), gold="label", config=str(config), epochs=1, seed=3)
    summary = train(options, ModelOptions(str(model), device="cpu", batch_size=4), ProgressOptions(quiet=True))
    return summary.outcome.history[-1]["train_loss"]


def test_train_trains_on_the_demonstrations_and_writes_them_back_with_every_key(t5_dir, files):
    """The training loss differs from the same config without examples (same seed), and the written t5cls.toml
    keeps every key, so `score --config` of the trained model shows the prompt it showed before training."""
    labels = 'positive = ["positive", "good"]\nnegative = ["negative"]\nneutral = ["neutral"]\n'
    train_file = files / "data" / "train.csv"
    write_csv(train_file, ["text", "label"], DEV[::-1])  # not the examples file: every row is trained on
    config = Path(write_config(files, labels, extra=TRAIN_KEYS))
    plain = files / "configs" / "plain.toml"
    plain.write_text("".join(line + "\n" for line in read_text(config).splitlines() if "examples" not in line))
    few_shot = train_few_shot(t5_dir, files, config, train_file, files / "out" / "few-shot")
    without = train_few_shot(t5_dir, files, str(plain), train_file, files / "out" / "plain")
    assert few_shot != pytest.approx(without, rel=1e-6)

    written = files / "out" / "few-shot" / "t5cls.toml"
    [table] = tomllib.loads(read_text(written))["task"]
    [original] = tomllib.loads(read_text(config))["task"]
    relocated = {**original["examples"], "file": "../../data/dev.csv"}
    assert table == {**original, "temperature": 1.0, "examples": relocated}
    model = ModelOptions(str(t5_dir), device="cpu")
    rows = str(files / "data" / "in.csv")
    shown = [score_file(ScoreOptions(rows, config=str(path)), model, dry_run=True).plan for path in (config, written)]
    prompt = "\n".join(f"    {line}" if line else "    " for line in full_prompts()[0].splitlines())
    assert prompt in shown[0] and prompt in shown[1]


def test_training_rows_shown_as_demonstrations_are_left_out(files):
    """The examples file as the training file: its demonstration rows would carry their own answers."""
    [task] = load_config(write_config(files)).tasks
    with pytest.warns(T5clsWarning, match=r"dev\.csv: 6 rows are a task's few-shot demonstrations; they are left out"):
        read = read_labelled(str(files / "data" / "dev.csv"), TaskSet(None, (task,)), ["label"], "error")
    shown = expected_rows([gold for _, gold in DEV], CLASSES, SEED, PER_CLASS)
    kept = [text for row, (text, _) in enumerate(DEV, start=1) if row not in shown]
    assert (read.rows, read.demonstrations, read.skipped) == (len(kept), len(shown), 0)
    assert read.columns == {"text": kept}
    assert read.tasks[0].gold_text == [label for row, (_, label) in enumerate(DEV, start=1) if row not in shown]
    write_csv(files / "data" / "dev.csv", ["text", "label"], [DEV[row - 1] for row in shown])  # 2 per class
    [task] = load_config(write_config(files)).tasks
    with pytest.raises(InputError, match=r"dev\.csv: no rows to train or evaluate on \(6 are few-shot demonstrations"):
        read_labelled(str(files / "data" / "dev.csv"), TaskSet(None, (task,)), ["label"], "error")
