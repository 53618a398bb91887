"""From the trie positions' hidden states to label log-probabilities, in blocks of positions.

A label's log-probability is the sum of its edges' token log-probabilities; each edge reads one
token from the next-token distribution at its parent's position: the token's logit minus the
position's log-normaliser (log-sum-exp over the vocabulary). The vocabulary-sized logits are
needed only for that normaliser, so they are computed for a block of positions and a slice of the
vocabulary at a time and reduced at once: memory holds ``rows x block x slice`` logits, never
``rows x positions x vocabulary``. Results do not depend on the position blocks.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

from t5cls.models._hf_compat import OutputHead
from t5cls.models.batching import Blocks, MemoryBudget, position_bytes, row_blocks
from t5cls.models.trie import LabelTrie, TrieTensors

TrieHidden = Callable[[slice, TrieTensors], torch.Tensor]  # a block of rows -> its trie's (rows, positions, width)


def trie_logprobs(
    model, head: OutputHead, budget: MemoryBudget, trie: LabelTrie, rows: int, context: int, hidden: TrieHidden
):
    """``(rows, labels)`` log-probs of a batch: the trie decoded for a block of rows at a time, the head in blocks.

    Both backends decode the same way and differ only in ``hidden``, which runs the decoder over
    the trie for a block of rows (after an encoder output, or after cached prompts) whose
    positions also see ``context`` keys each; the blocks are sized from ``budget``.
    """
    attended = trie.ancestors.shape[1] + context
    cost = position_bytes(model.config, model.dtype, attended)
    blocks = budget.blocks(rows, trie.num_positions, cost, head.vocab_size)
    nodes = TrieTensors.of(trie, budget.device)
    return torch.cat(
        [label_logprobs(hidden(block, nodes), head, trie, blocks) for block in row_blocks(rows, blocks.rows)]
    )


def label_logprobs(hidden: torch.Tensor, head: OutputHead, trie: LabelTrie, blocks: Blocks) -> torch.Tensor:
    """``(rows, labels)`` float32 log-probs from ``(rows, positions, width)`` hidden states of the trie.

    The head runs on ``blocks.positions`` positions and ``blocks.vocabulary`` entries at a time.
    """
    order = np.argsort(trie.edge_positions, kind="stable")  # edges grouped by the position they read
    positions = trie.edge_positions[order]
    device = hidden.device
    pieces = []
    for start in range(0, trie.num_positions, blocks.positions):
        first, stop = np.searchsorted(positions, [start, start + blocks.positions])
        if first == stop:
            continue
        states = hidden[:, start : start + blocks.positions]
        local = torch.as_tensor(positions[first:stop] - start, device=device)
        tokens = torch.as_tensor(trie.edge_tokens[order[first:stop]], device=device)
        normalisers = log_normalisers(head, states, blocks.vocabulary)
        pieces.append(head.token_logits(states[:, local], tokens).float() - normalisers[:, local])
    label_edges = torch.as_tensor(trie.label_edges[order], device=device)
    return torch.cat(pieces, dim=1) @ label_edges


def log_normalisers(head: OutputHead, states: torch.Tensor, vocabulary: int) -> torch.Tensor:
    """``(rows, block)`` float32 log-sum-exp of each position's logits, ``vocabulary`` entries at a time."""
    slices = [
        torch.logsumexp(head.logits(states, slice(start, start + vocabulary)).float(), dim=-1)
        for start in range(0, head.vocab_size, vocabulary)
    ]
    return slices[0] if len(slices) == 1 else torch.logsumexp(torch.stack(slices, dim=-1), dim=-1)


def label_sequences(trie: LabelTrie) -> list[list[int]]:
    """Recover each label's token ids from the trie's edges (edges are stored root-first)."""
    return [trie.edge_tokens[trie.label_edges[:, label] > 0].tolist() for label in range(trie.label_edges.shape[1])]
