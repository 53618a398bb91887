"""`score_frame`: a pandas DataFrame, a `pyarrow.Table` or a polars DataFrame in, the same kind out, with scores.

It is ``t5cls score`` with a table for input and output: the keywords become `ScoreOptions`
and `ModelOptions` (checked as the CLI's flags are), the tasks a `ScorePlan`, and the rows go
through `LocalRunner` from an in-memory source (`t5cls.io.frames`), so prompts, modes, length-sorted
batches, the null policy and the score columns are those of a file run, value for value. What
differs is only where rows come from and go: the runner's chunks keep just the score columns (and
each row's position), and the result is the caller's own frame with those columns appended: a
DataFrame keeps its index and its columns' dtypes, and nothing of the frame is copied but the
rows that ``on_null="skip"`` leaves out.
"""

from __future__ import annotations

import inspect
import os

import pyarrow as pa

from t5cls.errors import InputError, OptionError
from t5cls.io.frames import ROW_COLUMN, Frame, as_frame, open_frame, row_positions
from t5cls.io.output import TableOutput
from t5cls.models.scorer import LabelScorer
from t5cls.options import (
    DEFAULT_CHUNK_ROWS,
    ModelOptions,
    ScoreOptions,
    TaskSource,
    check_keywords,
    keyword_names,
    keywords,
    with_keywords,
)
from t5cls.run.local import LocalRunner
from t5cls.run.plan import ScorePlan
from t5cls.run.progress import RowProgress
from t5cls.tasks.config import TaskSet, load_tasks


def score_frame(
    frame,
    labels=None,
    *,
    model: str | os.PathLike | LabelScorer | None = None,
    template: str | None = None,
    text_column: str = "text",
    config: str | None = None,
    logprobs: bool = False,
    on_null: str = "error",
    chunk_rows: int = DEFAULT_CHUNK_ROWS,
    progress: bool = False,
    **model_options,
):
    """Score every row of ``frame`` and return it with the columns ``t5cls score`` adds.

    ``labels`` (a list or ``"a,b,c"``, with ``template`` and ``text_column``) or ``config`` (a
    TOML task file) say what is asked, as in `ScoreOptions`. ``model`` is a hub name, a local
    folder, or a `LabelScorer` you already hold (load it once for many calls); a name is loaded with
    ``model_options``, the other fields of `ModelOptions` (``device``, ``dtype``, ``batch_size``,
    ``max_length``, ``label_end``, ``chat``, ``revision``...: the signature lists them all, read off
    the fields). ``progress=True`` shows a bar on stderr. A keyword it does not take is a
    `TypeError` naming the nearest one it does; ``rank_by`` is refused with the reason.

    Returns a frame of ``frame``'s kind: its columns and index unchanged (rows dropped by
    ``on_null="skip"`` left out), then ``p_<label>``, ``pred``, ``entropy``, ... with the dtypes a
    Parquet output of ``t5cls score`` reads back with.
    """
    _check_keywords(model_options)
    seen = as_frame(frame)
    tasks = TaskSource(labels, config=config, template=template, text_column=text_column)
    options = ScoreOptions(seen.name, **tasks.keywords(), logprobs=logprobs, on_null=on_null, chunk_rows=chunk_rows)
    return run_frame(seen, options, _scorer(model, model_options), progress)


def _check_keywords(model_options: dict) -> None:
    """``score_frame``'s extra keywords must be `ModelOptions`' (``rank_by`` is a known one it refuses)."""
    if "rank_by" in model_options:
        raise OptionError(
            "{rank_by} is not available for frames (ranks need a second pass over an output file): "
            "score a file with score_file, or drop rank_by"
        )
    check_keywords("score_frame", model_options, inspect.signature(score_frame).parameters)


def run_frame(frame: Frame, options: ScoreOptions, scorer: LabelScorer, progress: bool = False):
    """Score ``frame`` as ``options`` say (its ``input`` names the frame in errors; no ``output``)."""
    task_set = load_tasks(options.labels, options.config, options.template, options.text_column)
    _check_no_ranking(task_set)
    plan = ScorePlan.build(options, task_set=task_set)
    plan.check_input(frame.columns, frame.name)
    runner = LocalRunner(plan, scorer)
    source = open_frame(frame, plan.columns_needed, options.chunk_rows)
    schema = runner.chunks.output_schema(source.schema)
    output = TableOutput(pa.schema([schema.field(name) for name in [ROW_COLUMN, *plan.added_columns]]), frame.name)
    runner.run(source, RowProgress(quiet=not progress), output=output)
    return _joined(frame, output.table())


def _check_no_ranking(task_set: TaskSet) -> None:
    """Ranks need a second pass over an output file (`t5cls.run.ranking`), which a frame run does not write."""
    ranked = [task for task in task_set.tasks if task.rank_by]
    if ranked:
        raise InputError(
            f"{task_set.config.path}: task {ranked[0].name!r} sets rank_by, which is not available for frames "
            "(ranks need a second pass over an output file): score a file with score_file, or drop rank_by"
        )


def _scorer(model: str | os.PathLike | LabelScorer | None, model_options: dict) -> LabelScorer:
    """The scorer to use: ``model`` loaded with ``model_options``, or ``model`` itself when it is one."""
    if model is None or isinstance(model, (str, os.PathLike)):
        fields = {MODEL_KEYWORDS[keyword].name: value for keyword, value in model_options.items()}
        try:
            options = ModelOptions(None if model is None else str(model), **fields)
        except OptionError as err:
            raise err.renamed(keyword_names(ModelOptions)) from None
        return LabelScorer.from_options(options)
    if model_options:
        raise InputError(
            f"{', '.join(sorted(model_options))}: these go with a model name or folder; "
            "a LabelScorer you pass is used as it was loaded"
        )
    return model


MODEL_KEYWORDS = keywords(ModelOptions)
with_keywords(score_frame, ModelOptions, skip=["model"])


def _joined(frame: Frame, scores: pa.Table):
    """``frame``'s rows that were scored, with the score columns after its own, as ``frame``'s kind."""
    positions = row_positions(scores)
    scores = scores.drop_columns([ROW_COLUMN])
    if frame.kind == "pandas":
        return _joined_pandas(frame.table, positions, scores)
    table = frame.table if len(positions) == frame.num_rows else frame.table.take(pa.array(positions))
    for name, column in zip(scores.column_names, scores.columns):
        table = table.append_column(scores.schema.field(name), column)
    if frame.kind == "polars":
        import polars

        return polars.from_arrow(table)
    return table


def _joined_pandas(frame, positions, scores: pa.Table):
    import pandas as pd

    kept = frame if len(positions) == len(frame) else frame.iloc[positions]
    added = scores.to_pandas()
    added.index = kept.index
    return pd.concat([kept, added], axis=1)  # pandas ≥ 3 (copy-on-write) shares the columns, copies nothing
