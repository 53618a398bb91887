"""The decoder-only backend: the prompt once per row, then the whole label trie in one pass.

log p(label | prompt) = Σ_t log p(label_t | prompt, label_<t). `CausalBackend` runs the prompt
batch once to fill a KV cache, then feeds every trie node of every row in **one** more forward
over that cache: a node attends to its row's prompt and to its own trie ancestors only
(`t5cls.models.tree_attention`) and sits at position ``prompt length - 1 + depth``. The trie root
is the row's last prompt token, fed again in the trie pass (its cached copy is masked out), so the root's distribution
comes out of the same LM head call as every other node's and the prompt pass needs no logits.

Prompts that start alike (a long shared instruction, a chat template's head, few-shot
demonstrations) share their common prefix: it runs once per batch (`t5cls.models.prompt_pass`).
How labels are tokenized as continuations of the prompt is in `t5cls.models.continuation`.
"""

from __future__ import annotations

import torch

from t5cls.errors import InputError
from t5cls.models import edges
from t5cls.models._hf_compat import OutputHead, attention_by
from t5cls.models.batching import CPU_PASS_TOKENS, MemoryBudget
from t5cls.models.edges import label_sequences
from t5cls.models.families import family_of, sliding_window
from t5cls.models.prompt_pass import PromptPass, SharedPrefix
from t5cls.models.tree_attention import AttentionLayout
from t5cls.models.trie import LabelTrie, TrieTensors


class CausalBackend:
    """Scores label tries against batches of prompts with an ``AutoModelForCausalLM``."""

    start_token_id = 0  # the trie root stands for the prompt's last token; this id is never fed
    prompt_pass_tokens = CPU_PASS_TOKENS  # a pass runs the whole model over prompt and labels

    def __init__(self, model: torch.nn.Module, budget: MemoryBudget | None = None):
        self.model = model
        self.config = model.config
        self.family = family_of(self.config)
        self.tree_decoding = self.family.tree
        self.window = sliding_window(self.config)
        self.budget = budget or MemoryBudget(self.device)
        self.prompts = PromptPass(model)
        if self.tree_decoding:
            self.head = OutputHead(model, self.family.head)

    def session(self):
        """A scoring call: shared prompt prefixes are run once for all its batches."""
        return self.prompts.reusing()

    def keeping(self):
        """Scoring calls with one model (the chunks of a file): shared prompt prefixes are run once for all."""
        return self.prompts.keeping()

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    def label_logprobs(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, trie: LabelTrie) -> torch.Tensor:
        """Return a float32 ``(batch, labels)`` tensor of log p(label | prompt) for a right-padded batch."""
        deepest = int(trie.depths.max())
        lengths = self._lengths(attention_mask, deepest)
        if self.tree_decoding and self._within_window(lengths, deepest):
            return self._tree_logprobs(input_ids, attention_mask, lengths, trie)
        return self._per_label_logprobs(input_ids, lengths, trie)

    def first_token_logits(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """Logits of the first label token, ``(batch, vocab)``: the next-token distribution after each prompt."""
        return self._continuation_logits(input_ids, self._lengths(attention_mask, 0), [], 1)[:, 0].float()

    def _lengths(self, attention_mask: torch.Tensor, deepest: int) -> torch.Tensor:
        """Real prompt lengths (never 0: `PromptTokenizer` refuses empty prompts); refuse labels past the positions."""
        lengths = attention_mask.sum(dim=1)
        limit = getattr(self.config, "max_position_embeddings", None)
        if limit and int(lengths.max()) + deepest > limit:
            raise InputError(
                f"a prompt of {int(lengths.max())} tokens plus its label runs past the model's {limit} positions; "
                f"use a max length of {limit - deepest} or less"
            )
        return lengths

    def _within_window(self, lengths: torch.Tensor, deepest: int) -> bool:
        """No label token of the batch is a sliding window or more away from its prompt's first token.

        Tree attention has no window; where nothing falls outside it, the window changes nothing.
        A batch that reaches past it takes the per-label path, the family's own forward.
        """
        return self.window is None or int(lengths.max()) + deepest <= self.window

    def _tree_logprobs(self, input_ids, attention_mask, lengths, trie: LabelTrie) -> torch.Tensor:
        """The shared prefix once; then per block of rows, the rows' own prompt tokens to a cache and every
        trie node in one pass; the LM head in blocks."""
        prefix = self.prompts.shared_prefix(input_ids, lengths)
        return edges.trie_logprobs(
            self.model,
            self.head,
            self.budget,
            trie,
            len(input_ids),
            input_ids.shape[1],
            lambda rows, nodes: self._trie_hidden(input_ids[rows], attention_mask[rows], lengths[rows], nodes, prefix),
        )

    def _trie_hidden(
        self, input_ids, attention_mask, lengths, nodes: TrieTensors, prefix: SharedPrefix
    ) -> torch.Tensor:
        """``(rows, positions, width)`` last hidden states of every trie node after its row's prompt."""
        contexts = self.prompts.contexts(input_ids, attention_mask, lengths, prefix)
        node_ids = nodes.ids.repeat(len(input_ids), 1)
        node_ids[:, 0] = input_ids[torch.arange(len(input_ids), device=input_ids.device), lengths - 1]
        layout = AttentionLayout(ancestors=nodes.ancestors, depth_starts=nodes.depth_starts, contexts=contexts)
        with attention_by(self.model, layout):
            return self.model.base_model(
                input_ids=node_ids, position_ids=(lengths - 1)[:, None] + nodes.depths[None, :], use_cache=False
            ).last_hidden_state

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
