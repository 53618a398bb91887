"""`ScorePlan`: everything about a scoring run that can be decided without the model.

A plan is built once from `t5cls.options.ScoreOptions` (the config is read once, here) and
checked against each input's columns with `check_input`; bad options, configs, templates and
columns fail in a second, before any model loads. It holds no open file and no model, so one plan
serves a local run, a dry run and every file of a Ray run.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

from t5cls.errors import InputError, OptionError, literal
from t5cls.io.formats import output_format
from t5cls.io.paths import Destination, check_output_file
from t5cls.io.storage import check_no_secret, check_output_object, storage_errors
from t5cls.options import ScoreOptions
from t5cls.run.ranking import Ranking
from t5cls.tasks.columns import added_columns
from t5cls.tasks.config import Config, Task, TaskSet, load_tasks


@dataclass(frozen=True)
class ScorePlan:
    """The tasks asked of every row, the columns they read and add, and where the output goes.

    ``output_format`` is ``None`` for a folder output (Ray), which is always Parquet parts.
    ``destination`` is the output's kind, decided here once: the runner, the lock and the
    finished-run record read it.
    """

    options: ScoreOptions
    task_set: TaskSet
    output_format: str | None
    rankings: tuple[Ranking, ...]
    destination: Destination

    @classmethod
    def build(
        cls,
        options: ScoreOptions,
        *,
        folder_output: bool = False,
        task_set: TaskSet | None = None,
        without_ranks: bool = False,
    ) -> ScorePlan:
        """Read the config (unless ``task_set`` is the one already read), build the tasks, check what needs no input.

        ``without_ranks`` drops every task's ``rank_by``: rows that come and go in memory (``t5cls
        serve``) have no output file for the second pass that ranks need.
        """
        if task_set is None:
            task_set = load_tasks(options.labels, options.config, options.template, options.text_column)
        task_set = task_set.ranked_by(options.rank_by)
        if without_ranks:
            task_set = replace(task_set, tasks=tuple(replace(task, rank_by=None) for task in task_set.tasks))
        tasks = task_set.tasks
        rankings = tuple(Ranking(t.column("score"), t.rank_by, t.column("rank")) for t in tasks if t.rank_by)
        destination = Destination.of(options.output, folder=folder_output)
        if rankings and destination.kind == "stdout":
            raise OptionError(
                "ranking (rank_by) needs an output file ({output} PATH): ranks are known only once every row is scored"
            )
        if destination.kind != "stdout":
            check_no_secret(options.output)  # before any message could name it
        if destination.kind in ("file", "stream", "uri") and destination.target != options.output:
            options = replace(options, output=destination.target)  # file:// is a local path, with all its guarantees
        fmt = None if folder_output else output_format(options.output, options.output_format)
        if destination.kind == "uri":
            _check_output_uri(options, fmt, rankings)
        elif destination.kind in ("file", "stream"):
            check_output_file(options.output, options.input)
            if options.resume and destination.kind == "stream":
                raise OptionError(
                    f"{{output}} {literal(options.output)} is a FIFO, socket or device, written as a stream that "
                    "cannot be resumed; drop {resume}"
                )
        plan = cls(options, task_set, fmt, rankings, destination)
        plan._check_added_columns_differ()
        return plan

    @classmethod
    def in_memory(cls, options: ScoreOptions, task_set: TaskSet) -> ScorePlan:
        """A plan whose scores stay in this process (a calibration's dev rows): no output to check, no ranks."""
        return cls(options, task_set, None, (), Destination.of(None))

    def on_stdout(self, input: str) -> ScorePlan:
        """This plan for the one file ``input``, shown as written to stdout: what a Ray dry run shows of its first file.

        Its rankings are kept (they are part of what is shown), which `build` refuses for stdout.
        """
        options = replace(self.options, input=input, output=None, resume=False)
        fmt = output_format(None, options.output_format)
        return replace(self, options=options, output_format=fmt, destination=Destination.of(None))

    @property
    def tasks(self) -> tuple[Task, ...]:
        return self.task_set.tasks

    @property
    def config(self) -> Config | None:
        """The config file the tasks came from (``None``: labels); its text is part of the resume fingerprint."""
        return self.task_set.config

    @property
    def columns_needed(self) -> list[str]:
        """Input columns any task reads (the null policy applies to all of them)."""
        needed: list[str] = []
        for task in self.tasks:
            needed += [name for name in task.template.columns_needed() if name not in needed]
        return needed

    @property
    def added_columns(self) -> list[str]:
        """Columns the output adds after the input's, rank columns included."""
        return added_columns(self.tasks, self.options.logprobs) + [r.rank_column for r in self.rankings]

    def check_input(self, columns: Sequence[str], source: str) -> None:
        """Every column a task reads must be in the input, and no column the output adds."""
        for task in self.tasks:
            self._check_task_columns(task, columns, source)
        clash = [name for name in self.added_columns if name in columns]
        if clash:
            raise InputError(f"{source}: input already has column(s) {', '.join(clash)} that the output would add")

    def _check_task_columns(self, task: Task, columns: Sequence[str], source: str) -> None:
        self.task_set.check_columns(task, columns, source)
        if task.rank_by is not None and task.rank_by not in columns and self.options.rank_by is not None:
            raise OptionError(  # the flag set every ranking task's column: blame the flag, not a task of the config
                f"{{rank_by}} {literal(repr(task.rank_by))}: no such column in {literal(source)}; "
                f"columns are: {literal(', '.join(columns))}"
            )
        if task.rank_by is not None and task.rank_by not in columns:
            raise InputError(
                f"{self.task_set.where(task)}: 'rank_by' column {task.rank_by!r} is not in {source}; "
                f"columns are: {', '.join(columns)}"
            )

    def _check_added_columns_differ(self) -> None:
        names = self.added_columns
        twice = [name for name in names if names.count(name) > 1]
        if twice:
            raise InputError(f"{self.config.path}: two tasks would both write column {twice[0]!r}; rename one of them")


def _check_output_uri(options: ScoreOptions, fmt: str, rankings: tuple[Ranking, ...]) -> None:
    """A local run's output in object storage: Parquet only, no ranking pass, an existing bucket (checked early).

    Parquet only because a Parquet file is readable only with its footer, which is written last:
    an upload cut short can never be read as a shorter file. CSV and JSONL have no such mark.
    """
    uri = literal(options.output)
    if fmt != "parquet":
        raise OptionError(
            f"{{output}} {uri}: object storage takes Parquet output only (name it .parquet or set "
            f"{{output_format}} parquet): a Parquet file is readable only with its footer, written last, so an "
            f"upload cut short is never read as a shorter file; {fmt.upper()} has no such mark, so write it to a "
            "local path"
        )
    if rankings:
        raise OptionError(
            f"ranking ({{rank_by}}) needs a second pass over a local output file, and {{output}} {uri} is in object "
            "storage: write to a local path, or score with {ray}, whose rank pass writes to object storage"
        )
    if options.output == options.input:
        raise InputError(f"{options.output}: output path is the input file; write to a different path")
    with storage_errors(options.output):
        check_output_object(options.output)
