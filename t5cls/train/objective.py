"""The training objectives on a task's exact class scores, with gradients.

For prompt x, S(c | x) is the task's class log-score, computed exactly as scoring computes it:
the backend's label-trie decoding gives log p(f | x) for every form f (EOS included), and
`t5cls.tasks.modes` turns them into class scores, run here on torch tensors (``mean`` divides
each by its token count, a class's forms are log-sum-exp'ed), with the label lengths of the
task's `TaskScorer`.
The losses, per kind of task (`t5cls.train.gold`):

- ``classes``: the label-set cross-entropy −log softmax_c S(c | x)[gold], optionally weighted per
  gold class (weighted mean over the batch, as `torch.nn.functional.cross_entropy` does);
- ``regression``: (Σ_c softmax(S)_c · value_c − gold)², the squared error of the expected value;
- ``multi-label``: for every class question, the yes/no cross-entropy −log softmax(S(yes), S(no))[gold].

Dev losses are these formulas on the dev scores, unweighted (`dev_loss`), so training and
evaluation measure the same thing.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from t5cls.models.backend import Backend
from t5cls.task_scorer import TaskScorer
from t5cls.tasks import modes
from t5cls.train.gold import CLASSES, MULTI_LABEL, REGRESSION, task_kind

TRAINABLE_MODES = ("sum", "mean")


class TaskObjective:
    """One task's class scores (differentiable) and its loss."""

    def __init__(self, bound: TaskScorer):
        """``bound``: the task bound to the scorer being trained, as a scoring run binds it."""
        self.bound = bound
        self.task = task = bound.task
        self.kind = task_kind(task)
        self.labels = bound.labels
        self.trie = bound.scorer.label_trie(self.labels)
        self.groups = task.groups
        self.lengths = torch.from_numpy(bound.lengths).float()
        self.values = None if task.values is None else torch.tensor(task.values, dtype=torch.float64)

    def class_scores(self, backend: Backend, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """(prompts, classes) S from one trie pass (multi-label: the (yes, no) scores of each question)."""
        return self.scores_from_logprobs(backend.label_logprobs(input_ids, attention_mask, self.trie))

    def scores_from_logprobs(self, logprobs: torch.Tensor) -> torch.Tensor:
        """S from the forms' sequence log-probs: `t5cls.tasks.modes`' formula on tensors, with gradients."""
        forms = modes.form_scores(self.task.mode, logprobs, self.lengths.to(logprobs))
        return modes.verbalize(forms, self.groups, torch.logsumexp, _columns)

    def loss(self, scores: torch.Tensor, gold: torch.Tensor, weight: torch.Tensor | None = None) -> torch.Tensor:
        """The task's loss over a batch; ``weight`` (one per prompt) weights the cross-entropy."""
        if self.kind == REGRESSION:
            expected = scores.double().softmax(dim=1) @ self.values.to(scores.device)
            return ((expected - gold.double()) ** 2).mean()
        per_prompt = F.cross_entropy(scores, gold, reduction="none")
        if weight is None:
            return per_prompt.mean()
        return (per_prompt * weight).sum() / weight.sum()


def _columns(columns: list[torch.Tensor]) -> torch.Tensor:
    return torch.stack(columns, dim=1)


class LabelSetLoss:
    """The sum over tasks of each task's loss on its exact class scores, for one collated batch."""

    def __init__(self, objectives: list[TaskObjective], backend: Backend):
        self.objectives = objectives
        self.backend = backend

    def __call__(self, batch: dict) -> torch.Tensor:
        losses = []
        for objective, task in zip(self.objectives, batch["tasks"]):
            scores = objective.class_scores(self.backend, task["input_ids"], task["attention_mask"])
            losses.append(objective.loss(scores, task["gold"], task.get("weight")))
        return torch.stack(losses).sum()


def balanced_weights(kind: str, gold: np.ndarray, classes: int) -> np.ndarray | None:
    """scikit-learn's ``balanced`` weights, n / (k · n_c): each class (or each answer of a class question) weighs alike.

    ``classes``: one weight per class; ``multi-label``: (classes, 2) weights of yes and no per
    question; regression: none. A class without training rows is never a target: weight 0.
    """
    if kind == CLASSES:
        counts = np.bincount(gold, minlength=classes).astype(np.float64)
        return np.divide(len(gold), classes * counts, out=np.zeros(classes), where=counts > 0)
    if kind == MULTI_LABEL:
        yes = gold.sum(axis=0).astype(np.float64)
        counts = np.stack([yes, len(gold) - yes], axis=1)
        return np.divide(len(gold), 2 * counts, out=np.zeros_like(counts), where=counts > 0)
    return None


def multi_label_targets(gold: np.ndarray) -> np.ndarray:
    """(rows, classes) memberships -> question-major answer indexes: 0 (yes, a member) or 1 (no)."""
    return (1 - gold.T.reshape(-1)).astype(np.int64)


def dev_loss(objective: TaskObjective, scores: np.ndarray, gold: np.ndarray) -> float:
    """The unweighted training loss of dev scores S (float64), for model selection and early stopping."""
    target = multi_label_targets(gold) if objective.kind == MULTI_LABEL else gold
    return float(objective.loss(torch.from_numpy(scores), torch.from_numpy(np.asarray(target))))
