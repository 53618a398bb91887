"""`calibrate_file`: ``t5cls calibrate`` as one call. Score a labelled dev file, fit T, write the task with T.

The dev file is scored by a `ChunkScorer`, the step every scoring run shares (mode, verbalizers,
few-shot prefix, content-free reference, rows named in errors), in the chunks a run cuts by
default (``batch`` mode normalises over a chunk); `t5cls.eval.calibration` fits T on those scores, and
`t5cls.tasks.config` writes the task back with every key it was read with.
"""

from __future__ import annotations

import os
from dataclasses import replace

import numpy as np
import pyarrow as pa

from t5cls.errors import InputError, OptionError, literal
from t5cls.eval.calibration import Calibration, DevSet, calibrate, fitted_comment, read_dev_file
from t5cls.eval.conformal import check_rows, fit_sets
from t5cls.io.lock import output_lock
from t5cls.io.paths import check_output_file, is_stream
from t5cls.models.scorer import LabelScorer
from t5cls.options import DEFAULT_CHUNK_ROWS, CalibrateOptions, ModelOptions, ScoreOptions
from t5cls.probability import softmax
from t5cls.run.chunks import ChunkScorer
from t5cls.run.plan import ScorePlan
from t5cls.tasks.config import Task, TaskSet, conformal_refusal, load_tasks, write_config


def calibrate_file(options: CalibrateOptions, model: ModelOptions) -> Calibration:
    """Fit the task's temperature on ``options.dev`` and write it to ``options.output`` as a config.

    Everything that needs no model (the task, its name, the output path, every dev row) is
    checked before the model loads. The written task keeps every key of its config table
    (few-shot ``examples`` too, its ``file`` relative to the written config), with the fitted ``temperature``,
    and with ``options.coverage`` the prediction sets fitted on the same rows' calibrated probabilities.
    """
    task_set = load_tasks(
        options.labels, options.config, options.template, options.text_column, options.task_name
    ).only(options.task)
    [task] = task_set.tasks
    # `score --config` reads TOML: a .csv name would mislead (a FIFO or device, e.g. /dev/stdout, is no name)
    if not options.output.lower().endswith(".toml") and not is_stream(options.output):
        raise OptionError(
            f"{{output}} {literal(options.output)}: calibrate writes a TOML task config; "
            "name it .toml (e.g. fitted.toml)"
        )
    check_output_file(options.output, options.dev)
    if options.coverage is not None:
        check_sets(task, task_set.where(task))
    if task.multi_label:
        raise InputError(
            f"{task_set.where(task)}: a multi-label task has no softmax over classes to fit a temperature to"
        )
    with output_lock(options.output):  # one calibration per config file at a time
        dev = read_dev_file(options.dev, task.template, list(task.classes), options.gold)
        keep = rows_to_fit(task, options.dev, len(dev.gold))
        if options.coverage is not None:
            check_rows(int(keep.sum()), options.coverage, options.dev)
        scorer = LabelScorer.from_options(model)
        scores = class_scores(ChunkScorer(_dev_plan(options, task_set), scorer), dev, options.dev)
        result = replace(calibrate(scores[keep], dev.gold[keep]), left_out=int((~keep).sum()))
        table = task_set.table(task, os.path.dirname(options.output))
        table["temperature"] = float(result.temperature)
        if options.coverage is not None:
            probs = softmax(scores[keep], result.temperature)
            result = replace(result, sets=fit_sets(probs, dev.gold[keep], options.coverage, options.conformal))
            table.update(coverage=result.sets.coverage, conformal=result.sets.method)
            table["conformal_threshold"] = result.sets.threshold
        write_config(options.output, [table], [fitted_comment(result, options.dev, scorer.name_or_path)])
    return result


def check_sets(task: Task, where: str) -> None:
    """Refuse ``coverage`` for a task whose rows have no one true class (`conformal_refusal`), naming the task."""
    if refusal := conformal_refusal(task.classes, task.multi_label, task.values):
        name = where or f"task {task.name!r}"
        raise OptionError(f"{literal(name)}: {{coverage}}: {literal(refusal)}")


def class_scores(chunks: ChunkScorer, dev: DevSet, source: str) -> np.ndarray:
    """(N, C) the task's class log-scores before its temperature, exactly as ``t5cls score`` computes them."""
    scores = []
    for start in range(0, len(dev.gold), DEFAULT_CHUNK_ROWS):
        table = pa.table({name: values[start : start + DEFAULT_CHUNK_ROWS] for name, values in dev.columns.items()})
        [result] = chunks.results(chunks.prepare(table, start, source))
        scores.append(result.log_scores)
    return np.concatenate(scores)


def _dev_plan(options: CalibrateOptions, task_set: TaskSet) -> ScorePlan:
    """The plan that scores the dev file's rows with the task being calibrated, writing nothing."""
    score = ScoreOptions(
        input=options.dev,
        labels=options.labels,
        config=options.config,
        template=options.template,
        text_column=options.text_column,
    )
    return ScorePlan.in_memory(score, task_set)


def rows_to_fit(task: Task, dev: str, rows: int) -> np.ndarray:
    """Which dev rows T is fitted on: all but the task's demonstrations (`Examples.rows_in`)."""
    keep = np.ones(rows, dtype=bool)
    if task.examples is not None:
        keep[[row - 1 for row in task.examples.rows_in(dev)]] = False
        if not keep.any():
            raise InputError(f"{dev}: every row is one of task {task.name!r}'s demonstrations; none is left to fit on")
    return keep
