"""``t5cls score``: the flags of a scoring run, mapped onto `t5cls.options`, then one call into `t5cls.run`."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from t5cls.cli import options as o
from t5cls.cli.options import model_options, one_line_errors, unescape
from t5cls.errors import InputError
from t5cls.options import DEFAULT_CHUNK_ROWS, ModelOptions, ProgressOptions, RayOptions, ScoreOptions

ENGINES = ("local", "ray")
Input = Annotated[str, typer.Argument(help="CSV, JSONL or Parquet file (optionally .gz); '-' reads stdin.")]


@one_line_errors
def score_command(
    input: Input,
    labels: o.Labels = None,
    config: o.Config = None,
    rank_by: o.RankBy = None,
    output: o.Output = None,
    model: o.Model = None,
    revision: o.Revision = None,
    template: o.Template = None,
    text_column: o.TextColumn = "text",
    input_format: o.InputFormat = None,
    format: o.OutputFormat = None,
    batch_size: o.BatchSize = "auto",
    chunk_size: o.ChunkSize = DEFAULT_CHUNK_ROWS,
    device: o.Device = "auto",
    dtype: o.Dtype = "auto",
    max_length: o.MaxLength = None,
    label_end: o.LabelEnd = None,
    chat: o.Chat = False,
    logprobs: o.Logprobs = False,
    on_null: o.OnNull = "error",
    resume: o.Resume = False,
    dry_run: o.DryRun = False,
    quiet: o.Quiet = False,
    log_every: o.LogEvery = 30.0,
    engine: o.Engine = "local",
    num_workers: o.NumWorkers = None,
    gpus_per_worker: o.GpusPerWorker = 0.0,
    cpus_per_worker: o.CpusPerWorker = 1.0,
    debug: o.Debug = False,
) -> None:
    """Score every row against every label and write the input plus p_<label>, pred and entropy.

    With --config, every task of the file is scored and its columns are prefixed <task>_.
    With --engine ray, the rows are scored by a pool of Ray actors (local Ray, or $RAY_ADDRESS).
    """
    template = None if template is None else unescape(template, "template")
    options = ScoreOptions(
        input=input,
        labels=labels,
        output=output,
        config=config,
        template=template,
        text_column=text_column,
        input_format=input_format,
        output_format=format,
        logprobs=logprobs,
        on_null=on_null,
        chunk_rows=chunk_size,
        resume=resume,
        rank_by=rank_by,
    )
    model_settings = model_options(model, revision, device, dtype, batch_size, max_length, label_end, chat)
    progress = ProgressOptions(quiet=quiet, log_every=log_every)
    if engine not in ENGINES:
        raise InputError(f"--engine must be local or ray, got {engine!r}")
    if engine == "ray":
        layout = RayOptions(num_workers=num_workers, gpus_per_worker=gpus_per_worker, cpus_per_worker=cpus_per_worker)
        _score_on_ray(options, model_settings, layout, progress, dry_run)
    else:
        _score_locally(options, model_settings, progress, dry_run)


def _score_locally(options: ScoreOptions, model: ModelOptions, progress: ProgressOptions, dry_run: bool) -> None:
    """One input, one process: everything is checked, then the model loads and scores every chunk."""
    from contextlib import closing

    from t5cls.cli.plan import describe
    from t5cls.io.lock import output_lock
    from t5cls.io.readers import open_input
    from t5cls.models.scorer import LabelScorer
    from t5cls.run.local import LocalRunner
    from t5cls.run.plan import ScorePlan
    from t5cls.run.progress import RowProgress
    from t5cls.run.signals import StopRequest

    plan = ScorePlan.build(options)
    lock = output_lock(None if dry_run else options.output)  # before the model loads: a busy output stops at once
    with lock, closing(open_input(options.input, options.chunk_rows, options.input_format)) as source:
        plan.check_input(source.columns, options.input)
        runner = LocalRunner(plan, LabelScorer.from_options(model))
        if dry_run:
            print(describe(runner, source))
            return
        with StopRequest().installed() as stop:
            summary = runner.run(source, RowProgress.from_options(progress), stop)
    print(summary.line(), file=sys.stderr)


def _score_on_ray(
    options: ScoreOptions, model: ModelOptions, layout: RayOptions, progress: ProgressOptions, dry_run: bool
) -> None:
    """Many inputs on Ray actors; a dry run shows the plan for the first file, as a local run would."""
    from dataclasses import replace

    from t5cls.run.progress import RowProgress
    from t5cls.run.ray import RayRunner
    from t5cls.run.signals import StopRequest

    runner = RayRunner(options, model, layout)
    if dry_run:
        print(f"engine: ray, {len(runner.files)} input files; the first one:")
        _score_locally(replace(options, input=runner.files[0], output=None), model, progress, True)
        return
    with StopRequest().installed() as stop:
        summary = runner.run(RowProgress.from_options(progress), stop)
    print(summary.line(), file=sys.stderr)
