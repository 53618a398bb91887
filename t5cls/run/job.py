"""`score_file`: a whole scoring job from validated options, the one entry point `t5cls score` calls.

    ScoreOptions ─ ScorePlan (tasks, columns, output; no model) ─┬─ LocalRunner (one input, this process)
                                                                 └─ RayRunner (many files, an actor pool)

Everything that needs no model (options, config, templates, input columns, output path) is
checked first, before torch and transformers are even imported, so a mistake fails in a second.
A ``--resume`` whose output an identical run already finished stops there too (up to date). A
dry run goes as far as loading the model and reading the first row, and returns the plan as text
instead of scoring.

>>> from t5cls import ModelOptions, ScoreOptions, score_file
>>> summary = score_file(ScoreOptions("in.csv", ("yes", "no"), "out.csv"), ModelOptions("google/flan-t5-small"))
"""

from __future__ import annotations

import time
from contextlib import closing
from dataclasses import replace
from typing import TYPE_CHECKING

from t5cls.errors import OptionError
from t5cls.hub import hub_files
from t5cls.io.lock import output_lock
from t5cls.io.readers import InputSource, open_input
from t5cls.options import ModelOptions, RayOptions, ScoreOptions
from t5cls.run.finished import up_to_date
from t5cls.run.plan import ScorePlan
from t5cls.run.progress import RowProgress
from t5cls.run.summary import Summary
from t5cls.signals import StopRequest

if TYPE_CHECKING:  # torch: imported by the functions that load a model, after every model-free check
    from t5cls.models.scorer import LabelScorer


def score_file(
    options: ScoreOptions,
    model: ModelOptions | LabelScorer,
    progress: RowProgress | None = None,
    stop: StopRequest | None = None,
    *,
    ray: RayOptions | None = None,
    dry_run: bool = False,
) -> Summary:
    """Score ``options.input`` and write ``options.output``: the whole of ``t5cls score``.

    ``model`` is the model to load, or a scorer you already hold (local runs only). With ``ray``,
    ``options.input`` may be a folder, glob or URI of CSV/Parquet files and ``options.output`` is a
    folder of Parquet parts, scored by a Ray actor pool. With ``dry_run`` nothing is scored or
    written: the summary's ``plan`` is the model, each task's prompt for the first row (few-shot
    demonstrations included) and its labels' token ids (on Ray: those of the first file).
    """
    if ray is None:
        return _score_locally(ScorePlan.build(options), model, progress, stop, dry_run)
    if not isinstance(model, ModelOptions):
        raise OptionError("{ray} loads a model in every worker: give ModelOptions, not a loaded scorer")
    from t5cls.run.ray import RayRunner

    runner = RayRunner(ScorePlan.build(options, folder_output=True), model, ray)
    hub_files(model.name, model.revision)  # before Ray starts: a hub name without the Hub fails now
    if not dry_run:
        return runner.run(progress, stop)
    local = _score_locally(runner.plan.on_stdout(runner.files[0]), model, None, None, dry_run=True)
    output = f"output: {runner.output.uri} (a folder of Parquet parts)"
    lines = [output if line.startswith("output: ") else line for line in local.plan.splitlines()]
    return replace(local, plan="\n".join([f"engine: ray, {len(runner.files)} input files; the first one:", *lines]))


def _score_locally(
    plan: ScorePlan,
    model: ModelOptions | LabelScorer,
    progress: RowProgress | None,
    stop: StopRequest | None,
    dry_run: bool,
) -> Summary:
    """One input, one process: the input's columns are checked, then the model loads and scores every chunk."""
    options = plan.options
    lock = output_lock(None if dry_run else plan.destination)  # before the model loads: a busy output stops at once
    with lock, closing(open_input(options.input, options.chunk_rows, options.input_format)) as source:
        plan.check_input(source.columns, options.input)
        if not dry_run and isinstance(model, ModelOptions) and up_to_date(plan, model):
            return Summary(0, 0, 0, 0.0, options.output, up_to_date=True)
        return _load_and_run(plan, source, model, progress, stop, dry_run)


def _load_and_run(
    plan: ScorePlan,
    source: InputSource,
    model: ModelOptions | LabelScorer,
    progress: RowProgress | None,
    stop: StopRequest | None,
    dry_run: bool,
) -> Summary:
    """The model's part of a local run: torch and transformers are imported here, once nothing else can fail."""
    if isinstance(model, ModelOptions):
        hub_files(model.name, model.revision)  # a hub name without the Hub fails in seconds, before the imports
    from t5cls.models.scorer import LabelScorer
    from t5cls.run.dry_run import describe
    from t5cls.run.local import LocalRunner

    scorer = LabelScorer.from_options(model) if isinstance(model, ModelOptions) else model
    runner = LocalRunner(plan, scorer)
    if dry_run:
        started = time.monotonic()
        text = describe(runner, source)
        return Summary(0, 0, 0, time.monotonic() - started, plan.options.output or "stdout", plan=text)
    return runner.run(source, progress, stop)
