"""``t5cls score``: the flags of a scoring run, mapped onto `t5cls.options`, then one call into `t5cls.run`."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from t5cls.cli import flags as o
from t5cls.cli.flags import defaults, model_flags, one_line_errors, progress_flags, ray_flags, task_flags
from t5cls.errors import OptionError, literal
from t5cls.options import ModelOptions, ProgressOptions, RayOptions, ScoreOptions, TaskSource

SCORE = defaults(ScoreOptions)
ENGINES = ("local", "ray")
Input = Annotated[
    str,
    typer.Argument(
        metavar="INPUT",
        help="CSV, JSONL or Parquet file (text optionally .gz, .bz2, .zst or .lz4); '-' reads stdin "
        "(CSV, or JSONL/Parquet by its first bytes).",
    ),
]


@one_line_errors
@model_flags
@progress_flags
@ray_flags
@task_flags
def score_command(
    input: Input,
    task_source: TaskSource = None,
    rank_by: o.RankBy = None,
    output: o.Output = None,
    model_options: ModelOptions = None,
    input_format: o.InputFormat = None,
    format: o.OutputFormat = None,
    chunk_size: o.ChunkSize = SCORE["chunk_rows"],
    logprobs: o.Logprobs = SCORE["logprobs"],
    on_null: o.OnNull = SCORE["on_null"],
    resume: o.Resume = SCORE["resume"],
    dry_run: o.DryRun = False,
    progress: ProgressOptions = None,
    engine: o.Engine = "local",
    ray_options: RayOptions = None,
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
        **task_source.keywords(),
        output=output,
        input_format=input_format,
        output_format=format,
        logprobs=logprobs,
        on_null=on_null,
        chunk_rows=chunk_size,
        resume=resume,
        rank_by=rank_by,
    )
    ray = ray_options if engine == "ray" else None
    _score(options, model_options, progress, ray, dry_run)


def _score(
    options: ScoreOptions, model: ModelOptions, progress: ProgressOptions, ray: RayOptions | None, dry_run: bool
) -> None:
    """The run itself (`score_file` imports torch only once everything that needs no model is checked):
    a plan on stdout, or a summary line."""
    from t5cls.run.job import score_file
    from t5cls.run.progress import RowProgress
    from t5cls.signals import StopRequest

    with StopRequest().installed() as stop:
        summary = score_file(options, model, RowProgress.from_options(progress), stop, ray=ray, dry_run=dry_run)
    if dry_run:
        print(summary.plan)
    else:
        print(summary.line(), file=sys.stderr)
