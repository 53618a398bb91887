"""Loading a model and tokenizer from a hub name or a local folder, on the right device and dtype.

Loading is apart from scoring: `load_pretrained` gives a model and a tokenizer, and
`t5cls.models.scorer.LabelScorer` wraps any such pair, however it was made.
"""

from __future__ import annotations

import torch
from safetensors import SafetensorError

from t5cls.errors import ModelLoadError, OptionError
from t5cls.hub import hub_files
from t5cls.models.families import FAMILIES
from t5cls.models.quantize import INT8, is_int8, quantize_int8
from t5cls.options import ModelOptions

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}
FALLBACK_MAX_LENGTH = 512


def quiet_model_loading() -> None:
    """No weight-loading bars, advisory warnings or Hub retry notices on stderr.

    Called before every load (in the CLI process and in every Ray worker), so stderr keeps to
    t5cls's own lines: the progress bar, the summary, one-line errors.
    """
    from huggingface_hub.utils import logging as hub_logging
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    hub_logging.set_verbosity_error()


def resolve_device(device: str) -> torch.device:
    """``auto`` picks CUDA, then Apple MPS, then the CPU."""
    if device == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if device == "cuda" and not torch.cuda.is_available():
        raise OptionError("{device} cuda was asked for but no CUDA GPU is visible; use auto or cpu")
    return torch.device(device)


def resolve_dtype(dtype: str, device: torch.device | str) -> torch.dtype:
    """The dtype weights load in. ``auto`` is bfloat16 on CUDA that supports it (T5 overflows in float16), else float32.

    On the CPU float32 stays the default: bfloat16 is faster where the CPU has AVX-512 BF16 but
    rounds scores to about 3 significant digits, int8 (`t5cls.models.quantize`) where it has int8
    dot products; see benchmarks/README.md for the measured trades. ``int8`` loads in float32
    and is quantized after loading, on the CPU only.
    """
    if dtype == INT8:
        if torch.device(device).type != "cpu":
            raise OptionError(
                f"{{dtype}} int8 runs on the CPU only (dynamic int8 kernels); on {torch.device(device).type} "
                "use bfloat16, or pass {device} cpu"
            )
        return torch.float32
    if dtype != "auto":
        return DTYPES[dtype]
    if torch.device(device).type == "cuda" and (not torch.cuda.is_available() or torch.cuda.is_bf16_supported()):
        return torch.bfloat16
    return torch.float32


def load_pretrained(options: ModelOptions):
    """``(model, tokenizer)`` of a hub name or local folder, on ``options.device`` in ``options.dtype``.

    The config says which backend: ``is_encoder_decoder`` models load as seq2seq, the rest as causal LMs.
    """
    from transformers import AutoConfig, AutoModelForCausalLM, AutoModelForSeq2SeqLM, AutoTokenizer

    quiet_model_loading()
    device = resolve_device(options.device)
    name = options.name
    files = hub_files(name, options.revision)  # without the Hub: the cached copy, or one line at once
    try:
        config = AutoConfig.from_pretrained(name, revision=options.revision, **files)
        auto_model = AutoModelForSeq2SeqLM if config.is_encoder_decoder else AutoModelForCausalLM
        tokenizer = AutoTokenizer.from_pretrained(name, revision=options.revision, **files)
        model = auto_model.from_pretrained(
            name,
            revision=options.revision,
            dtype=resolve_dtype(options.dtype, device),
            attn_implementation=attention_implementation(config),
            **files,
        )
    except (OSError, ValueError, KeyError, SafetensorError) as err:  # a damaged weights file is SafetensorError
        raise ModelLoadError(f"could not load model {name!r}: {_first_line(err)}") from err
    if options.dtype == INT8:
        model = quantize_int8(model.eval())
    if tokenizer.pad_token is None:  # GPT-2-style tokenizers have none; padding is masked, so EOS serves
        tokenizer.pad_token = tokenizer.eos_token
    return model.to(device), tokenizer


def attention_implementation(config) -> str | None:
    """The family table's attention implementation (SDPA, or eager where the family has none);
    transformers' own default for a family the table does not list."""
    family = FAMILIES.get(config.model_type)
    return family.attention if family else None


def _first_line(err: Exception) -> str:
    text = str(err).strip()
    return text.splitlines()[0].rstrip(".") if text else type(err).__name__


def model_max_length(config, tokenizer) -> int:
    """The longest input the model takes: the tokenizer's limit, else the config's, else 512."""
    limit = getattr(tokenizer, "model_max_length", None)
    if limit and limit < 1_000_000:
        return int(limit)
    for key in ("n_positions", "max_position_embeddings"):
        value = getattr(config, key, None)
        if value:
            return int(value)
    return FALLBACK_MAX_LENGTH


def default_label_end(config) -> str:
    """Seq2seq labels end with EOS; decoder-only labels end with nothing unless asked."""
    return "eos" if config.is_encoder_decoder else "none"


def dtype_name(dtype: torch.dtype) -> str:
    return str(dtype).removeprefix("torch.")


def precision_name(dtype: str, device: torch.device | str) -> str:
    """What ``dtype`` runs as on ``device``, as the identity records it: ``int8``, or the resolved dtype's name."""
    resolved = dtype_name(resolve_dtype(dtype, device))  # refuses int8 off the CPU
    return INT8 if dtype == INT8 else resolved


def model_precision(model) -> str:
    """A loaded model's precision, through the same names as `precision_name`."""
    return INT8 if is_int8(model) else dtype_name(model.dtype)
