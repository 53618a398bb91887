"""The training loop: transformers' `Trainer`, told how t5cls computes the loss and evaluates.

Why `Trainer` rather than a loop on `accelerate`: it already does, tested by its users, what a
training command needs: gradient accumulation, AdamW with linear warm-up and decay, mixed
precision, a fixed seed (for the data order too), checkpoints holding the optimizer, scheduler
and RNG states, resuming mid-epoch on exactly the batches that were left, keeping the best
checkpoint and early stopping. Two methods are ours: `compute_loss` (the label-set or generative
objective of a collated batch, `t5cls.train.objective`) and `evaluate` (t5cls's own dev scoring
and metrics, `t5cls.train.evaluation`).
"""

from __future__ import annotations

from contextlib import nullcontext
from pathlib import Path

import torch
from transformers import EarlyStoppingCallback, PrinterCallback, Trainer, TrainingArguments

from t5cls.errors import NumericError
from t5cls.options import TrainOptions
from t5cls.train.evaluation import DevEvaluation

LOGGING_STEPS = 10
DIVERGED = "training diverged; use a lower learning rate (or float32 instead of float16)"
BEST_METRIC = "loss"  # the dev loss of `DevEvaluation.evaluate`


class T5clsTrainer(Trainer):
    """A `Trainer` whose loss is ``loss(batch)`` and whose evaluation is ``dev.evaluate()``."""

    def __init__(self, *, loss, dev: DevEvaluation | None, autocast_dtype: torch.dtype | None, **kwargs):
        super().__init__(**kwargs)
        self.batch_loss = loss
        self.dev = dev
        self.autocast_dtype = autocast_dtype
        self.loss_is_scaled_for_ga = False  # a per-batch mean: the Trainer divides it by the accumulation steps
        self.remove_callback(PrinterCallback)  # `t5cls.train.progress` prints instead

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        loss = self.batch_loss(inputs)
        if not torch.isfinite(loss):
            raise NumericError(f"the training loss is not finite at step {self.state.global_step + 1}: {DIVERGED}")
        return (loss, None) if return_outputs else loss

    def autocast_smart_context_manager(self, cache_enabled: bool | None = True):
        """Mixed precision around the whole loss: the backends call the encoder and decoder separately,
        which the autocast that accelerate wraps around ``model.forward`` alone would not cover."""
        if self.autocast_dtype is None:
            return nullcontext()
        return torch.autocast(self.args.device.type, dtype=self.autocast_dtype, cache_enabled=cache_enabled)

    def evaluate(self, eval_dataset=None, ignore_keys=None, metric_key_prefix: str = "eval") -> dict[str, float]:
        with self.autocast_smart_context_manager():
            try:
                results = self.dev.evaluate()
            except NumericError:
                raise NumericError(f"non-finite dev scores at step {self.state.global_step}: {DIVERGED}") from None
        metrics = {f"{metric_key_prefix}_{name}": value for name, value in results.items()}
        self.log(metrics)
        self.control = self.callback_handler.on_evaluate(self.args, self.state, self.control, metrics)
        return metrics


def training_arguments(
    options: TrainOptions,
    batch_size: int,
    folder: Path,
    device: torch.device,
    precision: torch.dtype,
    dev,
    resuming: bool,
) -> TrainingArguments:
    """The `Trainer`'s settings for ``options``: evaluate and checkpoint each epoch (or every ``eval_every`` steps).

    ``batch_size`` rows go through each forward and backward pass (`ModelOptions.training_batch_size`).

    Without a ``dev`` evaluation there is no evaluation and no best checkpoint: the last one is the model.
    """
    every = "steps" if options.eval_every else "epoch"
    has_dev = dev is not None
    return TrainingArguments(
        output_dir=str(folder),
        per_device_train_batch_size=batch_size,
        gradient_accumulation_steps=options.grad_accum,
        num_train_epochs=options.epochs,
        learning_rate=options.learning_rate,
        lr_scheduler_type="linear",
        warmup_steps=options.warmup,  # below 1: a share of the steps
        weight_decay=options.weight_decay,
        seed=options.seed,
        data_seed=options.seed,
        bf16=precision == torch.bfloat16,
        fp16=precision == torch.float16,
        use_cpu=device.type == "cpu",
        eval_strategy=every if has_dev else "no",
        eval_steps=options.eval_every,
        eval_on_start=has_dev and not resuming,
        save_strategy=every,
        save_steps=options.eval_every,
        save_total_limit=1,  # the latest checkpoint, and the best one
        load_best_model_at_end=has_dev,
        metric_for_best_model=BEST_METRIC if has_dev else None,
        greater_is_better=False,
        restore_callback_states_from_checkpoint=True,
        logging_strategy="steps",
        logging_steps=LOGGING_STEPS,
        report_to="none",
        disable_tqdm=True,
        remove_unused_columns=False,
        dataloader_num_workers=0,
    )


def early_stopping(options: TrainOptions, has_dev: bool) -> list:
    """Stop after ``patience`` evaluations without a lower dev loss (needs a dev set)."""
    return [EarlyStoppingCallback(early_stopping_patience=options.patience)] if has_dev and options.patience else []
