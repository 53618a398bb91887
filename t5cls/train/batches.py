"""Training batches: row indexes in, padded token tensors and targets per task out.

The `Trainer` shuffles row indexes (`RowIndexes`); a collator turns a batch of rows into, per
task, the padded prompts of those rows and their targets. A multi-label task has one prompt per
(class, row), class-major, like scoring lays them out.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from t5cls.models.batching import right_padded
from t5cls.models.tokens import TokenizedTexts
from t5cls.train.gold import MULTI_LABEL, REGRESSION
from t5cls.train.objective import multi_label_targets


class RowIndexes(torch.utils.data.Dataset):
    """Rows 0..n-1 of a labelled file: what the `Trainer`'s sampler shuffles."""

    def __init__(self, rows: int):
        self.rows = rows

    def __len__(self) -> int:
        return self.rows

    def __getitem__(self, index: int) -> int:
        return index


@dataclass(frozen=True)
class TokenizedTask:
    """One task's prompts as token ids (question-major: ``ids[q * rows + r]``) and its targets."""

    kind: str
    tokens: TokenizedTexts
    rows: int
    targets: np.ndarray  # per prompt: class index, number, or answer index (multi-label: 0 yes, 1 no)
    weights: np.ndarray | None  # per prompt, when the loss is weighted

    @classmethod
    def build(cls, kind: str, tokens: TokenizedTexts, gold: np.ndarray, class_weights: np.ndarray | None):
        """Targets per prompt from the gold of each row; ``class_weights`` as `balanced_weights` gives them."""
        if kind == MULTI_LABEL:
            targets = multi_label_targets(gold)
            classes = np.repeat(np.arange(gold.shape[1]), len(gold))
            weights = None if class_weights is None else class_weights[classes, targets]
        else:
            targets = gold
            weights = None if class_weights is None or kind == REGRESSION else class_weights[gold]
        return cls(kind, tokens, len(gold), targets, weights)

    def prompt_indexes(self, rows: Sequence[int]) -> np.ndarray:
        """Indexes of the prompts of ``rows``: each question's block of rows, in question order."""
        questions = len(self.tokens.ids) // self.rows
        return (np.arange(questions)[:, None] * self.rows + np.asarray(rows)[None, :]).reshape(-1)


class LabelSetCollator:
    """Per task: the padded prompts of the batch's rows, their targets and (optionally) weights."""

    def __init__(self, tasks: Sequence[TokenizedTask], pad_id: int):
        self.tasks = tasks
        self.pad_id = pad_id

    def __call__(self, rows: list[int]) -> dict:
        batches = []
        for task in self.tasks:
            prompts = task.prompt_indexes(rows)
            ids, mask = right_padded([task.tokens.ids[i] for i in prompts], self.pad_id)
            dtype = torch.float64 if task.kind == REGRESSION else torch.long
            batch = {
                "input_ids": ids,
                "attention_mask": mask,
                "gold": torch.as_tensor(task.targets[prompts], dtype=dtype),
            }
            if task.weights is not None:
                batch["weight"] = torch.as_tensor(task.weights[prompts], dtype=torch.float32)
            batches.append(batch)
        return {"tasks": batches}
