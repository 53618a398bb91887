"""The encoder-decoder backend: token ids of a batch and a label trie in, label log-probs out.

For an encoder-decoder model, log p(label | x) = Σ_t log p(y_t | y_<t, x) by teacher forcing.
The backend runs the encoder once per batch and then decodes the whole label trie in **one**
decoder call per block of rows: the distinct label prefixes are laid out as one decoder sequence,
each position attends only to its own ancestors (`t5cls.models.tree_attention`, P x D work, not
P x P) and sits at its depth in the trie (its true position in the label). The cross-attention
keys/values of a row are thus computed once and shared by every label, every shared prefix is
decoded once, and there is no decoder padding; the LM head runs only on trie positions, a block
of them at a time (`t5cls.models.edges`), so memory stays flat in the number of labels.

Positions must be the depth in the trie, not the index in the flattened sequence. That needs
one small adapter per position scheme (T5's relative bias, BART's learned and Pegasus' sinusoidal
embeddings; see `t5cls.models._hf_compat`), chosen by the family table (`t5cls.models.families`).
Families on the table's per-label path, and unlisted ones, decode each label separately against
the shared encoder output, which is exact but slower.
"""

from __future__ import annotations

from contextlib import nullcontext

import torch
from transformers.modeling_outputs import BaseModelOutput

from t5cls.models import edges
from t5cls.models._hf_compat import OutputHead, attention_by, decoder_positions_at, decoder_self_attentions
from t5cls.models.batching import CPU_ENCODER_PASS_TOKENS, MemoryBudget, length_groups
from t5cls.models.edges import label_sequences
from t5cls.models.families import family_of
from t5cls.models.tree_attention import AttentionLayout
from t5cls.models.trie import LabelTrie, TrieTensors


class Seq2SeqBackend:
    """Scores label tries against batches of encoder inputs with an ``AutoModelForSeq2SeqLM``."""

    prompt_pass_tokens = None  # the encoder groups a batch by length itself (`_encode`); the decoder needs no cut

    def __init__(self, model: torch.nn.Module, budget: MemoryBudget | None = None):
        self.model = model
        self.config = model.config
        self.start_token_id = int(self.config.decoder_start_token_id)
        self.pad_token_id = int(self.config.pad_token_id)
        self.family = family_of(self.config)
        self.tree_decoding = self.family.tree
        self.budget = budget or MemoryBudget(self.device)
        if self.tree_decoding:
            self.self_attentions = decoder_self_attentions(model, self.family)
            self.head = OutputHead(model, self.family.head)

    def session(self):
        """A scoring call (nothing is kept between its batches: encoders see each row whole)."""
        return nullcontext()

    def keeping(self):
        """Scoring calls with one model (nothing is kept between them either)."""
        return nullcontext()

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    def label_logprobs(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, trie: LabelTrie) -> torch.Tensor:
        """Return a float32 ``(batch, labels)`` tensor of log p(label | input) for a padded batch.

        Differentiable: scoring calls it under ``torch.inference_mode``, training with gradients.
        """
        encoder_states = self._encode(input_ids, attention_mask)
        if self.tree_decoding:
            return self._tree_logprobs(encoder_states, attention_mask, trie)
        return self._per_label_logprobs(encoder_states, attention_mask, trie)

    def _encode(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """``(batch, width, hidden)`` encoder states of a right-padded batch; no work on its padding on the CPU.

        On the CPU an encoder's cost is its padded tokens, so rows of mixed lengths (a server's
        batch of requests, a training batch) are encoded in groups of similar length, each at its
        own width (`length_groups`), and laid back into the batch's width: the positions past a
        row's end are zeros, which the decoder's cross-attention masks out like any padding. The
        decoder then runs once for the whole batch: its cost is per pass, not per prompt token.
        """
        encoder = self.model.get_encoder()
        if input_ids.device.type != "cpu":
            return encoder(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        lengths = attention_mask.sum(dim=1)
        order = torch.argsort(lengths, stable=True)
        groups = length_groups(lengths[order].numpy(), len(order), CPU_ENCODER_PASS_TOKENS)
        if len(groups) == 1:
            return encoder(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        states = None
        for group in groups:
            rows = order[group]
            width = int(lengths[rows].max())
            part = encoder(input_ids=input_ids[rows, :width], attention_mask=attention_mask[rows, :width])
            part = part.last_hidden_state
            if states is None:
                states = part.new_zeros((len(input_ids), input_ids.shape[1], part.shape[-1]))
            states[rows, :width] = part
        return states

    def first_token_logits(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """Logits of the first decoder step, ``(batch, vocab)``: one decoder position per row."""
        start = torch.full((input_ids.shape[0], 1), self.start_token_id, device=input_ids.device)
        output = self.model(
            input_ids=input_ids, attention_mask=attention_mask, decoder_input_ids=start, use_cache=False
        )
        return output.logits[:, 0].float()

    def _tree_logprobs(self, encoder_states, attention_mask, trie: LabelTrie) -> torch.Tensor:
        """Decode every distinct label prefix once, rows and LM-head positions in blocks that fit the budget."""
        return edges.trie_logprobs(
            self.model,
            self.head,
            self.budget,
            trie,
            len(encoder_states),
            encoder_states.shape[1],
            lambda rows, nodes: self._trie_hidden(encoder_states[rows], attention_mask[rows], nodes),
        )

    def _trie_hidden(self, encoder_states, attention_mask, nodes: TrieTensors) -> torch.Tensor:
        """``(rows, positions, width)`` last hidden states of the trie: positions at their depths, seeing ancestors."""
        layout = AttentionLayout(nodes.ancestors, nodes.depth_starts, modules=self.self_attentions)
        positions = decoder_positions_at(self.model, self.family, nodes.depths, nodes.ancestors)
        with positions, attention_by(self.model, layout):
            return self.model.get_decoder()(
                input_ids=nodes.ids.expand(len(encoder_states), -1),
                encoder_hidden_states=encoder_states,
                encoder_attention_mask=attention_mask,
                use_cache=False,
            ).last_hidden_state

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
