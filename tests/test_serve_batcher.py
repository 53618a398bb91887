"""The batcher: concurrent requests' rows in one scorer call, each request its own rows back, a bad row's
request failed alone, the queue bounded. A scorer function stands in for the model (what it is handed
is the point); the real model behind HTTP is tested in test_serve_app.py."""

from __future__ import annotations

import asyncio

import numpy as np
import pyarrow as pa
import pytest

from t5cls.errors import EmptyPromptError, NumericError, RowError
from t5cls.serve.batcher import Batcher, QueueFull, RequestRowError
from t5cls.serve.metrics import Metrics
from t5cls.serve.rows import ScoredRows


class Recorder:
    """Scores a table of texts as their lengths, remembering every call; fails on texts it is told to."""

    def __init__(self, bad: dict[str, type[RowError]] | None = None):
        self.calls: list[list[str]] = []
        self.bad = bad or {}

    def __call__(self, table: pa.Table) -> ScoredRows:
        texts = table.column("text").to_pylist()
        self.calls.append(texts)
        for row, text in enumerate(texts, start=1):
            if text in self.bad:
                error = self.bad[text]("no good", 0)
                raise error.at(f"batch: row {row}", row)
        lengths = [float(len(text)) for text in texts]
        return ScoredRows(pa.table({"length": lengths}), np.ones(len(texts), dtype=np.int64))


def table(*texts: str) -> pa.Table:
    return pa.table({"text": pa.array(texts, pa.string())})


async def submit_all(batcher: Batcher, requests: list[pa.Table]) -> list:
    """Queue every request before the worker starts, so that they are all waiting together; their outcomes."""
    futures = [batcher.submit(request) for request in requests]
    batcher.start()
    try:
        return await asyncio.wait_for(asyncio.gather(*futures, return_exceptions=True), 30)
    finally:
        await asyncio.to_thread(batcher.stop)


def lengths(result: ScoredRows) -> list[float]:
    return result.columns.column("length").to_pylist()


def test_waiting_requests_share_one_scorer_call_and_get_their_own_rows_back_in_order():
    scorer = Recorder()
    batcher = Batcher(scorer, max_rows=8, wait_s=0.0, queue_size=10, metrics=Metrics())
    requests = [table("a", "bbb"), table("cc"), table("dddd", "e", "ffffff")]
    results = asyncio.run(submit_all(batcher, requests))
    assert scorer.calls == [["a", "bbb", "cc", "dddd", "e", "ffffff"]]
    assert [lengths(result) for result in results] == [[1, 3], [2], [4, 1, 6]]


def test_a_batch_holds_no_more_rows_than_the_batch_size_and_a_larger_request_goes_alone():
    scorer = Recorder()
    batcher = Batcher(scorer, max_rows=3, wait_s=0.0, queue_size=10, metrics=Metrics())
    requests = [table("a", "b"), table("c"), table("d", "e"), table("f", "g", "h", "i", "j"), table("k")]
    results = asyncio.run(submit_all(batcher, requests))
    assert scorer.calls == [["a", "b", "c"], ["d", "e"], ["f", "g", "h", "i", "j"], ["k"]]
    assert [len(lengths(result)) for result in results] == [2, 1, 2, 5, 1]


@pytest.mark.parametrize("error", [EmptyPromptError, NumericError])
def test_a_row_that_cannot_be_scored_fails_its_own_request_and_the_others_are_scored_again(error):
    scorer = Recorder(bad={"poison": error})
    batcher = Batcher(scorer, max_rows=8, wait_s=0.0, queue_size=10, metrics=Metrics())
    requests = [table("a"), table("bb", "poison", "c"), table("ddd")]
    first, failed, last = asyncio.run(submit_all(batcher, requests))
    assert isinstance(failed, RequestRowError) and failed.row == 1 and isinstance(failed.error, error)
    assert (lengths(first), lengths(last)) == ([1], [3])
    assert scorer.calls == [["a", "bb", "poison", "c", "ddd"], ["a", "ddd"]]


def test_any_other_failure_fails_the_batch_and_the_worker_goes_on():
    calls = []

    def flaky(batch: pa.Table) -> ScoredRows:
        calls.append(batch.num_rows)
        if len(calls) == 1:
            raise RuntimeError("boom")
        return ScoredRows(pa.table({"length": [0.0] * batch.num_rows}), np.zeros(batch.num_rows, dtype=np.int64))

    batcher = Batcher(flaky, max_rows=2, wait_s=0.0, queue_size=10, metrics=Metrics())
    outcomes = asyncio.run(submit_all(batcher, [table("a"), table("b"), table("c")]))
    assert [type(outcome).__name__ for outcome in outcomes] == ["RuntimeError", "RuntimeError", "ScoredRows"]
    assert calls == [2, 1]


def test_past_the_queue_size_a_request_is_refused_at_once():
    async def fill() -> None:
        batcher = Batcher(Recorder(), max_rows=8, wait_s=0.0, queue_size=2, metrics=Metrics())
        batcher.submit(table("a"))
        batcher.submit(table("b"))
        with pytest.raises(QueueFull):
            batcher.submit(table("c"))

    asyncio.run(fill())


def test_a_request_whose_client_left_before_its_batch_is_not_scored():
    async def leave() -> None:
        scorer = Recorder()
        batcher = Batcher(scorer, max_rows=8, wait_s=0.0, queue_size=10, metrics=Metrics())
        gone = batcher.submit(table("gone"))
        kept = batcher.submit(table("kept"))
        gone.cancel()
        batcher.start()
        try:
            assert lengths(await asyncio.wait_for(kept, 30)) == [4]
        finally:
            await asyncio.to_thread(batcher.stop)
        assert scorer.calls == [["kept"]]

    asyncio.run(leave())
