"""``t5cls train``: the flags of a training run, mapped onto `t5cls.train.TrainOptions`, then one call to `train`."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from t5cls.cli import flags as o
from t5cls.cli.flags import defaults, model_flags, one_line_errors, option, output_option, progress_flags, task_flags
from t5cls.options import ModelOptions, ProgressOptions, TaskSource, TrainOptions

TRAIN = defaults(TrainOptions)

TrainFile = Annotated[str, typer.Argument(metavar="TRAIN", help="Labelled training file (CSV, JSONL or Parquet).")]
Dev = Annotated[
    str | None,
    option("dev", "--dev", help="Labelled dev file: evaluated every epoch, picks the best checkpoint, fits T."),
]
TrainOutput = Annotated[str, output_option("Output folder: model, tokenizer, t5cls.toml, report.")]
TaskName = Annotated[str, option("task_name", "--task", help="Name of the --labels task in the written t5cls.toml.")]
Loss = Annotated[
    str, option("loss", "--loss", help="label-set (cross-entropy over the exact class scores) or generative.")
]
ClassWeights = Annotated[
    str, option("class_weights", "--class-weights", help="none, or balanced: weigh each class by n / (k · n_class).")
]
Epochs = Annotated[int, option("epochs", "--epochs", help="Passes over the training file.")]
LearningRate = Annotated[float, option("learning_rate", "--learning-rate", "--lr", help="AdamW's peak learning rate.")]
GradAccum = Annotated[
    int, option("grad_accum", "--grad-accum", help="Batches whose gradients add up to one optimisation step.")
]
Warmup = Annotated[
    float, option("warmup", "--warmup", help="Share of the steps that warm the learning rate up (then linear decay).")
]
WeightDecay = Annotated[float, option("weight_decay", "--weight-decay", help="AdamW's weight decay.")]
Seed = Annotated[int, option("seed", "--seed", help="Seed of the data order, dropout and initialisation.")]
Patience = Annotated[
    int, option("patience", "--patience", help="Stop after this many evaluations without a lower dev loss (0: never).")
]
EvalEvery = Annotated[
    int | None,
    option("eval_every", "--eval-every", help="Evaluate and checkpoint every N steps \\[default: every epoch]."),
]


@one_line_errors
@model_flags
@progress_flags
@task_flags
def train_command(
    train: TrainFile,
    gold: o.Gold,
    output: TrainOutput,
    task_source: TaskSource = None,
    dev: Dev = None,
    model_options: ModelOptions = None,
    task: TaskName = TRAIN["task_name"],
    on_null: o.OnNull = TRAIN["on_null"],
    loss: Loss = TRAIN["loss"],
    class_weights: ClassWeights = TRAIN["class_weights"],
    epochs: Epochs = TRAIN["epochs"],
    learning_rate: LearningRate = TRAIN["learning_rate"],
    grad_accum: GradAccum = TRAIN["grad_accum"],
    warmup: Warmup = TRAIN["warmup"],
    weight_decay: WeightDecay = TRAIN["weight_decay"],
    seed: Seed = TRAIN["seed"],
    patience: Patience = TRAIN["patience"],
    eval_every: EvalEvery = TRAIN["eval_every"],
    resume: o.Resume = TRAIN["resume"],
    progress: ProgressOptions = None,
    debug: o.Debug = False,
) -> None:
    """Fine-tune a model as the classifier it will be scored as, and write it with a t5cls.toml for `score --config`.

    --gold names the gold column; with a config of several tasks, give task=column,task=column.
    --batch-size is the rows per forward pass, training (auto: 16) and dev scoring; --grad-accum make a step.
    """
    from t5cls.signals import StopRequest
    from t5cls.train import train as train_model

    options = TrainOptions(
        train=train,
        output=output,
        gold=gold,
        **task_source.keywords(),
        task_name=task,
        dev=dev,
        on_null=on_null,
        loss=loss,
        class_weights=class_weights,
        epochs=epochs,
        learning_rate=learning_rate,
        grad_accum=grad_accum,
        warmup=warmup,
        weight_decay=weight_decay,
        seed=seed,
        patience=patience,
        eval_every=eval_every,
        resume=resume,
    )
    with StopRequest().installed() as stop:
        summary = train_model(options, model_options, progress, stop)
    for line in summary.lines():
        print(line, file=sys.stderr)
