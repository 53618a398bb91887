"""Concurrent requests scored together: a bounded queue on the asyncio side, one scorer thread behind it.

The event loop only queues (`Batcher.submit`, which never blocks) and awaits a future; the model
runs in one worker thread (torch releases the GIL while it computes). The worker takes the oldest
request, then more while their rows fit in the batch size, waiting at most ``wait_s`` for company
when the queue runs dry, scores them in one call, and hands each request its own rows back in
order. A request is never split: one larger than the batch size is scored alone (the scorer
batches inside it).

A row that cannot be scored (`RowError`: a prompt with no tokens, non-finite scores) fails only
the request that sent it: the others of the batch are scored again without it. Any other failure
fails the batch's requests, and the worker goes on with the next batch. A request whose client
went away before its batch started (its future cancelled) is dropped unscored.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

import pyarrow as pa

from t5cls.errors import RowError
from t5cls.serve.metrics import Metrics
from t5cls.serve.rows import ScoredRows


class QueueFull(Exception):
    """The queue holds ``queue_size`` requests already (a 503 with Retry-After)."""


class RequestRowError(Exception):
    """``error`` is about row ``row`` (0-based) of the request it fails."""

    def __init__(self, error: RowError, row: int):
        super().__init__(str(error))
        self.error = error
        self.row = row


@dataclass
class Job:
    """One request's rows waiting for the scorer, and where its answer goes."""

    table: pa.Table
    future: asyncio.Future
    loop: asyncio.AbstractEventLoop
    queued_at: float = field(default_factory=time.monotonic)

    @property
    def rows(self) -> int:
        return self.table.num_rows

    def settle(self, result: ScoredRows | None = None, error: BaseException | None = None) -> None:
        """Resolve the future from the worker thread (a cancelled one is left alone)."""
        self.loop.call_soon_threadsafe(_settle, self.future, result, error)


def _settle(future: asyncio.Future, result: ScoredRows | None, error: BaseException | None) -> None:
    if future.done():
        return
    if error is None:
        future.set_result(result)
    else:
        future.set_exception(error)


class Batcher:
    """The queue and the worker thread; ``score`` is the chunk step (`BatchScorer.score`)."""

    def __init__(
        self, score: Callable[[pa.Table], ScoredRows], max_rows: int, wait_s: float, queue_size: int, metrics: Metrics
    ):
        self.score = score
        self.max_rows = max_rows
        self.wait_s = wait_s
        self.queue_size = queue_size
        self.metrics = metrics
        self.jobs: deque[Job] = deque()
        self.changed = threading.Condition()
        self.stopping = False
        self.thread = threading.Thread(target=self._work, name="t5cls-scorer", daemon=True)

    def start(self) -> None:
        self.thread.start()

    def submit(self, table: pa.Table) -> asyncio.Future:
        """Queue ``table``'s rows; the future gets their `ScoredRows`. Raises `QueueFull` past the limit."""
        loop = asyncio.get_running_loop()
        job = Job(table, loop.create_future(), loop)
        with self.changed:
            if len(self.jobs) >= self.queue_size:
                raise QueueFull
            self.jobs.append(job)
            self._count_queue()
            self.changed.notify()
        return job.future

    def stop(self) -> None:
        """Let the worker finish what is queued, then end it."""
        with self.changed:
            self.stopping = True
            self.changed.notify()
        self.thread.join()

    def _work(self) -> None:
        while True:
            batch = self._next_batch()
            if batch is None:
                return
            self._score(batch)

    def _next_batch(self) -> list[Job] | None:
        """The oldest request and those after it that fit; ``None`` once stopping with nothing queued."""
        with self.changed:
            while not self.jobs:
                if self.stopping:
                    return None
                self.changed.wait()
            batch, rows = [self.jobs.popleft()], 0
            rows = batch[0].rows
            deadline = time.monotonic() + self.wait_s
            while rows < self.max_rows:
                if not self.jobs:
                    left = deadline - time.monotonic()
                    if left <= 0 or self.stopping or not self.changed.wait(left) or not self.jobs:
                        break
                if rows + self.jobs[0].rows > self.max_rows:
                    break
                job = self.jobs.popleft()
                batch.append(job)
                rows += job.rows
            self._count_queue()
        return batch

    def _count_queue(self) -> None:
        self.metrics.queue_requests.set(len(self.jobs))
        self.metrics.queue_rows.set(sum(job.rows for job in self.jobs))

    def _score(self, batch: list[Job]) -> None:
        """Score the batch's live requests in one call; a bad row's request is failed and the rest rescored."""
        jobs = [job for job in batch if not job.future.cancelled()]
        while jobs:
            table = pa.concat_tables([job.table for job in jobs])
            self.metrics.scoring_rows.set(table.num_rows)
            started = time.monotonic()
            try:
                scored = self.score(table)
            except RowError as err:
                culprit = _owner(jobs, err.input_row)
                if culprit is None:
                    self._fail(jobs, err)
                    return
                index, start = culprit
                jobs[index].settle(error=RequestRowError(err, err.input_row - 1 - start))
                del jobs[index]
                continue
            except Exception as err:  # the batch fails; the server and its next batch go on
                self._fail(jobs, err)
                return
            finally:
                self.metrics.scoring_rows.set(0)
            self._deliver(jobs, scored, time.monotonic() - started)
            return

    def _deliver(self, jobs: list[Job], scored: ScoredRows, seconds: float) -> None:
        self.metrics.batch_rows.observe(scored.columns.num_rows)
        self.metrics.batch_requests.observe(len(jobs))
        self.metrics.batch_seconds.observe(seconds)
        start = 0
        for job in jobs:
            job.settle(scored.slice(start, job.rows))
            start += job.rows

    @staticmethod
    def _fail(jobs: list[Job], error: BaseException) -> None:
        for job in jobs:
            job.settle(error=error)


def _owner(jobs: list[Job], input_row: int | None) -> tuple[int, int] | None:
    """The index of the job holding the batch's 1-based ``input_row``, and its first row's 0-based offset."""
    if input_row is None:
        return None
    start = 0
    for index, job in enumerate(jobs):
        if start < input_row <= start + job.rows:
            return index, start
        start += job.rows
    return None
