"""Rows to model batches and back: sorted by length, padded, checked, restored to input order."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

from t5cls.errors import NumericError, OptionError

CPU_BATCH_SIZE = 32
CUDA_START_BATCH_SIZE = 256

# compute(padded ids, attention mask) -> (batch, width) scores
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
    def run(self, ids: list[list[int]], width: int, compute: BatchFunction) -> np.ndarray:
        """``(len(ids), width)`` float64 scores, rows in the order of ``ids``; non-finite scores are refused.

        Scoring needs no gradients: ``compute`` runs under ``torch.inference_mode``. The backends
        themselves are differentiable (training calls them with gradients on).
        """
        out = np.empty((len(ids), width), dtype=np.float64)
        order = np.argsort([len(x) for x in ids], kind="stable")
        done = 0
        while done < len(order):
            rows = order[done : done + self.batch_size]
            try:
                values = compute(*self._padded(ids, rows))
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

    def _padded(self, ids: list[list[int]], rows: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        """Right-pad the token ids of ``rows`` into an id tensor and an attention mask."""
        width = max(len(ids[i]) for i in rows)
        batch = torch.full((len(rows), width), self.pad_token_id, dtype=torch.long)
        mask = torch.zeros((len(rows), width), dtype=torch.long)
        for j, i in enumerate(rows):
            batch[j, : len(ids[i])] = torch.as_tensor(ids[i])
            mask[j, : len(ids[i])] = 1
        return batch.to(self.device), mask.to(self.device)


def _finite(scores: torch.Tensor, rows: np.ndarray, model_dtype: torch.dtype) -> np.ndarray:
    """Refuse NaN/inf scores (T5 overflows in float16) instead of writing them; name the first bad text."""
    values = scores.double().cpu().numpy()
    bad = ~np.isfinite(values).all(axis=1)
    if bad.any():
        row = int(rows[np.flatnonzero(bad)[0]])
        raise NumericError(
            f"non-finite label scores (model dtype {model_dtype}); "
            "T5 overflows in float16: use dtype bfloat16 or float32",
            row=row,
        )
    return values
