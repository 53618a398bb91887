"""The scoring engine: token ids of a batch and a label trie in, label log-probs out.

For an encoder-decoder model, log p(label | x) = Σ_t log p(y_t | y_<t, x) by teacher forcing.
The engine runs the encoder once per batch and then decodes the whole label trie in **one**
decoder call: the distinct label prefixes are laid out as one decoder sequence, each position
attends only to its own ancestors (a tree-shaped attention mask) and sits at its depth in the
trie (its true position in the label). The cross-attention keys/values of a row are thus
computed once and shared by every label, every shared prefix is decoded once, and there is no
decoder padding, so the LM head only runs where a distribution is needed.

Positions must be the depth in the trie, not the index in the flattened sequence. That needs
one small adapter per position scheme (T5's relative bias, BART's learned embeddings). Models
without an adapter fall back to decoding each label separately against the shared encoder
output, which is exact but slower.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch
from transformers.modeling_outputs import BaseModelOutput

from t5cls.labels import LabelTrie

T5_FAMILY = {"t5", "mt5"}
BART_FAMILY = {"bart", "mbart"}


class Seq2SeqEngine:
    """Scores label tries against batches of encoder inputs with an ``AutoModelForSeq2SeqLM``."""

    def __init__(self, model: torch.nn.Module):
        self.model = model
        self.config = model.config
        self.start_token_id = int(self.config.decoder_start_token_id)
        self.pad_token_id = int(self.config.pad_token_id)
        model_type = self.config.model_type
        self.tree_decoding = model_type in T5_FAMILY | BART_FAMILY

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    @torch.inference_mode()
    def label_logprobs(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, trie: LabelTrie) -> torch.Tensor:
        """Return a float32 ``(batch, labels)`` tensor of log p(label | input) for a padded batch."""
        encoder_states = self.model.get_encoder()(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        if self.tree_decoding:
            return self._tree_logprobs(encoder_states, attention_mask, trie)
        return self._per_label_logprobs(encoder_states, attention_mask, trie)

    @torch.inference_mode()
    def first_token_logits(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """Logits of the first decoder step, ``(batch, vocab)``: one decoder position per row."""
        start = torch.full((input_ids.shape[0], 1), self.start_token_id, device=input_ids.device)
        output = self.model(input_ids=input_ids, attention_mask=attention_mask, decoder_input_ids=start, use_cache=False)
        return output.logits[:, 0].float()

    def _tree_logprobs(self, encoder_states, attention_mask, trie: LabelTrie) -> torch.Tensor:
        """Decode every distinct label prefix once, in one decoder call with a tree mask."""
        batch, device = encoder_states.shape[0], encoder_states.device
        size = trie.num_positions
        decoder_ids = torch.as_tensor(trie.input_ids, device=device).expand(batch, size)
        depths = torch.as_tensor(trie.depths, device=device)
        allowed = torch.as_tensor(trie.ancestor_mask, device=device)
        tree_mask = torch.zeros(allowed.shape, dtype=encoder_states.dtype, device=device)
        tree_mask.masked_fill_(~allowed, torch.finfo(encoder_states.dtype).min)
        with self._positions_at(depths):
            logits = self.model(
                encoder_outputs=BaseModelOutput(last_hidden_state=encoder_states),
                attention_mask=attention_mask,
                decoder_input_ids=decoder_ids,
                decoder_attention_mask=tree_mask.expand(batch, 1, size, size),
                use_cache=False,
            ).logits
        return trie_label_logprobs(logits, trie)

    @contextmanager
    def _positions_at(self, depths: torch.Tensor) -> Iterator[None]:
        """Make the decoder treat position ``p`` as if it were at decoder step ``depths[p]``."""
        if self.config.model_type in T5_FAMILY:
            handle = _t5_relative_bias_at(self.model, depths)
        else:
            handle = _learned_positions_at(self.model, depths)
        try:
            yield
        finally:
            handle.remove()

    def _per_label_logprobs(self, encoder_states, attention_mask, trie: LabelTrie) -> torch.Tensor:
        """Fallback for unknown position schemes: one padded decoder row per (row, label)."""
        sequences = label_sequences(trie)
        batch, labels = encoder_states.shape[0], len(sequences)
        width = max(len(ids) for ids in sequences)
        device = encoder_states.device
        targets = torch.full((labels, width), self.pad_token_id, dtype=torch.long, device=device)
        keep = torch.zeros((labels, width), dtype=torch.bool, device=device)
        for label, ids in enumerate(sequences):
            targets[label, : len(ids)] = torch.as_tensor(ids)
            keep[label, : len(ids)] = True
        decoder_ids = torch.cat([torch.full((labels, 1), self.start_token_id, device=device), targets[:, :-1]], dim=1)
        logits = self.model(
            encoder_outputs=BaseModelOutput(last_hidden_state=encoder_states.repeat_interleave(labels, dim=0)),
            attention_mask=attention_mask.repeat_interleave(labels, dim=0),
            decoder_input_ids=decoder_ids.repeat(batch, 1),
            decoder_attention_mask=keep.repeat(batch, 1).long(),
            use_cache=False,
        ).logits.float()
        token_logprobs = logits.log_softmax(-1).gather(-1, targets.repeat(batch, 1).unsqueeze(-1)).squeeze(-1)
        return (token_logprobs * keep.repeat(batch, 1)).sum(-1).view(batch, labels)


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
