"""``t5cls score``: the flags of a scoring run, read off `t5cls.options.ScoreOptions` and the model's, then one call
into `t5cls.run`."""

from __future__ import annotations

import sys
from collections.abc import Callable
from functools import wraps

from t5cls.cli import flags as o
from t5cls.cli.flags import model_flags, one_line_errors, options_flags, progress_flags, ray_flags
from t5cls.errors import OptionError, literal
from t5cls.options import ModelOptions, ProgressOptions, RayOptions, ScoreOptions

ENGINES = ("local", "ray")
score_flags = options_flags(ScoreOptions, "options", rest=("input_format", "model_options"))


def engine_checked(command: Callable) -> Callable:
    """``--engine`` checked before the `ScoreOptions` are made of the other flags (its error comes first)."""

    @wraps(command)
    def run(*args, engine: str, **kwargs):
        if engine not in ENGINES:
            raise OptionError(f"{{engine}} must be local or ray, got {literal(repr(engine))}")
        return command(*args, engine=engine, **kwargs)

    return run


@one_line_errors
@model_flags
@progress_flags
@ray_flags
@engine_checked
@score_flags
def score_command(
    options: ScoreOptions = None,
    model_options: ModelOptions = None,
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
