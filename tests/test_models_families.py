"""Every family in t5cls's table equals its own forward: label scores, training scores and gradients.

Parametrized over `t5cls.models.families.FAMILIES` (plus T5 v1.1's untied head), so a row added
to the table is tested here by that alone. Each model is a tiny random one of the family's real
transformers class (`helpers.tiny_families`), with the family's peculiarities set to values that
matter at this size; the reference is the family's own ``model(...)`` forward, one per (row, label).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from helpers.cli import invoke
from helpers.reference import brute_force_causal_logprobs, brute_force_logprob, brute_force_logprobs
from helpers.tiny_families import build_family
from t5cls import LabelScorer
from t5cls.errors import ModelLoadError
from t5cls.models.families import FAMILIES, UnlistedFamilyWarning, sliding_window
from t5cls.task_scorer import TaskScorer
from t5cls.tasks.config import Task
from t5cls.tasks.prompts import PromptTemplate
from t5cls.train.batches import LabelSetCollator, TokenizedTask
from t5cls.train.objective import LabelSetLoss, TaskObjective

torch.set_num_threads(1)

VARIANTS = [*FAMILIES, "t5-v1.1"]
LABELS = ["entailment", "not entailment", "not sure", "neutral", "positive", "positive review", "mixed feelings"]
SEQ2SEQ_TEXTS = [
    "the movie was great and the acting was wonderful",
    "terrible",
    "a much longer sentence with many many words in it so that the batch needs padding here",
    "café naïve 東京 🙂",
    "premise: a man sleeps. hypothesis: a person rests.",
]
INSTRUCTION = "Classify the review below: is it positive, negative, or not sure? Answer with one of those.\n"
CAUSAL_TEXTS = [
    INSTRUCTION + "Review: the movie was great and the acting was wonderful\nAnswer:",  # a shared prefix
    INSTRUCTION + "Review: terrible\nAnswer:",
    "terrible",
    "premise: a man sleeps. hypothesis: a person rests. Answer:",
    # Longer than the 64-token sliding window of the windowed families: its batch takes the per-label path.
    "great! " * 11 + "a much longer sentence with many many words in it so that the batch needs padding here",
]


@pytest.fixture(scope="module")
def family_dir(tmp_path_factory):
    built = {}

    def build(variant: str):
        if variant not in built:
            built[variant] = build_family(tmp_path_factory.mktemp(f"tiny-{variant}"), variant)
        return built[variant]

    return build


def reference(scorer: LabelScorer, model_dir, texts, labels) -> np.ndarray:
    """The family's own forward per (row, label)."""
    if scorer.causal:
        return brute_force_causal_logprobs(model_dir, texts, labels)
    return brute_force_logprobs(model_dir, texts, labels)


def label_task(labels) -> Task:
    return Task("t", PromptTemplate("{text}"), tuple(labels), tuple((label,) for label in labels))


def training_batch(scorer: LabelScorer, texts, gold) -> dict:
    """``texts`` tokenized and collated as `t5cls train` feeds them to its loss."""
    objective = TaskObjective(TaskScorer(label_task(LABELS), scorer))
    tokens = scorer.tokenize(texts, scorer.label_room(objective.labels))
    tokenized = TokenizedTask.build(objective.kind, tokens, np.asarray(gold), None)
    return LabelSetCollator([tokenized], scorer.tokens.pad_token_id)(list(range(len(texts))))


@pytest.mark.parametrize("variant", VARIANTS)
def test_scores_and_training_scores_equal_the_familys_own_forward(family_dir, variant):
    model_dir = family_dir(variant)
    scorer = LabelScorer.from_pretrained(str(model_dir), device="cpu", batch_size=2)
    family = FAMILIES[scorer.model.config.model_type]
    assert scorer.backend.tree_decoding == family.tree
    assert scorer.model.config._attn_implementation == family.attention
    texts = CAUSAL_TEXTS if scorer.causal else SEQ2SEQ_TEXTS
    expected = reference(scorer, model_dir, texts, LABELS)
    np.testing.assert_allclose(scorer.score(texts, LABELS).logprobs, expected, atol=1e-4)

    objective = TaskObjective(TaskScorer(label_task(LABELS), scorer))
    task = training_batch(scorer, texts, [0] * len(texts))["tasks"][0]
    with torch.enable_grad():
        scores = objective.class_scores(scorer.backend, task["input_ids"], task["attention_mask"])
    assert scores.requires_grad
    np.testing.assert_allclose(scores.detach().double().numpy(), expected, atol=1e-4)


@pytest.mark.parametrize("variant", ["gemma2", "gemma3_text"])
def test_windowed_families_score_a_long_prompt_through_their_own_forward(family_dir, variant):
    """The long prompt reaches past the window, so the tree path would see keys the family masks."""
    scorer = LabelScorer.from_pretrained(str(family_dir(variant)), device="cpu", batch_size=1)
    long_prompt = scorer.tokenize(CAUSAL_TEXTS[-1:], scorer.label_room(LABELS)).ids[0]
    assert len(long_prompt) + 1 > sliding_window(scorer.model.config)
    assert not scorer.backend._within_window(torch.tensor([len(long_prompt)]), 1)


@pytest.mark.parametrize(
    "variant, tree",
    [("t5", True), ("umt5", False), ("llama", True), ("llama", False), ("gemma2", True), ("bart", True)],
    ids=["seq2seq-tree", "seq2seq-per-label", "causal-tree", "causal-per-label", "causal-softcap", "seq2seq-bias"],
)
def test_label_set_loss_gradients_equal_the_familys_own_forward(family_dir, variant, tree):
    scorer = LabelScorer.from_pretrained(str(family_dir(variant)), device="cpu")
    scorer.backend.tree_decoding = tree
    texts = (CAUSAL_TEXTS if scorer.causal else SEQ2SEQ_TEXTS)[:3]
    gold = [0, 2, 5]
    batch = training_batch(scorer, texts, gold)
    loss = LabelSetLoss([TaskObjective(TaskScorer(label_task(LABELS), scorer))], scorer.backend)(batch)
    scores = torch.stack([torch.stack([brute_force_logprob(scorer, t, label) for label in LABELS]) for t in texts])
    expected = torch.nn.functional.cross_entropy(scores, torch.tensor(gold))
    torch.testing.assert_close(loss.double(), expected.double(), rtol=1e-5, atol=1e-5)
    ours, theirs = _gradients(scorer.model, loss), _gradients(scorer.model, expected)
    assert ours.keys() == theirs.keys() and ours
    for name, gradient in theirs.items():
        scale = float(gradient.abs().max())
        torch.testing.assert_close(ours[name], gradient, rtol=1e-3, atol=1e-4 * scale + 1e-9, msg=name)


def _gradients(model: torch.nn.Module, loss: torch.Tensor) -> dict[str, torch.Tensor]:
    model.zero_grad()
    loss.backward()
    return {name: p.grad.clone() for name, p in model.named_parameters() if p.grad is not None}


def test_a_family_not_in_the_table_is_scored_exactly_with_one_note(family_dir, tmp_path):
    model_dir = family_dir("olmo")
    assert "olmo" not in FAMILIES
    with pytest.warns(UnlistedFamilyWarning, match="'olmo' is not in t5cls's family table"):
        scorer = LabelScorer.from_pretrained(str(model_dir), device="cpu")
    assert not scorer.backend.tree_decoding
    texts = CAUSAL_TEXTS[:4]
    np.testing.assert_allclose(
        scorer.score(texts, LABELS).logprobs, reference(scorer, model_dir, texts, LABELS), atol=1e-4
    )

    rows = tmp_path / "rows.csv"
    rows.write_text("text\ngreat\nawful\n")
    result = invoke("score", rows, "-l", "positive,negative", "-m", model_dir, "-t", "{text}", "-q")
    assert result.returncode == 0, result.stderr
    notes = [line for line in result.stderr.decode().splitlines() if line.startswith("t5cls: note: ")]
    assert len(notes) == 1 and "'olmo' is not in t5cls's family table" in notes[0], result.stderr


def test_mt5_head_is_never_scaled(family_dir):
    """mT5's config forces tie_word_embeddings, but MT5ForConditionalGeneration never scales its decoder output."""
    scorer = LabelScorer.from_pretrained(str(family_dir("mt5")), device="cpu")
    assert scorer.model.config.tie_word_embeddings and scorer.backend.head.scale is None
    assert LabelScorer.from_pretrained(str(family_dir("t5")), device="cpu").backend.head.scale is not None


def test_a_local_folder_that_does_not_load_gets_no_offline_hint(family_dir, tmp_path):
    broken = tmp_path / "broken"
    broken.mkdir()
    for name in ("config.json", "tokenizer.json", "tokenizer_config.json"):
        (broken / name).write_bytes((family_dir("t5") / name).read_bytes())
    (broken / "model.safetensors").write_bytes(b"not weights")
    with pytest.raises(ModelLoadError) as raised:
        LabelScorer.from_pretrained(str(broken), device="cpu")
    assert "could not load model" in str(raised.value) and "Offline?" not in str(raised.value)
