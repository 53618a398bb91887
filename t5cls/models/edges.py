"""From next-token logits at the trie's positions to label log-probabilities.

A label's log-probability is the sum of its edges' token log-probabilities; each edge reads one
token from the distribution at its parent's position. The log-normaliser is computed once per
position, not once per edge.
"""

from __future__ import annotations

import torch

from t5cls.models.trie import LabelTrie


def trie_label_logprobs(logits: torch.Tensor, trie: LabelTrie) -> torch.Tensor:
    """``(batch, labels)`` log-probs from ``(batch, positions, vocab)`` logits of the trie's positions."""
    device = logits.device
    positions = torch.as_tensor(trie.edge_positions, device=device)
    tokens = torch.as_tensor(trie.edge_tokens, device=device)
    log_normalisers = torch.logsumexp(logits.float(), dim=-1)  # once per position, not per edge
    edge_logprobs = logits[:, positions, tokens].float() - log_normalisers[:, positions]
    return edge_logprobs @ torch.as_tensor(trie.label_edges, device=device)


def label_sequences(trie: LabelTrie) -> list[list[int]]:
    """Recover each label's token ids from the trie's edges (edges are stored root-first)."""
    return [trie.edge_tokens[trie.label_edges[:, label] > 0].tolist() for label in range(trie.label_edges.shape[1])]
