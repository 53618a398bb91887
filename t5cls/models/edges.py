"""From the trie positions' hidden states to label log-probabilities, in blocks of positions.

A label's log-probability is the sum of its edges' token log-probabilities; each edge reads one
token from the next-token distribution at its parent's position. The vocabulary-sized logits of a
position are needed only for its log-normaliser and its few edges, so they are computed for a
block of positions at a time and dropped: memory holds ``rows x block x vocabulary`` logits,
never ``rows x positions x vocabulary``. Results do not depend on the block size.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

from t5cls.models.trie import LabelTrie


def label_logprobs(
    hidden: torch.Tensor, head: Callable[[torch.Tensor], torch.Tensor], trie: LabelTrie, block: int
) -> torch.Tensor:
    """``(rows, labels)`` float32 log-probs from ``(rows, positions, width)`` hidden states of the trie.

    ``head`` maps hidden states to logits; it runs on ``block`` positions at a time, whose
    log-softmax gives every edge read there.
    """
    order = np.argsort(trie.edge_positions, kind="stable")  # edges grouped by the position they read
    positions = trie.edge_positions[order]
    device = hidden.device
    pieces = []
    for start in range(0, trie.num_positions, block):
        first, stop = np.searchsorted(positions, [start, start + block])
        if first == stop:
            continue
        # log_softmax is one fused pass per position (several times faster on the CPU than logsumexp)
        logprobs = torch.log_softmax(head(hidden[:, start : start + block]).float(), dim=-1)
        local = torch.as_tensor(positions[first:stop] - start, device=device)
        tokens = torch.as_tensor(trie.edge_tokens[order[first:stop]], device=device)
        pieces.append(logprobs[:, local, tokens])
    label_edges = torch.as_tensor(trie.label_edges[order], device=device)
    return torch.cat(pieces, dim=1) @ label_edges


def label_sequences(trie: LabelTrie) -> list[list[int]]:
    """Recover each label's token ids from the trie's edges (edges are stored root-first)."""
    return [trie.edge_tokens[trie.label_edges[:, label] > 0].tolist() for label in range(trie.label_edges.shape[1])]
