"""`TaskObjective` forms class scores with `TaskScorer`'s formula and label lengths, on tensors.

Training differentiates the very scores a scoring run writes: for the same prompts, the trie
pass through the objective and `TaskScorer.class_scores` (the chunk path) agree, in both
trainable modes and for a multi-label task's yes/no questions.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from t5cls import LabelScorer
from t5cls.task_scorer import TaskScorer
from t5cls.tasks.config import Task
from t5cls.tasks.prompts import PromptTemplate
from t5cls.train.batches import right_padded
from t5cls.train.objective import TaskObjective

TEXTS = ["the movie was great. Answer:", "terrible plot, boring. Answer:", "café naïve 東京 Answer:"]
FORMS = {"good": ("positive", "positive review"), "bad": ("negative",), "unsure": ("not sure", "not entailment")}


def a_task(mode: str, multi_label: bool = False) -> Task:
    template = PromptTemplate("{text} {label}?" if multi_label else "{text}", asks_label=multi_label)
    return Task("t", template, tuple(FORMS), tuple(FORMS.values()), mode=mode, multi_label=multi_label)


@pytest.mark.parametrize("mode", ["sum", "mean"])
@pytest.mark.parametrize("multi_label", [False, True])
def test_the_training_scores_are_the_scores_a_run_writes(t5_dir, mode, multi_label):
    scorer = LabelScorer.from_pretrained(str(t5_dir), device="cpu")
    bound = TaskScorer(a_task(mode, multi_label), scorer)
    tokens = bound.tokenize({"text": TEXTS})
    objective = TaskObjective(bound)
    input_ids, mask = right_padded(tokens.ids, scorer.tokens.pad_token_id)
    with torch.no_grad():
        trained = objective.class_scores(scorer.backend, input_ids, mask).double().numpy()
    np.testing.assert_allclose(trained, bound.class_scores(tokens), rtol=1e-5, atol=1e-5)
    assert trained.shape == (len(TEXTS) * bound.questions, 2 if multi_label else len(FORMS))
