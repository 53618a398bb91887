"""``--loss generative``: the standard token cross-entropy on the gold label, for comparison.

This is what ``Seq2SeqTrainer`` fine-tuning does: teacher forcing on the gold label's tokens (for
a class with verbalizers, its first form; for a multi-label question, its yes or no answer), the
mean over every target token of the batch. The targets are the label token ids as scoring reads
them (EOS included for encoder-decoder models; continuations of the prompt for decoder-only
models), so the model is trained on exactly the sequences it will be scored on. Unlike the
label-set loss, nothing pushes the other labels down.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from t5cls.models.batching import right_padded
from t5cls.models.scorer import LabelScorer
from t5cls.tasks.config import Task
from t5cls.train.batches import TokenizedTask
from t5cls.train.gold import MULTI_LABEL

IGNORED = -100  # the label id Hugging Face losses skip


def target_ids(task: Task, scorer: LabelScorer, tokenized: TokenizedTask) -> list[list[int]]:
    """Each prompt's target tokens: the first form of its gold class, or its yes/no answer."""
    ids = scorer.label_ids(task.scored_labels)
    first_form = [group[0] for group in task.groups]
    if tokenized.kind == MULTI_LABEL:
        return [ids[answer] for answer in tokenized.targets]
    return [ids[first_form[gold]] for gold in tokenized.targets]


class GenerativeCollator:
    """Per task: prompts with their target tokens, as ``model(..., labels=...)`` takes them."""

    def __init__(self, tasks: Sequence[TokenizedTask], targets: Sequence[list[list[int]]], pad_id: int, causal: bool):
        self.tasks, self.targets = tasks, targets
        self.pad_id, self.causal = pad_id, causal

    def __call__(self, rows: list[int]) -> dict:
        return {"tasks": [self._task_batch(task, targets, rows) for task, targets in zip(self.tasks, self.targets)]}

    def _task_batch(self, task: TokenizedTask, targets: list[list[int]], rows: list[int]) -> dict:
        prompts = task.prompt_indexes(rows)
        inputs = [task.tokens.ids[i] for i in prompts]
        answers = [targets[i] for i in prompts]
        if self.causal:  # prompt + answer in one sequence; only the answer's tokens are targets
            ids, mask = right_padded([p + a for p, a in zip(inputs, answers)], self.pad_id)
            labels, _ = right_padded([[IGNORED] * len(p) + a for p, a in zip(inputs, answers)], IGNORED)
            return {"input_ids": ids, "attention_mask": mask, "labels": labels}
        ids, mask = right_padded(inputs, self.pad_id)
        labels, _ = right_padded(answers, IGNORED)
        return {"input_ids": ids, "attention_mask": mask, "labels": labels}


class GenerativeLoss:
    """The sum over tasks of each task's mean token cross-entropy (the model's own loss), for one collated batch."""

    def __init__(self, model: torch.nn.Module):
        self.model = model

    def __call__(self, batch: dict) -> torch.Tensor:
        return sum(self.model(**task, use_cache=False).loss for task in batch["tasks"])


def generative_targets(tasks: Sequence[Task], scorer: LabelScorer, tokenized: Sequence[TokenizedTask]):
    """`target_ids` of every task."""
    return [target_ids(task, scorer, t) for task, t in zip(tasks, tokenized)]
