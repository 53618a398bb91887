"""Every use of transformers internals, in one place, so an upgrade is checked here and nowhere else.

Tree decoding needs each trie node to sit at its depth in the label, not at its index in the
flattened trie. No public transformers API sets decoder positions for T5's relative bias or
BART's learned embeddings, so these hooks reach into the modules that compute them. The exactness
tests compare every hooked path with a brute-force forward, so a change in these internals fails
loudly there. transformers is pinned below its next major version in pyproject.toml.
"""

from __future__ import annotations

import inspect
from collections.abc import Iterator
from contextlib import contextmanager

import torch

T5_FAMILY = {"t5", "mt5"}
BART_FAMILY = {"bart", "mbart"}


@contextmanager
def decoder_positions_at(model, depths: torch.Tensor) -> Iterator[None]:
    """Make a seq2seq decoder treat position ``p`` as decoder step ``depths[p]`` (T5 and BART families)."""
    if model.config.model_type in T5_FAMILY:
        handle = _t5_relative_bias_at(model, depths)
    else:
        handle = _learned_positions_at(model, depths)
    try:
        yield
    finally:
        handle.remove()


def _t5_relative_bias_at(model, depths: torch.Tensor) -> torch.utils.hooks.RemovableHandle:
    """Hand T5's first decoder self-attention a relative bias computed from trie depths.

    T5 computes the bias once in the first layer from ``arange`` positions and shares it with
    the other layers; giving that layer a precomputed ``position_bias`` replaces it everywhere.
    """
    attention = model.get_decoder().block[0].layer[0].SelfAttention
    relative = depths[None, :] - depths[:, None]  # memory position - query position
    buckets = attention._relative_position_bucket(
        relative,
        bidirectional=False,
        num_buckets=attention.relative_attention_num_buckets,
        max_distance=attention.relative_attention_max_distance,
    )
    bias = attention.relative_attention_bias(buckets).permute(2, 0, 1).unsqueeze(0)

    def use_tree_bias(module, args, kwargs):
        if kwargs.get("position_bias") is None:
            kwargs["position_bias"] = bias
        return args, kwargs

    return attention.register_forward_pre_hook(use_tree_bias, with_kwargs=True)


def _learned_positions_at(model, depths: torch.Tensor) -> torch.utils.hooks.RemovableHandle:
    """Replace BART-style learned position embeddings with those of the trie depths."""
    embeddings = model.get_decoder().embed_positions

    def embed_depths(module, args, output):
        return torch.nn.functional.embedding(depths + module.offset, module.weight).unsqueeze(0).to(output.dtype)

    return embeddings.register_forward_hook(embed_depths)


def cache_keyword(model) -> str:
    """The keyword a decoder-only base model takes its KV cache by: transformers renamed
    ``past_key_values`` to ``cache`` within 5.x; take whichever this version has."""
    parameters = inspect.signature(model.base_model.forward).parameters
    return "cache" if "cache" in parameters else "past_key_values"


def commit_hash(config) -> str | None:
    """The Hub commit a model was loaded from (None for a local folder or an in-memory model)."""
    return getattr(config, "_commit_hash", None)
