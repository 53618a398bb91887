"""A model-free stand-in for `LabelScorer`, for properties of the I/O layer that need thousands of runs.

Its label log-probabilities are a fixed function of the prompt's text (`stub_logprobs`), so a
test knows every p_ value a row must get from the row itself: a row moved, dropped, duplicated or
paired with another row's scores shows up. It answers what `TaskScorer`, `ChunkScorer` and
`LocalRunner` ask of a scorer, nothing more.
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence
from contextlib import nullcontext

import numpy as np

from t5cls import probability
from t5cls.models.identity import ModelIdentity
from t5cls.models.scorer import LabelScores
from t5cls.models.tokens import TokenizedTexts


def stub_logprobs(prompt: str, labels: Sequence[str]) -> np.ndarray:
    """(L,) log-scores of ``labels`` after ``prompt``: a checksum of both, spread over [-10, 0)."""
    data = prompt.encode("utf-8", "surrogatepass")
    return np.array([-(zlib.crc32(label.encode() + b"\0" + data) % 10007) / 1000.7 for label in labels])


def stub_probs(prompts: Sequence[str], labels: Sequence[str]) -> np.ndarray:
    """(N, L) class probabilities the stub gives ``prompts``: what a run must write in the p_ columns."""
    return probability.softmax(np.array([stub_logprobs(prompt, labels) for prompt in prompts]).reshape(-1, len(labels)))


class StubScorer:
    """Scores prompts without a model; nothing is ever truncated."""

    causal = False
    chat = False
    name_or_path = "stub"
    label_end = "eos"
    max_length = 1 << 30

    @property
    def identity(self) -> ModelIdentity:
        return ModelIdentity(self.name_or_path, "local", "float32", self.max_length, self.label_end, self.chat)

    def label_ids(self, labels: Sequence[str]) -> list[list[int]]:
        return [[index + 1] for index, _ in enumerate(labels)]

    def label_room(self, labels: Sequence[str]) -> int:
        return 0

    def tokenize(self, texts: Sequence[str], room: int = 0) -> TokenizedTexts:
        """The prompt's UTF-8 bytes as token ids, so `score` reads back exactly the prompt."""
        ids = [list(text.encode("utf-8", "surrogatepass")) for text in texts]
        return TokenizedTexts(ids, np.zeros(len(ids), dtype=bool))

    def keeping_prefixes(self):
        return nullcontext()  # nothing to keep between calls

    def score(self, texts: Sequence[str] | TokenizedTexts, labels: Sequence[str]) -> LabelScores:
        tokens = texts if isinstance(texts, TokenizedTexts) else self.tokenize(texts)
        prompts = [bytes(row).decode("utf-8", "surrogatepass") for row in tokens.ids]
        logprobs = np.array([stub_logprobs(prompt, labels) for prompt in prompts]).reshape(-1, len(labels))
        return LabelScores(list(labels), logprobs, tokens.truncated)
