"""Decoder-only (causal LM) scoring: the prompt once per row, then the whole label trie in one pass.

log p(label | prompt) = Σ_t log p(label_t | prompt, label_<t). `CausalEngine` runs the prompt
batch once to fill a KV cache, then feeds every trie node of every row in **one** more forward
over that cache: a node attends to its row's prompt and to its own trie ancestors (a 4D additive
mask) and sits at position ``prompt length - 1 + depth``. The trie root is the row's last prompt
token, fed again in the trie pass (its cached copy is masked out), so the root's distribution
comes out of the same LM head call as every other node's and the prompt pass needs no logits.

Labels are tokenized in context; the rule (see `tokenize_labels_in_context` and `Continuation`):

* the prompt loses its trailing whitespace, and the scored continuation is ``" " + label``
  (plus the ``label_end`` text, if any), so ``"Sentiment:"`` is scored with ``" positive"``;
  with ``--chat`` the prompt is the chat template's rendering of the user turn up to the start
  of the assistant's answer, kept as it is, and the continuation is ``label`` with no space;
* a label's ids are the ids the tokenizer gives that continuation after a prompt, so the scored
  sequence is exactly ``tokenizer(prompt + " " + label)`` (BOS included when the tokenizer adds one);
* that only holds when the prompt's last token and the label's first token do not merge across
  the boundary; `check_labels_in_context` tests it on the real prompt endings and raises an
  `InputError` naming the label and the prompt end when they do, rather than score a tokenization
  the model would never see.
"""

from __future__ import annotations

import inspect
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from transformers import DynamicCache

from t5cls.engine import label_sequences, trie_label_logprobs
from t5cls.errors import InputError
from t5cls.labels import LabelTrie, check_distinct

# Decoder-only families whose attention takes a custom 4D mask and whose positions come only from
# `position_ids` (learned or rotary); each is checked against a brute-force forward in the tests.
TREE_FAMILY = {"gpt2", "llama", "mistral", "qwen2", "qwen3"}
# The boundary check looks at this many trailing characters of each prompt: a merge is local.
PROMPT_END_CHARS = 64


@dataclass(frozen=True)
class Continuation:
    """How labels follow prompts: the text between them, and a prompt end to tokenize labels after.

    Tokenizing a label after ``reference`` rather than alone matters for SentencePiece
    tokenizers, which turn a string-initial space into an extra ``▁`` token.
    """

    separator: str = " "
    reference: str = "Answer:"

    def prompt(self, text: str) -> str:
        """The prompt as scored: right-stripped when the label brings its own leading space."""
        return text.rstrip() if self.separator else text

    def text(self, label: str, label_end: str) -> str:
        """The text appended to a prompt to score ``label``."""
        return self.separator + label + ("" if label_end in ("none", "eos") else label_end)


PLAIN = Continuation()


def chat_continuation(tokenizer) -> Continuation:
    """``--chat``: the answer starts right after the template's assistant header, with no space."""
    if not getattr(tokenizer, "chat_template", None):
        raise InputError("--chat: the model's tokenizer has no chat template; drop --chat for a base model")
    return Continuation(separator="", reference=chat_prompt(tokenizer, "Answer."))


def chat_prompt(tokenizer, text: str) -> str:
    """``text`` as the user's turn, rendered up to where the assistant's answer begins."""
    return tokenizer.apply_chat_template([{"role": "user", "content": text}], tokenize=False, add_generation_prompt=True)


def tokenize_labels_in_context(
    tokenizer, labels: Sequence[str], label_end: str = "none", continuation: Continuation = PLAIN
) -> list[list[int]]:
    """Each label's token ids as a continuation of a prompt, for a decoder-only model.

    ``label_end`` says what completes a label: ``none`` (nothing: the label's own tokens),
    ``eos`` (the tokenizer's end-of-sequence id is scored after them) or any other text, which
    is appended to the label and tokenized with it (``"\\n"`` scores ``" positive\\n"``).
    """
    if label_end == "eos" and tokenizer.eos_token_id is None:
        raise InputError("--label-end eos: the tokenizer has no end-of-sequence token; use none or a text")
    context = tokenizer(continuation.reference, add_special_tokens=False).input_ids
    sequences = []
    for label in labels:
        ids = tokenizer(continuation.reference + continuation.text(label, label_end), add_special_tokens=False).input_ids
        if ids[: len(context)] != context:
            raise InputError(f"label {label!r} merges with the text before it, so it cannot be scored as a continuation")
        sequences.append(ids[len(context) :] + ([tokenizer.eos_token_id] if label_end == "eos" else []))
    check_distinct(labels, sequences)
    return sequences


def prompt_end(prompt: str) -> str:
    """The part of a (right-stripped) prompt that `check_labels_in_context` needs."""
    return prompt[-PROMPT_END_CHARS:]


def check_labels_in_context(
    tokenizer, prompt_ends: Sequence[str], labels: Sequence[str], sequences: Sequence[Sequence[int]], label_end: str,
    continuation: Continuation = PLAIN,
) -> None:
    """Raise unless ``tokenizer(end + continuation) == tokenizer(end) + label ids`` for every pair.

    Two batched tokenizer calls per chunk on short strings: cheap next to the model.
    """
    ends = list(dict.fromkeys(prompt_ends))
    if not ends:
        return
    text_ids = [list(ids[:-1] if label_end == "eos" else ids) for ids in sequences]
    end_ids = tokenizer(ends, add_special_tokens=False).input_ids
    joined = tokenizer(
        [end + continuation.text(label, label_end) for end in ends for label in labels], add_special_tokens=False
    ).input_ids
    for index, ids in enumerate(joined):
        end, label = divmod(index, len(labels))
        if ids != end_ids[end] + text_ids[label]:
            raise InputError(
                f"label {labels[label]!r} does not tokenize the same after the prompt ending {ends[end][-20:]!r}: "
                f"{tokenizer.convert_ids_to_tokens(ids[-len(text_ids[label]) - 1 :])} instead of "
                f"{tokenizer.convert_ids_to_tokens(end_ids[end][-1:] + text_ids[label])} (the prompt's last token "
                "merges with the label's first), so the label is not a continuation of the prompt; "
                "end the template with other text, e.g. 'Answer:'"
            )


class CausalEngine:
    """Scores label tries against batches of prompts with an ``AutoModelForCausalLM``."""

    start_token_id = 0  # the trie root stands for the prompt's last token; this id is never fed

    def __init__(self, model: torch.nn.Module):
        self.model = model
        self.config = model.config
        self.tree_decoding = self.config.model_type in TREE_FAMILY and getattr(self.config, "sliding_window", None) is None
        # transformers renamed `past_key_values` to `cache` within 5.x; take whichever this version has.
        parameters = inspect.signature(model.base_model.forward).parameters
        self._cache_argument = "cache" if "cache" in parameters else "past_key_values"

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    @torch.inference_mode()
    def label_logprobs(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, trie: LabelTrie) -> torch.Tensor:
        """Return a float32 ``(batch, labels)`` tensor of log p(label | prompt) for a right-padded batch."""
        lengths = self._lengths(attention_mask, int(trie.depths.max()))
        if self.tree_decoding:
            return trie_label_logprobs(self._trie_logits(input_ids, attention_mask, lengths, trie), trie)
        return self._per_label_logprobs(input_ids, lengths, trie)

    @torch.inference_mode()
    def first_token_logits(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """Logits of the first label token, ``(batch, vocab)``: the next-token distribution after each prompt."""
        return self._continuation_logits(input_ids, self._lengths(attention_mask, 0), [], 1)[:, 0].float()

    def _lengths(self, attention_mask: torch.Tensor, deepest: int) -> torch.Tensor:
        """Real prompt lengths; refuse prompts with no context or whose labels run past the positions."""
        lengths = attention_mask.sum(dim=1)
        if int(lengths.min()) == 0:
            raise InputError("a prompt has no tokens; a decoder-only model needs at least one token of context")
        limit = getattr(self.config, "max_position_embeddings", None)
        if limit and int(lengths.max()) + deepest > limit:
            raise InputError(
                f"a prompt of {int(lengths.max())} tokens plus its label runs past the model's {limit} positions; "
                f"use --max-length {limit - deepest} or less"
            )
        return lengths

    def _trie_logits(self, input_ids, attention_mask, lengths, trie: LabelTrie) -> torch.Tensor:
        """``(batch, positions, vocab)`` logits of every trie node: prompt pass to a cache, then one trie pass."""
        batch, width = input_ids.shape
        device, dtype = input_ids.device, self.model.dtype
        rows = torch.arange(batch, device=device)
        cache = DynamicCache(config=self.config)
        self.model.base_model(input_ids=input_ids, attention_mask=attention_mask, use_cache=True, **{self._cache_argument: cache})
        node_ids = torch.as_tensor(trie.input_ids, device=device).repeat(batch, 1)
        node_ids[:, 0] = input_ids[rows, lengths - 1]
        positions = (lengths - 1)[:, None] + torch.as_tensor(trie.depths, device=device)[None, :]
        prompt_allowed = attention_mask != 0
        prompt_allowed[rows, lengths - 1] = False  # the last prompt token is the root, fed again below
        size = trie.num_positions
        allowed = torch.cat(
            [
                prompt_allowed[:, None, :].expand(batch, size, width),
                torch.as_tensor(trie.ancestor_mask, device=device)[None].expand(batch, size, size),
            ],
            dim=-1,
        )
        mask = torch.zeros(allowed.shape, dtype=dtype, device=device).masked_fill_(~allowed, torch.finfo(dtype).min)
        return self.model(
            input_ids=node_ids,
            attention_mask=mask[:, None],
            position_ids=positions,
            use_cache=True,
            **{self._cache_argument: cache},
        ).logits

    def _per_label_logprobs(self, input_ids, lengths, trie: LabelTrie) -> torch.Tensor:
        """Fallback for other architectures: one full forward of prompt + label per label, no cache."""
        columns = []
        for ids in label_sequences(trie):
            logits = self._continuation_logits(input_ids, lengths, ids[:-1], len(ids)).float()
            targets = torch.as_tensor(ids, device=logits.device).expand(len(logits), -1)
            columns.append(logits.log_softmax(-1).gather(-1, targets[..., None]).squeeze(-1).sum(-1))
        return torch.stack(columns, dim=1)

    def _continuation_logits(self, input_ids, lengths, suffix: list[int], keep: int) -> torch.Tensor:
        """Logits at the last ``keep`` positions of each row's prompt + ``suffix``.

        Rows are left-padded so those positions line up and the LM head runs on ``keep`` positions only.
        """
        batch, device = len(input_ids), input_ids.device
        width = int(lengths.max()) + len(suffix)
        tail = torch.as_tensor(suffix, dtype=input_ids.dtype, device=device)
        ids = torch.zeros((batch, width), dtype=input_ids.dtype, device=device)
        mask = torch.zeros((batch, width), dtype=torch.long, device=device)
        for row, length in enumerate(lengths.tolist()):
            start = width - length - len(suffix)
            ids[row, start:] = torch.cat([input_ids[row, :length], tail])
            mask[row, start:] = 1
        positions = (mask.cumsum(dim=1) - 1).clamp(min=0)
        return self.model(
            input_ids=ids, attention_mask=mask, position_ids=positions, logits_to_keep=keep, use_cache=False
        ).logits
