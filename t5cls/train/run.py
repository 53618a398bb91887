"""``t5cls train`` as one call: check everything, train (or resume), calibrate on dev, write the output folder.

>>> from t5cls.train import TrainOptions, train
>>> summary = train(TrainOptions(train="train.csv", output="models/x", gold="label", labels=("a", "b")),
...                 ModelOptions("google/flan-t5-small"))
"""

from __future__ import annotations

import json
import time

from t5cls.io.lock import output_lock
from t5cls.io.oserrors import filesystem_errors
from t5cls.models.identity import folder_digest, local_folder
from t5cls.models.loading import quiet_model_loading, resolve_device
from t5cls.options import ModelOptions, ProgressOptions, TrainOptions
from t5cls.signals import StopRequest
from t5cls.train.data import read_labelled
from t5cls.train.plan import TrainPlan
from t5cls.train.report import TrainSummary, calibrate_on_dev, write_config, write_report
from t5cls.train.session import train_model, training_precision
from t5cls.train.workdir import WorkFolder, fingerprint


def train(
    options: TrainOptions,
    model: ModelOptions,
    progress: ProgressOptions | None = None,
    stop: StopRequest | None = None,
) -> TrainSummary:
    """Fine-tune ``model`` on ``options.train`` and write ``options.output``; see `t5cls.train`.

    Files, tasks, options and the output path are all checked before the model loads.
    """
    started = time.monotonic()
    quiet_model_loading()
    plan = TrainPlan.build(options)
    training_precision(model.dtype, resolve_device(model.device))  # refuse float16 off CUDA before loading
    train_rows = read_labelled(options.train, plan.task_set, plan.gold_columns, options.on_null)
    dev_rows = (
        None if options.dev is None else read_labelled(options.dev, plan.task_set, plan.gold_columns, options.on_null)
    )
    work = WorkFolder(options.output)
    with output_lock(work.output), filesystem_errors(work.root, resumable=True), work.write_errors():
        checkpoint = work.start(_fingerprint(plan, model), options.resume)
        outcome = train_model(
            plan, model, (train_rows, dev_rows), work, checkpoint, progress or ProgressOptions(), stop or StopRequest()
        )
        results = [] if dev_rows is None else calibrate_on_dev(plan, model, dev_rows, work.final)
        summary = TrainSummary(options.output, time.monotonic() - started, outcome, results)
        write_config(plan, model, results, work.final)
        write_report(plan, model, (train_rows, dev_rows), summary, work.final)
        work.publish()
    return summary


def _fingerprint(plan: TrainPlan, model: ModelOptions) -> dict[str, str]:
    from dataclasses import asdict

    options = {key: value for key, value in asdict(plan.options).items() if key != "resume"}
    config = plan.task_set.config
    tasks = config.text if config is not None else json.dumps([task.name for task in plan.tasks])
    folder = local_folder(model.name)
    files = folder_digest(folder) if folder is not None else None
    return fingerprint(options, asdict(model), files, tasks, plan.options.train, plan.options.dev)
