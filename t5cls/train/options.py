"""The options of a training run, validated once where they are made (as `t5cls.options` does for scoring).

Messages name Python parameters as ``{parameter}`` placeholders; the CLI shows its flags instead.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from t5cls.errors import OptionError
from t5cls.options import DEFAULT_TASK_NAME, NULL_POLICIES, check_task_source, number_in, one_of, positive
from t5cls.tasks.labels import parse_labels
from t5cls.tasks.prompts import DEFAULT_TEXT_COLUMN

LOSSES = ("label-set", "generative")
CLASS_WEIGHTS = ("none", "balanced")
DEFAULT_TRAIN_BATCH_SIZE = 16


@dataclass(frozen=True)
class TrainOptions:
    """What to train on, what to write, and how the optimisation goes; the model aside (`ModelOptions`).

    Give ``labels`` for one task (named ``task_name`` in the written config) or ``config`` for the
    tasks it holds. ``gold`` is a column name, or ``task=column,...`` for several tasks.
    ``batch_size=None`` trains on `DEFAULT_TRAIN_BATCH_SIZE` rows per step. ``warmup`` is the share
    of the optimisation steps spent warming the learning rate up from 0 (then it decays linearly
    to 0). ``eval_every=None`` evaluates and checkpoints once per epoch. ``patience`` evaluations
    without a better dev loss stop training (0: never).
    """

    train: str
    output: str
    gold: str
    labels: tuple[str, ...] | None = None
    config: str | None = None
    template: str | None = None
    text_column: str = DEFAULT_TEXT_COLUMN
    task_name: str = DEFAULT_TASK_NAME
    dev: str | None = None
    on_null: str = "error"
    loss: str = "label-set"
    class_weights: str = "none"
    epochs: int = 3
    learning_rate: float = 1e-4
    batch_size: int | None = None
    grad_accum: int = 1
    warmup: float = 0.06
    weight_decay: float = 0.0
    seed: int = 0
    patience: int = 2
    eval_every: int | None = None
    resume: bool = False

    def __post_init__(self):
        if self.labels is not None:
            object.__setattr__(self, "labels", tuple(parse_labels(self.labels)))
        check_task_source(self.labels, self.config, self.template, self.text_column)
        one_of("on_null", self.on_null, NULL_POLICIES)
        one_of("loss", self.loss, LOSSES)
        one_of("class_weights", self.class_weights, CLASS_WEIGHTS)
        for name in ("epochs", "batch_size", "grad_accum", "eval_every"):
            positive(name, getattr(self, name))
        number_in("learning_rate", self.learning_rate, 0.0, math.inf, closed_low=False)
        number_in("warmup", self.warmup, 0.0, 1.0, closed_high=False)
        number_in("weight_decay", self.weight_decay, 0.0, math.inf)
        if isinstance(self.patience, bool) or not isinstance(self.patience, int) or self.patience < 0:
            raise OptionError(f"{{patience}} must be a whole number ≥ 0 (0: no early stopping), got {self.patience!r}")
        if not self.gold.strip():
            raise OptionError("{gold} must name the column of the gold labels")
        if self.class_weights != "none" and self.loss == "generative":
            raise OptionError("{class_weights} applies to the label-set loss, not to {loss} generative")

    @property
    def rows_per_step(self) -> int:
        return self.batch_size or DEFAULT_TRAIN_BATCH_SIZE
