"""Dev-set evaluation with t5cls's own scoring and metrics: what `t5cls score` and `t5cls eval` would report.

Dev scores are computed by the task's `TaskScorer`, the object a scoring run scores its chunks
with, then measured with `t5cls.eval.metrics`:

- ``classes``: accuracy, macro-F1, NLL and ECE of softmax(S / T);
- ``multi-label``: the same over every (row, class) yes/no decision; macro-F1 is the mean over
  classes of the F1 of answering yes;
- ``regression``: mean squared and absolute error of the expected value.

``loss`` is the unweighted training objective on the dev set, summed over tasks: the number that
picks the best checkpoint and stops training early.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from t5cls.eval import metrics
from t5cls.eval.calibration import fit_temperature
from t5cls.models.scorer import LabelScorer
from t5cls.models.tokens import TokenizedTexts
from t5cls.probability import softmax
from t5cls.train.gold import CLASSES, MULTI_LABEL, REGRESSION
from t5cls.train.objective import TaskObjective, dev_loss, multi_label_targets


@dataclass(frozen=True)
class DevTask:
    """One task's dev prompts (tokenized) and gold."""

    objective: TaskObjective
    tokens: TokenizedTexts
    gold: np.ndarray


class DevEvaluation:
    """Scores the dev set with a scorer and measures every task."""

    def __init__(self, scorer: LabelScorer, tasks: Sequence[DevTask]):
        self.scorer = scorer
        self.tasks = tasks

    def scores(self) -> list[np.ndarray]:
        """Per task, the class scores S of every dev prompt (float64), as a scoring run computes them."""
        self.scorer.model.eval()
        return [self._task_scores(task) for task in self.tasks]

    @staticmethod
    def _task_scores(task: DevTask) -> np.ndarray:
        return task.objective.bound.class_scores(task.tokens)

    def evaluate(self) -> dict[str, float]:
        """``loss`` and every task's metrics at T = 1, flat (``<task>_<metric>`` when there are several tasks)."""
        scores = self.scores()
        results: dict[str, float] = {"loss": sum(dev_loss(t.objective, s, t.gold) for t, s in zip(self.tasks, scores))}
        for task, task_scores in zip(self.tasks, scores):
            prefix = f"{task.objective.task.name}_" if len(self.tasks) > 1 else ""
            for name, value in task_metrics(task.objective, task_scores, task.gold).items():
                results[prefix + name] = value
        return results


def task_metrics(objective: TaskObjective, scores: np.ndarray, gold: np.ndarray, temperature: float = 1.0) -> dict:
    """The metrics of one task's dev scores at ``temperature`` (see the module docstring)."""
    probs = softmax(scores, temperature)
    if objective.kind == REGRESSION:
        errors = probs @ np.asarray(objective.task.values) - gold
        return {"mse": float(np.mean(errors**2)), "mae": float(np.mean(np.abs(errors)))}
    target = multi_label_targets(gold) if objective.kind == MULTI_LABEL else gold
    pred = metrics.predictions(probs)
    return {
        "accuracy": metrics.accuracy(target, pred),
        "macro_f1": _macro_f1(objective, target, pred),
        "nll": metrics.nll(probs, target),
        "ece": metrics.expected_calibration_error(probs, target),
    }


def _macro_f1(objective: TaskObjective, target: np.ndarray, pred: np.ndarray) -> float:
    """Macro-F1 over the classes; for a multi-label task, of each class question's yes answers."""
    classes = len(objective.task.classes)
    if objective.kind == CLASSES:
        return metrics.precision_recall_f1(target, pred, classes).macro_f1
    blocks = zip(target.reshape(classes, -1), pred.reshape(classes, -1))
    return float(np.mean([metrics.precision_recall_f1(t, p, 2).f1[0] for t, p in blocks]))


def fitted_temperature(objective: TaskObjective, scores: np.ndarray, gold: np.ndarray) -> float:
    """The temperature `t5cls calibrate` would fit on these scores; regression tasks keep T = 1."""
    if objective.kind == REGRESSION:
        return 1.0
    target = multi_label_targets(gold) if objective.kind == MULTI_LABEL else gold
    return fit_temperature(scores, target)
