"""The Python API: `LabelScorer` turns texts and a label set into exact class probabilities.

The backend follows the model's config: encoder-decoder models use `Seq2SeqEngine`, decoder-only
(causal) models use `CausalEngine`, whose labels are tokenized as continuations of the prompt.

    >>> scorer = LabelScorer.from_pretrained("google/flan-t5-small")
    >>> scores = scorer.score(["I loved it"], ["positive", "negative"])
    >>> scores.probs, scores.predictions, scores.entropy

The CLI is a thin layer over this class; everything about files lives in `t5cls.job`.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property

import numpy as np
import torch

from t5cls import modes
from t5cls.causal import PLAIN, CausalEngine, chat_continuation, chat_prompt, check_labels_in_context, prompt_end
from t5cls.causal import tokenize_labels_in_context
from t5cls.engine import Seq2SeqEngine
from t5cls.errors import InputError, ModelLoadError, NumericError
from t5cls.labels import LabelTrie, parse_labels, tokenize_labels

DEFAULT_MODEL = "google/flan-t5-small"
CPU_BATCH_SIZE = 32
CUDA_START_BATCH_SIZE = 256
DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


def default_model() -> str:
    """The model used when none is given: ``$T5CLS_MODEL`` or Flan-T5 small."""
    return os.environ.get("T5CLS_MODEL") or DEFAULT_MODEL


def parse_batch_size(value: str) -> int | None:
    """``--batch-size``: ``auto`` (None: the scorer picks, and adapts on CUDA) or a positive number."""
    if value == "auto":
        return None
    if not value.isdigit() or int(value) < 1:
        raise InputError(f"--batch-size must be a positive number or 'auto', got {value!r}")
    return int(value)


def resolve_device(device: str) -> torch.device:
    """``auto`` picks CUDA, then Apple MPS, then the CPU."""
    if device == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if device == "cuda" and not torch.cuda.is_available():
        raise InputError("--device cuda was asked for but no CUDA GPU is visible; use --device auto or cpu")
    if device not in {"cpu", "cuda", "mps"}:
        raise InputError(f"unknown device {device!r}; choose auto, cpu, cuda or mps")
    return torch.device(device)


def resolve_dtype(dtype: str, device: torch.device) -> torch.dtype:
    """``auto`` is bfloat16 on CUDA that supports it (T5 overflows in float16), else float32."""
    if dtype == "auto":
        if device.type == "cuda" and torch.cuda.is_bf16_supported():
            return torch.bfloat16
        return torch.float32
    if dtype not in DTYPES:
        raise InputError(f"unknown dtype {dtype!r}; choose auto, float32, bfloat16 or float16")
    return DTYPES[dtype]


@dataclass(frozen=True)
class LabelScores:
    """Scores of N texts against L labels. ``logprobs[i, l]`` = log p(label l | text i)."""

    labels: list[str]
    logprobs: np.ndarray  # (N, L) float64
    truncated: np.ndarray  # (N,) bool: the input was cut to the model's maximum length

    @cached_property
    def probs(self) -> np.ndarray:
        """Class probabilities: softmax of the sequence log-probs over the label set."""
        return modes.softmax(self.logprobs)

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
        return modes.entropy(self.probs)


@dataclass(frozen=True)
class TokenizedTexts:
    """Encoder token ids per text, already cut to the model's maximum length."""

    ids: list[list[int]]
    truncated: np.ndarray  # (N,) bool
    prompt_ends: list[str] | None = None  # causal models: each prompt's end, to check label boundaries


class LabelScorer:
    """Exact label probabilities from an encoder-decoder or a decoder-only model.

    ``label_end`` (decoder-only models) says what completes a label: ``none`` (the default),
    ``eos`` or a text; see `t5cls.causal`. Encoder-decoder labels always end with EOS. ``chat``
    (decoder-only instruct models) puts each prompt in the tokenizer's chat template as the
    user's turn; the label is the start of the assistant's answer.

    ``max_length`` bounds what the model reads: the input for an encoder-decoder model; for a
    decoder-only model, the prompt plus the longest label, so that the label always fits. Long
    decoder-only prompts are cut from the left (``truncation_side = "left"`` is set on the
    tokenizer), keeping their end, where templates put the question.
    """

    def __init__(
        self, model, tokenizer, *, batch_size: int | None = None, max_length: int | None = None,
        label_end: str | None = None, chat: bool = False,
    ):
        self.model = model.eval()
        self.tokenizer = tokenizer
        self.causal = not model.config.is_encoder_decoder
        self.engine = CausalEngine(self.model) if self.causal else Seq2SeqEngine(self.model)
        if not self.causal and label_end not in (None, "eos"):
            raise InputError("--label-end applies to decoder-only models; encoder-decoder labels always end with EOS")
        if not self.causal and chat:
            raise InputError("--chat applies to decoder-only instruct models; encoder-decoder prompts are used as they are")
        self.chat = chat
        self.continuation = chat_continuation(tokenizer) if chat else PLAIN
        if self.causal:
            tokenizer.truncation_side = "left"
        self.label_end = label_end or ("none" if self.causal else "eos")
        self.device = self.engine.device
        self.auto_batch_size = batch_size is None
        self.batch_size = batch_size or (CUDA_START_BATCH_SIZE if self.device.type == "cuda" else CPU_BATCH_SIZE)
        self.max_length = max_length or _model_max_length(model, tokenizer)
        self._tries: dict[tuple[str, ...], tuple[list[list[int]], LabelTrie]] = {}

    @classmethod
    def from_pretrained(
        cls,
        name_or_path: str | None = None,
        *,
        device: str = "auto",
        dtype: str = "auto",
        batch_size: int | None = None,
        max_length: int | None = None,
        revision: str | None = None,
        label_end: str | None = None,
        chat: bool = False,
    ) -> LabelScorer:
        """Load a hub name or local folder; ``batch_size=None`` picks one for the device.

        The config says which backend: ``is_encoder_decoder`` models load as seq2seq, the rest as causal LMs.
        """
        from transformers import AutoConfig, AutoModelForCausalLM, AutoModelForSeq2SeqLM, AutoTokenizer

        name = name_or_path or default_model()
        torch_device = resolve_device(device)
        torch_dtype = resolve_dtype(dtype, torch_device)
        try:
            config = AutoConfig.from_pretrained(name, revision=revision)
            auto_model = AutoModelForSeq2SeqLM if config.is_encoder_decoder else AutoModelForCausalLM
            tokenizer = AutoTokenizer.from_pretrained(name, revision=revision)
            model = auto_model.from_pretrained(name, revision=revision, dtype=torch_dtype, attn_implementation="sdpa")
        except (OSError, ValueError, KeyError) as err:
            reason = str(err).strip().splitlines()[0].rstrip(".") if str(err).strip() else type(err).__name__
            raise ModelLoadError(
                f"could not load model {name!r}: {reason}. Offline? Download it once where the Hugging Face Hub is "
                "reachable and pass its local folder with --model DIR (or set T5CLS_MODEL)"
            ) from err
        if tokenizer.pad_token is None:  # GPT-2-style tokenizers have none; padding is masked, so EOS serves
            tokenizer.pad_token = tokenizer.eos_token
        scorer = cls(model.to(torch_device), tokenizer, batch_size=batch_size, max_length=max_length, label_end=label_end,
                     chat=chat)
        scorer.name_or_path = name
        return scorer

    def label_ids(self, labels: Sequence[str]) -> list[list[int]]:
        """Each label's token ids as scored (with the label end: EOS for seq2seq); validates the label set."""
        return self._tokenized_labels(labels)[0]

    def label_trie(self, labels: Sequence[str]) -> LabelTrie:
        """The decoder layout of a label set (cached: a job scores the same set for every chunk)."""
        return self._tokenized_labels(labels)[1]

    def _tokenized_labels(self, labels: Sequence[str]) -> tuple[list[list[int]], LabelTrie]:
        key = tuple(labels)
        if key not in self._tries:
            parsed = parse_labels(list(labels))
            if self.causal:
                sequences = tokenize_labels_in_context(self.tokenizer, parsed, self.label_end, self.continuation)
            else:
                sequences = tokenize_labels(self.tokenizer, parsed)
            self._tries[key] = sequences, LabelTrie.build(sequences, self.engine.start_token_id)
        return self._tries[key]

    def score(self, texts: Sequence[str] | TokenizedTexts, labels: Sequence[str]) -> LabelScores:
        """Score every text against every label; rows come back in the order given.

        ``texts`` may come pre-tokenized from `tokenize` (the CLI tokenizes the next chunk
        in a background thread while the model scores this one).

        Rows are batched by token length (less padding) and put back in order; see
        `_by_length_batches` for what happens on CUDA out-of-memory.
        """
        trie = self.label_trie(labels)
        tokens = texts if isinstance(texts, TokenizedTexts) else self.tokenize(texts, self.label_room(labels))
        if tokens.prompt_ends is not None:
            check_labels_in_context(self.tokenizer, tokens.prompt_ends, labels, self.label_ids(labels), self.label_end,
                                    self.continuation)
        logprobs = self._by_length_batches(tokens.ids, len(labels), lambda ids, mask: self.engine.label_logprobs(ids, mask, trie))
        return LabelScores(list(labels), logprobs, tokens.truncated)

    def first_token_logits(self, texts: Sequence[str] | TokenizedTexts, token_ids: Sequence[int]) -> np.ndarray:
        """``(N, len(token_ids))`` logits of ``token_ids`` at the first decoding step after each text.

        This is what the ``first`` scoring mode restricts its softmax to; batched like `score`.
        """
        tokens = texts if isinstance(texts, TokenizedTexts) else self.tokenize(texts, room=1)
        columns = torch.as_tensor(list(token_ids), device=self.device)
        return self._by_length_batches(
            tokens.ids, len(columns), lambda ids, mask: self.engine.first_token_logits(ids, mask)[:, columns]
        )

    def _by_length_batches(self, ids: list[list[int]], width: int, compute) -> np.ndarray:
        """Run ``compute(padded ids, mask) -> (batch, width)`` over length-sorted batches, rows back in order.

        With an automatic batch size, a CUDA out-of-memory error halves the batch and retries the
        same rows, so no row is lost or computed twice.
        """
        out = np.empty((len(ids), width), dtype=np.float64)
        order = np.argsort([len(x) for x in ids], kind="stable")
        done = 0
        while done < len(order):
            rows = order[done : done + self.batch_size]
            try:
                values = compute(*self._padded(ids, rows))
            except torch.cuda.OutOfMemoryError:
                self._shrink_batch_after_oom()
                continue
            out[rows] = self._checked(values, rows)
            done += len(rows)
        return out

    def _shrink_batch_after_oom(self) -> None:
        if not self.auto_batch_size or self.batch_size == 1:
            raise InputError(f"CUDA ran out of memory at --batch-size {self.batch_size}; use a smaller one or 'auto'")
        self.batch_size //= 2
        torch.cuda.empty_cache()

    def label_room(self, labels: Sequence[str]) -> int:
        """Tokens a decoder-only prompt must leave free for ``labels`` (0 for encoder-decoder models)."""
        return max(map(len, self.label_ids(labels))) if self.causal else 0

    def tokenize(self, texts: Sequence[str], room: int = 0) -> TokenizedTexts:
        """Token ids cut to ``max_length - room``, and which texts were cut.

        ``room`` keeps space for the label tokens a decoder-only model reads after the prompt
        (`label_room`). Tokenizing one token past the limit tells which texts are too long
        without a second full pass; only those are tokenized again at the limit, so the cut
        matches the tokenizer's own truncation (special tokens kept). Decoder-only prompts go
        through `t5cls.causal.Continuation` (trailing whitespace dropped, or the chat template).
        """
        limit = self.max_length - room
        if limit < 1:
            raise InputError(f"--max-length {self.max_length} leaves no room for a prompt before labels of {room} tokens")
        special = True
        if self.chat:
            texts, special = [chat_prompt(self.tokenizer, text) for text in texts], False  # the template has them
        elif self.causal:
            texts = [self.continuation.prompt(text) for text in texts]
        probe = self.tokenizer(list(texts), truncation=True, max_length=limit + 1, add_special_tokens=special).input_ids
        truncated = np.array([len(ids) > limit for ids in probe], dtype=bool)
        too_long = np.flatnonzero(truncated)
        if len(too_long):
            cut = self.tokenizer([texts[i] for i in too_long], truncation=True, max_length=limit,
                                 add_special_tokens=special).input_ids
            for i, ids in zip(too_long, cut):
                probe[i] = ids
        return TokenizedTexts(probe, truncated, [prompt_end(text) for text in texts] if self.causal else None)

    def _padded(self, ids: list[list[int]], rows: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        """Right-pad the token ids of ``rows`` into an id tensor and an attention mask."""
        width = max(len(ids[i]) for i in rows)
        batch = torch.full((len(rows), width), self.tokenizer.pad_token_id or 0, dtype=torch.long)
        mask = torch.zeros((len(rows), width), dtype=torch.long)
        for j, i in enumerate(rows):
            batch[j, : len(ids[i])] = torch.as_tensor(ids[i])
            mask[j, : len(ids[i])] = 1
        return batch.to(self.device), mask.to(self.device)

    def _checked(self, logprobs: torch.Tensor, rows: np.ndarray) -> np.ndarray:
        """Refuse to return NaN/inf scores (T5 in float16 overflows) instead of writing them."""
        values = logprobs.double().cpu().numpy()
        bad = ~np.isfinite(values).all(axis=1)
        if bad.any():
            row = int(rows[np.flatnonzero(bad)[0]])
            raise NumericError(
                f"non-finite label scores for input row {row} (model dtype {self.model.dtype}); "
                "T5 overflows in float16: use --dtype bfloat16 or float32"
            )
        return values


def _model_max_length(model, tokenizer) -> int:
    """The longest input the model takes: the tokenizer's limit, else the config's, else 512."""
    limit = getattr(tokenizer, "model_max_length", None)
    if limit and limit < 1_000_000:
        return int(limit)
    for key in ("n_positions", "max_position_embeddings"):
        value = getattr(model.config, key, None)
        if value:
            return int(value)
    return 512
