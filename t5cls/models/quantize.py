"""``dtype int8`` on the CPU: int8 weights and dynamically quantized int8 activations in the linear layers.

Most CPUs people run batch jobs on have int8 dot products (VNNI, AMX-INT8) but no bfloat16, so
int8 is their fast precision. Every ``nn.Linear`` of the model (attention projections,
feed-forward, an encoder-decoder's cross-attention) gets per-output-channel int8 weights; its
input is quantized per call (dynamic quantization: no calibration data). Kept in float32:

- the LM head: label scores are differences of logits against the log-normaliser over the whole
  vocabulary, and quantizing the head moved log-softmax values by up to 0.49 nats on t5-small
  (the int8 body alone stays within ~0.2; see benchmarks/README.md, ``bench_int8.py``);
- layer norms, embeddings, attention scores and softmax (they are not linear layers).

The kernels are PyTorch's dynamic quantized linear (``torch.ao.quantization.quantize_dynamic``):
torchao's ``Int8DynamicActivationInt8WeightConfig`` (0.18) installs and agrees on the numbers,
but without ``torch.compile`` it ran t5-small at 1.04x float32 on the CPU, against 1.6-2x here.
Weights are packed for oneDNN, which uses AMX-INT8 or VNNI where the CPU has them.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from contextlib import contextmanager

import torch
from torch.ao.nn.quantized.dynamic import Linear as Int8Linear
from torch.ao.quantization import per_channel_dynamic_qconfig

INT8 = "int8"
KEPT_IN_FLOAT = ("lm_head",)  # module names (and their children) left in float32
ENGINE = "onednn"


def quantize_int8(model: torch.nn.Module) -> torch.nn.Module:
    """``model`` (float32, on the CPU) with int8 linear layers but those in `KEPT_IN_FLOAT`; changed in place."""
    names = {
        name: per_channel_dynamic_qconfig
        for name, module in model.named_modules()
        if isinstance(module, torch.nn.Linear) and not _kept(name)
    }
    with warnings.catch_warnings(), _packing_engine(ENGINE):
        # torch.ao.quantization is deprecated in favour of torchao, whose CPU int8 is slower uncompiled (see above).
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.simplefilter("ignore", UserWarning)
        return torch.ao.quantization.quantize_dynamic(model, names, inplace=True)


def is_int8(model: torch.nn.Module) -> bool:
    """Whether `quantize_int8` made ``model``'s linear layers int8."""
    return any(isinstance(module, Int8Linear) for module in model.modules())


def _kept(name: str) -> bool:
    return any(name == kept or name.startswith(kept + ".") for kept in KEPT_IN_FLOAT)


@contextmanager
def _packing_engine(engine: str) -> Iterator[None]:
    """Pack the weights for ``engine``: packed weights choose their kernel at run time, whatever the global engine."""
    before = torch.backends.quantized.engine
    if engine in torch.backends.quantized.supported_engines:
        torch.backends.quantized.engine = engine
    try:
        yield
    finally:
        torch.backends.quantized.engine = before
