"""Scale-out: the chunks of many files scored by a Ray Data actor pool (``--engine ray``).

    input files ─ read tasks ─▶ chunks ─ actor pool (one model each) ─▶ Parquet parts ─▶ output folder

Read tasks cut every file into the same chunks a local run would (`t5cls.io.readers`); each chunk
travels as one Ray row, so Ray can neither merge nor split it. An actor scores a chunk with the
same `ChunkScorer` as a local run and writes it as one Parquet part named after (file, chunk),
whole or not at all (`t5cls.io.storage`: renamed into place on a disk, one upload to an object
store). That is why the actors write the parts instead of handing
rows to `Dataset.write_parquet`, which names files per block: a task retried after its actor died
rewrites the very same part, so no row is lost or written twice, and a rerun with ``resume``
skips the parts already recorded. `t5cls.run.manifest` keeps the folder of parts. All workers
must reach the output: one machine, a shared filesystem, or object storage (``s3://``, ``gs://``...).

With rankings (``rank_by``) a second pass follows once every chunk is recorded. The output is
read as one table, parts in input order (files in listing order, then rows), as a local run
reads its one file: the driver reads only the group and score columns of every part (a key and
a float per row in memory) and ranks them with `t5cls.run.ranking.ranks_of`, so ranks are
within each group over the whole output, a group spanning files and parts. Then one Ray task
per part (`rank_part`), given its slice of the ranks, writes the part again whole, with
``<task>_rank`` after ``<task>_score`` and its Parquet metadata kept, under the same name where
`t5cls.run.manifest` publishes it. A run stopped or killed during this pass resumes with the
rank pass alone; the manifest, written last, lists only ranked parts.
"""

from __future__ import annotations

import json
import logging
import os
import re
import time
from collections.abc import Iterator
from contextlib import closing
from dataclasses import dataclass, replace
from functools import cached_property

import numpy as np
import pyarrow as pa

from t5cls import errors
from t5cls.errors import InputError, Interrupted, NamesParameters, OptionError, T5clsError, literal
from t5cls.io.formats import file_name_suffix, input_format
from t5cls.io.lock import output_lock
from t5cls.io.oserrors import filesystem_errors
from t5cls.io.paths import is_uri, list_input_files, output_target
from t5cls.io.readers import open_input
from t5cls.io.schemas import check_types_agree
from t5cls.io.storage import Location, check_no_secret, storage_errors
from t5cls.io.writers import ParquetChunkWriter
from t5cls.models.identity import ModelIdentity, describe_pretrained
from t5cls.models.loading import resolve_device
from t5cls.models.scorer import LabelScorer
from t5cls.options import ModelOptions, RayOptions, ScoreOptions
from t5cls.run.chunks import ChunkScorer
from t5cls.run.manifest import PartsFolder, check_output, part_name, parts_location
from t5cls.run.plan import ScorePlan
from t5cls.run.progress import RowProgress
from t5cls.run.provenance import fingerprint, provenance
from t5cls.run.ranking import Ranking, ranking_columns, ranks_of, with_ranks
from t5cls.run.summary import Summary
from t5cls.signals import StopRequest

RAY_INPUT_FORMATS = ("csv", "jsonl", "parquet")
WORKER_ERROR = re.compile(r"\[t5cls:(\w+)\] (.*)$", re.M)
FAILED_CHUNK = {
    "first_row": 0,
    "last": False,
    "part": "",
    "input_rows": 0,
    "rows": 0,
    "skipped": 0,
    "truncated": 0,
    "provenance": "",
}  # a failed chunk's summary: the columns of every other, so Ray's blocks agree


class WorkerError(Exception):
    """A worker's `T5clsError` as one tagged line, which survives Ray's wrapping in traceback text.

    An `OptionError` travels as its template, so the driver's CLI can still show its flags.
    """

    def __init__(self, err: T5clsError):
        text = err.template if isinstance(err, NamesParameters) else str(err)
        super().__init__(f"[t5cls:{type(err).__name__}] {text}")


@dataclass
class WorkerSpec:
    """What every actor needs to score chunks exactly as a local run would (picklable)."""

    plan: ScorePlan
    model: ModelOptions  # its device the workers' own (`RayRunner.worker_model`)
    identity: ModelIdentity  # the model as the run's fingerprint knows it: every worker must load this one
    parts: str  # the folder of parts: a local path or a URI, opened by each actor with its own credentials


class ScoreWorker:
    """A Ray actor: loads the model once, then scores chunks and writes each as one Parquet part."""

    def __init__(self, spec: WorkerSpec):
        try:
            scorer = LabelScorer.from_options(spec.model)
            _check_same_model(scorer.identity, spec.identity)
            self.chunks = ChunkScorer(spec.plan, scorer)
        except T5clsError as err:
            raise WorkerError(err) from None
        self.metadata = provenance(spec.plan, scorer.identity)
        self.parts = Location.of(spec.parts)

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, list]:
        rows = zip(batch["file"], batch["chunk"], batch["first_row"], batch["last"], batch["path"], batch["table"])
        summaries = [self.score_or_fail(*row) for row in rows]
        return {key: [summary[key] for summary in summaries] for key in summaries[0]}

    def score_or_fail(self, file: int, chunk: int, *rest) -> dict:
        """A chunk's summary with ``error`` empty; or, when it fails (a part the disk refuses, a bad row), a summary
        whose ``error`` is the `WorkerError` line. Returned, not raised: the driver then records every chunk that
        came before it, so ``--resume`` keeps them, as a local run keeps its finished chunks."""
        try:
            return {**self.score_chunk(file, chunk, *rest), "error": ""}
        except T5clsError as err:
            return {**FAILED_CHUNK, "file": int(file), "chunk": int(chunk), "error": str(WorkerError(err))}

    def score_chunk(self, file: int, chunk: int, first_row: int, last: bool, path: str, data: bytes) -> dict:
        table = pa.ipc.open_stream(data).read_all()  # with its file's schema: the parts of a file share it
        scored = self.chunks.score(self.chunks.prepare(table, int(first_row), str(path)))
        name = part_name(int(file), int(chunk))

        def write(sink) -> None:
            writer = ParquetChunkWriter(sink, self.chunks.output_schema(table.schema), self.metadata)
            writer.write(scored.table)
            writer.close()

        self.parts.child(name).write(write)
        return {
            "file": int(file),
            "chunk": int(chunk),
            "first_row": int(first_row),
            "last": bool(last),
            "part": name,
            "input_rows": scored.input_rows,
            "rows": scored.table.num_rows,
            "skipped": scored.skipped,
            "truncated": scored.truncated,
            "provenance": json.dumps(self.metadata),
        }


def _check_same_model(loaded: ModelIdentity, recorded: ModelIdentity) -> None:
    """A worker must score with the model the run's fingerprint names: a folder rewritten after the run began
    (or a worker whose dtype differs) would mix two models in one output."""
    differing = [key for key in vars(recorded) if getattr(loaded, key) != getattr(recorded, key)]
    if not differing:
        return
    changed = ", ".join(f"{key} was {getattr(recorded, key)}, here {getattr(loaded, key)}" for key in differing)
    raise InputError(
        f"model {recorded.name!r} on this worker is not the one the run started with ({changed}); keep the model's "
        "files unchanged while a run works and give every worker the same kind of device, then rerun without --resume"
    )


def read_chunks(
    batch: dict[str, np.ndarray], chunk_rows: int, input_format: str | None, done: set[tuple[int, int]]
) -> Iterator[dict[str, list]]:
    """A Ray read step: each file's chunks (those not ``done``), one Ray row per chunk.

    One chunk of lookahead marks each file's last chunk, so the driver can tell a file that was
    fully scored from one whose tail went missing. A bad file (a damaged page, a cut-short .gz)
    is found here, in a Ray task: its error travels as a `WorkerError`, as a worker's does.
    """
    try:
        yield from _file_chunks(batch, chunk_rows, input_format, done)
    except T5clsError as err:
        raise WorkerError(err) from None


def _file_chunks(batch, chunk_rows: int, input_format: str | None, done: set) -> Iterator[dict[str, list]]:
    for file, path in zip(batch["file"], batch["path"]):
        file, path = int(file), str(path)
        with storage_errors(path), closing(open_input(path, chunk_rows, input_format)) as source:
            chunks = iter(source.chunks)
            current, first_row, index = next(chunks, source.empty), 0, 0
            while current is not None:
                following = next(chunks, None)
                if (file, index) not in done:
                    yield {
                        "file": [file],
                        "chunk": [index],
                        "first_row": [first_row],
                        "last": [following is None],
                        "path": [path],
                        "table": [_ipc_bytes(current)],
                    }
                first_row += current.num_rows
                current, index = following, index + 1


def _ipc_bytes(table: pa.Table) -> bytes:
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return sink.getvalue().to_pybytes()


class RayRunner:
    """``t5cls score INPUT --engine ray -o FOLDER``, validated up front like a local run.

    ``worker_class`` is the actor class; a subclass can replace it (the tests inject a crash).
    """

    worker_class = ScoreWorker

    def __init__(self, plan: ScorePlan, model: ModelOptions, ray_options: RayOptions):
        """Checks every input file's format and columns and the output folder; starts neither Ray nor a model."""
        options = plan.options
        _check_ray_options(options)
        self.plan = plan
        self.model = model
        self.ray_options = ray_options
        check_no_secret(options.input)
        with storage_errors(options.input):
            self.files = list_input_files(options.input)
        self.total_rows = self._check_files()
        # a local symlink's target folder is replaced, not the link
        self.output = Location.of(options.output if is_uri(options.output) else str(output_target(options.output)))
        check_output(self.output)

    def _check_files(self) -> int | None:
        """Every file must be CSV, JSONL or Parquet with the columns the tasks read; returns the row total if known."""
        total: int | None = 0
        schemas = {}
        for path in self.files:
            fmt = input_format(path, self.plan.options.input_format)
            if fmt not in RAY_INPUT_FORMATS:
                raise OptionError(f"{literal(path)}: {{ray}} reads CSV, JSONL and Parquet files, not {fmt}")
            with storage_errors(path), closing(open_input(path, self.plan.options.chunk_rows, fmt)) as source:
                self.plan.check_input(source.columns, path)
                rows, schemas[path] = source.total_rows, source.schema
            total = None if total is None or rows is None else total + rows
        check_types_agree(schemas)
        return total

    @cached_property
    def worker_model(self) -> ModelOptions:
        """The model options the workers load, with the device they have: as asked, or for ``auto`` what
        `resolve_device` answers in a Ray task given a worker's resources (a GPU Ray schedules may be one torch
        cannot see), so the driver's identity is the workers' and nothing is guessed on this machine."""
        if self.model.device != "auto":
            return self.model
        ray = _connect()
        probe = ray.remote(_auto_device).options(num_gpus=self.ray_options.gpus_per_worker or 0, num_cpus=0)
        return replace(self.model, device=ray.get(probe.remote()))

    @cached_property
    def identity(self) -> ModelIdentity:
        """The model as every worker must load it (config, tokenizer and files read here; no weights)."""
        return describe_pretrained(self.worker_model)

    def fingerprint(self) -> dict[str, str]:
        """What must be unchanged for ``resume`` to continue the parts already written."""
        with storage_errors(self.plan.options.input):  # the inputs' sizes and first MiB, read again
            return fingerprint(self.plan, self.identity, self.files)

    def run(self, progress: RowProgress | None = None, stop: StopRequest | None = None) -> Summary:
        """Score every file on Ray; raises `Interrupted` after the chunk in hand when asked to stop."""
        # Object stores offer no lock through pyarrow: there, one run per prefix is the user's to keep (README).
        lock = self.output.path if self.output.local else None
        parts = parts_location(self.output, bool(self.plan.rankings))
        with output_lock(lock), filesystem_errors(parts.uri, resumable=True):
            return self._run(progress or RowProgress(quiet=True), stop or StopRequest())

    def _run(self, progress: RowProgress, stop: StopRequest) -> Summary:
        started = time.monotonic()
        parts = PartsFolder(self.output, self.fingerprint(), self.plan.options.resume, self.plan.rankings)
        progress.start(self.total_rows, parts.counters()["input_rows"])
        scored_now = 0
        for row in self._summaries(parts.done_chunks()):
            summary = dict(row)
            if error := summary.pop("error"):  # a chunk that failed: the ones recorded before it stay for resume
                raise _worker_error(RuntimeError(error))
            if parts.record(summary):
                scored_now += summary["input_rows"]
                progress.advance(summary["input_rows"])
            if stop.requested:
                progress.stop()
                raise Interrupted(
                    stop.signum, f"interrupted; {len(parts.done)} chunks kept, rerun the same command with {{resume}}"
                )
        progress.stop()
        if self.plan.rankings:
            parts.check_complete(self.files)  # ranks over a missing chunk would be wrong
            self._rank_pass(parts, stop)
        parts.finish(self.files)
        counters = parts.counters()
        seconds = time.monotonic() - started
        return Summary(
            counters["rows"], counters["skipped"], counters["truncated"], seconds, self.output.uri, scored_now
        )

    def _summaries(self, done: set[tuple[int, int]]) -> Iterator[dict]:
        """Run the pipeline, yielding one summary per chunk as its part is written."""
        ray = _connect()
        location = parts_location(self.output, bool(self.plan.rankings)).address
        spec = WorkerSpec(self.plan, self.worker_model, self.identity, location)
        files = ray.data.from_items(
            [{"file": i, "path": path} for i, path in enumerate(self.files)], override_num_blocks=len(self.files)
        )
        workers = self.pool_size(ray)
        # Reads reserve no CPU, so actors holding every CPU cannot starve the reads that feed them;
        # the pool caps how many files are open at once instead.
        chunks = files.map_batches(
            read_chunks,
            batch_size=1,
            num_cpus=0,
            compute=ray.data.TaskPoolStrategy(size=min(workers + 1, len(self.files))),
            fn_kwargs={
                "chunk_rows": self.plan.options.chunk_rows,
                "input_format": self.plan.options.input_format,
                "done": done,
            },
        )
        summaries = chunks.map_batches(
            self.worker_class,
            fn_constructor_kwargs={"spec": spec},
            batch_size=1,
            compute=ray.data.ActorPoolStrategy(size=workers),
            num_gpus=self.ray_options.gpus_per_worker or None,
            num_cpus=self.ray_options.cpus_per_worker,
        )
        try:
            yield from summaries.iter_rows()
        except Exception as err:  # a worker's error reaches here wrapped in Ray's traceback text
            raise _worker_error(err) from err

    def _rank_pass(self, parts: PartsFolder, stop: StopRequest) -> None:
        """Rank the recorded parts as one table and write each again with its ranks (see the module docstring)."""
        rankings = self.plan.rankings
        names = parts.part_names()
        rows: list[int] = []

        def group_and_score_columns() -> Iterator[pa.Table]:
            for name in names:
                table = parts.parts.child(name).read_parquet(ranking_columns(rankings))
                rows.append(table.num_rows)
                yield table

        ranks = ranks_of(group_and_score_columns(), rankings)
        target = parts.begin_rank_pass()
        ray = _connect()
        task = ray.remote(rank_part)
        in_flight = max(2, 2 * int(ray.cluster_resources().get("CPU", 1)))
        pending: list = []
        start = 0
        try:
            for name, count in zip(names, rows):
                if stop.requested:
                    break
                if len(pending) >= in_flight:
                    finished, pending = ray.wait(pending, num_returns=1)
                    ray.get(finished)
                part_ranks = {column: values[start : start + count] for column, values in ranks.items()}
                source, ranked = parts.parts.child(name).address, target.child(name).address
                pending.append(task.remote(source, ranked, rankings, part_ranks))
                start += count
            ray.get(pending)  # a stop waits for the parts in hand, as the scoring pass does
        except Exception as err:  # a task's error reaches here wrapped in Ray's traceback text
            raise _worker_error(err) from err
        if stop.requested:
            raise Interrupted(
                stop.signum,
                f"interrupted while ranking; {len(parts.done)} chunks kept, rerun the same command with {{resume}}",
            )

    def pool_size(self, ray) -> int:
        """Actors to start: as asked, else one per ``gpus_per_worker`` GPUs of the cluster, else one."""
        layout = self.ray_options
        if layout.num_workers is not None:
            return layout.num_workers
        if not layout.gpus_per_worker:
            return 1
        gpus = ray.cluster_resources().get("GPU", 0)
        if gpus < layout.gpus_per_worker:
            raise OptionError(f"{{gpus_per_worker}} {layout.gpus_per_worker:g}: the Ray cluster has {gpus:g} GPUs")
        return int(gpus // layout.gpus_per_worker)


def rank_part(source: str, target: str, rankings: tuple[Ranking, ...], ranks: dict[str, np.ndarray]) -> None:
    """A Ray task of the rank pass: the part at ``source`` written whole to ``target`` with its ``ranks`` added.

    The part keeps its schema's metadata (provenance); ``target`` has the part's name, so a rerun rewrites it.
    """
    try:
        table = with_ranks(Location.of(source).read_parquet(), rankings, ranks, 0)

        def write(sink) -> None:
            writer = ParquetChunkWriter(sink, table.schema)
            writer.write(table)
            writer.close()

        Location.of(target).write(write)
    except T5clsError as err:
        raise WorkerError(err) from None


def _auto_device() -> str:
    """A Ray task's answer to ``--device auto``, on a worker with the workers' resources."""
    return str(resolve_device("auto"))


def _check_ray_options(options: ScoreOptions) -> None:
    if options.input == "-":
        raise OptionError("{ray} reads files, folders, globs or URIs, not stdin")
    if options.to_stdout:
        raise OptionError("{ray} writes a folder of Parquet parts; name it with {output} FOLDER")
    if options.output_format not in (None, "parquet"):
        raise OptionError("{ray} writes Parquet only; drop {output_format}")
    file_suffix = file_name_suffix(options.output)
    if file_suffix:
        raise OptionError(
            f"{{ray}} writes a folder of Parquet parts, and {{output}} {literal(options.output)} names a {file_suffix} "
            "file; name a folder without the extension (or a .parquet one), or score one file without {ray}"
        )


def _connect():
    """Ray, connected to ``RAY_ADDRESS`` (an existing cluster, as under ``ray job submit``) or started locally."""
    try:
        import ray
        import ray.data
    except ImportError:
        raise OptionError("{ray} needs Ray: pip install 't5cls[ray]'") from None
    if not ray.is_initialized():
        address = os.environ.get("RAY_ADDRESS")
        try:
            ray.init(
                logging_level=logging.ERROR, log_to_driver=False, **({} if address else {"include_dashboard": False})
            )
        except ConnectionError as err:
            raise InputError(
                f"could not connect to the Ray cluster at RAY_ADDRESS={address}: {str(err).splitlines()[0]}; "
                "unset RAY_ADDRESS to start Ray on this machine"
            ) from None
    for name in ("ray", "ray.data"):  # Ray Data configures its own logger; errors reach the user as one line
        logging.getLogger(name).setLevel(logging.CRITICAL)
    context = ray.data.DataContext.get_current()
    context.enable_progress_bars = False
    context.raise_original_map_exception = True
    return ray


def _worker_error(err: Exception) -> Exception:
    """The worker's own `T5clsError` again, from the tagged line that `WorkerError` put in Ray's text."""
    raised = WORKER_ERROR.findall(str(err))
    if raised:
        name, message = raised[-1]
        return getattr(errors, name)(message)
    return err
