"""Tiny random-weight decoder-only models with byte-level BPE tokenizers, built on the spot."""

from __future__ import annotations

from pathlib import Path

import torch
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
from transformers import (
    GPT2Config,
    GPT2LMHeadModel,
    LlamaConfig,
    LlamaForCausalLM,
    MistralConfig,
    MistralForCausalLM,
    PreTrainedTokenizerFast,
    Qwen2Config,
    Qwen2ForCausalLM,
    Qwen3Config,
    Qwen3ForCausalLM,
)

from helpers.tiny_models import CORPUS

CAUSAL_CORPUS = CORPUS + ["Answer: positive", "Sentiment: negative", "great!\nlabel: not sure"] * 3


def byte_level_tokenizer(bos: bool = False) -> PreTrainedTokenizerFast:
    """GPT-2-style byte-level BPE; ``bos`` adds ``<s>`` in front of every text, as Llama's does.

    Without ``bos`` it has no pad token, like GPT-2, so the scorer must pick one.
    """
    specials = ["<s>", "</s>", "<|endoftext|>"] if bos else ["<|endoftext|>"]  # Qwen2Tokenizer wants <|endoftext|>
    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=400, special_tokens=specials, initial_alphabet=pre_tokenizers.ByteLevel.alphabet()
    )
    tokenizer.train_from_iterator(CAUSAL_CORPUS, trainer)
    if bos:
        tokenizer.post_processor = processors.TemplateProcessing(single="<s> $A", special_tokens=[("<s>", 0)])
        return PreTrainedTokenizerFast(tokenizer_object=tokenizer, bos_token="<s>", eos_token="</s>")
    return PreTrainedTokenizerFast(tokenizer_object=tokenizer, eos_token="<|endoftext|>")


def merging_tokenizer() -> PreTrainedTokenizerFast:
    """Byte-level BPE without the pre-tokenizer's word split, and one merge ``"!" + " "``.

    So ``"great!"`` ends in ``!`` but ``"great! positive"`` has the token ``"! "``: the prompt's
    last token merges with the label's leading space.
    """
    alphabet = sorted(pre_tokenizers.ByteLevel.alphabet())
    vocab = {"<|endoftext|>": 0, **{char: i + 1 for i, char in enumerate(alphabet)}, "!Ġ": len(alphabet) + 1}
    tokenizer = Tokenizer(models.BPE(vocab=vocab, merges=[("!", "Ġ")]))
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)
    tokenizer.decoder = decoders.ByteLevel()
    return PreTrainedTokenizerFast(tokenizer_object=tokenizer, eos_token="<|endoftext|>")


def build_causal(folder: Path, kind: str, seed: int = 0, tokenizer: PreTrainedTokenizerFast | None = None) -> Path:
    """Save a 2-layer ``kind`` (gpt2, llama, mistral, qwen2, qwen3) with random weights and its tokenizer."""
    tokenizer = tokenizer or byte_level_tokenizer(bos=kind != "gpt2")
    ids = dict(
        vocab_size=len(tokenizer),
        bos_token_id=tokenizer.bos_token_id or tokenizer.eos_token_id,
        eos_token_id=tokenizer.eos_token_id,
    )
    torch.manual_seed(seed)
    if kind == "gpt2":
        model = GPT2LMHeadModel(GPT2Config(n_layer=2, n_embd=32, n_head=4, n_positions=128, **ids))
    else:
        config_class, model_class = {
            "llama": (LlamaConfig, LlamaForCausalLM),
            "mistral": (MistralConfig, MistralForCausalLM),
            "qwen2": (Qwen2Config, Qwen2ForCausalLM),
            "qwen3": (Qwen3Config, Qwen3ForCausalLM),
        }[kind]
        settings = dict(
            hidden_size=32,
            intermediate_size=64,
            num_hidden_layers=2,
            num_attention_heads=4,
            num_key_value_heads=2,
            max_position_embeddings=128,
            **ids,
        )
        if kind == "mistral":
            settings["sliding_window"] = None
        model = model_class(config_class(**settings))
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder
