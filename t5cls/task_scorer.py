"""A task bound to a loaded model: its prompts as scored, as tokens, and its class scores per chunk.

This is the one place where a task meets the model: ``t5cls score`` (both runners), ``t5cls
calibrate`` and ``t5cls train`` all render, tokenize and score rows through a `TaskScorer`, so
they see the same prompts: the few-shot prefix, the room left for the labels after a
decoder-only prompt, the content-free reference.

Binding checks what needs the tokenizer (labels that tokenize alike, ``first`` labels that share
a first token) before any row is scored. The content-free reference of ``pmi`` and
``contextual`` is computed once per task, on the first chunk, not per row or per chunk.

A task with few-shot ``examples`` gets its demonstrations written out here, once: each
demonstration's prompt followed by its answer as the model's rule writes a label after a prompt
(`PromptTokenizer.answered`), each followed by the separator. That text is the same for every row
and comes first in every prompt, content-free ones included (calibration must see the prompt
the rows see), so the rows share it as a token prefix.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from functools import cached_property

import numpy as np

from t5cls import probability
from t5cls.errors import InputError, NumericError, OptionError, literal
from t5cls.models.scorer import LabelScorer
from t5cls.models.tokens import TokenizedTexts
from t5cls.tasks import modes
from t5cls.tasks.columns import TaskResult
from t5cls.tasks.config import Task


def label_room(task: Task, scorer: LabelScorer) -> int:
    """Tokens a prompt of ``task`` leaves free for the labels: the one rule a run, a dry run and training follow.

    ``first`` reads one decoder step after a decoder-only prompt, so 1; otherwise the longest
    label's tokens after a decoder-only prompt, 0 for an encoder-decoder model.
    """
    return 1 if scorer.causal and task.mode == "first" else scorer.label_room(task.scored_labels)


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
        self.room = label_room(task, scorer)
        self.prefix = self._demonstrations()

    def _error(self, message: str) -> InputError:
        return InputError(f"{self.where}: {message}" if self.where else message)

    def _distinct_first_tokens(self, ids: list[list[int]]) -> list[int]:
        """``first`` reads one logit per label, so two labels starting alike cannot be told apart."""
        owner: dict[int, str] = {}
        for label, label_ids in zip(self.labels, ids):
            token = label_ids[0]
            if token in owner:
                piece = self.scorer.tokens.pieces([token])[0]
                raise self._error(
                    f"mode 'first' needs labels with distinct first tokens, but {owner[token]!r} and {label!r} "
                    f"both start with token {token} ({piece!r}); use other label words or another mode"
                )
            owner[token] = label
        return list(owner)

    def _demonstrations(self) -> str:
        """The few-shot prefix: every demonstration with its answer, each followed by the separator.

        It must leave room for the row itself: a prefix that alone fills what the model reads would
        cut every row away (seq2seq inputs are cut from the right) or be cut in every row.
        """
        examples = self.task.examples
        if examples is None:
            return ""
        answers = [demo.answer for demo in examples.demonstrations]
        shown = map(self.scorer.tokens.answered, self.task.demonstration_prompts(), answers)
        prefix = "".join(text + examples.spec.separator for text in shown)
        if self.scorer.tokenize([prefix], room=self.room).truncated[0]:
            raise OptionError(
                f"{literal(self.where)}: 'examples': the {len(answers)} demonstrations alone are longer than the "
                f"{self.scorer.max_length - self.room} tokens a prompt may take; "
                "lower per_class or raise {max_length}"
            )
        return prefix

    def scored_prompts(self, columns: Mapping[str, Sequence[str]]) -> list[str]:
        """The prompts of a chunk as scored: the few-shot prefix (if any), then each row's prompt."""
        return [self.prefix + prompt for prompt in self.task.rendered_prompts(columns)]

    def tokenize(self, columns: Mapping[str, Sequence[str]]) -> TokenizedTexts:
        """The chunk's prompts as token ids, leaving a decoder-only model room for the labels."""
        return self.scorer.tokenize(self.scored_prompts(columns), room=self.room)

    def is_cut(self, prompt: str) -> bool:
        """Whether ``prompt`` (as scored, prefix included) is longer than the tokens the model reads of it."""
        return bool(self.scorer.tokenize([prompt], room=self.room).truncated[0])

    def score(self, tokens: TokenizedTexts) -> TaskResult:
        """Score a chunk's prompts (from `prompts`, tokenized) into class log-scores and probabilities."""
        questions = self.questions
        rows = len(tokens.ids) // questions
        scores = np.split(self.class_scores(tokens), questions)
        truncated = tokens.truncated.reshape(questions, rows).any(axis=0)
        if not self.task.multi_label:
            return TaskResult(scores[0], probability.softmax(scores[0], self.task.temperature), truncated)
        yes = np.column_stack([s[:, 0] for s in scores])
        probs = np.column_stack([probability.softmax(s, self.task.temperature)[:, 0] for s in scores])
        return TaskResult(yes, probs, truncated)

    @property
    def questions(self) -> int:
        """Prompts per row: one per class for a multi-label task (a yes/no question each), else one."""
        return len(self.task.classes) if self.task.multi_label else 1

    def class_scores(self, tokens: TokenizedTexts) -> np.ndarray:
        """(prompts, classes) S of every prompt before the temperature (multi-label: question-major yes/no scores).

        The one place scores are formed from the model's outputs (`t5cls.tasks.modes.class_scores`):
        a run's chunks and training's dev evaluation both come here.
        """
        questions = self.questions
        rows = len(tokens.ids) // questions
        raw = self._raw_scores(tokens)
        reference = self.content_free
        blocks = [
            modes.class_scores(
                self.task.mode,
                raw[q * rows : (q + 1) * rows],
                self.lengths,
                self.task.groups,
                None if reference is None else reference[q],
            )
            for q in range(questions)
        ]
        return np.concatenate(blocks)

    def _raw_scores(self, tokens: TokenizedTexts) -> np.ndarray:
        """(prompts, labels): sequence log-probs, or the first decoder step's logits for ``first``."""
        if self.task.mode == "first":
            return self.scorer.first_token_logits(tokens, self.first_tokens)
        return self.scorer.score(tokens, self.labels).logprobs

    @cached_property
    def content_free(self) -> list[np.ndarray] | None:
        """Per question, (K, C) log P(c | cf_k): the template with each content-free string in every column."""
        if self.task.mode not in modes.CONTENT_FREE_MODES:
            return None
        strings = list(self.task.content_free)
        columns = dict.fromkeys(self.task.template.columns_needed(), strings)
        try:
            logprobs = self.scorer.score(self.scored_prompts(columns), self.labels).logprobs
        except NumericError as err:  # restated without a row: no input row is to blame
            where = f"{self.where}: " if self.where else ""
            raise NumericError(f"{where}content-free prompts: {err.problem}") from None
        blocks = len(logprobs) // len(strings)
        return [
            modes.verbalize(logprobs[q * len(strings) : (q + 1) * len(strings)], self.task.groups)
            for q in range(blocks)
        ]
