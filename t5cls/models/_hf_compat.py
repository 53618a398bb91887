"""Every use of transformers internals, in one place, so an upgrade is checked here and nowhere else.

Tree decoding needs three things no public transformers API offers:

* each trie node must sit at its depth in the label, not at its index in the flattened trie, so
  hooks hand T5's relative bias and BART's learned position embeddings the depths;
* attention must visit only each node's ancestors (and, for decoder-only models, a cached prompt
  and a shared prefix), so `attention_by` routes the model's attention calls through
  `t5cls.models.tree_attention.attend` for the duration of a pass. It uses the public
  ``AttentionInterface`` registry, but switches the configs' attention implementation and tells
  modules apart by their place in the model, which is internal;
* the next-token head applied to hidden states in blocks of positions and slices of the
  vocabulary (`OutputHead`), which repeats what each family's ``forward`` does after its decoder.

The exactness tests compare every one of these paths with a brute-force forward, so a change in
these internals fails loudly there. transformers is pinned below its next major version in
pyproject.toml.
"""

from __future__ import annotations

import contextvars
import inspect
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import torch
import torch.nn.functional as F
from transformers import AttentionInterface, PretrainedConfig
from transformers.masking_utils import ALL_MASK_ATTENTION_FUNCTIONS, AttentionMaskInterface
from transformers.modeling_utils import ALL_ATTENTION_FUNCTIONS
from transformers.utils import CHAT_TEMPLATE_DIR  # noqa: F401 (the tokenizer's subfolder of extra chat templates)

from t5cls.models.families import EMBEDDED, T5_RELATIVE, Family, Head
from t5cls.models.tree_attention import AttentionLayout, attend

ROUTED = "t5cls_tree:"  # prefix of the attention implementations registered here, one per original
_LAYOUT: contextvars.ContextVar[AttentionLayout | None] = contextvars.ContextVar("t5cls_layout", default=None)


@contextmanager
def attention_by(model, layout: AttentionLayout) -> Iterator[None]:
    """Route ``model``'s attention calls through `attend` with ``layout`` while the block runs.

    Calls the layout does not handle (an encoder-decoder's cross-attention) go to the model's own
    implementation, with the masks it builds for it.
    """
    configs = _configs(model)
    originals = [config._attn_implementation for config in configs]
    for config, original in zip(configs, originals):
        config._attn_implementation_internal = _routed(original)
    token = _LAYOUT.set(layout)
    try:
        yield
    finally:
        _LAYOUT.reset(token)
        for config, original in zip(configs, originals):
            config._attn_implementation_internal = original


def _configs(model) -> list[PretrainedConfig]:
    """Every distinct config the model's modules read their attention implementation from."""
    found = {id(model.config): model.config}
    for module in model.modules():
        config = getattr(module, "config", None)
        if isinstance(config, PretrainedConfig):
            found.setdefault(id(config), config)
    return list(found.values())


def _routed(original: str) -> str:
    """The name of the routing implementation for ``original``, registered on first use."""
    name = ROUTED + original
    if name not in ALL_ATTENTION_FUNCTIONS:
        AttentionInterface.register(name, _routing_attention(original))
        AttentionMaskInterface.register(name, ALL_MASK_ATTENTION_FUNCTIONS[original])
    return name


def _routing_attention(original: str) -> Callable:
    def route(module, query, key, value, attention_mask, scaling=None, dropout=0.0, **kwargs):
        layout = _LAYOUT.get()
        if layout is None or not layout.handles(module):
            own = _own_attention(module, original)
            return own(module, query, key, value, attention_mask, scaling=scaling, dropout=dropout, **kwargs)
        scale = query.shape[-1] ** -0.5 if scaling is None else scaling
        layer = getattr(module, "layer_idx", None)
        bias, softcap = kwargs.get("position_bias"), kwargs.get("softcap")
        return attend(query, key, value, layout, layer, scale, bias, softcap), None

    return route


def _own_attention(module, original: str) -> Callable:
    """The attention function the model would have used: a registered one, or its family's eager one."""
    if original != "eager":
        return ALL_ATTENTION_FUNCTIONS[original]
    return sys.modules[type(module).__module__].eager_attention_forward


def decoder_self_attentions(model, family: Family) -> frozenset[int]:
    """The ids of an encoder-decoder's decoder self-attention modules (not its cross-attention)."""
    decoder = model.get_decoder()
    if family.positions == T5_RELATIVE:
        return frozenset(id(block.layer[0].SelfAttention) for block in decoder.block)
    return frozenset(id(layer.self_attn) for layer in decoder.layers)


class OutputHead:
    """The next-token head as the family's ``forward`` applies it to the decoder's last hidden states,
    computable for a slice of the vocabulary at a time (see `t5cls.models.edges`).

    ``rule`` (the family table's `Head`) names what that ``forward`` reads: T5 scales hidden states
    before its head when ``scale_decoder_outputs`` is set (mT5 never does), the BART-likes add
    ``final_logits_bias``, Granite divides the logits, Gemma 2 and 3 soft-cap them. It reads the
    model's parameters at each call, so it follows the model through ``.to(dtype or device)``.
    """

    def __init__(self, model, rule: Head):
        config = model.config
        self.model = model
        self.scale = config.d_model**-0.5 if rule.scale_if and getattr(config, rule.scale_if) else None
        self.final_bias = rule.bias
        self.divisor = getattr(config, rule.divide_by) if rule.divide_by else None
        self.softcap = getattr(config, rule.softcap, None) if rule.softcap else None

    @property
    def vocab_size(self) -> int:
        return self.model.lm_head.weight.shape[0]

    def logits(self, hidden: torch.Tensor, vocabulary: slice) -> torch.Tensor:
        """``(..., slice)`` logits of the entries in ``vocabulary`` for ``(..., width)`` hidden states."""
        logits = F.linear(self._scaled(hidden), self.model.lm_head.weight[vocabulary], self._bias(vocabulary))
        return self._finished(logits)

    def token_logits(self, hidden: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
        """``(rows, E)`` logits of token ``tokens[e]`` from the ``(rows, E, width)`` hidden states ``hidden[:, e]``."""
        logits = torch.einsum("rew,ew->re", self._scaled(hidden), self.model.lm_head.weight[tokens])
        bias = self._bias(tokens)
        return self._finished(logits if bias is None else logits + bias)

    def _scaled(self, hidden: torch.Tensor) -> torch.Tensor:
        return hidden if self.scale is None else hidden * self.scale

    def _bias(self, entries: slice | torch.Tensor) -> torch.Tensor | None:
        bias = self.model.lm_head.bias
        bias = None if bias is None else bias[entries]
        if self.final_bias:
            final = getattr(self.model, self.final_bias)[0, entries]
            bias = final if bias is None else bias + final
        return bias

    def _finished(self, logits: torch.Tensor) -> torch.Tensor:
        """What the family's forward does to the head's output: Granite's division, Gemma's soft cap."""
        if self.divisor is not None:
            logits = logits / self.divisor
        if self.softcap is not None:
            logits = torch.tanh(logits / self.softcap) * self.softcap
        return logits


def cached_keys_values(cache) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Each layer's keys and values held by a transformers ``DynamicCache``, in layer order."""
    return [(layer.keys, layer.values) for layer in cache.layers]


@contextmanager
def decoder_positions_at(model, family: Family, depths: torch.Tensor, ancestors: torch.Tensor) -> Iterator[None]:
    """Make a seq2seq decoder treat trie position ``p`` as decoder step ``depths[p]``, by the family's scheme.

    T5's relative bias is computed only for the pairs tree attention visits: each position and
    its ``ancestors`` (P x D values instead of P x P).
    """
    if family.positions == T5_RELATIVE:
        handle = _t5_relative_bias_at(model, depths, ancestors)
    elif family.positions == EMBEDDED:
        handle = _embedded_positions_at(model, depths)
    else:
        raise ValueError(f"no trie positions for the {family.positions!r} scheme of {family.model_type!r}")
    try:
        yield
    finally:
        handle.remove()


def _t5_relative_bias_at(model, depths: torch.Tensor, ancestors: torch.Tensor) -> torch.utils.hooks.RemovableHandle:
    """Hand T5's first decoder self-attention a relative bias ``(1, heads, P, D)`` from trie depths.

    T5 computes the bias once in the first layer from ``arange`` positions and shares it with
    the other layers; giving that layer a precomputed ``position_bias`` replaces it everywhere.
    """
    attention = model.get_decoder().block[0].layer[0].SelfAttention
    relative = depths[ancestors] - depths[:, None]  # memory position - query position
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


def _embedded_positions_at(model, depths: torch.Tensor) -> torch.utils.hooks.RemovableHandle:
    """Replace a decoder's position embeddings (BART's learned ones with their offset, Pegasus' and
    Marian's sinusoidal table) with those of the trie depths."""
    embeddings = model.get_decoder().embed_positions

    def embed_depths(module, args, output):
        rows = depths + getattr(module, "offset", 0)
        return torch.nn.functional.embedding(rows, module.weight).unsqueeze(0).to(output.dtype)

    return embeddings.register_forward_hook(embed_depths)


def cache_keyword(model) -> str:
    """The keyword a decoder-only base model takes its KV cache by: transformers renamed
    ``past_key_values`` to ``cache`` within 5.x; take whichever this version has."""
    parameters = inspect.signature(model.base_model.forward).parameters
    return "cache" if "cache" in parameters else "past_key_values"


def commit_hash(config) -> str | None:
    """The Hub commit a model was loaded from (None for a local folder or an in-memory model)."""
    return getattr(config, "_commit_hash", None)
