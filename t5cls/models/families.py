"""The model families t5cls knows, and how it runs each: one table, read by loading and both backends.

A label trie is decoded in one pass (the fast **tree** path) only where t5cls knows exactly what
the family's own ``forward`` does around the decoder: how a position is placed (so a trie node
can sit at its depth), what the head does after the last hidden state (scaling, bias, logit
soft-capping), and which attention implementation the family offers. Everything else is scored
by the **per-label** path: one ordinary forward of the model per label, exact for any
architecture, slower. Each row of `FAMILIES` is checked against the family's own forward by
``tests/test_models_families.py``, which is parametrized over this table: adding a row adds its test.

The head rules name the config attribute the family's ``forward`` itself reads, never a default
that happens to be right for another family (mT5's config forces ``tie_word_embeddings`` while
``MT5ForConditionalGeneration`` never scales; T5's forward scales when ``scale_decoder_outputs``).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

from t5cls.errors import T5clsWarning

TREE = "tree"
PER_LABEL = "per-label"

# How a trie node is placed at its depth (see `t5cls.models._hf_compat.decoder_positions_at`).
T5_RELATIVE = "t5-relative"  # relative bias computed once by the first decoder layer, shared by the others
EMBEDDED = "embedded"  # an ``embed_positions`` module (learned with an offset: BART; sinusoidal: Pegasus, Marian)
POSITION_IDS = "position-ids"  # decoder-only: learned or rotary positions from ``position_ids``
OWN = "own"  # the per-label path: the family's forward places every token itself


@dataclass(frozen=True)
class Head:
    """What the family's ``forward`` applies between the decoder's last hidden state and the logits.

    Each field names the config attribute (or model buffer) that ``forward`` reads, or None.
    """

    scale_if: str | None = None  # hidden states times d_model**-0.5 when this config flag is true (T5, umT5)
    bias: str | None = None  # a buffer added after the head (BART-likes' ``final_logits_bias``)
    divide_by: str | None = None  # logits divided by this config value (Granite's ``logits_scaling``)
    softcap: str | None = None  # cap * tanh(logits / cap), cap this config value when set (Gemma 2 and 3)


@dataclass(frozen=True)
class Family:
    """How t5cls runs one transformers ``model_type``."""

    model_type: str
    decoding: str  # TREE (one pass over the label trie) or PER_LABEL (one forward per label)
    positions: str
    head: Head = Head()
    attention: str = "sdpa"  # implementation requested at load; "eager" where the family has no SDPA
    why: str = ""  # what is special about the family, or why it stays on the per-label path

    @property
    def tree(self) -> bool:
        return self.decoding == TREE


FAMILIES: dict[str, Family] = {
    family.model_type: family
    for family in [
        # encoder-decoder
        Family("t5", TREE, T5_RELATIVE, Head(scale_if="scale_decoder_outputs"), why="T5, Flan-T5, T5 v1.1"),
        Family("mt5", TREE, T5_RELATIVE, why="mT5, mT0: the head is never scaled"),
        Family(
            "umt5",
            PER_LABEL,
            OWN,
            Head(scale_if="scale_decoder_outputs"),
            why="every layer computes its own relative bias inside its attention, with no position input to set",
        ),
        Family("bart", TREE, EMBEDDED, Head(bias="final_logits_bias"), why="learned positions (offset 2)"),
        Family("mbart", TREE, EMBEDDED, Head(bias="final_logits_bias"), why="learned positions (offset 2)"),
        Family("pegasus", TREE, EMBEDDED, Head(bias="final_logits_bias"), why="sinusoidal positions"),
        Family("marian", TREE, EMBEDDED, Head(bias="final_logits_bias"), why="sinusoidal positions"),
        # decoder-only
        Family("gpt2", TREE, POSITION_IDS, why="learned positions"),
        Family("llama", TREE, POSITION_IDS),
        Family("mistral", TREE, POSITION_IDS, why="sliding window: the tree path where a batch fits in it"),
        Family("qwen2", TREE, POSITION_IDS),
        Family("qwen3", TREE, POSITION_IDS),
        Family("gemma", TREE, POSITION_IDS),
        Family(
            "gemma2",
            TREE,
            POSITION_IDS,
            Head(softcap="final_logit_softcapping"),
            attention="eager",
            why="no SDPA (attention logit soft-capping); sliding-window layers: the tree path where a batch fits",
        ),
        Family(
            "gemma3_text",
            TREE,
            POSITION_IDS,
            Head(softcap="final_logit_softcapping"),
            why="sliding-window layers: the tree path where a batch fits in the window",
        ),
        Family("phi3", TREE, POSITION_IDS, why="sliding window where configured, as Mistral"),
        Family("granite", TREE, POSITION_IDS, Head(divide_by="logits_scaling")),
        Family("olmo2", TREE, POSITION_IDS),
    ]
}

REQUEST_SUPPORT = "open an issue naming the model type to ask for the fast path"


class UnlistedFamilyWarning(T5clsWarning):
    """A model type t5cls has no row for: it is scored exactly, one forward per label (slower)."""


def family_of(config) -> Family:
    """The table's row for ``config.model_type``; an unlisted type gets the per-label path and one warning."""
    family = FAMILIES.get(config.model_type)
    if family is not None:
        return family
    warnings.warn(
        UnlistedFamilyWarning(
            f"model type {config.model_type!r} is not in t5cls's family table: each label is scored by a full "
            f"forward of the model (exact, slower); {REQUEST_SUPPORT}"
        ),
        stacklevel=2,
    )
    return Family(config.model_type, PER_LABEL, OWN, why="not in the table")


def sliding_window(config) -> int | None:
    """The attention window of a decoder-only model where some layer uses one, else None.

    A key is visible to a query less than ``window`` positions after it (transformers' sliding
    masks). A pass in which no query is that far from any key is the same with or without the
    window, so the tree path serves such batches exactly and longer ones take the per-label path.
    """
    window = getattr(config, "sliding_window", None)
    layer_types = getattr(config, "layer_types", None)
    if not window or (layer_types is not None and "sliding_attention" not in layer_types):
        return None
    return int(window)
