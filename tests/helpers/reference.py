"""Brute-force references: one full forward per (row, label), read from ``model(...).logits``."""

from __future__ import annotations

import torch
from transformers import AutoModelForSeq2SeqLM, AutoTokenizer


def brute_force_logprobs(model_dir, texts, labels, max_length=None):
    """log p(label | text) for a seq2seq model, with one full forward per (row, label)."""
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForSeq2SeqLM.from_pretrained(model_dir).eval()
    rows = []
    for text in texts:
        enc = tokenizer(text, return_tensors="pt", truncation=max_length is not None, max_length=max_length)
        row = []
        for label in labels:
            target = torch.tensor([tokenizer(text_target=label).input_ids])
            with torch.no_grad():
                logits = model(**enc, labels=target).logits[0]
            row.append(logits.log_softmax(-1)[torch.arange(target.shape[1]), target[0]].sum().item())
        rows.append(row)
    return torch.tensor(rows, dtype=torch.float64).numpy()


def brute_force_causal_logprobs(model_dir, texts, labels, label_end="none"):
    """log p(label | prompt) for a decoder-only model: one unpadded forward of ``prompt.rstrip() + " " + label``.

    ``label_end`` ``eos`` scores the EOS id after the label; any other text but ``none`` is appended to it.
    """
    from transformers import AutoModelForCausalLM

    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForCausalLM.from_pretrained(model_dir).eval()
    end_text = "" if label_end in ("none", "eos") else label_end
    rows = []
    for text in texts:
        prompt = tokenizer(text.rstrip()).input_ids
        row = []
        for label in labels:
            ids = tokenizer(text.rstrip() + " " + label + end_text).input_ids
            ids += [tokenizer.eos_token_id] if label_end == "eos" else []
            assert ids[: len(prompt)] == prompt
            with torch.no_grad():
                logprobs = model(torch.tensor([ids])).logits[0].log_softmax(-1)
            row.append(sum(logprobs[t - 1, ids[t]].item() for t in range(len(prompt), len(ids))))
        rows.append(row)
    return torch.tensor(rows, dtype=torch.float64).numpy()


def brute_force_logprob(scorer, prompt: str, label: str) -> torch.Tensor:
    """log p(label | prompt) from one unpadded full forward of ``scorer``'s model, with gradients."""
    tokenizer, model = scorer.tokenizer, scorer.model
    if scorer.causal:
        context = tokenizer(prompt.rstrip()).input_ids
        ids = tokenizer(prompt.rstrip() + " " + label).input_ids
        logprobs = model(torch.tensor([ids])).logits[0].float().log_softmax(-1)
        return sum(logprobs[t - 1, ids[t]] for t in range(len(context), len(ids)))
    target = torch.tensor([tokenizer(text_target=label).input_ids])
    logits = model(**tokenizer(prompt, return_tensors="pt"), labels=target).logits[0].float()
    return logits.log_softmax(-1)[torch.arange(target.shape[1]), target[0]].sum()
