"""`TrainPlan`: everything about a training run that is decided and checked before the model loads.

The tasks (`t5cls.tasks.config.load_tasks`, as every command gets them), each task's gold column,
and the refusals: scoring modes that cannot be trained, a generative loss for a regression task,
an output path that is not a t5cls training folder. Bad options fail here in a second, as a
scoring run's do.
"""

from __future__ import annotations

from dataclasses import dataclass

from t5cls.errors import InputError, OptionError, literal
from t5cls.io.paths import check_output_folder
from t5cls.options import TrainOptions
from t5cls.tasks.config import Task, TaskSet, load_tasks
from t5cls.train.gold import REGRESSION, gold_columns, task_kind
from t5cls.train.objective import TRAINABLE_MODES

REPORT_FILE = "training.json"  # marks a folder as a t5cls training output (an earlier one may be replaced)
CONFIG_FILE = "t5cls.toml"


@dataclass(frozen=True)
class TrainPlan:
    """The tasks trained and where their gold answers are."""

    options: TrainOptions
    task_set: TaskSet
    gold_columns: tuple[str, ...]

    @classmethod
    def build(cls, options: TrainOptions) -> TrainPlan:
        task_set = load_tasks(options.labels, options.config, options.template, options.text_column, options.task_name)
        for task in task_set.tasks:
            where = task_set.where(task)
            _check_trainable(task, options, f"{where}: " if where else "")
        columns = gold_columns(options.gold, task_set.tasks, task_set.config is None)
        plan = cls(options, task_set, tuple(columns))
        check_output_folder(options.output, REPORT_FILE)  # also refuses an input file as the output
        return plan

    @property
    def tasks(self) -> tuple[Task, ...]:
        return self.task_set.tasks


def _check_trainable(task: Task, options: TrainOptions, where: str) -> None:
    """Modes other than sum and mean cannot be trained; a regression task has no gold class for the generative loss."""
    if task.mode not in TRAINABLE_MODES:
        raise InputError(
            f"{where}mode {task.mode!r} cannot be trained: its scores depend on content-free prompts, the other "
            'rows of a chunk or the first token only; train with mode "sum" or "mean" (a fine-tuned model '
            "needs no prior correction)"
        )
    if task_kind(task) == REGRESSION and options.loss == "generative":
        raise OptionError(
            f"{literal(where)}{{loss}} generative needs a gold class per row, and regression task "
            f"{literal(repr(task.name))} has numbers; use the label-set loss"
        )
