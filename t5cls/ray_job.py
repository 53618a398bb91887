"""Scale-out: the scoring of `t5cls.job` as a Ray Data pipeline over many files (``--engine ray``).

    input files ─ read tasks ─▶ chunks ─ actor pool (one model each) ─▶ Parquet parts ─▶ output folder

Read tasks cut every file into the same chunks a local run would (`t5cls.readers`); each chunk
travels as one Ray row, so Ray can neither merge nor split it. An actor scores a chunk with the
same `ChunkScorer` as a local run and writes it as one Parquet part named after (file, chunk),
through a temporary name and a rename. That is why the actors write the parts instead of handing
rows to `Dataset.write_parquet`, which names files per block: a task retried after its actor died
rewrites the very same part, so no row is lost or written twice, and a rerun with ``--resume``
skips the parts already recorded.

The output is a folder: ``part-<file>-<chunk>.parquet`` (names sort in input order, so
``pyarrow.parquet.read_table(folder)`` gives the rows in order) and ``_t5cls.json``, the manifest
of input files, their parts and counts. The parts go to a hidden folder beside the target,
``.<name>.t5cls-parts/``, which becomes the target only once every chunk is in: like the local
path's single file, the target never holds a partial result. All workers must reach that folder
(one machine, or a shared filesystem on a cluster).
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np
import pyarrow as pa

from t5cls import __version__
from t5cls.chunk_scoring import ChunkScorer
from t5cls import errors
from t5cls.errors import InputError
from t5cls.output import check_same_run, write_atomically
from t5cls.job import ScoreJob, ScoreOptions, Summary, bind_tasks, provenance
from t5cls.progress import RowProgress
from t5cls.quiet import quiet_model_loading
from t5cls.readers import file_identity, input_format, list_input_files, open_input
from t5cls.scorer import LabelScorer
from t5cls.signals import Interrupted, StopRequest
from t5cls.tasks import Config, Task, load_config
from t5cls.writers import ParquetChunkWriter

MANIFEST = "_t5cls.json"
JOB_FILE = "job.json"
DONE_FILE = "done.jsonl"
RAY_INPUT_FORMATS = ("csv", "parquet")
COUNTS = ("input_rows", "rows", "skipped", "truncated")  # per chunk, summed per file and per run
WORKER_ERROR = re.compile(r"^t5cls\.errors\.(InputError|ModelLoadError|NumericError): (.*)$", re.M)


@dataclass
class RayOptions:
    """How the actor pool is laid out: one model per worker.

    ``num_workers=None``: one worker per ``gpus_per_worker`` GPUs of the cluster when workers
    use GPUs (every GPU busy), else one worker.
    """

    num_workers: int | None = None
    gpus_per_worker: float = 0.0
    cpus_per_worker: float = 1.0


@dataclass
class WorkerSpec:
    """What every actor needs to score chunks exactly as a local run would (picklable)."""

    options: ScoreOptions
    tasks: list[Task]
    config: Config | None
    model: dict  # keyword arguments of LabelScorer.from_pretrained
    parts_dir: str


class ScoreWorker:
    """A Ray actor: loads the model once, then scores chunks and writes each as one Parquet part."""

    def __init__(self, spec: WorkerSpec):
        quiet_model_loading()
        scorer = LabelScorer.from_pretrained(**spec.model)
        self.chunks = ChunkScorer(spec.tasks, bind_tasks(spec.tasks, spec.config, scorer), spec.options.on_null,
                                  spec.options.logprobs)
        self.metadata = provenance(spec.options, spec.tasks, spec.config, scorer)
        self.parts_dir = Path(spec.parts_dir)

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, list]:
        summaries = [self.score_chunk(*row) for row in zip(batch["file"], batch["chunk"], batch["first_row"],
                                                          batch["last"], batch["path"], batch["table"])]
        return {key: [summary[key] for summary in summaries] for key in summaries[0]}

    def score_chunk(self, file: int, chunk: int, first_row: int, last: bool, path: str, data: bytes) -> dict:
        table = pa.ipc.open_stream(data).read_all()
        scored = self.chunks.score(self.chunks.prepare(table, int(first_row), str(path)))
        name = part_name(int(file), int(chunk))

        def write(sink) -> None:
            writer = ParquetChunkWriter(sink, self.metadata)
            writer.write(scored.table)
            writer.close()

        write_atomically(self.parts_dir / name, write)
        return {"file": int(file), "chunk": int(chunk), "first_row": int(first_row), "last": bool(last),
                "part": name, "input_rows": scored.input_rows, "rows": scored.table.num_rows,
                "skipped": scored.skipped, "truncated": scored.truncated, "provenance": json.dumps(self.metadata)}


def part_name(file: int, chunk: int) -> str:
    """Zero-padded so that sorting the names sorts the rows into input order (up to 10^6 files, 10^9 chunks each)."""
    return f"part-{file:06d}-{chunk:09d}.parquet"


def read_chunks(batch: dict[str, np.ndarray], chunk_rows: int, input_format: str | None,
                done: set[tuple[int, int]]) -> Iterator[dict[str, list]]:
    """A Ray read step: each file's chunks (those not ``done``), one Ray row per chunk.

    One chunk of lookahead marks each file's last chunk, so the driver can tell a file that was
    fully scored from one whose tail went missing.
    """
    for file, path in zip(batch["file"], batch["path"]):
        file, path = int(file), str(path)
        source = open_input(path, chunk_rows, input_format)
        chunks = iter(source.chunks)
        current, first_row, index = next(chunks, source.empty), 0, 0
        while current is not None:
            following = next(chunks, None)
            if (file, index) not in done:
                yield {"file": [file], "chunk": [index], "first_row": [first_row], "last": [following is None],
                       "path": [path], "table": [_ipc_bytes(current)]}
            first_row += current.num_rows
            current, index = following, index + 1


def _ipc_bytes(table: pa.Table) -> bytes:
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return sink.getvalue().to_pybytes()


class RayScoreJob:
    """``t5cls score INPUT --engine ray -o FOLDER``, validated up front like `ScoreJob`.

    ``worker_class`` is the actor class; a subclass can replace it (the tests inject a crash).
    """

    worker_class = ScoreWorker

    def __init__(self, options: ScoreOptions, model: dict, ray_options: RayOptions):
        _check_ray_options(options, ray_options)
        self.options = options
        self.model = model
        self.ray_options = ray_options
        self.files = list_input_files(options.input)
        self.total_rows, job = self._check_files()
        self.tasks, self.config = job.tasks, job.config
        self.output = Path(options.output)
        self.parts_dir = self.output.with_name(f".{self.output.name}.t5cls-parts")
        _check_output_folder(self.output)

    def _check_files(self) -> tuple[int | None, ScoreJob]:
        """Every file must be CSV or Parquet with the columns the tasks read; returns the row total if known."""
        total: int | None = 0
        for path in self.files:
            fmt = input_format(path, self.options.input_format)
            if fmt not in RAY_INPUT_FORMATS:
                raise InputError(f"{path}: --engine ray reads CSV and Parquet files, not {fmt}")
            job = ScoreJob(replace(self.options, input=path, output=None, resume=False))
            rows = job.source.total_rows
            total = None if total is None or rows is None else total + rows
        return total, job

    def fingerprint(self) -> dict[str, str]:
        """What must be unchanged for ``--resume`` to continue the parts already written."""
        options = asdict(self.options)
        options.pop("resume")
        return {
            "t5cls version": __version__,
            "input files": json.dumps([[path, file_identity(path)] for path in self.files]),
            "model": json.dumps(self.model, sort_keys=True),
            "options": json.dumps(options, sort_keys=True),
        }

    def run(self, progress: RowProgress, stop: StopRequest) -> Summary:
        """Score every file on Ray; raises `Interrupted` after the chunk in hand when asked to stop."""
        started = time.monotonic()
        parts = PartsFolder(self.parts_dir, self.fingerprint(), self.options.resume)
        counters = parts.counters()
        progress.start(self.total_rows, counters["input_rows"])
        scored_now = 0
        for summary in self._summaries(parts.done_chunks()):
            parts.record(summary)
            scored_now += summary["input_rows"]
            progress.advance(summary["input_rows"])
            if stop.requested:
                progress.stop()
                raise Interrupted(stop.signum, f"interrupted; {len(parts.done)} chunks kept, rerun the same command "
                                               "with --resume")
        progress.stop()
        parts.finish(self.files, self.output)
        counters = parts.counters()
        return Summary(counters["rows"], counters["skipped"], counters["truncated"], time.monotonic() - started,
                       str(self.output), scored_now)

    def _summaries(self, done: set[tuple[int, int]]) -> Iterator[dict]:
        """Run the pipeline, yielding one summary per chunk as its part is written."""
        ray = _connect()
        spec = WorkerSpec(self.options, self.tasks, self.config, self.model, str(self.parts_dir))
        files = ray.data.from_items([{"file": i, "path": path} for i, path in enumerate(self.files)],
                                    override_num_blocks=len(self.files))
        workers = self._pool_size(ray)
        # Reads reserve no CPU, so actors holding every CPU cannot starve the reads that feed them;
        # the pool caps how many files are open at once instead.
        chunks = files.map_batches(
            read_chunks, batch_size=1, num_cpus=0, compute=ray.data.TaskPoolStrategy(size=min(workers + 1, len(self.files))),
            fn_kwargs={"chunk_rows": self.options.chunk_rows, "input_format": self.options.input_format, "done": done},
        )
        summaries = chunks.map_batches(
            self.worker_class, fn_constructor_kwargs={"spec": spec}, batch_size=1,
            compute=ray.data.ActorPoolStrategy(size=workers),
            num_gpus=self.ray_options.gpus_per_worker or None,
            num_cpus=self.ray_options.cpus_per_worker,
        )
        try:
            yield from summaries.iter_rows()
        except Exception as err:  # a worker's error reaches here wrapped in Ray's traceback text
            raise _worker_error(err) from err


    def _pool_size(self, ray) -> int:
        layout = self.ray_options
        if layout.num_workers is not None:
            return layout.num_workers
        if not layout.gpus_per_worker:
            return 1
        gpus = ray.cluster_resources().get("GPU", 0)
        if gpus < layout.gpus_per_worker:
            raise InputError(f"--gpus-per-worker {layout.gpus_per_worker:g}: the Ray cluster has {gpus:g} GPUs")
        return int(gpus // layout.gpus_per_worker)


class PartsFolder:
    """The hidden folder of parts, with the job's fingerprint and a log of the chunks recorded."""

    def __init__(self, path: Path, fingerprint: dict[str, str], resume: bool):
        self.path = path
        self.done: dict[tuple[int, int], dict] = {}
        if resume and (path / JOB_FILE).exists():
            check_same_run(json.loads((path / JOB_FILE).read_text()), fingerprint, path)
            self.done = {(s["file"], s["chunk"]): s for s in _logged_summaries(path / DONE_FILE)}
            _rewrite_log(path / DONE_FILE, self.done.values())  # without a cut-short last line to append after
            return
        if path.exists():
            shutil.rmtree(path)
        path.mkdir()
        (path / JOB_FILE).write_text(json.dumps(fingerprint, indent=1))
        (path / DONE_FILE).touch()

    def done_chunks(self) -> set[tuple[int, int]]:
        return set(self.done)

    def record(self, summary: dict) -> None:
        """Log a chunk whose part is in place (a retried chunk arrives once: Ray drops failed attempts)."""
        key = (summary["file"], summary["chunk"])
        if key in self.done:
            raise RuntimeError(f"chunk {key} reported twice")
        self.done[key] = summary
        with open(self.path / DONE_FILE, "a") as log:
            log.write(json.dumps(summary) + "\n")

    def counters(self) -> dict[str, int]:
        return {key: sum(summary[key] for summary in self.done.values()) for key in COUNTS}

    def finish(self, files: list[str], output: Path) -> None:
        """Check that every chunk of every file is in, write the manifest, and move the folder onto ``output``."""
        by_file: dict[int, list[dict]] = {index: [] for index in range(len(files))}
        for (file, _), summary in sorted(self.done.items()):
            by_file[file].append(summary)
        inputs = [_file_entry(path, by_file[index]) for index, path in enumerate(files)]
        any_summary = next(iter(self.done.values()))
        manifest = {"t5cls_version": __version__, "metadata": json.loads(any_summary["provenance"]),
                    "inputs": inputs, **self.counters()}
        (self.path / MANIFEST).write_text(json.dumps(manifest, indent=1, ensure_ascii=False))
        keep = {summary["part"] for summary in self.done.values()} | {MANIFEST}
        for entry in self.path.iterdir():  # the log, and temporary files of attempts killed mid-write
            if entry.name not in keep:
                entry.unlink()
        _replace_folder(self.path, output)


def _file_entry(path: str, summaries: list[dict]) -> dict:
    """A file's line in the manifest, once its chunks are checked to be complete and in sequence."""
    expected_row = 0
    for position, summary in enumerate(summaries):
        if summary["chunk"] != position or summary["first_row"] != expected_row:
            raise RuntimeError(f"{path}: chunk {position} is missing from the Ray run's results")
        expected_row += summary["input_rows"]
    if not summaries or not summaries[-1]["last"]:
        raise RuntimeError(f"{path}: the last chunk is missing from the Ray run's results")
    return {"path": path, "parts": [s["part"] for s in summaries],
            **{key: sum(s[key] for s in summaries) for key in COUNTS}}


def _logged_summaries(log: Path) -> list[dict]:
    """The chunks a log records; a last line cut short by a kill is dropped (its chunk is scored again)."""
    summaries = []
    for line in log.read_text().splitlines():
        try:
            summaries.append(json.loads(line))
        except json.JSONDecodeError:
            break
    return summaries


def _rewrite_log(log: Path, summaries) -> None:
    write_atomically(log, lambda stream: stream.write("".join(json.dumps(s) + "\n" for s in summaries).encode()))


def _check_ray_options(options: ScoreOptions, ray_options: RayOptions) -> None:
    if options.input == "-":
        raise InputError("--engine ray reads files, folders, globs or URIs, not stdin")
    if not options.output or options.output == "-":
        raise InputError("--engine ray writes a folder of Parquet parts; name it with -o FOLDER")
    if options.output_format not in (None, "parquet"):
        raise InputError("--engine ray writes Parquet only; drop --format")
    if options.rank_by or (options.config and any(task.rank_by for task in load_config(options.config).tasks)):
        raise InputError("ranking (rank_by) needs a second pass over the whole output; run it with the local engine")
    if ray_options.num_workers is not None and ray_options.num_workers < 1:
        raise InputError("--num-workers must be at least 1")
    if ray_options.gpus_per_worker < 0 or ray_options.cpus_per_worker <= 0:
        raise InputError("--gpus-per-worker must be ≥ 0 and --cpus-per-worker > 0")


def _check_output_folder(output: Path) -> None:
    """``-o`` may name a new folder or an earlier output folder of t5cls (replaced at the end), nothing else."""
    if not output.parent.is_dir():
        raise InputError(f"{output}: output directory {output.parent} does not exist")
    if output.exists() and not (output / MANIFEST).is_file():
        raise InputError(f"{output}: exists and is not a t5cls output folder; remove it or choose another -o")


def _replace_folder(source: Path, target: Path) -> None:
    """Move ``source`` onto ``target``; an earlier output there is set aside first and removed after."""
    previous = target.with_name(f".{target.name}.t5cls-old")
    if target.exists():
        os.replace(target, previous)
    os.replace(source, target)
    if previous.exists():
        shutil.rmtree(previous)


def _connect():
    """Ray, connected to ``RAY_ADDRESS`` (an existing cluster, as under ``ray job submit``) or started locally."""
    try:
        import ray
        import ray.data
    except ImportError:
        raise InputError("--engine ray needs Ray: pip install 't5cls[ray]'") from None
    if not ray.is_initialized():
        address = os.environ.get("RAY_ADDRESS")
        try:
            ray.init(logging_level=logging.ERROR, log_to_driver=False, **({} if address else {"include_dashboard": False}))
        except ConnectionError as err:
            raise InputError(f"could not connect to the Ray cluster at RAY_ADDRESS={address}: {str(err).splitlines()[0]}; "
                             "unset RAY_ADDRESS to start Ray on this machine") from None
    for name in ("ray", "ray.data"):  # Ray Data configures its own logger; errors reach the user as one line
        logging.getLogger(name).setLevel(logging.CRITICAL)
    context = ray.data.DataContext.get_current()
    context.enable_progress_bars = False
    context.raise_original_map_exception = True
    return ray


def _worker_error(err: Exception) -> Exception:
    """The worker's own `T5clsError`, one line again: Ray wraps it with the worker's traceback text."""
    raised = WORKER_ERROR.findall(str(err))
    if raised:
        name, message = raised[-1]
        return getattr(errors, name)(message)
    return err
