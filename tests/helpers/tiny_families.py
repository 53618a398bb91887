"""A tiny random-weight model of the real transformers class for every model_type, built on the spot.

One builder for every family t5cls lists (`t5cls.models.families.FAMILIES`) and for a few it
does not, so the per-family exactness tests add a case whenever the table gains a row. Each
config sets the family's own peculiarities to values that matter at this size (Granite's logit
scaling, Gemma 2's soft-capping, T5 v1.1's untied head, sliding windows), so a path that ignored
one would fail its test rather than pass by luck.
"""

from __future__ import annotations

from pathlib import Path

import torch
from transformers import AutoConfig, AutoModelForCausalLM, AutoModelForSeq2SeqLM

from helpers.tiny_causal_models import byte_level_tokenizer
from helpers.tiny_models import t5_tokenizer, train_tokenizer

T5_LIKE = {"t5", "mt5", "umt5"}
BART_LIKE = {"bart", "mbart", "pegasus", "marian"}

# Family peculiarities set away from their neutral defaults, so that ignoring one changes the scores.
PECULIAR = {
    "t5-v1.1": dict(tie_word_embeddings=False, feed_forward_proj="gated-gelu"),
    "granite": dict(logits_scaling=4.0, embedding_multiplier=3.0, residual_multiplier=0.5, attention_multiplier=0.2),
    "gemma2": dict(
        final_logit_softcapping=2.0,
        attn_logit_softcapping=1.0,
        query_pre_attn_scalar=16,
        sliding_window=64,
        initializer_range=0.5,  # attention scores large enough for the soft cap to matter
    ),
    "gemma3_text": dict(query_pre_attn_scalar=16, sliding_window=64, final_logit_softcapping=2.0),
    "phi3": dict(partial_rotary_factor=0.5),
    "mistral": dict(sliding_window=None),
    "olmo2": dict(),
}


def build_family(folder: Path, variant: str, seed: int = 0, width: int = 32, layers: int = 2, vocab: int = 0) -> Path:
    """Save a model of ``variant`` (a model_type, or ``t5-v1.1``) with random weights and a tokenizer.

    Tests use the tiny default; ``width``, ``layers`` and ``vocab`` (a vocabulary larger than the
    tokenizer's, as real models have) give benchmarks a model whose costs are in proportion.
    """
    model_type = variant.split("-")[0]
    if model_type in T5_LIKE or model_type in BART_LIKE:
        tokenizer = t5_tokenizer() if model_type in T5_LIKE else train_tokenizer("bart")
        config = _seq2seq_config(model_type, tokenizer, PECULIAR.get(variant, {}))
        auto = AutoModelForSeq2SeqLM
    else:
        tokenizer = byte_level_tokenizer(bos=model_type != "gpt2")
        config = _causal_config(model_type, tokenizer, PECULIAR.get(variant, {}))
        auto = AutoModelForCausalLM
    _resize(config, width, layers, vocab)
    torch.manual_seed(seed)
    model = auto.from_config(config)
    _randomise_zero_biases(model)
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def _seq2seq_config(model_type: str, tokenizer, peculiar: dict):
    ids = dict(vocab_size=len(tokenizer), pad_token_id=tokenizer.pad_token_id, eos_token_id=tokenizer.eos_token_id)
    if model_type in T5_LIKE:
        settings = dict(
            d_model=32, d_ff=64, d_kv=8, num_heads=4, num_layers=2, num_decoder_layers=2,
            relative_attention_num_buckets=8, decoder_start_token_id=tokenizer.pad_token_id,
        )  # fmt: skip
    else:
        # BART and mBART start decoding with EOS (mBART's labels shift wraps the last token, EOS here);
        # Pegasus and Marian with the pad token.
        start = tokenizer.eos_token_id if model_type in {"bart", "mbart"} else tokenizer.pad_token_id
        settings = dict(
            d_model=32, encoder_layers=2, decoder_layers=2, encoder_attention_heads=4, decoder_attention_heads=4,
            encoder_ffn_dim=64, decoder_ffn_dim=64, max_position_embeddings=128, decoder_start_token_id=start,
            forced_eos_token_id=None, bos_token_id=tokenizer.bos_token_id,
        )  # fmt: skip
        if model_type == "marian":
            settings["decoder_vocab_size"] = len(tokenizer)
    return AutoConfig.for_model(model_type, **ids, **settings, **peculiar)


def _causal_config(model_type: str, tokenizer, peculiar: dict):
    ids = dict(
        vocab_size=len(tokenizer),
        bos_token_id=tokenizer.bos_token_id or tokenizer.eos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.eos_token_id,
    )
    if model_type == "gpt2":
        return AutoConfig.for_model("gpt2", n_layer=2, n_embd=32, n_head=4, n_positions=128, **ids)
    settings = dict(
        hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
        head_dim=8, max_position_embeddings=128,
    )  # fmt: skip
    return AutoConfig.for_model(model_type, **ids, **settings, **peculiar)


def _resize(config, width: int, layers: int, vocab: int) -> None:
    """Scale a tiny config's width, depth and vocabulary, whatever the family calls them."""
    factor = width // 32
    for name in ("d_model", "hidden_size", "n_embd", "d_ff", "intermediate_size", "encoder_ffn_dim", "decoder_ffn_dim"):
        if name in config.to_dict():
            setattr(config, name, getattr(config, name) * factor)
    for name in ("d_kv", "head_dim"):
        if getattr(config, name, None):
            setattr(config, name, getattr(config, name) * factor)
    depths = ("num_layers", "num_decoder_layers", "encoder_layers", "decoder_layers", "num_hidden_layers", "n_layer")
    for name in depths:
        if name in config.to_dict():
            setattr(config, name, layers)
    if getattr(config, "layer_types", None):
        config.layer_types = (config.layer_types * layers)[:layers]
    if vocab:
        config.vocab_size = vocab
        if getattr(config, "decoder_vocab_size", None):
            config.decoder_vocab_size = vocab


def _randomise_zero_biases(model) -> None:
    """Give a head bias buffer (BART's ``final_logits_bias``, zeros at init) random values, so it counts."""
    bias = getattr(model, "final_logits_bias", None)
    if bias is not None:
        with torch.no_grad():
            bias.normal_(0, 1)
