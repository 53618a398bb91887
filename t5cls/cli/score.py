"""``t5cls score``: the flags of a scoring run, mapped onto `t5cls.options`, then one call into `t5cls.run`."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from t5cls.cli import options as o
from t5cls.cli.options import model_options, one_line_errors, unescape
from t5cls.errors import OptionError, literal
from t5cls.options import (
    DEFAULT_CHUNK_ROWS,
    DEFAULT_LOG_EVERY,
    ModelOptions,
    ProgressOptions,
    RayOptions,
    ScoreOptions,
)
from t5cls.tasks.prompts import DEFAULT_TEXT_COLUMN

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
    text_column: o.TextColumn = DEFAULT_TEXT_COLUMN,
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
    log_every: o.LogEvery = DEFAULT_LOG_EVERY,
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
    if engine not in ENGINES:
        raise OptionError(f"{{engine}} must be local or ray, got {literal(repr(engine))}")
    options = ScoreOptions(
        input=input,
        labels=labels,
        output=output,
        config=config,
        template=None if template is None else unescape(template, "template"),
        text_column=text_column,
        input_format=input_format,
        output_format=format,
        logprobs=logprobs,
        on_null=on_null,
        chunk_rows=chunk_size,
        resume=resume,
        rank_by=rank_by,
    )
    model_settings = model_options(
        name_or_path=model,
        revision=revision,
        device=device,
        dtype=dtype,
        batch_size=batch_size,
        max_length=max_length,
        label_end=label_end,
        chat=chat,
    )
    progress = ProgressOptions(quiet=quiet, log_every=log_every)
    ray = None
    if engine == "ray":
        ray = RayOptions(num_workers=num_workers, gpus_per_worker=gpus_per_worker, cpus_per_worker=cpus_per_worker)
    _score(options, model_settings, progress, ray, dry_run)


def _score(
    options: ScoreOptions, model: ModelOptions, progress: ProgressOptions, ray: RayOptions | None, dry_run: bool
) -> None:
    """The run itself (torch is imported only now, once every flag is read): a plan on stdout, or a summary line."""
    from t5cls.run.job import score_file
    from t5cls.run.progress import RowProgress
    from t5cls.signals import StopRequest

    with StopRequest().installed() as stop:
        summary = score_file(options, model, RowProgress.from_options(progress), stop, ray=ray, dry_run=dry_run)
    if dry_run:
        print(summary.plan)
    else:
        print(summary.line(), file=sys.stderr)
