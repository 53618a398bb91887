"""`TrainPlan`: everything about a training run that is decided and checked before the model loads.

The tasks (from ``labels`` or a config), each task's gold column, and the refusals: scoring
modes that cannot be trained, a generative loss for a regression task, an output path that is
not a t5cls training folder. Bad options fail here in a second, as a scoring run's do.
"""

from __future__ import annotations

from dataclasses import dataclass

from t5cls.errors import InputError, OptionError, literal
from t5cls.eval.calibration import check_task_name
from t5cls.io.paths import check_output_folder
from t5cls.tasks.config import Config, Task, load_config, quick_task
from t5cls.tasks.prompts import DEFAULT_TEMPLATE
from t5cls.train.gold import REGRESSION, gold_columns, task_kind
from t5cls.train.objective import TRAINABLE_MODES
from t5cls.train.options import TrainOptions

REPORT_FILE = "training.json"  # marks a folder as a t5cls training output (an earlier one may be replaced)
CONFIG_FILE = "t5cls.toml"


@dataclass(frozen=True)
class TrainPlan:
    """The tasks trained, where their gold answers are, and how errors name them."""

    options: TrainOptions
    config: Config | None
    tasks: tuple[Task, ...]
    gold_columns: tuple[str, ...]

    @classmethod
    def build(cls, options: TrainOptions) -> TrainPlan:
        config = load_config(options.config) if options.config is not None else None
        if config is None:
            check_task_name(options.task_name)
            template = options.template or DEFAULT_TEMPLATE
            tasks = (quick_task(options.labels, template, options.text_column, name=options.task_name),)
        else:
            tasks = tuple(config.tasks)
        for task in tasks:
            _check_trainable(task, options, f"{config.path}: task {task.name!r}: " if config is not None else "")
        plan = cls(options, config, tasks, tuple(gold_columns(options.gold, tasks, config is None)))
        check_output_folder(options.output, REPORT_FILE)  # also refuses an input file as the output
        return plan

    def where(self, task: Task) -> str:
        """How errors name a task: its config file and name (empty on the labels path)."""
        return f"{self.config.path}: task {task.name!r}" if self.config is not None else ""


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
