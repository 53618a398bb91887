"""The prompt pass of a decoder-only model: a shared prefix computed once, then each row's own tokens.

Instruction-tuned models classify best with a long fixed instruction (a system prompt, class
definitions, worked examples) before the row. Running it for every row costs the instruction
many times over, so the longest common prefix of a batch's prompt *token ids* is run once, and
its keys and values are broadcast to every row (expanded, never copied) while each row runs only
its own tokens. Because the prefix is taken from the ids that full tokenization produced, every
row is scored on exactly its full prompt: a chat template's head, few-shot demonstrations or a
shared instruction become the prefix by themselves, and a prompt cut from the left simply shares
less. The scores are those of the full prompts whatever the batch (up to float rounding).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import torch
from transformers import DynamicCache

from t5cls.models._hf_compat import attention_by, cache_keyword, cached_keys_values
from t5cls.models.tree_attention import AttentionLayout, Context

KeysValues = list[tuple[torch.Tensor, torch.Tensor]]  # per layer: (1 or rows, kv heads, tokens, head dim) each


@dataclass(frozen=True)
class SharedPrefix:
    """The first ``length`` tokens every prompt of a batch starts with, and their keys and values per layer."""

    length: int
    keys_values: KeysValues | None  # None when nothing worth sharing


class PromptPass:
    """Keys and values of a batch's prompts for the trie pass, with the shared prefix run once.

    ``min_shared`` is the shortest prefix worth a pass of its own (a forward reads every weight once,
    whatever its length); ``share`` turns sharing off (each row then runs its whole prompt). Within
    `reusing` (one scoring call: a chunk), a prefix already run for an earlier batch is reused when
    a batch shares exactly the same token ids, so a chunk's instruction runs once, not once per
    batch; within `keeping` (the chunks of a file), once per file. Reuse is exact: a prefix is run
    from its token ids alone (one row, no padding, nothing of the batch), so running it again would
    give the very numbers kept, and output never depends on it. The last `KEPT` prefixes are kept.
    """

    KEPT = 4

    def __init__(self, model, min_shared: int = 8, share: bool = True):
        self.model = model
        self.min_shared = min_shared
        self.share = share
        self._cache_argument = cache_keyword(model)
        self._reusable: OrderedDict[bytes, SharedPrefix] | None = None
        self._keeping = False

    @contextmanager
    def reusing(self) -> Iterator[None]:
        """Keep the prefixes run inside the block for the later batches of the block (then drop them,
        unless inside `keeping`)."""
        if self._keeping:
            yield
            return
        self._reusable = OrderedDict()
        try:
            yield
        finally:
            self._reusable = None

    @contextmanager
    def keeping(self) -> Iterator[None]:
        """Keep the prefixes across the scoring calls inside the block: the chunks of one file.

        The model must not change inside the block (a run's model does not; training's does, and
        training never enters it).
        """
        self._reusable, self._keeping = OrderedDict(), True
        try:
            yield
        finally:
            self._reusable, self._keeping = None, False

    def shared_prefix(self, input_ids: torch.Tensor, lengths: torch.Tensor) -> SharedPrefix:
        """The batch's longest common prefix of token ids, run once; every row keeps at least one own token."""
        longest = int(lengths.min()) - 1
        if not self.share or len(input_ids) < 2 or longest < self.min_shared:
            return SharedPrefix(0, None)
        same = (input_ids[:, :longest] == input_ids[:1, :longest]).all(dim=0)
        length = int(same.long().cumprod(dim=0).sum())
        if length < self.min_shared:
            return SharedPrefix(0, None)
        key = input_ids[0, :length].cpu().numpy().tobytes()
        if self._reusable is not None and key in self._reusable:
            self._reusable.move_to_end(key)
            return self._reusable[key]
        prefix = SharedPrefix(length, self._keys_values(input_ids[:1, :length], None, AttentionLayout(), 0))
        if self._reusable is not None:
            self._reusable[key] = prefix
            if len(self._reusable) > self.KEPT:
                self._reusable.popitem(last=False)
        return prefix

    def contexts(
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor, lengths: torch.Tensor, prefix: SharedPrefix
    ) -> list[list[Context]]:
        """Per layer, what a row's trie nodes see before themselves: the shared prefix, then the row's own tokens.

        The last prompt token is left out: it is the trie root, fed again in the trie pass.
        """
        own_ids, own_mask = input_ids[:, prefix.length :], attention_mask[:, prefix.length :]
        layout = AttentionLayout(
            key_padding=own_mask != 0,
            contexts=[[Context(keys, values)] for keys, values in prefix.keys_values or []],
        )
        own = self._keys_values(own_ids, own_mask if prefix.keys_values is None else None, layout, prefix.length)
        allowed = own_mask != 0
        allowed[torch.arange(len(input_ids), device=input_ids.device), lengths - 1 - prefix.length] = False
        shared = [[Context(keys, values)] for keys, values in prefix.keys_values] if prefix.keys_values else None
        return [
            (shared[layer] if shared else []) + [Context(keys, values, allowed)]
            for layer, (keys, values) in enumerate(own)
        ]

    def _keys_values(self, input_ids, attention_mask, layout: AttentionLayout, offset: int) -> KeysValues:
        """Each layer's keys and values of ``input_ids`` (positions from ``offset``), seeing ``layout``'s contexts."""
        cache = DynamicCache(config=self.model.config)
        arguments = {"input_ids": input_ids, "use_cache": True, self._cache_argument: cache}
        if not layout.contexts:  # no shared prefix: the model's own causal attention with its padding mask
            self.model.base_model(attention_mask=attention_mask, **arguments)
            return cached_keys_values(cache)
        positions = offset + torch.arange(input_ids.shape[1], device=input_ids.device)
        with attention_by(self.model, layout):
            self.model.base_model(position_ids=positions.expand(len(input_ids), -1), **arguments)
        return cached_keys_values(cache)
