"""One training session: the model loaded, the labelled rows tokenized, the `Trainer` run, the model saved.

The model is loaded in float32 (the weights the optimizer updates); mixed precision, when asked
for, runs the forward and backward passes in bfloat16 (``--dtype auto`` on CUDA) or float16.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import torch

from t5cls.errors import Interrupted, OptionError
from t5cls.models.loading import resolve_device, resolve_dtype
from t5cls.models.quantize import INT8
from t5cls.models.scorer import LabelScorer
from t5cls.options import ModelOptions, ProgressOptions
from t5cls.signals import StopRequest
from t5cls.task_scorer import TaskScorer
from t5cls.train.batches import LabelSetCollator, RowIndexes, TokenizedTask
from t5cls.train.data import LabelledFile, TaskRows
from t5cls.train.evaluation import DevEvaluation, DevTask
from t5cls.train.generative import GenerativeCollator, GenerativeLoss, target_ids
from t5cls.train.objective import LabelSetLoss, TaskObjective, balanced_weights
from t5cls.train.plan import TrainPlan
from t5cls.train.progress import StopOnSignal, TrainProgress
from t5cls.train.trainer import T5clsTrainer, early_stopping, training_arguments
from t5cls.train.workdir import WorkFolder


@dataclass(frozen=True)
class TrainingOutcome:
    """What the optimisation did, for the report."""

    steps: int
    max_steps: int
    epochs: float
    best_step: int | None
    best_dev_loss: float | None
    resumed_from_step: int | None
    truncated_rows: int
    precision: str
    history: list[dict] = field(default_factory=list)


def training_precision(dtype: str, device: torch.device) -> torch.dtype:
    """The precision of the forward and backward passes: ``auto`` is bfloat16 on CUDA that supports it."""
    if dtype == INT8:
        raise OptionError("{dtype} int8 is for scoring on the CPU; train in float32 or bfloat16, then score with int8")
    precision = resolve_dtype(dtype, device)
    if precision == torch.float16 and device.type != "cuda":
        raise OptionError("{dtype} float16 trains on CUDA only (mixed precision with loss scaling); use bfloat16")
    return precision


def train_model(
    plan: TrainPlan,
    model_options: ModelOptions,
    data: tuple[LabelledFile, LabelledFile | None],
    work: WorkFolder,
    checkpoint: str | None,
    progress: ProgressOptions,
    stop: StopRequest,
) -> TrainingOutcome:
    """Train from the start or from ``checkpoint``; the trained (best) model and its tokenizer go to ``work.final``."""
    precision = training_precision(model_options.dtype, resolve_device(model_options.device))
    scorer = LabelScorer.from_options(replace(model_options, dtype="float32"))
    setup = TrainingSetup.build(plan, scorer, data)
    callbacks = [TrainProgress(progress), StopOnSignal(stop), *early_stopping(plan.options, setup.dev is not None)]
    trainer = T5clsTrainer(
        model=scorer.model,
        args=training_arguments(
            plan.options,
            model_options.training_batch_size,
            work.checkpoints,
            scorer.device,
            precision,
            setup.dev,
            bool(checkpoint),
        ),
        train_dataset=RowIndexes(data[0].rows),
        eval_dataset=None if data[1] is None else RowIndexes(data[1].rows),
        data_collator=setup.collator,
        callbacks=callbacks,
        loss=setup.loss,
        dev=setup.dev,
        autocast_dtype=None if precision == torch.float32 else precision,
    )
    trainer.train(resume_from_checkpoint=checkpoint)
    state = trainer.state
    if stop.requested:
        raise Interrupted(
            stop.signum, f"stopped at step {state.global_step}; checkpoint kept, rerun the same command with {{resume}}"
        )
    scorer.model.save_pretrained(work.final)
    scorer.tokenizer.save_pretrained(work.final)
    trainer.accelerator.free_memory()  # the optimizer state goes before the saved model is loaded back for calibration
    return TrainingOutcome(
        steps=state.global_step,
        max_steps=state.max_steps,
        epochs=float(state.epoch or 0),
        best_step=state.best_global_step,
        best_dev_loss=state.best_metric,
        resumed_from_step=None if checkpoint is None else int(Path(checkpoint).name.removeprefix("checkpoint-")),
        truncated_rows=sum(_truncated_rows(task) for task in setup.tasks),
        precision=str(precision).removeprefix("torch."),
        history=list(state.log_history),
    )


@dataclass(frozen=True)
class TrainingSetup:
    """The labelled rows as the `Trainer` consumes them: tokenized tasks, a collator, a loss, a dev evaluation."""

    tasks: list[TokenizedTask]
    collator: LabelSetCollator | GenerativeCollator
    loss: LabelSetLoss | GenerativeLoss
    dev: DevEvaluation | None

    @classmethod
    def build(cls, plan: TrainPlan, scorer: LabelScorer, data: tuple[LabelledFile, LabelledFile | None]):
        train_rows, dev_rows = data
        bound = [TaskScorer(task, scorer, plan.task_set.where(task)) for task in plan.tasks]
        objectives = [TaskObjective(b) for b in bound]
        weighted = plan.options.class_weights == "balanced"
        tasks = [
            tokenized(o, b, train_rows.columns, rows, weighted)
            for o, b, rows in zip(objectives, bound, train_rows.tasks)
        ]
        dev = None if dev_rows is None else DevEvaluation(scorer, dev_tasks(objectives, bound, dev_rows))
        pad = scorer.tokens.pad_token_id
        if plan.options.loss == "generative":
            targets = [target_ids(o.task, scorer, t) for o, t in zip(objectives, tasks)]
            return cls(tasks, GenerativeCollator(tasks, targets, pad, scorer.causal), GenerativeLoss(scorer.model), dev)
        return cls(tasks, LabelSetCollator(tasks, pad), LabelSetLoss(objectives, scorer.backend), dev)


def tokenized(
    objective: TaskObjective, bound: TaskScorer, columns: dict[str, list[str]], rows: TaskRows, weighted: bool
) -> TokenizedTask:
    """A task's training prompts tokenized as a scoring run does it (few-shot prefix, room for labels), with targets."""
    tokens = bound.tokenize(columns)
    bound.scorer.tokens.check_label_boundaries(tokens, objective.labels, bound.scorer.label_ids(objective.labels))
    weights = balanced_weights(objective.kind, rows.gold, len(objective.task.classes)) if weighted else None
    return TokenizedTask.build(objective.kind, tokens, rows.gold, weights)


def dev_tasks(objectives: Sequence[TaskObjective], bound: Sequence[TaskScorer], dev: LabelledFile) -> list[DevTask]:
    """Every task's dev prompts tokenized as a scoring run tokenizes them."""
    return [DevTask(o, b.tokenize(dev.columns), r.gold) for o, b, r in zip(objectives, bound, dev.tasks)]


def _truncated_rows(task: TokenizedTask) -> int:
    return int(task.tokens.truncated.reshape(-1, task.rows).any(axis=0).sum())
