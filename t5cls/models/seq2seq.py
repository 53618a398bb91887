"""The encoder-decoder backend: token ids of a batch and a label trie in, label log-probs out.

For an encoder-decoder model, log p(label | x) = Σ_t log p(y_t | y_<t, x) by teacher forcing.
The engine runs the encoder once per batch and then decodes the whole label trie in **one**
decoder call: the distinct label prefixes are laid out as one decoder sequence, each position
attends only to its own ancestors (a tree-shaped attention mask) and sits at its depth in the
trie (its true position in the label). The cross-attention keys/values of a row are thus
computed once and shared by every label, every shared prefix is decoded once, and there is no
decoder padding, so the LM head only runs where a distribution is needed.

Positions must be the depth in the trie, not the index in the flattened sequence. That needs
one small adapter per position scheme (T5's relative bias, BART's learned embeddings; see
`t5cls.models._hf_compat`). Models without an adapter fall back to decoding each label
separately against the shared encoder output, which is exact but slower.
"""

from __future__ import annotations

import torch
from transformers.modeling_outputs import BaseModelOutput

from t5cls.models._hf_compat import BART_FAMILY, T5_FAMILY, decoder_positions_at
from t5cls.models.edges import label_sequences, trie_label_logprobs
from t5cls.models.trie import LabelTrie


class Seq2SeqBackend:
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

    def label_logprobs(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, trie: LabelTrie) -> torch.Tensor:
        """Return a float32 ``(batch, labels)`` tensor of log p(label | input) for a padded batch.

        Differentiable: scoring calls it under ``torch.inference_mode``, training with gradients.
        """
        encoder_states = self.model.get_encoder()(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        if self.tree_decoding:
            return self._tree_logprobs(encoder_states, attention_mask, trie)
        return self._per_label_logprobs(encoder_states, attention_mask, trie)

    def first_token_logits(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """Logits of the first decoder step, ``(batch, vocab)``: one decoder position per row."""
        start = torch.full((input_ids.shape[0], 1), self.start_token_id, device=input_ids.device)
        output = self.model(
            input_ids=input_ids, attention_mask=attention_mask, decoder_input_ids=start, use_cache=False
        )
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
        with decoder_positions_at(self.model, depths):
            logits = self.model(
                encoder_outputs=BaseModelOutput(last_hidden_state=encoder_states),
                attention_mask=attention_mask,
                decoder_input_ids=decoder_ids,
                decoder_attention_mask=tree_mask.expand(batch, 1, size, size),
                use_cache=False,
            ).logits
        return trie_label_logprobs(logits, trie)

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
