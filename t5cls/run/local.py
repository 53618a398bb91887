"""A scoring run in this process: input chunks → prompts → scorer → output chunks.

`LocalRunner` streams an opened input in fixed-size chunks through a `ChunkScorer`; reading,
prompting and tokenizing the next chunk happen in a background thread while the model scores
this one. Output goes to stdout as it comes, or to a file through checkpointed parts
(`t5cls.io.output`), so an interrupted run can be resumed. `t5cls.run.job.score_file` is the
one-call API.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterator
from contextlib import closing

from t5cls.errors import Interrupted, OptionError, literal
from t5cls.io.lock import output_lock
from t5cls.io.output import FileOutput, StdoutOutput, TableOutput
from t5cls.io.readers import InputSource
from t5cls.models.scorer import LabelScorer
from t5cls.run.chunks import ChunkScorer, PreparedChunk
from t5cls.run.finished import record_finished
from t5cls.run.plan import ScorePlan
from t5cls.run.prefetch import prefetched
from t5cls.run.progress import RowProgress
from t5cls.run.provenance import fingerprint, provenance
from t5cls.run.ranking import add_ranks, unranked_path
from t5cls.run.summary import Summary
from t5cls.signals import StopRequest
from t5cls.tasks.rows import drop_or_fill_nulls, template_values

PERSISTENT_COUNTERS = ("rows", "skipped", "truncated")  # kept in a checkpoint; rows scored by this process are not


class LocalRunner:
    """Streams one opened input through a plan's tasks and writes the output."""

    def __init__(self, plan: ScorePlan, scorer: LabelScorer):
        """Binds the tasks to ``scorer`` (label checks that need the tokenizer fail here, before any scoring)."""
        self.plan = plan
        self.scorer = scorer
        self.chunks = ChunkScorer(plan, scorer)

    def run(
        self,
        source: InputSource,
        progress: RowProgress | None = None,
        stop: StopRequest | None = None,
        output: TableOutput | None = None,
    ) -> Summary:
        """Score every chunk of ``source``; raises `Interrupted` after the chunk in hand when ``stop`` is requested.

        The output's schema is fixed before the first row is scored, so nothing after scoring can fail on a type.
        ``output`` keeps the scores in memory (`t5cls.run.frames`) instead of the plan's file or stdout.
        """
        with output_lock(self.plan.destination):  # held until the output is complete, ranks included
            return self._run(source, progress or RowProgress(quiet=True), stop or StopRequest(), output)

    def _run(self, source: InputSource, progress: RowProgress, stop: StopRequest, output: TableOutput | None):
        started = time.monotonic()
        tables = source.take_chunks()
        output = output or self._open_output(source)
        counters = Counter(output.counters_before)
        progress.start(source.total_rows, output.rows_done_before, source.size if source.total_rows is None else None)
        try:
            self._score_chunks(source, tables, output, counters, progress, stop)
            output.finish()
        except BaseException:
            output.abort()
            raise
        finally:
            progress.stop()
        if self.plan.rankings:
            add_ranks(
                output.description,
                self.plan.options.output,
                self.plan.output_format,
                self.plan.rankings,
                provenance(self.plan, self.scorer.identity),
            )
        if isinstance(output, FileOutput):
            record_finished(self.plan.destination, output.fingerprint, self.plan.options.resume)
        destination = self.plan.options.output if self.plan.rankings else output.description
        return Summary(
            counters["rows"],
            counters["skipped"],
            counters["truncated"],
            time.monotonic() - started,
            destination,
            counters["scored_now"],
        )

    def _score_chunks(self, source: InputSource, tables, output, counters: Counter, progress, stop) -> None:
        """Score and write the chunks not done yet, the next one read and tokenized in the background."""
        chunks = prefetched(self._prepared_chunks(source, tables, output.rows_done_before))
        with closing(chunks) as prepared_chunks, self.scorer.keeping_prefixes():
            for prepared in prepared_chunks:
                self._write(self.chunks.score(prepared), output, counters)
                progress.advance(prepared.input_rows, prepared.bytes_read)
                if stop.requested:
                    raise Interrupted(stop.signum, _interrupted_message(output, counters))

    def _write(self, scored, output, counters: Counter) -> None:
        counters.update(rows=scored.table.num_rows, skipped=scored.skipped, truncated=scored.truncated)
        counters["scored_now"] += scored.input_rows
        output.write_chunk(scored.table, scored.input_rows, _persistent(counters))

    def first_prompts(self, source: InputSource) -> list[str | None]:
        """Each task's prompt for the first usable row of ``source`` (a dry run; multi-label: the first question).

        The chunks read are put back into ``source``, so a later `run` of it still scores every row.
        """
        needed = self.plan.columns_needed
        with source.peeking() as chunks:
            for number, table in enumerate(chunks):
                first_row = number * self.plan.options.chunk_rows
                table, _ = drop_or_fill_nulls(
                    table, needed, self.plan.options.on_null, first_row, source.path, source.row_name
                )
                if table.num_rows:
                    values = template_values(table.slice(0, 1), needed)
                    return [task.scored_prompts(values)[0] for task in self.chunks.task_scorers]
        return [None for _ in self.plan.tasks]

    def _open_output(self, source: InputSource):
        options = self.plan.options
        metadata = provenance(self.plan, self.scorer.identity)
        schema = self.chunks.output_schema(source.schema)
        destination = self.plan.destination
        if destination.kind == "stdout" or (not self.plan.rankings and destination.kind == "stream"):
            return StdoutOutput(self.plan.output_format, schema, metadata, destination.target)
        path = unranked_path(options.output) if self.plan.rankings else options.output
        recorded = fingerprint(self.plan, self.scorer.identity, [source.path])
        return FileOutput(path, self.plan.output_format, schema, recorded, metadata, options.resume)

    def _prepared_chunks(self, source: InputSource, tables, skip: int) -> Iterator[PreparedChunk]:
        """Null-check, render and tokenize ``tables`` of ``source``, skipping ``skip`` rows already done.

        Runs in the reading thread, so ``source``'s position after each table is where reading is.
        """
        row, position = 0, source.position()
        for table in tables:
            before, position = position, source.position()
            if row + table.num_rows <= skip:
                row += table.num_rows
                continue
            if row < skip:
                raise OptionError(
                    f"{literal(source.path)}: the checkpoint does not fall on a chunk boundary; "
                    "rerun without {resume}"
                )
            read = None if position is None else (before, position)
            yield self.chunks.prepare(table, row, source.path, read, source.row_name)
            row += table.num_rows


def _interrupted_message(output, counters: Counter) -> str:
    if isinstance(output, FileOutput):
        return (
            f"interrupted after {output.rows_done_before} input rows; checkpoint kept, "
            "rerun the same command with {resume}"
        )
    return f"interrupted after {counters['scored_now']} input rows written to stdout"


def _persistent(counters: Counter) -> dict[str, int]:
    return {key: counters[key] for key in PERSISTENT_COUNTERS}
