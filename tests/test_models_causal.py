"""Decoder-only backend: label log-probs equal a brute-force full forward of prompt + label, per (row, label)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer, MistralConfig, MistralForCausalLM

from helpers.reference import brute_force_causal_logprobs as brute_force
from helpers.tiny_causal_models import build_causal, merging_tokenizer
from t5cls import LabelScorer
from t5cls.errors import InputError
from t5cls.models.causal import CausalBackend

torch.set_num_threads(1)  # tiny models gain nothing from threads on a loaded machine

TEXTS = [
    "the movie was great and the acting was wonderful. Sentiment:",
    "terrible",
    "a much longer sentence with many many words in it so that the batch needs padding here\nlabel:",
    "café naïve 東京 🙂",
    "premise: a man sleeps. hypothesis: a person rests. Answer:",
]
# Shared prefixes ("not entailment"/"not sure", "positive"/"positive review": a label that is a prefix of another).
MULTI = ["entailment", "not entailment", "not sure", "neutral", "positive", "positive review", "mixed feelings"]
SINGLE = ["positive", "negative", "neutral"]
KINDS = ["gpt2", "llama", "mistral", "qwen2", "qwen3"]  # every family is in tests/test_models_families.py too


@pytest.fixture(scope="module")
def causal_dirs(tmp_path_factory):
    return {kind: build_causal(tmp_path_factory.mktemp(f"tiny-{kind}"), kind) for kind in KINDS}


@pytest.fixture(params=KINDS)
def model_dir(request, causal_dirs):
    return causal_dirs[request.param]


@pytest.mark.parametrize("labels", [MULTI, SINGLE], ids=["multi-token", "single-token"])
def test_logprobs_match_brute_force(model_dir, labels):
    scorer = LabelScorer.from_pretrained(str(model_dir), device="cpu", batch_size=2)
    assert isinstance(scorer.backend, CausalBackend) and scorer.backend.tree_decoding
    np.testing.assert_allclose(scorer.score(TEXTS, labels).logprobs, brute_force(model_dir, TEXTS, labels), atol=1e-4)


def test_a_batch_cut_by_length_matches_brute_force(causal_dirs, monkeypatch):
    # pass cost 0: the batcher cuts the batch at every distinct prompt length, each group unpadded
    scorer = LabelScorer.from_pretrained(str(causal_dirs["llama"]), device="cpu", batch_size=len(TEXTS))
    monkeypatch.setattr(scorer.backend, "prompt_pass_tokens", 0)
    real, widths = scorer.backend.label_logprobs, []
    monkeypatch.setattr(
        scorer.backend, "label_logprobs", lambda ids, mask, trie: widths.append(ids.shape[1]) or real(ids, mask, trie)
    )
    scores = scorer.score(TEXTS, MULTI)
    assert sorted(widths) == sorted({len(ids) for ids in scorer.tokenize(TEXTS, scorer.label_room(MULTI)).ids})
    np.testing.assert_allclose(scores.logprobs, brute_force(causal_dirs["llama"], TEXTS, MULTI), atol=1e-4)


@pytest.mark.parametrize("kind", ["gpt2", "llama"])
def test_per_label_fallback_and_eager_attention_match_brute_force(causal_dirs, kind):
    reference = brute_force(causal_dirs[kind], TEXTS, MULTI)
    scorer = LabelScorer.from_pretrained(str(causal_dirs[kind]), device="cpu", batch_size=3)
    scorer.backend.tree_decoding = False
    np.testing.assert_allclose(scorer.score(TEXTS, MULTI).logprobs, reference, atol=1e-4)
    scorer.backend.tree_decoding = True
    scorer.model.set_attn_implementation("eager")
    np.testing.assert_allclose(scorer.score(TEXTS, MULTI).logprobs, reference, atol=1e-4)


def test_sliding_window_models_take_the_tree_path_only_within_the_window():
    config = MistralConfig(
        vocab_size=64,
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=1,
        num_attention_heads=4,
        num_key_value_heads=2,
        sliding_window=16,
    )
    backend = CausalBackend(MistralForCausalLM(config))
    assert backend.tree_decoding and backend.window == 16
    assert backend._within_window(torch.tensor([3, 12]), 4)  # the deepest label token is 15 after the first
    assert not backend._within_window(torch.tensor([3, 13]), 4)


@pytest.mark.parametrize("kind", ["gpt2", "llama"])
def test_independent_of_batch_size_and_batch_neighbours(causal_dirs, kind):
    scorer = LabelScorer.from_pretrained(str(causal_dirs[kind]), device="cpu", batch_size=len(TEXTS))
    together = scorer.score(TEXTS, MULTI).logprobs
    for batch_size in (1, 2, 3):
        scorer.batch_size = batch_size
        np.testing.assert_allclose(scorer.score(TEXTS, MULTI).logprobs, together, atol=1e-5)
    order = [3, 0, 4, 2, 1]
    np.testing.assert_allclose(scorer.score([TEXTS[i] for i in order], MULTI).logprobs, together[order], atol=1e-5)


@pytest.mark.parametrize("label_end", ["none", "eos", "\n", "."])
@pytest.mark.parametrize("kind", ["gpt2", "llama"])
def test_label_end(causal_dirs, kind, label_end):
    scorer = LabelScorer.from_pretrained(str(causal_dirs[kind]), device="cpu", batch_size=2, label_end=label_end)
    ids = scorer.label_ids(MULTI)
    assert all((seq[-1] == scorer.tokenizer.eos_token_id) == (label_end == "eos") for seq in ids)
    reference = brute_force(causal_dirs[kind], TEXTS, MULTI, label_end)
    np.testing.assert_allclose(scorer.score(TEXTS, MULTI).logprobs, reference, atol=1e-4)


def test_labels_are_tokenized_in_context(causal_dirs):
    tokenizer = AutoTokenizer.from_pretrained(causal_dirs["llama"])  # adds <s>: label ids must not carry it
    scorer = LabelScorer.from_pretrained(str(causal_dirs["llama"]), device="cpu")
    prompt = tokenizer("Answer:").input_ids
    for label, ids in zip(MULTI, scorer.label_ids(MULTI)):
        assert tokenizer("Answer: " + label).input_ids == prompt + ids


def test_trailing_whitespace_of_the_prompt_is_dropped(causal_dirs):
    scorer = LabelScorer.from_pretrained(str(causal_dirs["gpt2"]), device="cpu")
    stripped = scorer.score(["Answer:"], SINGLE).logprobs
    np.testing.assert_allclose(
        scorer.score(["Answer: ", "Answer:\n"], SINGLE).logprobs, np.vstack([stripped] * 2), atol=1e-5
    )


def test_label_merging_with_the_prompt_end_is_refused(tmp_path):
    model_dir = build_causal(tmp_path, "gpt2", tokenizer=merging_tokenizer())
    scorer = LabelScorer.from_pretrained(str(model_dir), device="cpu")
    np.testing.assert_allclose(
        scorer.score(["Answer:"], SINGLE).logprobs, brute_force(model_dir, ["Answer:"], SINGLE), atol=1e-4
    )
    with pytest.raises(
        InputError, match=r"label 'positive' does not tokenize the same after the prompt ending 'it was great!'"
    ):
        scorer.score(["Answer:", "it was great!"], SINGLE)


def test_first_token_logits_are_the_next_token_distribution(causal_dirs):
    scorer = LabelScorer.from_pretrained(str(causal_dirs["llama"]), device="cpu")
    tokens = scorer.tokenize(TEXTS)
    rows = np.arange(len(TEXTS))
    logits = scorer.backend.first_token_logits(*scorer.batches.padded(tokens.ids, rows))
    for row, ids in enumerate(tokens.ids):
        with torch.no_grad():
            expected = scorer.model(torch.tensor([ids])).logits[0, -1]
        torch.testing.assert_close(logits[row], expected, atol=1e-4, rtol=0)


def test_pad_token_and_empty_prompts(causal_dirs):
    scorer = LabelScorer.from_pretrained(str(causal_dirs["gpt2"]), device="cpu")
    assert scorer.tokenizer.pad_token == scorer.tokenizer.eos_token  # GPT-2 has none of its own
    with pytest.raises(InputError, match="input row 1: the prompt has no tokens"):
        scorer.score(["Answer:", " "], SINGLE)


def test_an_empty_prompt_names_its_file_and_row(causal_dirs, tmp_path):
    from helpers.cli import assert_one_line_error, invoke

    source = tmp_path / "in.csv"
    source.write_text("id,text\n1,good\n2,fine\n3,\n")
    result = invoke(
        "score", source, "-l", "positive,negative", "-m", causal_dirs["gpt2"], "-t", "{text}", "--on-null", "empty"
    )
    assert_one_line_error(result, f"{source}: row 3: the prompt has no tokens")


def brute_force_tail(model_dir, text, labels, limit):
    """log p(label | <s> if the tokenizer adds one, then the prompt's last tokens up to ``limit``), one forward each."""
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForCausalLM.from_pretrained(model_dir).eval()
    plain = tokenizer(text, add_special_tokens=False).input_ids
    bos = tokenizer(text).input_ids[: -len(plain)]
    prompt = bos + plain[len(bos) - limit :]
    row = []
    for label in labels:
        label_ids = tokenizer(text + " " + label, add_special_tokens=False).input_ids[len(plain) :]
        ids = prompt + label_ids
        with torch.no_grad():
            logprobs = model(torch.tensor([ids])).logits[0].log_softmax(-1)
        row.append(sum(logprobs[t - 1, ids[t]].item() for t in range(len(prompt), len(ids))))
    return np.array(row)


@pytest.mark.parametrize("kind", ["gpt2", "llama"])
@pytest.mark.parametrize("max_length", [None, 40])
def test_long_prompts_lose_their_start_and_leave_room_for_the_labels(causal_dirs, kind, max_length):
    """A prompt past the limit keeps its end (the question) and fits with the longest label in the window."""
    text = "word " * 200 + "the movie was great. Sentiment:"
    scorer = LabelScorer.from_pretrained(str(causal_dirs[kind]), device="cpu", max_length=max_length)
    room = max(map(len, scorer.label_ids(MULTI)))
    limit = (max_length or 128) - room  # the tiny models have 128 positions
    tokens = scorer.tokenize([text, "short. Answer:"], room)
    assert len(tokens.ids[0]) == limit and list(tokens.truncated) == [True, False]
    scores = scorer.score([text], MULTI)
    assert scores.truncated.tolist() == [True]
    np.testing.assert_allclose(scores.logprobs[0], brute_force_tail(causal_dirs[kind], text, MULTI, limit), atol=1e-4)


def test_max_length_must_leave_room_for_a_prompt(causal_dirs):
    scorer = LabelScorer.from_pretrained(str(causal_dirs["llama"]), device="cpu", max_length=3)
    with pytest.raises(InputError, match="max_length 3 leaves no room for a prompt before labels of"):
        scorer.score(["Answer:"], MULTI)


CHAT_TEMPLATE = (
    "{% for m in messages %}<s>{{ m['role'] }}\n{{ m['content'] }}</s>\n{% endfor %}"
    "{% if add_generation_prompt %}<s>assistant\n{% endif %}"
)


def test_chat_wraps_the_prompt_and_scores_the_answer_after_the_assistant_header(causal_dirs):
    tokenizer = AutoTokenizer.from_pretrained(causal_dirs["llama"])
    tokenizer.chat_template = CHAT_TEMPLATE
    model = AutoModelForCausalLM.from_pretrained(causal_dirs["llama"]).eval()
    scorer = LabelScorer(model, tokenizer, chat=True, label_end="eos")
    texts = ["Is this review positive? the movie was great", "Is this review positive? awful film"]
    expected = []
    for text in texts:
        chat = f"<s>user\n{text}</s>\n<s>assistant\n"
        prompt = tokenizer(chat, add_special_tokens=False).input_ids
        row = []
        for label in MULTI:
            ids = [*tokenizer(chat + label, add_special_tokens=False).input_ids, tokenizer.eos_token_id]
            assert ids[: len(prompt)] == prompt
            with torch.no_grad():
                logprobs = model(torch.tensor([ids])).logits[0].log_softmax(-1)
            row.append(sum(logprobs[t - 1, ids[t]].item() for t in range(len(prompt), len(ids))))
        expected.append(row)
    np.testing.assert_allclose(scorer.score(texts, MULTI).logprobs, expected, atol=1e-4)


def test_chat_needs_a_chat_template_and_a_decoder_only_model(causal_dirs, t5_dir):
    with pytest.raises(InputError, match="no chat template"):
        LabelScorer.from_pretrained(str(causal_dirs["llama"]), device="cpu", chat=True)
    with pytest.raises(InputError, match="chat applies to decoder-only"):
        LabelScorer.from_pretrained(str(t5_dir), device="cpu", chat=True)


def test_label_end_is_for_decoder_only_models(t5_dir):
    with pytest.raises(InputError, match="decoder-only"):
        LabelScorer.from_pretrained(str(t5_dir), device="cpu", label_end="none")


def test_decoder_only_model_through_the_cli_with_label_end(causal_dirs, tmp_path):
    import csv
    import io

    from helpers.cli import invoke

    (tmp_path / "in.csv").write_text("text\nthe movie was great\nawful film\n")
    template = "Review: {text}\nSentiment:"
    result = invoke(
        "score",
        tmp_path / "in.csv",
        "-l",
        "positive,negative,not sure",
        "-m",
        causal_dirs["llama"],
        "-t",
        template,
        "--label-end",
        "eos",
        "--logprobs",
        "-q",
    )
    assert result.returncode == 0, result.stderr
    rows = list(csv.DictReader(io.StringIO(result.stdout.decode())))
    prompts = [template.format(text=row["text"]) for row in rows]
    expected = brute_force(causal_dirs["llama"], prompts, ["positive", "negative", "not sure"], label_end="eos")
    np.testing.assert_allclose(
        [[float(r[f"logp_{label}"]) for label in ("positive", "negative", "not sure")] for r in rows],
        expected,
        atol=1e-4,
    )


def test_chat_through_the_cli(causal_dirs, tmp_path):
    import csv
    import io
    import shutil

    from helpers.cli import invoke

    model_dir = shutil.copytree(causal_dirs["llama"], tmp_path / "chat-model")
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    tokenizer.chat_template = CHAT_TEMPLATE
    tokenizer.save_pretrained(model_dir)
    (tmp_path / "in.csv").write_text("text\nthe movie was great\nawful film\n")
    args = [
        "score",
        tmp_path / "in.csv",
        "-l",
        "positive,negative,not sure",
        "-m",
        model_dir,
        "-t",
        "Review: {text}",
        "--chat",
        "--logprobs",
        "-q",
    ]
    plan = invoke(*args, "--dry-run")
    assert "  <s>user\n  Review: the movie was great</s>\n  <s>assistant\n" in plan.stdout.decode(), (
        plan.stdout.decode()
    )
    result = invoke(*args)
    assert result.returncode == 0, result.stderr
    rows = list(csv.DictReader(io.StringIO(result.stdout.decode())))
    scorer = LabelScorer.from_pretrained(str(model_dir), device="cpu", chat=True)
    expected = scorer.score(["Review: the movie was great", "Review: awful film"], ["positive", "negative", "not sure"])
    np.testing.assert_allclose(
        [[float(r[f"logp_{label}"]) for label in ("positive", "negative", "not sure")] for r in rows],
        expected.logprobs,
        atol=1e-5,
    )
