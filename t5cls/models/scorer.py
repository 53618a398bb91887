"""The Python API: `LabelScorer` turns texts and a label set into exact class probabilities.

    >>> scorer = LabelScorer.from_pretrained("google/flan-t5-small")
    >>> scores = scorer.score(["I loved it"], ["positive", "negative"])
    >>> scores.probs, scores.predictions, scores.entropy

Any model and tokenizer you hold can be wrapped too: ``LabelScorer(model, tokenizer)``. The
backend follows the model's config: encoder-decoder models use `Seq2SeqBackend`, decoder-only
models `CausalBackend`, whose labels are tokenized as continuations of the prompt. Everything
about files is in `t5cls.run`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property

import numpy as np
import torch

from t5cls import probability
from t5cls.errors import OptionError
from t5cls.models import identity as identities
from t5cls.models.backend import Backend
from t5cls.models.batching import CPU_PASS_TOKENS, LengthBatcher
from t5cls.models.causal import CausalBackend
from t5cls.models.identity import ModelFiles, ModelIdentity
from t5cls.models.loading import default_label_end, load_pretrained, model_max_length, model_precision
from t5cls.models.seq2seq import Seq2SeqBackend
from t5cls.models.tokens import PromptTokenizer, TokenizedTexts
from t5cls.models.trie import LabelTrie
from t5cls.options import ModelOptions
from t5cls.tasks.labels import parse_labels


@dataclass(frozen=True)
class LabelScores:
    """Scores of N texts against L labels. ``logprobs[i, l]`` = log p(label l | text i)."""

    labels: list[str]
    logprobs: np.ndarray  # (N, L) float64
    truncated: np.ndarray  # (N,) bool: the input was cut to the model's maximum length

    @cached_property
    def probs(self) -> np.ndarray:
        """Class probabilities: softmax of the sequence log-probs over the label set."""
        return probability.softmax(self.logprobs)

    @cached_property
    def pred_index(self) -> np.ndarray:
        """Index of the most probable label; ties go to the first label."""
        return self.probs.argmax(axis=1)

    @property
    def predictions(self) -> list[str]:
        return [self.labels[i] for i in self.pred_index]

    @cached_property
    def entropy(self) -> np.ndarray:
        """Entropy of the class distribution in nats."""
        return probability.entropy(self.probs)


class LabelScorer:
    """Exact label probabilities from an encoder-decoder or a decoder-only model.

    ``label_end`` (decoder-only models) says what completes a label: ``none`` (the default),
    ``eos`` or a text; see `t5cls.models.continuation`. Encoder-decoder labels always end with
    EOS. ``chat`` (decoder-only instruct models) puts each prompt in the tokenizer's chat
    template as the user's turn; the label is the start of the assistant's answer.

    ``max_length`` bounds what the model reads: the input for an encoder-decoder model; for a
    decoder-only model, the prompt plus the longest label, so that the label always fits. Long
    decoder-only prompts are cut from the left, keeping their end, where templates put the question.
    """

    def __init__(
        self,
        model,
        tokenizer,
        *,
        batch_size: int | None = None,
        max_length: int | None = None,
        label_end: str | None = None,
        chat: bool = False,
        name_or_path: str | None = None,
        folder: str | None = None,
    ):
        """``folder`` is the local folder the model was just loaded from (`from_options`): its files' content
        is then the model's identity. A model handed in is known by its name (and Hub commit) only."""
        self.options = ModelOptions(batch_size=batch_size, max_length=max_length, label_end=label_end, chat=chat)
        self.model = model.eval()
        self.causal = not model.config.is_encoder_decoder
        self.backend: Backend = CausalBackend(self.model) if self.causal else Seq2SeqBackend(self.model)
        _check_decoder_only_options(self.causal, label_end, chat)
        self.label_end = label_end or default_label_end(model.config)
        self.tokens = PromptTokenizer(
            tokenizer,
            causal=self.causal,
            chat=chat,
            label_end=self.label_end,
            max_length=max_length or model_max_length(model.config, tokenizer),
        )
        self.chat, self.max_length, self.device = chat, self.tokens.max_length, self.backend.device
        self.batches = LengthBatcher(batch_size, self.device, self.tokens.pad_token_id, model.dtype)
        self.label_sets = LabelSets(self.tokens, self.backend.start_token_id)
        self.name_or_path = name_or_path or getattr(model.config, "name_or_path", "") or type(model).__name__
        self.folder = folder

    @classmethod
    def from_pretrained(cls, name_or_path: str | None = None, **options) -> LabelScorer:
        """Load a hub name or local folder; ``options`` are those of `t5cls.options.ModelOptions`."""
        return cls.from_options(ModelOptions(name_or_path=name_or_path, **options))

    @classmethod
    def from_options(cls, options: ModelOptions) -> LabelScorer:
        model, tokenizer = load_pretrained(options)
        return cls(
            model,
            tokenizer,
            batch_size=options.batch_size,
            max_length=options.max_length,
            label_end=options.label_end,
            chat=options.chat,
            name_or_path=options.name,
            folder=identities.local_folder(options.name),
        )

    @property
    def tokenizer(self):
        return self.tokens.tokenizer

    @property
    def batch_size(self) -> int:
        return self.batches.batch_size

    @batch_size.setter
    def batch_size(self, value: int) -> None:
        self.batches.batch_size = value

    @cached_property
    def identity(self) -> ModelIdentity:
        """What scores depend on about this model (for resume fingerprints and provenance): `model_identity`'s."""
        precision = model_precision(self.model)
        files = ModelFiles(self.name_or_path, self.model.config, self.tokenizer, self.folder, precision)
        return identities.model_identity(self.options, files, self.device)

    def label_ids(self, labels: Sequence[str]) -> list[list[int]]:
        """Each label's token ids as scored (with the label end: EOS for seq2seq); validates the label set."""
        return self.label_sets.ids(labels)

    def label_trie(self, labels: Sequence[str]) -> LabelTrie:
        """The decoder layout of a label set (cached: a run scores the same set for every chunk)."""
        return self.label_sets.trie(labels)

    def label_room(self, labels: Sequence[str]) -> int:
        """Tokens a decoder-only prompt must leave free for ``labels`` (0 for encoder-decoder models)."""
        return max(map(len, self.label_ids(labels))) if self.causal else 0

    def tokenize(self, texts: Sequence[str], room: int = 0) -> TokenizedTexts:
        """Token ids cut to ``max_length - room``; see `PromptTokenizer.prompts`."""
        return self.tokens.prompts(texts, room)

    def score(self, texts: Sequence[str] | TokenizedTexts, labels: Sequence[str]) -> LabelScores:
        """Score every text against every label; rows come back in the order given.

        ``texts`` may come pre-tokenized from `tokenize` (a run tokenizes the next chunk in a
        background thread while the model scores this one).
        """
        trie = self.label_trie(labels)
        tokens = texts if isinstance(texts, TokenizedTexts) else self.tokenize(texts, self.label_room(labels))
        self.tokens.check_label_boundaries(tokens, labels, self.label_ids(labels))
        with self.backend.session():
            logprobs = self.batches.run(
                tokens.ids,
                len(labels),
                lambda ids, mask: self.backend.label_logprobs(ids, mask, trie),
                self.backend.prompt_pass_tokens,
            )
        return LabelScores(list(labels), logprobs, tokens.truncated)

    def keeping_prefixes(self):
        """A context for the scoring calls of one file: a decoder-only prompt prefix shared by the
        calls (a fixed instruction) is run once for all of them, not once per call. Exact; the
        model must not change inside it."""
        return self.backend.keeping()

    def first_token_logits(self, texts: Sequence[str] | TokenizedTexts, token_ids: Sequence[int]) -> np.ndarray:
        """``(N, len(token_ids))`` logits of ``token_ids`` at the first decoding step after each text.

        This is what the ``first`` scoring mode restricts its softmax to; batched like `score`.
        """
        tokens = texts if isinstance(texts, TokenizedTexts) else self.tokenize(texts, room=1)
        columns = torch.as_tensor(list(token_ids), device=self.device)
        return self.batches.run(
            tokens.ids,
            len(columns),
            lambda ids, mask: self.backend.first_token_logits(ids, mask)[:, columns],
            CPU_PASS_TOKENS,  # one whole-model step per row: any family's pass is cut by length
        )


class LabelSets:
    """Label sets tokenized as scored and laid out as tries, once per set (a run asks for the same set per chunk)."""

    def __init__(self, tokens: PromptTokenizer, start_token_id: int):
        self.tokens = tokens
        self.start_token_id = start_token_id
        self._cache: dict[tuple[str, ...], tuple[list[list[int]], LabelTrie]] = {}

    def ids(self, labels: Sequence[str]) -> list[list[int]]:
        return self._tokenized(labels)[0]

    def trie(self, labels: Sequence[str]) -> LabelTrie:
        return self._tokenized(labels)[1]

    def _tokenized(self, labels: Sequence[str]) -> tuple[list[list[int]], LabelTrie]:
        key = tuple(labels)
        if key not in self._cache:
            sequences = self.tokens.labels(parse_labels(list(labels)))
            self._cache[key] = sequences, LabelTrie.build(sequences, self.start_token_id)
        return self._cache[key]


def _check_decoder_only_options(causal: bool, label_end: str | None, chat: bool) -> None:
    if causal:
        return
    if label_end not in (None, "eos"):
        raise OptionError("{label_end} applies to decoder-only models; encoder-decoder labels always end with EOS")
    if chat:
        raise OptionError(
            "{chat} applies to decoder-only instruct models; encoder-decoder prompts are used as they are"
        )
