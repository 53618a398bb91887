"""The training losses and their gradients equal brute-force references and the formulas they claim.

The reference scores every (prompt, label form) with its own full forward, read from
``model(...).logits`` (summed token log-probs, EOS included for encoder-decoder models), then
applies the formula by hand; the training path decodes the label trie once per batch, through the
collator and the loss the `Trainer` calls. Both run with gradients, and every parameter's gradient
must agree.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.utils.class_weight import compute_class_weight

from helpers.reference import brute_force_logprob
from helpers.tiny_causal_models import build_causal
from t5cls import LabelScorer
from t5cls.models.tokens import TokenizedTexts
from t5cls.task_scorer import TaskScorer
from t5cls.tasks.config import Task
from t5cls.tasks.prompts import PromptTemplate
from t5cls.train.batches import LabelSetCollator, TokenizedTask, right_padded
from t5cls.train.generative import GenerativeCollator, GenerativeLoss, target_ids
from t5cls.train.gold import task_kind
from t5cls.train.objective import LabelSetLoss, TaskObjective, balanced_weights

torch.set_num_threads(1)

TEXTS = [
    "the movie was great and the acting was wonderful. Answer:",
    "terrible plot, boring characters. Answer:",
    "premise: a man sleeps. hypothesis: a person rests. Answer:",
    "café naïve 東京 🙂 Answer:",
]
# Verbalizers with shared prefixes ("not sure"/"not entailment") and a form that prefixes another.
FORMS = {"good": ("positive", "positive review"), "bad": ("negative",), "unsure": ("not sure", "not entailment")}


def task(mode: str = "sum", forms=FORMS, multi_label: bool = False, values=None) -> Task:
    template = PromptTemplate("{text} {label}?" if multi_label else "{text}", asks_label=multi_label)
    classes = tuple(forms)
    return Task("t", template, classes, tuple(forms.values()), mode=mode, multi_label=multi_label, values=values)


@pytest.fixture(scope="module")
def models(t5_dir, bart_dir, tmp_path_factory):
    return {"t5": t5_dir, "bart": bart_dir, "llama": build_causal(tmp_path_factory.mktemp("tiny-llama"), "llama")}


def brute_force_scores(scorer: LabelScorer, the_task: Task, prompts: list[str]) -> torch.Tensor:
    """(prompts, classes) S: forms' log-probs (divided by their token counts in ``mean``), log-sum-exp'ed."""
    lengths = [len(ids) for ids in scorer.label_ids(the_task.scored_labels)]
    rows = []
    for prompt in prompts:
        forms = [brute_force_logprob(scorer, prompt, form) for form in the_task.scored_labels]
        if the_task.mode == "mean":
            forms = [value / length for value, length in zip(forms, lengths)]
        rows.append(torch.stack([torch.logsumexp(torch.stack([forms[f] for f in g]), 0) for g in the_task.groups]))
    return torch.stack(rows)


def training_loss(scorer: LabelScorer, the_task: Task, gold: np.ndarray, rows: list[int], weighted: bool = False):
    """The loss the `Trainer` computes for ``rows``: tokenized, collated, scored by the trie, reduced."""
    objective = TaskObjective(TaskScorer(the_task, scorer))
    prompts = the_task.rendered_prompts({"text": TEXTS})
    tokens = scorer.tokenize(prompts, scorer.label_room(objective.labels))
    weights = balanced_weights(objective.kind, gold, len(the_task.classes)) if weighted else None
    tokenized = TokenizedTask.build(objective.kind, tokens, gold, weights)
    batch = LabelSetCollator([tokenized], scorer.tokens.pad_token_id)(rows)
    return LabelSetLoss([objective], scorer.backend)(batch)


def gradients(model: torch.nn.Module, loss: torch.Tensor) -> dict[str, torch.Tensor]:
    model.zero_grad()
    loss.backward()
    return {name: p.grad.clone() for name, p in model.named_parameters() if p.grad is not None}


def assert_same_loss_and_gradients(model, loss, reference):
    torch.testing.assert_close(loss.double(), reference.double(), rtol=1e-5, atol=1e-6)
    ours, theirs = gradients(model, loss), gradients(model, reference)
    assert ours.keys() == theirs.keys() and ours
    for name in theirs:
        scale = float(theirs[name].abs().max())  # float32 rounding: compare at the gradient's own scale
        torch.testing.assert_close(ours[name], theirs[name], rtol=1e-3, atol=1e-4 * scale + 1e-9, msg=name)


@pytest.mark.parametrize("kind", ["t5", "bart", "llama"])
@pytest.mark.parametrize("mode", ["sum", "mean"])
def test_label_set_loss_and_gradient_equal_the_brute_force_reference(models, kind, mode):
    scorer = LabelScorer.from_pretrained(str(models[kind]), device="cpu")
    the_task = task(mode)
    gold = np.array([0, 2, 1, 2])
    rows = [3, 0, 2]  # a shuffled batch, as the sampler gives
    reference = torch.nn.functional.cross_entropy(
        brute_force_scores(scorer, the_task, [TEXTS[r] for r in rows]), torch.tensor(gold[rows])
    )
    assert_same_loss_and_gradients(scorer.model, training_loss(scorer, the_task, gold, rows), reference)


def test_balanced_class_weights_are_scikit_learns():
    gold = np.array([0, 0, 0, 1, 2, 2, 0, 1])
    expected = compute_class_weight("balanced", classes=np.arange(3), y=gold)
    np.testing.assert_allclose(balanced_weights("classes", gold, 3), expected)
    # A class with no training rows is never a target: weight 0, not a division by zero.
    np.testing.assert_array_equal(balanced_weights("classes", np.array([0, 0, 1]), 3)[2], 0.0)


def test_weighted_label_set_loss_is_the_weighted_mean_of_the_cross_entropies(models):
    scorer = LabelScorer.from_pretrained(str(models["t5"]), device="cpu")
    the_task, gold, rows = task(), np.array([0, 2, 1, 2]), [0, 1, 3]
    weights = torch.tensor(compute_class_weight("balanced", classes=np.arange(3), y=gold), dtype=torch.float32)
    scores = brute_force_scores(scorer, the_task, [TEXTS[r] for r in rows])
    targets = torch.tensor(gold[rows])
    per_row = -scores.log_softmax(dim=1)[torch.arange(len(rows)), targets]
    reference = (weights[targets] * per_row).sum() / weights[targets].sum()
    loss = training_loss(scorer, the_task, gold, rows, weighted=True)
    assert_same_loss_and_gradients(scorer.model, loss, reference)


def test_regression_loss_is_the_squared_error_of_the_expected_value(models):
    scorer = LabelScorer.from_pretrained(str(models["t5"]), device="cpu")
    values = (0.0, 2.5, 5.0)
    the_task = task(forms={"low": ("negative",), "mid": ("not sure",), "high": ("positive", "great")}, values=values)
    assert task_kind(the_task) == "regression"
    gold, rows = np.array([4.5, 0.0, 1.25, 3.0]), [2, 0, 3]
    scores = brute_force_scores(scorer, the_task, [TEXTS[r] for r in rows])
    expected = scores.double().softmax(dim=1) @ torch.tensor(values, dtype=torch.float64)
    reference = ((expected - torch.tensor(gold[rows])) ** 2).mean()
    assert_same_loss_and_gradients(scorer.model, training_loss(scorer, the_task, gold, rows), reference)


@pytest.mark.parametrize("weighted", [False, True], ids=["plain", "balanced"])
def test_multi_label_loss_is_a_yes_no_cross_entropy_per_class_question(models, weighted):
    scorer = LabelScorer.from_pretrained(str(models["t5"]), device="cpu")
    classes = {"prices": ("prices",), "people": ("people",), "places": ("places",)}
    the_task = task(forms=classes, multi_label=True)
    gold = np.array([[1, 0, 1], [0, 0, 0], [1, 1, 0], [0, 1, 1]], dtype=np.float32)
    rows = [1, 3, 0]
    scores = brute_force_scores(scorer, the_task, [f"{TEXTS[r]} {name}?" for name in classes for r in rows])
    answers = torch.tensor([0 if gold[r, c] else 1 for c in range(3) for r in rows])  # yes is answer 0
    per_question = -scores.log_softmax(dim=1)[torch.arange(len(answers)), answers]
    weight = torch.ones(len(answers))
    if weighted:  # per class: n / (2 · n_answer), over all rows
        counts = {(c, a): int(((gold[:, c] == 1) == (a == 0)).sum()) for c in range(3) for a in range(2)}
        class_of = [c for c in range(3) for _ in rows]
        weight = torch.tensor([len(gold) / (2 * counts[c, int(a)]) for c, a in zip(class_of, answers)])
    reference = (weight * per_question).sum() / weight.sum()
    loss = training_loss(scorer, the_task, gold, rows, weighted=weighted)
    assert_same_loss_and_gradients(scorer.model, loss, reference)


@pytest.mark.parametrize("kind", ["t5", "llama"])
def test_generative_loss_is_the_mean_token_cross_entropy_of_the_gold_labels_first_form(models, kind):
    scorer = LabelScorer.from_pretrained(str(models[kind]), device="cpu")
    the_task, gold, rows = task(), np.array([0, 2, 1, 2]), [3, 1, 0]
    objective = TaskObjective(TaskScorer(the_task, scorer))
    tokens = scorer.tokenize(TEXTS, scorer.label_room(objective.labels))
    tokenized = TokenizedTask.build(objective.kind, tokens, gold, None)
    targets = target_ids(the_task, scorer, tokenized)
    batch = GenerativeCollator([tokenized], [targets], scorer.tokens.pad_token_id, scorer.causal)(rows)
    first_forms = [the_task.forms[gold[r]][0] for r in rows]
    length = dict(zip(the_task.scored_labels, map(len, scorer.label_ids(the_task.scored_labels))))
    lengths = [length[form] for form in first_forms]
    summed = sum(brute_force_logprob(scorer, TEXTS[r], form) for r, form in zip(rows, first_forms))
    reference = -summed / sum(lengths)
    assert_same_loss_and_gradients(scorer.model, GenerativeLoss(scorer.model)(batch), reference)


def test_multi_label_prompts_are_laid_out_class_major_like_scoring():
    tokens = TokenizedTexts([[i] for i in range(6)], np.zeros(6, dtype=bool))
    gold = np.array([[1, 0], [0, 1], [1, 1]], dtype=np.float32)
    built = TokenizedTask.build("multi-label", tokens, gold, None)
    np.testing.assert_array_equal(built.prompt_indexes([2, 0]), [2, 0, 5, 3])
    np.testing.assert_array_equal(built.targets, [0, 1, 0, 1, 0, 0])  # class 0 for rows 0..2, then class 1


@pytest.mark.parametrize("mode", ["sum", "mean"])
@pytest.mark.parametrize("multi_label", [False, True])
def test_the_training_scores_are_the_scores_a_run_writes(t5_dir, mode, multi_label):
    """The trie pass through `TaskObjective` equals `TaskScorer.class_scores` (the chunk path) on the same prompts."""
    scorer = LabelScorer.from_pretrained(str(t5_dir), device="cpu")
    bound = TaskScorer(task(mode, multi_label=multi_label), scorer)
    tokens = bound.tokenize({"text": TEXTS})
    input_ids, mask = right_padded(tokens.ids, scorer.tokens.pad_token_id)
    with torch.no_grad():
        trained = TaskObjective(bound).class_scores(scorer.backend, input_ids, mask).double().numpy()
    np.testing.assert_allclose(trained, bound.class_scores(tokens), rtol=1e-5, atol=1e-5)
    assert trained.shape == (len(TEXTS) * bound.questions, 2 if multi_label else len(FORMS))
