"""A task bound to a loaded model: its prompts, its scores per chunk, its output columns.

Binding checks what needs the tokenizer (labels that tokenize alike, ``first`` labels that share
a first token) before any row is scored. The content-free reference of ``pmi`` and
``contextual`` is computed once per task, on first use, not per row or per chunk.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property

import numpy as np
import pyarrow as pa

from t5cls import modes
from t5cls.errors import InputError
from t5cls.scorer import LabelScorer, TokenizedTexts
from t5cls.tasks import Task

MULTI_LABEL_THRESHOLD = 0.5


@dataclass(frozen=True)
class TaskResult:
    """One task's scores for N rows.

    ``log_scores`` are the class log-scores S of the task's mode before the temperature (for a
    multi-label task, S of the yes answer of each class's question); ``probs`` the reported
    probabilities: a distribution over classes, or independent yes-probabilities.
    """

    log_scores: np.ndarray  # (N, C)
    probs: np.ndarray  # (N, C)
    truncated: np.ndarray  # (N,) bool: a prompt of the row was cut to the model's maximum length


def empty_result(task: Task) -> TaskResult:
    """A zero-row result: the output columns of an empty input, or their names."""
    empty = np.zeros((0, len(task.classes)))
    return TaskResult(empty, empty, np.zeros(0, dtype=bool))


def task_prompts(task: Task, columns: Mapping[str, Sequence[str]]) -> list[str]:
    """The prompts of a chunk: one per row, or for a multi-label task one block of rows per class."""
    if not task.multi_label:
        return task.template.render(columns, task.classes)
    return [prompt for name in task.classes for prompt in task.template.render(columns, task.classes, label=name)]


def output_columns(task: Task, result: TaskResult, logprobs: bool) -> dict[str, pa.Array]:
    """The task's columns in output order: p_<class>, pred, entropy, expected/std, score, logp_<class>."""
    columns = {task.column(f"p_{name}"): _floats(result.probs[:, i]) for i, name in enumerate(task.classes)}
    if task.multi_label:
        chosen = result.probs > MULTI_LABEL_THRESHOLD
        columns[task.column("pred")] = pa.array(
            [",".join(name for name, yes in zip(task.classes, row) if yes) for row in chosen], pa.string()
        )
        columns[task.column("entropy")] = _floats(modes.binary_entropy(result.probs))
    else:
        columns[task.column("pred")] = pa.array([task.classes[i] for i in result.probs.argmax(axis=1)], pa.string())
        columns[task.column("entropy")] = _floats(modes.entropy(result.probs))
    if task.values is not None:
        expected, std = modes.expectation(result.probs, task.values)
        columns[task.column("expected")] = _floats(expected)
        columns[task.column("std")] = _floats(std)
    if task.positive is not None:
        columns[task.column("score")] = _floats(result.probs[:, task.classes.index(task.positive)])
    if logprobs:
        columns.update({task.column(f"logp_{name}"): _floats(result.log_scores[:, i]) for i, name in enumerate(task.classes)})
    return columns


def _floats(values: np.ndarray) -> pa.Array:
    return pa.array(values, pa.float64())


class TaskScorer:
    """Scores one task's prompts with a `LabelScorer`; ``where`` prefixes error messages."""

    def __init__(self, task: Task, scorer: LabelScorer, where: str = ""):
        self.task = task
        self.scorer = scorer
        self.where = where
        self.labels = task.scored_labels
        try:
            ids = scorer.label_ids(self.labels)
        except InputError as err:
            raise self._error(str(err)) from None
        self.lengths = np.array([len(label_ids) for label_ids in ids], dtype=np.float64)
        self.first_tokens = self._distinct_first_tokens(ids) if task.mode == "first" else []
        self.room = 0 if not scorer.causal else 1 if task.mode == "first" else scorer.label_room(self.labels)

    def _error(self, message: str) -> InputError:
        return InputError(f"{self.where}: {message}" if self.where else message)

    def _distinct_first_tokens(self, ids: list[list[int]]) -> list[int]:
        """``first`` reads one logit per label, so two labels starting alike cannot be told apart."""
        owner: dict[int, str] = {}
        for label, label_ids in zip(self.labels, ids):
            token = label_ids[0]
            if token in owner:
                piece = self.scorer.tokenizer.convert_ids_to_tokens(token)
                raise self._error(
                    f"mode 'first' needs labels with distinct first tokens, but {owner[token]!r} and {label!r} "
                    f"both start with token {token} ({piece!r}); use other label words or another mode"
                )
            owner[token] = label
        return list(owner)

    def prompts(self, columns: Mapping[str, Sequence[str]]) -> list[str]:
        return task_prompts(self.task, columns)

    def tokenize(self, columns: Mapping[str, Sequence[str]]) -> TokenizedTexts:
        """The chunk's prompts as token ids, leaving a decoder-only model room for the labels."""
        return self.scorer.tokenize(self.prompts(columns), room=self.room)

    def score(self, tokens: TokenizedTexts) -> TaskResult:
        """Score a chunk's prompts (from `prompts`, tokenized) into class log-scores and probabilities."""
        questions = len(self.task.classes) if self.task.multi_label else 1
        rows = len(tokens.ids) // questions
        raw = self._raw_scores(tokens)
        reference = self.content_free
        scores = [
            self._class_scores(raw[q * rows : (q + 1) * rows], None if reference is None else reference[q])
            for q in range(questions)
        ]
        truncated = tokens.truncated.reshape(questions, rows).any(axis=0)
        if not self.task.multi_label:
            return TaskResult(scores[0], modes.softmax(scores[0] / self.task.temperature), truncated)
        yes = np.column_stack([s[:, 0] for s in scores])
        probs = np.column_stack([modes.softmax(s / self.task.temperature)[:, 0] for s in scores])
        return TaskResult(yes, probs, truncated)

    def _raw_scores(self, tokens: TokenizedTexts) -> np.ndarray:
        """(prompts, labels): sequence log-probs, or the first decoder step's logits for ``first``."""
        if self.task.mode == "first":
            return self.scorer.first_token_logits(tokens, self.first_tokens)
        return self.scorer.score(tokens, self.labels).logprobs

    def _class_scores(self, raw: np.ndarray, content_free: np.ndarray | None) -> np.ndarray:
        forms = modes.form_scores(self.task.mode, raw, self.lengths)
        return modes.calibrated(self.task.mode, modes.verbalize(forms, self.task.groups), content_free)

    @cached_property
    def content_free(self) -> list[np.ndarray] | None:
        """Per question, (K, C) log P(c | cf_k): the template with each content-free string in every column."""
        if self.task.mode not in modes.CONTENT_FREE_MODES:
            return None
        strings = list(self.task.content_free)
        columns = {name: strings for name in self.task.template.columns_needed()}
        logprobs = self.scorer.score(self.prompts(columns), self.labels).logprobs
        blocks = len(logprobs) // len(strings)
        return [modes.verbalize(logprobs[q * len(strings) : (q + 1) * len(strings)], self.task.groups) for q in range(blocks)]
