"""Rows to model batches and back: sorted by length, padded, checked, restored to input order."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from t5cls.errors import NumericError, OptionError

CPU_BATCH_SIZE = 32
# What one more pass over a group of prompts costs on the CPU, in padded prompt tokens: mostly streaming the
# weights once (t5-small, 2 threads: a whole pass ~27 ms at one row against ~0.18 ms a prompt token, ~150
# tokens; its encoder alone ~40). A batch of mixed lengths is cut where the padding saved outweighs it.
CPU_PASS_TOKENS = 128
CPU_ENCODER_PASS_TOKENS = 48
CUDA_START_BATCH_SIZE = 256
# Bytes of activations a decoder pass may hold at once on the CPU. Blocks of this size already feed the
# matmuls a thousand positions or more; larger ones were no faster and raised the peak RSS with the labels.
CPU_MEMORY_BUDGET = 64 << 20
# Vocabulary entries per LM-head call on the CPU: a slice of the head's weight (t5-small: 2 MB of 66 MB)
# and its logits stay in cache, which makes the head ~1.4x faster there than whole-vocabulary calls.
CPU_VOCAB_SLICE = 1024
# Bytes per logit in the head: as computed (up to float32), as float32, and the log-sum-exp's exponentials.
LOGIT_BYTES = 12
CUDA_FREE_MEMORY_SHARE = 0.5  # share of the GPU memory free after loading the model

# compute(padded ids, attention mask) -> (batch, width) scores
# Config attributes that hold the feed-forward width, by family (T5, BART, Llama-likes, GPT-2).
FEED_FORWARD_SIZES = ("d_ff", "decoder_ffn_dim", "intermediate_size", "n_inner")
BatchFunction = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


class LengthBatcher:
    """Runs a batch function over length-sorted batches of token ids.

    ``batch_size=None`` is automatic: on CUDA it starts large and a CUDA out-of-memory error halves
    it and retries the same rows, so no row is lost or computed twice.
    """

    def __init__(self, batch_size: int | None, device: torch.device, pad_token_id: int, model_dtype: torch.dtype):
        self.device = device
        self.model_dtype = model_dtype
        self.pad_token_id = pad_token_id
        self.automatic = batch_size is None
        self.batch_size = batch_size or (CUDA_START_BATCH_SIZE if device.type == "cuda" else CPU_BATCH_SIZE)

    @torch.inference_mode()
    def run(self, ids: list[list[int]], width: int, compute: BatchFunction, pass_tokens: int | None) -> np.ndarray:
        """``(len(ids), width)`` float64 scores, rows in the order of ``ids``; non-finite scores are refused.

        Rows go in length order, ``batch_size`` at a time; on the CPU, with ``pass_tokens`` (what one
        more pass costs, in padded tokens: `Backend.prompt_pass_tokens`), cut where lengths jump.
        Scoring needs no gradients: ``compute`` runs under ``torch.inference_mode``. The backends
        themselves are differentiable (training calls them with gradients on).
        """
        out = np.empty((len(ids), width), dtype=np.float64)
        lengths = np.array([len(x) for x in ids])
        order = np.argsort(lengths, kind="stable")
        if self.device.type == "cpu" and pass_tokens is not None:
            for group in length_groups(lengths[order], self.batch_size, pass_tokens):
                rows = order[group]
                out[rows] = _finite(compute(*self.padded(ids, rows)), rows, self.model_dtype)
            return out
        done = 0
        while done < len(order):
            rows = order[done : done + self.batch_size]
            try:
                values = compute(*self.padded(ids, rows))
            except torch.cuda.OutOfMemoryError:
                self._shrink_after_out_of_memory()
                continue
            out[rows] = _finite(values, rows, self.model_dtype)
            done += len(rows)
        return out

    def _shrink_after_out_of_memory(self) -> None:
        if not self.automatic or self.batch_size == 1:
            raise OptionError(f"CUDA ran out of memory at {{batch_size}} {self.batch_size}; use a smaller one or auto")
        self.batch_size //= 2
        torch.cuda.empty_cache()

    def padded(self, ids: list[list[int]], rows: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        """The token ids of ``rows``, right-padded, and their attention mask, on the device."""
        batch, mask = right_padded([ids[i] for i in rows], self.pad_token_id)
        return batch.to(self.device), mask.to(self.device)


def length_groups(sorted_lengths: np.ndarray, most_rows: int, pass_tokens: int) -> list[slice]:
    """Cut rows sorted by length into batches of at most ``most_rows`` that cost the fewest padded tokens.

    A batch costs its rows times its longest row (the padded tensor every layer computes on) plus
    ``pass_tokens`` for the pass itself. On the CPU the cost is linear in the padded tokens, so
    rows of mixed lengths are best cut where the lengths jump, not every ``most_rows`` (a
    server's batches of requests on t5-small, 32 rows of 17 to 40 tokens: 1.3x faster so).
    Dynamic programming over the cut points: ``best[end]`` is the cheapest cost of the first
    ``end`` rows.
    """
    rows = len(sorted_lengths)
    best = np.zeros(rows + 1)
    cut = np.zeros(rows + 1, dtype=np.int64)
    for end in range(1, rows + 1):
        starts = np.arange(max(0, end - most_rows), end)
        costs = best[starts] + pass_tokens + (end - starts) * int(sorted_lengths[end - 1])
        choice = int(np.argmin(costs))
        best[end], cut[end] = costs[choice], starts[choice]
    groups, end = [], rows
    while end > 0:
        groups.append(slice(int(cut[end]), end))
        end = int(cut[end])
    return groups[::-1]


def _finite(scores: torch.Tensor, rows: np.ndarray, model_dtype: torch.dtype) -> np.ndarray:
    """Refuse NaN/inf scores (T5 overflows in float16) instead of writing them; name the first bad text."""
    values = scores.double().cpu().numpy()
    bad = ~np.isfinite(values).all(axis=1)
    if bad.any():
        row = int(rows[np.flatnonzero(bad)].min())  # the first bad text of this batch in the caller's order
        raise NumericError(
            f"non-finite label scores (model dtype {model_dtype}); "
            "T5 overflows in float16: use dtype bfloat16 or float32",
            row=row,
        )
    return values


def right_padded(sequences: Sequence[Sequence[int]], pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Right-pad token id lists into an id tensor and a 0/1 attention mask."""
    width = max(len(ids) for ids in sequences)
    ids = torch.full((len(sequences), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(sequences), width), dtype=torch.long)
    for row, sequence in enumerate(sequences):
        ids[row, : len(sequence)] = torch.as_tensor(sequence, dtype=torch.long)
        mask[row, : len(sequence)] = 1
    return ids, mask


def row_blocks(rows: int, size: int) -> list[slice]:
    """Consecutive slices of ``size`` rows (the last may be shorter)."""
    return [slice(start, start + size) for start in range(0, rows, size)]


@dataclass(frozen=True)
class Blocks:
    """How a trie pass is cut: rows per decoder call; positions and vocabulary entries per LM-head call."""

    rows: int
    positions: int
    vocabulary: int


class MemoryBudget:
    """Bytes of activations a trie pass may hold at once; the blocks it is cut into follow from it.

    A trie pass holds, per row, activations for every trie position (growing with the label
    count) and, per LM-head call, logits for a slice of the vocabulary (all of it on CUDA). Cutting
    rows and positions into blocks sized from one budget keeps the peak flat in the number of
    labels; the results do not depend on the blocks. ``limit=None``: 64 MiB on the CPU, half the free memory on CUDA.
    """

    def __init__(self, device: torch.device, limit: int | None = None):
        self.device = device
        self.limit = limit

    @property
    def bytes(self) -> int:
        if self.limit is not None:
            return self.limit
        if self.device.type == "cuda":
            free, _ = torch.cuda.mem_get_info(self.device)
            return int(free * CUDA_FREE_MEMORY_SHARE)
        return CPU_MEMORY_BUDGET

    def blocks(self, rows: int, positions: int, position_bytes: int, vocab_size: int) -> Blocks:
        """Blocks for ``rows`` x ``positions``, given the bytes one position of one row needs in the
        decoder and the size of the vocabulary the head computes logits for."""
        budget = self.bytes
        vocabulary = min(vocab_size, CPU_VOCAB_SLICE) if self.device.type == "cpu" else vocab_size
        most_rows = max(1, min(rows, budget // max(1, positions * position_bytes)))
        block_rows = math.ceil(rows / math.ceil(rows / most_rows))  # equal blocks: 32 rows as 16 + 16, not 27 + 5
        block_positions = max(1, min(positions, budget // max(1, block_rows * vocabulary * LOGIT_BYTES)))
        return Blocks(block_rows, block_positions, vocabulary)


def position_bytes(config, dtype: torch.dtype, attended: int) -> int:
    """Rough bytes of activations one decoder position of one row holds at once.

    The hidden states a layer keeps (residual, normed, attention, projections: about eight times
    the width), its feed-forward intermediate (twice: before and after the activation), and the
    attention scores over ``attended`` keys per head (softmax in float32).
    """
    width = config.hidden_size
    feed_forward = next((value for name in FEED_FORWARD_SIZES if (value := getattr(config, name, None))), 4 * width)
    element = torch.finfo(dtype).bits // 8
    return (8 * width + 2 * feed_forward) * element + config.num_attention_heads * attended * (element + 4)
