"""`PromptTokenizer`: the one owner of a scorer's tokenizer, and every call made to it.

Why one owner: fast tokenizers keep truncation and padding settings as mutable state on the
shared Rust backend, set by each call before it encodes. A run tokenizes the next chunk in a
background thread while the model scores this one, so two threads calling the same tokenizer
with different settings could cut each other's prompts at the wrong length: output would depend
on thread timing. Every call goes through this class, one at a time (a lock), so that cannot
happen, whichever thread calls.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from t5cls.errors import EmptyPromptError, OptionError
from t5cls.models import continuation as rules


@dataclass(frozen=True)
class TokenizedTexts:
    """Token ids per text, already cut to the model's maximum length."""

    ids: list[list[int]]
    truncated: np.ndarray  # (N,) bool
    prompt_ends: list[str] | None = None  # decoder-only models: each prompt's end, to check label boundaries


class PromptTokenizer:
    """Prompts and labels as token ids, the way the model reads them (see `t5cls.models.continuation`).

    ``causal`` models read labels as continuations of their prompt and have prompts cut from the
    left (keeping their end, where templates put the question); ``chat`` wraps each prompt in the
    tokenizer's chat template. ``max_length`` bounds what the model reads.
    """

    def __init__(self, tokenizer, *, causal: bool, chat: bool, label_end: str, max_length: int):
        self.tokenizer = tokenizer
        self.causal = causal
        self.chat = chat
        self.label_end = label_end
        self.max_length = max_length
        self._lock = threading.RLock()
        with self._lock:
            self.continuation = rules.chat_continuation(tokenizer) if chat else rules.PLAIN
            if causal:
                tokenizer.truncation_side = "left"

    @property
    def pad_token_id(self) -> int:
        return self.tokenizer.pad_token_id or 0

    def labels(self, labels: Sequence[str]) -> list[list[int]]:
        """Each label's token ids as scored, checked distinct: targets with EOS, or continuations in context."""
        with self._lock:
            if self.causal:
                return rules.tokenize_labels_in_context(self.tokenizer, labels, self.label_end, self.continuation)
            return rules.tokenize_target_labels(self.tokenizer, labels)

    def check_label_boundaries(
        self, tokens: TokenizedTexts, labels: Sequence[str], sequences: Sequence[Sequence[int]]
    ) -> None:
        """Decoder-only: refuse a label whose first token would merge with the end of a prompt."""
        if tokens.prompt_ends is None:
            return
        with self._lock:
            rules.check_labels_in_context(
                self.tokenizer, tokens.prompt_ends, labels, sequences, self.label_end, self.continuation
            )

    def prompts(self, texts: Sequence[str], room: int = 0) -> TokenizedTexts:
        """Token ids cut to ``max_length - room``, and which texts were cut.

        ``room`` keeps space for the label tokens a decoder-only model reads after the prompt.
        Tokenizing one token past the limit tells which texts are too long without a second full
        pass; only those are tokenized again at the limit, so the cut matches the tokenizer's own
        truncation (special tokens kept).
        """
        limit = self.max_length - room
        if limit < 1:
            raise OptionError(
                f"{{max_length}} {self.max_length} leaves no room for a prompt before labels of {room} tokens"
            )
        texts = [self.as_read(text) for text in texts]
        with self._lock:
            probe = self._encode(texts, limit + 1)
            truncated = np.array([len(ids) > limit for ids in probe], dtype=bool)
            too_long = np.flatnonzero(truncated)
            for i, ids in zip(too_long, self._encode([texts[i] for i in too_long], limit) if len(too_long) else []):
                probe[i] = ids
        if self.causal:
            _check_not_empty(probe)
        ends = [rules.prompt_end(text) for text in texts] if self.causal else None
        return TokenizedTexts(probe, truncated, ends)

    def as_read(self, text: str) -> str:
        """A prompt as the model reads it: in the chat template, right-stripped before a label, or as it is."""
        if self.chat:
            with self._lock:
                return rules.chat_prompt(self.tokenizer, text)
        return self.continuation.prompt(text) if self.causal else text

    def answered(self, prompt: str, answer: str) -> str:
        """A worked example as text: ``prompt`` followed by ``answer`` the way a label follows a prompt.

        The plain continuation rule: the right-stripped prompt, a space, the answer, then the label
        end when it is a text (EOS is a token, not text, so ``eos`` adds nothing). Encoder-decoder
        prompts and ``chat`` prompts use it too: a worked example is text inside the prompt (the
        user's turn), not the model's own answer, so it reads like a plain model's scored label.
        """
        return rules.PLAIN.prompt(prompt) + rules.PLAIN.text(answer, self.label_end)

    def _encode(self, texts: list[str], limit: int) -> list[list[int]]:
        # With chat, the template already holds the special tokens.
        return self.tokenizer(texts, truncation=True, max_length=limit, add_special_tokens=not self.chat).input_ids

    def pieces(self, ids: Sequence[int]) -> list[str]:
        """The token strings of ``ids`` (for messages and ``--dry-run``)."""
        with self._lock:
            return self.tokenizer.convert_ids_to_tokens(list(ids))


def _check_not_empty(ids: list[list[int]]) -> None:
    """A decoder-only prompt needs at least one token to continue; name the first empty one."""
    for row, prompt in enumerate(ids):
        if not prompt:
            raise EmptyPromptError(
                "the prompt has no tokens; a decoder-only model needs at least one token of context", row
            )
