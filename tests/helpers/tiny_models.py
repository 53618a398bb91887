"""Tiny random-weight models and tokenizers built on the spot, so tests never touch the network.

With ``../shared/t5-small-tokenizer`` present the T5 models use the real T5 SentencePiece
tokenizer (labels split exactly as in Flan-T5); without it, a small BPE tokenizer is trained
here from a fixed corpus, so the suite passes on any fresh machine.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
from transformers import (
    AutoTokenizer,
    BartConfig,
    BartForConditionalGeneration,
    PreTrainedTokenizerFast,
    T5Config,
    T5ForConditionalGeneration,
)

SHARED_TOKENIZER = Path(__file__).resolve().parents[2].parent / "shared" / "t5-small-tokenizer"
CORPUS = [
    "the movie was great and the acting was wonderful",
    "terrible plot, boring characters, not entailment at all",
    "entailment contradiction neutral positive negative mixed feelings",
    "strongly positive strongly negative somewhat positive not sure",
    'café naïve 東京 emoji 🙂 quotes " and commas , everywhere',
    "premise hypothesis question answer relevant irrelevant true false yes no",
] * 3


def train_tokenizer(kind: str) -> PreTrainedTokenizerFast:
    """A small BPE tokenizer; ``kind`` t5 appends ``</s>``, bart wraps in ``<s> … </s>``."""
    specials = ["<pad>", "</s>", "<unk>"] if kind == "t5" else ["<s>", "<pad>", "</s>", "<unk>"]
    tokenizer = Tokenizer(models.BPE(unk_token="<unk>"))
    tokenizer.pre_tokenizer = pre_tokenizers.Metaspace()
    tokenizer.decoder = decoders.Metaspace()
    tokenizer.train_from_iterator(CORPUS, trainers.BpeTrainer(vocab_size=400, special_tokens=specials))
    ids = {token: tokenizer.token_to_id(token) for token in specials}
    single = "$A </s>" if kind == "t5" else "<s> $A </s>"
    tokenizer.post_processor = processors.TemplateProcessing(
        single=single, special_tokens=[(t, ids[t]) for t in ("<s>", "</s>") if t in ids]
    )
    extra = {"bos_token": "<s>"} if kind == "bart" else {}
    return PreTrainedTokenizerFast(
        tokenizer_object=tokenizer, pad_token="<pad>", eos_token="</s>", unk_token="<unk>", **extra
    )


def t5_tokenizer():
    """The real T5 tokenizer when ../shared has it (T5CLS_TESTS_WITHOUT_SHARED=1 pretends it does not)."""
    if SHARED_TOKENIZER.is_dir() and not os.environ.get("T5CLS_TESTS_WITHOUT_SHARED"):
        return AutoTokenizer.from_pretrained(SHARED_TOKENIZER)
    return train_tokenizer("t5")


def build_t5(folder: Path, seed: int = 0, scale_decoder_outputs: bool = True, **config) -> Path:
    """Save a 2-layer T5 with random weights (and its tokenizer) to ``folder``."""
    tokenizer = t5_tokenizer()
    torch.manual_seed(seed)
    settings = dict(
        d_model=32,
        d_ff=64,
        d_kv=8,
        num_heads=4,
        num_layers=2,
        num_decoder_layers=2,
        decoder_start_token_id=tokenizer.pad_token_id,
        pad_token_id=tokenizer.pad_token_id,
        eos_token_id=tokenizer.eos_token_id,
        relative_attention_num_buckets=8,
    )
    settings.update(config)
    model = T5ForConditionalGeneration(
        T5Config(vocab_size=len(tokenizer), tie_word_embeddings=scale_decoder_outputs, **settings)
    )
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def build_bart(folder: Path, seed: int = 0) -> Path:
    """Save a 2-layer BART with random weights and a byte-free BPE tokenizer to ``folder``."""
    tokenizer = train_tokenizer("bart")
    torch.manual_seed(seed)
    config = BartConfig(
        vocab_size=len(tokenizer),
        d_model=32,
        encoder_layers=2,
        decoder_layers=2,
        encoder_attention_heads=4,
        decoder_attention_heads=4,
        encoder_ffn_dim=64,
        decoder_ffn_dim=64,
        max_position_embeddings=128,
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        decoder_start_token_id=tokenizer.eos_token_id,
        forced_eos_token_id=None,
    )
    BartForConditionalGeneration(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def build_poisoned_t5(folder: Path, word: str = "<poison>") -> Path:
    """A tiny T5 (untied head) with ``word`` as one added token whose input embedding is NaN.

    Prompts holding ``word`` score NaN; every other prompt scores finite, so a test can mix both.
    """
    build_t5(folder)
    model = T5ForConditionalGeneration.from_pretrained(folder)
    tokenizer = AutoTokenizer.from_pretrained(folder)
    tokenizer.add_tokens([word])
    model.resize_token_embeddings(len(tokenizer), mean_resizing=False)
    model.config.tie_word_embeddings = False  # the head keeps its own copy: only the input embedding is poisoned
    model.lm_head.weight = torch.nn.Parameter(model.shared.weight.detach().clone())
    with torch.no_grad():
        model.shared.weight[tokenizer.convert_tokens_to_ids(word)] = float("nan")
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def skip_without_digits(model_dir: Path, digits: int) -> None:
    """Skip the test when ``model_dir``'s tokenizer cannot tell the numbers 0..digits-1 apart.

    The real T5 tokenizer (``../shared``) can; the fallback test tokenizer built without it has no digits.
    """
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(model_dir))
    if len({tuple(tokenizer(text_target=str(v)).input_ids) for v in range(digits)}) < digits:
        import pytest

        pytest.skip("the fallback test tokenizer (no ../shared) has no digits")
