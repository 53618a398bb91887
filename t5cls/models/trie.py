"""The label trie: every label's token sequence in one prefix tree, laid out for the decoder.

Labels that share a prefix (``not entailment`` / ``not sure``) share trie nodes, so the
decoder computes each distinct prefix once per row.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch


@dataclass(frozen=True)
class LabelTrie:
    """The label sequences as a prefix tree laid out for one decoder pass.

    Positions are the trie nodes that have children (the decoder-start root first, then
    breadth-first), so every ancestor precedes its descendants. Feeding ``input_ids`` at
    ``depths``, each position attending only to its ``ancestors``, gives at position ``p`` the
    next-token distribution after the prefix that node ``p`` stands for.

    Edges are the label tokens: edge ``e`` is token ``edge_tokens[e]`` read from the
    distribution at position ``edge_positions[e]``. ``label_edges[e, l]`` is 1 when edge
    ``e`` lies on label ``l``'s path, so label log-probs are ``edge_logprobs @ label_edges``.
    """

    input_ids: np.ndarray  # (P,) token fed at each position
    depths: np.ndarray  # (P,) decoder position of each node (root = 0)
    ancestors: np.ndarray  # (P, D) position of p's ancestor at depth j (j <= depths[p]; p itself at depths[p])
    edge_positions: np.ndarray  # (E,) position whose distribution scores the edge
    edge_tokens: np.ndarray  # (E,) the token on the edge
    label_edges: np.ndarray  # (E, L) float32 incidence of edges on label paths
    label_lengths: np.ndarray  # (L,) number of tokens in each label, EOS included

    @classmethod
    def build(cls, sequences: Sequence[Sequence[int]], start_token_id: int) -> LabelTrie:
        """Build the trie of ``sequences`` below a root that feeds ``start_token_id``."""
        children: list[dict[int, int]] = [{}]  # node -> {token: child node}
        node_token = [start_token_id]
        node_parent = [-1]
        label_paths: list[list[int]] = []
        for ids in sequences:
            node, path = 0, []
            for token in ids:
                if token not in children[node]:
                    children[node][token] = len(node_token)
                    children.append({})
                    node_token.append(token)
                    node_parent.append(node)
                node = children[node][token]
                path.append(node)
            label_paths.append(path)
        return cls._layout(children, node_token, node_parent, label_paths)

    @classmethod
    def _layout(cls, children, node_token, node_parent, label_paths) -> LabelTrie:
        """Order the internal nodes breadth-first and derive the arrays the engine needs."""
        order, depth_of = [0], {0: 0}
        for node in order:  # breadth-first; `order` grows while we walk it
            for child in children[node].values():
                depth_of[child] = depth_of[node] + 1
                if children[child]:
                    order.append(child)
        position = {node: p for p, node in enumerate(order)}
        edge_nodes = list(range(1, len(node_token)))
        edge_index = {node: e for e, node in enumerate(edge_nodes)}
        label_edges = np.zeros((len(edge_nodes), len(label_paths)), dtype=np.float32)
        for label, path in enumerate(label_paths):
            label_edges[[edge_index[n] for n in path], label] = 1.0
        return cls(
            input_ids=np.array([node_token[n] for n in order], dtype=np.int64),
            depths=np.array([depth_of[n] for n in order], dtype=np.int64),
            ancestors=_ancestors(order, position, node_parent, depth_of),
            edge_positions=np.array([position[node_parent[n]] for n in edge_nodes], dtype=np.int64),
            edge_tokens=np.array([node_token[n] for n in edge_nodes], dtype=np.int64),
            label_edges=label_edges,
            label_lengths=np.array([len(path) for path in label_paths], dtype=np.int64),
        )

    @property
    def num_positions(self) -> int:
        """Decoder positions per row: the distinct label prefixes, root included."""
        return len(self.input_ids)


@dataclass(frozen=True)
class TrieTensors:
    """A trie's layout as tensors on the model's device, for one decoder pass."""

    ids: torch.Tensor  # (P,)
    depths: torch.Tensor  # (P,)
    ancestors: torch.Tensor  # (P, D)
    depth_starts: tuple[int, ...]  # the first position at each depth

    @classmethod
    def of(cls, trie: LabelTrie, device: torch.device) -> TrieTensors:
        arrays = (trie.input_ids, trie.depths, trie.ancestors)
        starts = tuple(int(start) for start in np.searchsorted(trie.depths, np.arange(trie.ancestors.shape[1])))
        return cls(*(torch.as_tensor(array, device=device) for array in arrays), starts)


def _ancestors(
    order: list[int], position: dict[int, int], node_parent: list[int], depth_of: dict[int, int]
) -> np.ndarray:
    """For each position, the positions of its ancestors by depth, root first, itself last.

    Slots past a node's own depth repeat the node; attention never reads them.
    """
    deepest = max(depth_of[node] for node in order)
    table = np.zeros((len(order), deepest + 1), dtype=np.int64)
    for p, node in enumerate(order):
        table[p, depth_of[node] :] = p
        walker = node
        while walker != -1:
            table[p, depth_of[walker]] = position[walker]
            walker = node_parent[walker]
    return table
