"""A scoring job over a file: input chunks → prompts → scorer → output chunks.

A job asks one or more questions (`t5cls.tasks.Task`) of every row: the single task of
``--labels``, whose columns have no prefix, or the tasks of a ``--config`` file, all scored in
one pass. `ScoreJob` checks everything that can be checked without the model (labels,
templates, columns, paths) when it is built, so bad input fails in a second, not after a model
load. `run` then streams the input in fixed-size chunks; reading, prompting and tokenizing the
next chunk happen in a background thread while the model scores the current one.
"""

from __future__ import annotations

import json
import os
import queue
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import asdict, dataclass, replace

import pyarrow as pa

from t5cls import __version__
from t5cls.chunk_scoring import NULL_POLICIES, ChunkScorer, PreparedChunk, columns_needed, drop_or_fill_nulls, template_values, with_scores
from t5cls.errors import InputError
from t5cls.labels import parse_labels
from t5cls.output import FileOutput, StdoutOutput
from t5cls.progress import RowProgress
from t5cls.prompts import DEFAULT_TEMPLATE
from t5cls.ranking import Ranking, add_ranks, unranked_path
from t5cls.readers import file_identity, open_input
from t5cls.scorer import LabelScorer
from t5cls.signals import Interrupted, StopRequest
from t5cls.task_scoring import TaskScorer, empty_result, task_prompts
from t5cls.tasks import Config, Task, load_config, quick_task
from t5cls.writers import output_format

@dataclass
class ScoreOptions:
    """Everything that decides what a scoring run writes (the model aside)."""

    input: str
    labels: list[str] | str | None = None
    output: str | None = None
    template: str | None = None  # None: DEFAULT_TEMPLATE on the --labels path
    text_column: str = "text"
    input_format: str | None = None
    output_format: str | None = None
    logprobs: bool = False
    on_null: str = "error"
    chunk_rows: int = 1000
    resume: bool = False
    config: str | None = None
    rank_by: str | None = None


@dataclass
class Summary:
    """What a finished (or interrupted) run did, for the final stderr line."""

    rows: int
    skipped: int
    truncated: int
    seconds: float
    output: str
    scored_now: int = 0

    def line(self) -> str:
        rate = self.scored_now / self.seconds if self.seconds > 0 else 0.0
        return (
            f"t5cls: {self.rows} rows, {self.skipped} skipped, {self.truncated} truncated, "
            f"{self.seconds:.1f} s, {rate:.1f} rows/s -> {self.output}"
        )


class ScoreJob:
    """One ``t5cls score`` run, validated up front."""

    def __init__(self, options: ScoreOptions):
        self.options = options
        self.config = load_config(options.config) if options.config is not None else None
        self.tasks = self._tasks()
        if options.on_null not in NULL_POLICIES:
            raise InputError(f"--on-null must be one of {', '.join(NULL_POLICIES)}, got {options.on_null!r}")
        if options.chunk_rows < 1:
            raise InputError("--chunk-size must be at least 1")
        self.format = output_format(options.output, options.output_format)
        _check_output_path(options)
        self.source = open_input(options.input, options.chunk_rows, options.input_format)
        for task in self.tasks:
            self._check_columns(task)
        self.rankings = [
            Ranking(task.column("score"), task.rank_by, task.column("rank")) for task in self.tasks if task.rank_by
        ]
        if self.rankings and options.output in (None, "-"):
            raise InputError("ranking (rank_by) needs an output file (-o PATH): ranks are known only once every row is scored")
        self._check_output_columns()

    def _tasks(self) -> list[Task]:
        """The tasks of ``--config``, or the one task of ``--labels``."""
        options = self.options
        if self.config is None:
            if options.labels is None:
                raise InputError("give the labels with --labels a,b,... or the tasks with --config FILE")
            if options.rank_by is not None:
                raise InputError("--rank-by needs --config with a task that sets 'positive' (the class whose probability it ranks by)")
            return [quick_task(parse_labels(options.labels), options.template or DEFAULT_TEMPLATE, options.text_column)]
        if options.labels is not None:
            raise InputError("give either --labels or --config, not both")
        if options.template is not None or options.text_column != "text":
            raise InputError("--template and --text-column go with --labels; with --config, set them in each [[task]]")
        if options.rank_by is None:
            return self.config.tasks
        if not any(task.positive for task in self.config.tasks):
            raise InputError(f"{self.config.path}: --rank-by needs a task that sets 'positive' (the class whose probability it ranks by)")
        return [replace(task, rank_by=options.rank_by) if task.positive else task for task in self.config.tasks]

    def _check_columns(self, task: Task) -> None:
        """Every column a task reads must be in the input (errors name the config and task)."""
        if self.config is None:
            task.template.check_columns(self.source.columns, self.options.input)
            return
        shown = ", ".join(self.source.columns)
        where = f"{self.config.path}: task {task.name!r}"
        for column in task.template.missing_columns(self.source.columns):
            raise InputError(f"{where}: 'template' reads column {column!r}, which {self.options.input} lacks; columns are: {shown}")
        if task.rank_by is not None and task.rank_by not in self.source.columns:
            raise InputError(f"{where}: 'rank_by' column {task.rank_by!r} is not in {self.options.input}; columns are: {shown}")

    def _check_output_columns(self) -> None:
        """The columns the output adds may not already be in the input, nor come twice."""
        names = list(self._empty_output(self.source.empty.select([])).column_names)
        names += [ranking.rank_column for ranking in self.rankings]
        clash = [name for name in names if name in self.source.columns]
        if clash:
            raise InputError(f"{self.options.input}: input already has column(s) {', '.join(clash)} that the output would add")
        twice = [name for name in names if names.count(name) > 1]
        if twice:
            raise InputError(f"{self.config.path}: two tasks would both write column {twice[0]!r}; rename one of them")

    def bind(self, scorer: LabelScorer) -> list[TaskScorer]:
        """The tasks bound to the model; checks the labels against the tokenizer before any scoring."""
        return bind_tasks(self.tasks, self.config, scorer)

    def chunk_scorer(self, scorer: LabelScorer) -> ChunkScorer:
        """What turns this job's input chunks into output chunks with ``scorer``."""
        return ChunkScorer(self.tasks, self.bind(scorer), self.options.on_null, self.options.logprobs)

    def run(self, scorer: LabelScorer, progress: RowProgress, stop: StopRequest) -> Summary:
        """Score the whole input; raises `Interrupted` after the chunk in hand when asked to stop."""
        started = time.monotonic()
        chunks = self.chunk_scorer(scorer)
        output = self._open_output(scorer)
        skip = output.rows_done_before
        counters = Counter(output.counters_before)
        progress.start(self.source.total_rows, skip)
        wrote_any = bool(skip)
        for prepared in _prefetched(self._prepared_chunks(chunks, skip)):
            scored = chunks.score(prepared)
            counters.update(rows=scored.table.num_rows, skipped=scored.skipped, truncated=scored.truncated)
            counters["scored_now"] += scored.input_rows
            output.write_chunk(scored.table, scored.input_rows, _persistent(counters))
            wrote_any = True
            progress.advance(scored.input_rows)
            if stop.requested:
                progress.stop()
                raise Interrupted(stop.signum, self._interrupted_message(output, counters))
        if not wrote_any:
            output.write_chunk(self._empty_output(self.source.empty), 0, _persistent(counters))
        output.finish()
        if self.rankings:
            add_ranks(output.description, self.options.output, self.format, self.rankings, self.provenance(scorer))
        progress.stop()
        return Summary(
            counters["rows"], counters["skipped"], counters["truncated"], time.monotonic() - started,
            self.options.output if self.rankings else output.description, counters["scored_now"],
        )

    def _empty_output(self, empty_input: pa.Table) -> pa.Table:
        """The output of zero rows: the input's columns and every task's (empty) columns."""
        return with_scores(empty_input, self.tasks, [empty_result(task) for task in self.tasks], self.options.logprobs)

    def first_prompts(self) -> list[str | None]:
        """Each task's prompt for the first usable row (for ``--dry-run``; multi-label: the first question)."""
        needed = columns_needed(self.tasks)
        for table in self.source.chunks:
            table, _ = drop_or_fill_nulls(table, needed, self.options.on_null, 0, self.options.input)
            if table.num_rows:
                values = template_values(table.slice(0, 1), needed)
                return [task_prompts(task, values)[0] for task in self.tasks]
        return [None for _ in self.tasks]

    def _interrupted_message(self, output, counters: Counter) -> str:
        done = output.rows_done_before if isinstance(output, FileOutput) else counters["scored_now"]
        if isinstance(output, FileOutput):
            return f"interrupted after {done} input rows; checkpoint kept, rerun the same command with --resume"
        return f"interrupted after {done} input rows written to stdout"

    def _open_output(self, scorer: LabelScorer):
        metadata = self.provenance(scorer)
        if self.options.output in (None, "-"):
            if self.options.resume:
                raise InputError("--resume needs an output file (-o PATH); stdout cannot be resumed")
            return StdoutOutput(self.format, metadata)
        path = unranked_path(self.options.output) if self.rankings else self.options.output
        return FileOutput(path, self.format, self.fingerprint(scorer), metadata, self.options.resume)

    def _prepared_chunks(self, chunks: ChunkScorer, skip: int) -> Iterator[PreparedChunk]:
        """Read, null-check, render and tokenize chunks, skipping ``skip`` rows already done."""
        row = 0
        for table in self.source.chunks:
            if row + table.num_rows <= skip:
                row += table.num_rows
                continue
            if row < skip:
                raise InputError(f"{self.options.input}: the checkpoint does not fall on a chunk boundary; rerun without --resume")
            yield chunks.prepare(table, row, self.options.input)
            row += table.num_rows

    def fingerprint(self, scorer: LabelScorer) -> dict[str, str]:
        """What must be unchanged for ``--resume`` to continue a checkpoint."""
        options = asdict(self.options)
        options.pop("resume")
        identity = file_identity(self.options.input) if self.options.input != "-" else None
        fingerprint = {
            "t5cls version": __version__,
            "input file": json.dumps(identity),
            "model": scorer.name_or_path,
            "model dtype": str(scorer.model.dtype),
            "max length": str(scorer.max_length),
            "label end": scorer.label_end,
            "chat template": str(scorer.chat),
            "options": json.dumps(options, sort_keys=True),
        }
        if self.config is not None:
            fingerprint["config"] = self.config.text
        return fingerprint

    def provenance(self, scorer: LabelScorer) -> dict[str, str]:
        """Key-value metadata stored in Parquet output: the labels and template, or the config."""
        return provenance(self.options, self.tasks, self.config, scorer)


def bind_tasks(tasks: list[Task], config: Config | None, scorer: LabelScorer) -> list[TaskScorer]:
    """Tasks bound to the model; errors of a config's task name the file and the task."""
    return [TaskScorer(task, scorer, f"{config.path}: task {task.name!r}" if config else "") for task in tasks]


def provenance(options: ScoreOptions, tasks: list[Task], config: Config | None, scorer: LabelScorer) -> dict[str, str]:
    """Key-value metadata stored in Parquet output: the labels and template, or the config."""
    metadata = {
        "t5cls.version": __version__,
        "t5cls.model": scorer.name_or_path,
        "t5cls.model_revision": str(getattr(scorer.model.config, "_commit_hash", None) or "local"),
    }
    if config is None:
        metadata["t5cls.labels"] = json.dumps(list(tasks[0].classes), ensure_ascii=False)
        metadata["t5cls.template"] = tasks[0].template.template
    else:
        metadata["t5cls.config"] = config.text
    metadata["t5cls.dtype"] = str(scorer.model.dtype).removeprefix("torch.")
    metadata["t5cls.options"] = json.dumps(
        {"text_column": options.text_column, "on_null": options.on_null, "max_length": scorer.max_length,
         "label_end": scorer.label_end, "chat": scorer.chat}
    )
    return metadata


def _persistent(counters: Counter) -> dict[str, int]:
    """Counters worth keeping in a checkpoint (rows scored by this process are not)."""
    return {key: counters[key] for key in ("rows", "skipped", "truncated")}


def _check_output_path(options: ScoreOptions) -> None:
    output = options.output
    if output in (None, "-"):
        return
    directory = os.path.dirname(os.path.abspath(output))
    if not os.path.isdir(directory):
        raise InputError(f"{output}: output directory {directory} does not exist")
    if options.input != "-" and os.path.exists(output) and os.path.samefile(output, options.input):
        raise InputError(f"{output}: output path is the input file; write to a different path")


_DONE = object()


def _prefetched(items: Iterator) -> Iterator:
    """Run ``items`` one step ahead in a background thread (errors are re-raised here)."""
    handoff: queue.Queue = queue.Queue(maxsize=1)

    def produce() -> None:
        try:
            for item in items:
                handoff.put(item)
        except BaseException as err:  # handed to the consumer, which re-raises it
            handoff.put(err)
        handoff.put(_DONE)

    threading.Thread(target=produce, daemon=True).start()
    while (item := handoff.get()) is not _DONE:
        if isinstance(item, BaseException):
            raise item
        yield item
