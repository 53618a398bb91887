"""`Backend`: what `LabelScorer` and training need of a model family's scoring code, written down.

`t5cls.models.seq2seq.Seq2SeqBackend` (encoder-decoder) and `t5cls.models.causal.CausalBackend`
(decoder-only) both provide it; a new architecture is one more class with these members, and
the rest of t5cls (tokenizing, batching, the label trie, the training loss) stays as it is.
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from typing import Protocol, runtime_checkable

import torch

from t5cls.models.trie import LabelTrie


@runtime_checkable
class Backend(Protocol):
    """Scores label tries against padded batches of prompt token ids."""

    model: torch.nn.Module
    start_token_id: int  # what the label trie's root feeds (decoder-only models: never fed)
    tree_decoding: bool  # one pass over the label trie, or one forward per label (`Family.decoding`)
    # On the CPU, what one more pass over a group of prompts costs in padded tokens, for `LengthBatcher` to cut
    # a batch of mixed lengths by it; None: the backend groups its prompts by length itself (an encoder).
    prompt_pass_tokens: int | None

    @property
    def device(self) -> torch.device: ...

    def session(self) -> AbstractContextManager:
        """The context of one scoring call: what may be kept between its batches (a shared prompt prefix)."""
        ...

    def label_logprobs(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, trie: LabelTrie) -> torch.Tensor:
        """(batch, labels) float32 log p(label | prompt), differentiable (training calls it with gradients)."""
        ...

    def first_token_logits(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """(batch, vocab) logits of the first step after the prompt (``first`` mode)."""
        ...
