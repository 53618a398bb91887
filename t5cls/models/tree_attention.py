"""Attention that visits only what each query may see: trie ancestors, a shared prefix, a row's prompt.

A label trie decoded in one pass has P positions, and position ``p`` may attend only to its own
ancestors (at most D of them, D the longest label plus one). A dense P x P mask computes every
other pair anyway, which at a thousand labels is a quarter of the work and gigabytes of scores;
here each position gathers its D ancestors' keys and values instead, so self-attention over the
trie costs P x D, not P x P. The same function serves the prompt pass of a decoder-only model
whose prompts share a prefix: the prefix's keys and values are held once and broadcast over the
rows (expanded, never copied), and each row attends causally to its own tokens.

`attend` is plain torch and differentiable; `t5cls.models._hf_compat` routes a model's
attention calls here for the duration of a pass.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import torch


@dataclass(frozen=True)
class Context:
    """Keys and values every query of a row may see, before the call's own: a shared prefix or a cached prompt.

    ``keys``/``values`` are ``(rows or 1, kv heads, W, head dim)``; a leading 1 is broadcast over the
    rows. ``allowed`` is ``(rows, W)`` bool, or None when every key is visible.
    """

    keys: torch.Tensor
    values: torch.Tensor
    allowed: torch.Tensor | None = None

    @property
    def shared(self) -> bool:
        """One set of keys for every row, all visible (a shared prefix): attended as one matmul over all rows."""
        return self.keys.shape[0] == 1 and self.allowed is None


@dataclass(frozen=True)
class AttentionLayout:
    """What one pass's queries may see.

    The call's own keys are either trie nodes (position ``p`` sees ``ancestors[p, j]`` for every
    depth j up to its own; positions are breadth-first, so those at least ``j`` deep start at
    ``depth_starts[j]``) or a causal sequence (``key_padding``: which of
    the row's own keys are real tokens). ``contexts[layer]`` are seen before them. ``modules``
    names the attention modules (by ``id``) this layout is for; other calls of the model (an
    encoder-decoder's cross-attention) keep the model's own attention. None: every call.
    """

    ancestors: torch.Tensor | None = None  # (P, D) long
    depth_starts: tuple[int, ...] = ()  # the first position at each depth (positions are breadth-first)
    key_padding: torch.Tensor | None = None  # (rows, W) bool
    contexts: Sequence[Sequence[Context]] = ()
    modules: frozenset[int] | None = field(default=None)

    def handles(self, module) -> bool:
        return self.modules is None or id(module) in self.modules

    def contexts_of(self, layer: int | None) -> Sequence[Context]:
        return self.contexts[layer] if self.contexts else ()


def attend(
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    layout: AttentionLayout,
    layer: int | None,
    scaling: float,
    bias: torch.Tensor | None = None,
    softcap: float | None = None,
) -> torch.Tensor:
    """Attention output ``(rows, queries, heads, head dim)``, as transformers' attention functions return it.

    ``query`` is ``(rows, heads, Q, head dim)``, ``key``/``value`` ``(rows, kv heads, Q, head dim)``
    (the call's own tokens; grouped-query heads share a kv head). ``bias`` is T5's relative bias for
    the trie: ``(1, heads, P, D)``, one value per (position, ancestor). ``softcap`` (Gemma 2) caps
    the scaled scores at ``softcap * tanh(score / softcap)`` before masking, as the family's eager attention does.
    """
    rows, heads, length, size = query.shape
    groups = heads // key.shape[1]
    grouped = query.reshape(rows, key.shape[1], groups, length, size)
    contexts = layout.contexts_of(layer)
    shared = [context for context in contexts if context.shared]
    per_row = [context for context in contexts if not context.shared]
    logits = _Logits(scaling, softcap)
    scores = [_context_scores(grouped, context, logits) for context in per_row]
    if layout.ancestors is not None:
        own = _ancestor_scores(grouped, key, layout, logits)
        if bias is not None:
            own = own + bias.reshape(1, key.shape[1], groups, length, -1)
    else:
        own = _causal_scores(grouped, key, layout.key_padding, logits)
    scores.append(own)
    scores = torch.cat(scores, dim=-1).float()
    if not shared:
        out = _weighted_values(torch.softmax(scores, dim=-1).to(value.dtype), per_row, value, layout)
    else:
        top = scores.amax(dim=-1, keepdim=True)
        weights = torch.exp(scores - top)
        out = _Partial(
            top, weights.sum(dim=-1, keepdim=True), _weighted_values(weights.to(value.dtype), per_row, value, layout)
        )
        for context in shared:
            out = out.merged(_shared_partial(grouped, context, logits))
        out = out.normalised().to(value.dtype)
    return out.reshape(rows, heads, length, size).transpose(1, 2)


@dataclass(frozen=True)
class _Partial:
    """Attention over one part of the keys, unnormalised: the part's largest logit ``top``, its sum of
    ``exp(logit - top)`` and its ``exp(logit - top)``-weighted values, per query (flash attention's
    online softmax). Parts merge exactly, up to float rounding, so each can be computed its own way."""

    top: torch.Tensor  # (..., 1) float32
    total: torch.Tensor  # (..., 1) float32
    values: torch.Tensor  # (..., head dim)

    def merged(self, other: _Partial) -> _Partial:
        top = torch.maximum(self.top, other.top)
        mine, theirs = torch.exp(self.top - top), torch.exp(other.top - top)
        return _Partial(
            top, self.total * mine + other.total * theirs, self.values.float() * mine + other.values.float() * theirs
        )

    def normalised(self) -> torch.Tensor:
        return self.values.float() / self.total


def _shared_partial(grouped: torch.Tensor, context: Context, logits: _Logits) -> _Partial:
    """Every query of every row against a shared context's keys, as one matmul per kv head.

    The rows' queries are stacked into one ``(kv heads, rows x groups x Q, head dim)`` matrix, so the
    context's keys and values are read once per kv head, never broadcast to the rows (which a
    batched matmul would copy).
    """
    rows, heads, groups, length, size = grouped.shape
    stacked = grouped.transpose(0, 1).reshape(heads, rows * groups * length, size)
    scores = logits(torch.matmul(stacked, context.keys[0].transpose(-1, -2))).float()
    top = scores.amax(dim=-1, keepdim=True)
    weights = torch.exp(scores - top)
    values = torch.matmul(weights.to(context.values.dtype), context.values[0])

    def per_row(tensor: torch.Tensor) -> torch.Tensor:
        return tensor.reshape(heads, rows, groups, length, -1).transpose(0, 1)

    return _Partial(per_row(top), per_row(weights.sum(dim=-1, keepdim=True)), per_row(values))


@dataclass(frozen=True)
class _Logits:
    """Raw query-key products to attention logits: scaled, then soft-capped where the family caps them."""

    scaling: float
    softcap: float | None

    def __call__(self, products: torch.Tensor) -> torch.Tensor:
        scores = products * self.scaling
        return scores if self.softcap is None else torch.tanh(scores / self.softcap) * self.softcap


def _context_scores(grouped: torch.Tensor, context: Context, logits: _Logits) -> torch.Tensor:
    """(rows, kv heads, groups, Q, W): every query against the context keys (broadcast when shared)."""
    scores = logits(torch.matmul(grouped, context.keys.unsqueeze(2).transpose(-1, -2)))
    if context.allowed is None:
        return scores
    return scores.masked_fill(~context.allowed[:, None, None, None, :], torch.finfo(scores.dtype).min)


def _ancestor_scores(
    grouped: torch.Tensor, key: torch.Tensor, layout: AttentionLayout, logits: _Logits
) -> torch.Tensor:
    """(rows, kv heads, groups, P, D): each trie position against its ancestors only, one depth at a time.

    Positions are breadth-first, so those deep enough to have an ancestor at depth ``j`` are the
    suffix from ``depth_starts[j]``: only they are computed; the rest are masked.
    """
    rows, heads, groups, length, _ = grouped.shape
    scores = grouped.new_full((rows, heads, groups, length, len(layout.depth_starts)), torch.finfo(grouped.dtype).min)
    for depth, start in enumerate(layout.depth_starts):
        ancestors = key.index_select(2, layout.ancestors[start:, depth])
        scores[..., start:, depth] = logits(torch.einsum("bkgpd,bkpd->bkgp", grouped[..., start:, :], ancestors))
    return scores


def _causal_scores(
    grouped: torch.Tensor, key: torch.Tensor, key_padding: torch.Tensor | None, logits: _Logits
) -> torch.Tensor:
    """(rows, kv heads, groups, W, W): a row's own tokens, each seeing itself and the real tokens before it."""
    scores = logits(torch.matmul(grouped, key.unsqueeze(2).transpose(-1, -2)))
    length = key.shape[2]
    allowed = torch.ones(length, length, dtype=torch.bool, device=key.device).tril()
    if key_padding is not None:
        allowed = allowed[None] & key_padding[:, None, :]
        allowed = allowed[:, None, None]
    return scores.masked_fill(~allowed, torch.finfo(scores.dtype).min)


def _weighted_values(
    weights: torch.Tensor, contexts: Sequence[Context], value: torch.Tensor, layout: AttentionLayout
) -> torch.Tensor:
    """Σ weights x values over the contexts' keys, then over the call's own (ancestors or causal) keys."""
    out, start = 0, 0
    for context in contexts:
        width = context.values.shape[2]
        out = out + torch.matmul(weights[..., start : start + width], context.values.unsqueeze(2))
        start += width
    own = weights[..., start:]
    if layout.ancestors is None:
        return out + torch.matmul(own, value.unsqueeze(2))
    for depth, start in enumerate(layout.depth_starts):
        ancestor_values = value.index_select(2, layout.ancestors[start:, depth]).unsqueeze(2)
        contribution = own[..., start:, depth : depth + 1] * ancestor_values
        if start == 0:  # depth 0, the root: every position's first ancestor; `out` becomes a new tensor here
            out = out + contribution
        else:
            out[..., start:, :] += contribution
    return out
