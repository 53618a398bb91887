"""The server's state between HTTP and the model: the plan, the model once loaded, the batcher, the limits.

Everything about *what* is answered lives here and in the run path it calls (`template_table`,
`BatchScorer`); `t5cls.serve.app` only maps HTTP onto it. The model loads in a background thread
after the socket is bound, so ``/health`` can say 503 while it loads; a model that cannot load
(or labels that its tokenizer cannot tell apart) stops the server with that error.
"""

from __future__ import annotations

import asyncio
import sys
import threading
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from contextlib import asynccontextmanager

from t5cls.errors import InputError
from t5cls.options import ModelOptions, ServeOptions
from t5cls.run.plan import ScorePlan
from t5cls.serve.batcher import Batcher
from t5cls.serve.metrics import Metrics
from t5cls.serve.rows import ScoredRows, template_table
from t5cls.tasks.config import Task


class Service:
    """One served plan: tasks, model, queue and metrics; ``ready`` once the model is loaded."""

    def __init__(self, plan: ScorePlan, model: ModelOptions, options: ServeOptions):
        self.plan = plan
        self.model_options = model
        self.options = options
        self.model_name = model.name
        self.api_key = options.api_key
        self.created = int(time.time())
        self.metrics = Metrics()
        self.scorer = None  # a BatchScorer, once the model is loaded
        self.batcher: Batcher | None = None
        self.load_error: BaseException | None = None
        self.draining = False
        self.on_load_failure: Callable[[], None] = lambda: None
        self.address = ""

    @property
    def ready(self) -> bool:
        return self.batcher is not None

    @property
    def tasks(self) -> tuple[Task, ...]:
        return self.plan.tasks

    def classify_task(self) -> Task:
        """The task `/v1/classify` asks: the server's only task, reading only its text column."""
        tasks = self.tasks
        if len(tasks) != 1:
            names = ", ".join(task.name for task in tasks)
            raise InputError(f"/v1/classify needs a server with one task; this one has {names}: use /v1/score")
        task = tasks[0]
        read = task.template.columns_needed()
        if read != [task.template.text_column]:
            raise InputError(
                f"/v1/classify fills only {{text}}, and this server's template reads {', '.join(read)}: use /v1/score"
            )
        return task

    def rerank_task(self) -> tuple[Task, str]:
        """The task `/v1/rerank` asks, and its document column: one ranking task reading ``query`` and one more."""
        tasks = self.tasks
        read = tasks[0].template.columns_needed() if len(tasks) == 1 else []
        if len(tasks) != 1 or tasks[0].positive is None or len(read) != 2 or "query" not in read:
            raise InputError(
                "/v1/rerank needs a server with one ranking task (one that sets 'positive') whose template reads "
                "{query} and one document column, as configs/relevance.toml: use /v1/score"
            )
        return tasks[0], next(column for column in read if column != "query")

    def endpoints(self) -> list[str]:
        """The scoring endpoints this server's tasks allow."""
        allowed = ["/v1/score"]
        for endpoint, check in (("/v1/classify", self.classify_task), ("/v1/rerank", self.rerank_task)):
            try:
                check()
                allowed.append(endpoint)
            except InputError:
                pass
        return allowed

    def load(self) -> None:
        """Load the model and start the scorer thread (in the background: `start_loading`)."""
        from t5cls.models.scorer import LabelScorer  # torch: imported here, while /health already says 503
        from t5cls.serve.scoring import BatchScorer

        try:
            scorer = BatchScorer(self.plan, LabelScorer.from_options(self.model_options))
            options = self.options
            batcher = Batcher(
                scorer.score, scorer.max_rows, options.batch_wait_ms / 1000, options.queue_size, self.metrics
            )
            batcher.start()
        except BaseException as err:
            self.load_error = err
            self.on_load_failure()
            return
        self.scorer, self.batcher = scorer, batcher
        print(f"t5cls: ready: {self.model_name} on {self.address}", file=sys.stderr, flush=True)

    @asynccontextmanager
    async def lifespan(self, app):
        """Load the model in a thread while the server already answers; at the end, finish the queue."""
        threading.Thread(target=self.load, name="t5cls-model-load", daemon=True).start()
        try:
            yield
        finally:
            if self.batcher is not None:
                self.batcher.stop()

    async def score(
        self,
        rows: Sequence[Mapping[str, object]],
        field: Callable[[int, str | None], str],
        gone: Callable[[], Awaitable[None]],
    ) -> ScoredRows:
        """Score ``rows`` in the next batch; ``field(row, column)`` names a cell in the errors of `template_table`.

        ``gone()`` completes when the client disconnects: its rows are then withdrawn (`ClientGone`),
        unscored if their batch has not started.
        """
        table = template_table(rows, self.plan.columns_needed, field)
        if not table.num_rows:
            return self.scorer.empty()
        future = self.batcher.submit(table)
        watch = asyncio.ensure_future(gone())
        try:
            done, _ = await asyncio.wait({future, watch}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            watch.cancel()
        if future not in done:
            future.cancel()
            raise ClientGone
        return future.result()


class ClientGone(Exception):
    """The client disconnected before its answer was ready."""
