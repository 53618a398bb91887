"""Every scoring mode on a tiny model against a value computed by hand from brute-force log-probs."""

from __future__ import annotations

import numpy as np
import pyarrow.parquet as pq
import pytest
import torch
from transformers import AutoModelForSeq2SeqLM, AutoTokenizer

from helpers.labels import UNSURE as LABELS
from helpers.reference import brute_force_logprobs
from t5cls import LabelScorer, ScoreOptions, probability, score_file
from t5cls.errors import InputError
from t5cls.tasks import modes

TEXTS = ["the movie was great", "terrible plot, boring", "not sure about this one", "wonderful acting", "meh"]
TEMPLATE = "Review: {text} Sentiment:"
CONTENT_FREE = ["N/A", "", "[MASK]"]
ATOL = 2e-5  # float32 model log-probs of about -25 carry errors of about 1e-6


def prompts(texts):
    return [TEMPLATE.format(text=text) for text in texts]


@pytest.fixture(scope="module")
def scorer(t5_dir):
    return LabelScorer.from_pretrained(str(t5_dir), device="cpu")


def score_config(scorer, tmp_path, body, texts=TEXTS, chunk_rows=1000, **options):
    """Score ``texts`` with a one-file config in-process and return the output table."""
    (tmp_path / "task.toml").write_text(body)
    (tmp_path / "in.csv").write_text("text\n" + "".join(f'"{text}"\n' for text in texts))
    out = tmp_path / "out.parquet"
    options = ScoreOptions(
        input=str(tmp_path / "in.csv"),
        config=str(tmp_path / "task.toml"),
        output=str(out),
        chunk_rows=chunk_rows,
        **options,
    )
    score_file(options, scorer)
    return pq.read_table(out)


def task_toml(labels, *settings):
    """A one-task config; ``labels`` and ``settings`` (e.g. 'mode = "pmi"') are TOML text."""
    return "\n".join(["[[task]]", 'name = "t"', f'template = "{TEMPLATE}"', f"labels = {labels}", *settings]) + "\n"


def probs(table, classes, prefix="t_p_"):
    return np.column_stack([table[f"{prefix}{name}"].to_numpy() for name in classes])


def softmax(scores):
    weights = np.exp(scores - scores.max(axis=1, keepdims=True))
    return weights / weights.sum(axis=1, keepdims=True)


def logsumexp(values):
    return np.log(np.exp(values).sum(axis=1))


LABELS_TOML = '["positive", "negative", "not sure"]'


@pytest.fixture(scope="module")
def row_logprobs(t5_dir):
    return brute_force_logprobs(t5_dir, prompts(TEXTS), LABELS)


@pytest.fixture(scope="module")
def content_free_logprobs(t5_dir):
    return brute_force_logprobs(t5_dir, prompts(CONTENT_FREE), LABELS)


def test_sum_with_temperature_and_logprobs(scorer, tmp_path, row_logprobs):
    table = score_config(scorer, tmp_path, task_toml(LABELS_TOML, "temperature = 2.0"), logprobs=True)
    np.testing.assert_allclose(probs(table, LABELS), softmax(row_logprobs / 2.0), atol=ATOL)
    np.testing.assert_allclose(probs(table, LABELS, "t_logp_"), row_logprobs, atol=ATOL)
    assert table["t_pred"].to_pylist() == [LABELS[i] for i in row_logprobs.argmax(axis=1)]


def test_verbalizer_is_the_log_sum_exp_of_the_forms(scorer, tmp_path, t5_dir):
    body = task_toml('{ good = ["positive", "great"], bad = ["negative", "terrible", "boring"] }')
    table = score_config(scorer, tmp_path, body, logprobs=True)
    forms = brute_force_logprobs(t5_dir, prompts(TEXTS), ["positive", "great", "negative", "terrible", "boring"])
    classes = np.column_stack([logsumexp(forms[:, :2]), logsumexp(forms[:, 2:])])
    np.testing.assert_allclose(probs(table, ["good", "bad"], "t_logp_"), classes, atol=ATOL)
    np.testing.assert_allclose(probs(table, ["good", "bad"]), softmax(classes), atol=ATOL)
    assert table.column_names[1:] == ["t_p_good", "t_p_bad", "t_pred", "t_entropy", "t_logp_good", "t_logp_bad"]


def test_mean_divides_by_the_label_tokens_including_eos(scorer, tmp_path, t5_dir, row_logprobs):
    table = score_config(scorer, tmp_path, task_toml(LABELS_TOML, 'mode = "mean"'))
    tokenizer = AutoTokenizer.from_pretrained(t5_dir)
    lengths = np.array([len(tokenizer(text_target=label).input_ids) for label in LABELS])
    assert lengths[-1] > lengths[0]  # "not sure" is longer than "positive"
    np.testing.assert_allclose(probs(table, LABELS), softmax(row_logprobs / lengths), atol=ATOL)


def test_pmi_subtracts_the_mean_content_free_log_probability(scorer, tmp_path, row_logprobs, content_free_logprobs):
    table = score_config(scorer, tmp_path, task_toml(LABELS_TOML, 'mode = "pmi"'))
    expected = softmax(row_logprobs - content_free_logprobs.mean(axis=0))
    np.testing.assert_allclose(probs(table, LABELS), expected, atol=ATOL)


def test_pmi_with_custom_content_free_strings(scorer, tmp_path, t5_dir, row_logprobs):
    table = score_config(scorer, tmp_path, task_toml(LABELS_TOML, 'mode = "pmi"', 'content_free = ["nothing"]'))
    reference = brute_force_logprobs(t5_dir, prompts(["nothing"]), LABELS)
    np.testing.assert_allclose(probs(table, LABELS), softmax(row_logprobs - reference[0]), atol=ATOL)


def test_contextual_divides_by_the_mean_content_free_distribution(
    scorer, tmp_path, row_logprobs, content_free_logprobs
):
    table = score_config(scorer, tmp_path, task_toml(LABELS_TOML, 'mode = "contextual"'))
    calibrated = softmax(row_logprobs) / softmax(content_free_logprobs).mean(axis=0)
    np.testing.assert_allclose(probs(table, LABELS), calibrated / calibrated.sum(axis=1, keepdims=True), atol=ATOL)


def test_content_free_prompts_are_scored_once_per_task(scorer, tmp_path, monkeypatch):
    calls = []
    original = scorer.score
    monkeypatch.setattr(
        scorer,
        "score",
        lambda texts, labels: (
            calls.append(len(texts.ids if hasattr(texts, "ids") else texts)) or original(texts, labels)
        ),
    )
    score_config(scorer, tmp_path, task_toml(LABELS_TOML, 'mode = "pmi"'), chunk_rows=2)
    assert sorted(calls) == [1, 2, 2, 3]  # three chunks of rows, one batch of 3 content-free prompts


@pytest.mark.parametrize("chunk_rows", [1000, 2])
def test_batch_subtracts_the_mean_log_probability_of_the_chunk(scorer, tmp_path, row_logprobs, chunk_rows):
    table = score_config(scorer, tmp_path, task_toml(LABELS_TOML, 'mode = "batch"'), chunk_rows=chunk_rows)
    expected = []
    for start in range(0, len(TEXTS), chunk_rows):
        normalised = np.log(softmax(row_logprobs[start : start + chunk_rows]))
        expected.append(softmax(normalised - normalised.mean(axis=0)))
    np.testing.assert_allclose(probs(table, LABELS), np.concatenate(expected), atol=ATOL)


def test_first_is_the_restricted_softmax_of_the_first_step_logits(scorer, tmp_path, t5_dir):
    table = score_config(scorer, tmp_path, task_toml('["positive", "negative"]', 'mode = "first"'))
    tokenizer = AutoTokenizer.from_pretrained(t5_dir)
    model = AutoModelForSeq2SeqLM.from_pretrained(t5_dir).eval()
    first = [tokenizer(text_target=label).input_ids[0] for label in ["positive", "negative"]]
    logits = []
    for prompt in prompts(TEXTS):
        start = torch.tensor([[model.config.decoder_start_token_id]])
        with torch.no_grad():
            step = model(**tokenizer(prompt, return_tensors="pt"), decoder_input_ids=start).logits[0, 0]
        logits.append(step[first].double().numpy())
    np.testing.assert_allclose(probs(table, ["positive", "negative"]), softmax(np.array(logits)), atol=ATOL)


def test_first_refuses_labels_that_share_a_first_token(scorer, tmp_path):
    with pytest.raises(InputError, match=r"task 't': mode 'first' needs labels with distinct first tokens.*'not sure'"):
        score_config(scorer, tmp_path, task_toml('["not entailment", "not sure"]', 'mode = "first"'))


def test_regression_expectation_and_spread(scorer, tmp_path, t5_dir):
    words = ["terrible", "boring", "great"]
    table = score_config(scorer, tmp_path, task_toml(str(words).replace("'", '"'), "values = [1, 2, 5]"))
    p = softmax(brute_force_logprobs(t5_dir, prompts(TEXTS), words))
    values = np.array([1.0, 2.0, 5.0])
    expected = p @ values
    np.testing.assert_allclose(table["t_expected"].to_numpy(), expected, atol=ATOL)
    np.testing.assert_allclose(table["t_std"].to_numpy(), np.sqrt(p @ values**2 - expected**2), atol=ATOL)


def test_multi_label_asks_one_yes_no_question_per_class(scorer, tmp_path, t5_dir):
    template = "{text} Is this about {label}?"
    body = f'[[task]]\nname = "t"\ntemplate = "{template}"\nlabels = ["acting", "plot"]\nmulti_label = true\n'
    table = score_config(scorer, tmp_path, body)
    expected = []
    for name in ["acting", "plot"]:
        logprobs = brute_force_logprobs(t5_dir, [template.format(text=t, label=name) for t in TEXTS], ["yes", "no"])
        expected.append(softmax(logprobs)[:, 0])
    expected = np.column_stack(expected)
    np.testing.assert_allclose(probs(table, ["acting", "plot"]), expected, atol=ATOL)
    chosen = [",".join(n for n, p in zip(["acting", "plot"], row) if p > 0.5) for row in expected]
    assert table["t_pred"].to_pylist() == chosen
    binary = -(expected * np.log(expected) + (1 - expected) * np.log(1 - expected)).sum(axis=1)
    np.testing.assert_allclose(table["t_entropy"].to_numpy(), binary, atol=ATOL)


def test_modes_math_on_small_numbers():
    form_logprobs = np.log(np.array([[0.1, 0.2, 0.3]]))
    assert np.allclose(modes.verbalize(form_logprobs, [[0, 1], [2]]), np.log([[0.3, 0.3]]))
    assert modes.verbalize(np.array([[-1.25]]), [[0]])[0, 0] == -1.25  # one form: exactly its log-prob
    expected, std = modes.expectation(np.array([[0.5, 0.5]]), [0.0, 2.0])
    assert expected[0] == 1.0 and std[0] == 1.0
    assert np.allclose(probability.binary_entropy(np.array([[0.5, 1.0]])), [np.log(2)])
