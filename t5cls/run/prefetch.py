"""Run an iterator one step ahead in a background thread, and stop that thread whatever happens.

A run reads, prompts and tokenizes the next chunk while the model scores this one. The thread
must not outlive the run: after an error or an early stop it is told to stop, it closes the
iterator it was reading (and so the input file), and the consumer waits for it to finish.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator
from typing import TypeVar

T = TypeVar("T")
_DONE = object()
_POLL_SECONDS = 0.05


def prefetched(items: Iterator[T]) -> Iterator[T]:
    """Yield ``items`` with the next one prepared in a background thread; its errors are re-raised here.

    Close the returned generator (or exhaust it) to stop and join the thread: use it in a ``with
    contextlib.closing(...)`` block.
    """
    handoff: queue.Queue = queue.Queue(maxsize=1)
    stop = threading.Event()
    thread = threading.Thread(target=_produce, args=(items, handoff, stop), name="t5cls-prefetch", daemon=True)
    thread.start()
    try:
        while (item := handoff.get()) is not _DONE:
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        thread.join()


def _produce(items: Iterator, handoff: queue.Queue, stop: threading.Event) -> None:
    try:
        for item in items:
            if not _hand_over(item, handoff, stop):
                return
        _hand_over(_DONE, handoff, stop)
    except BaseException as err:  # handed to the consumer, which re-raises it
        _hand_over(err, handoff, stop)
    finally:
        close = getattr(items, "close", None)
        if close is not None:
            close()


def _hand_over(item, handoff: queue.Queue, stop: threading.Event) -> bool:
    """Put ``item`` in the queue unless the consumer has stopped; False when it has."""
    while not stop.is_set():
        try:
            handoff.put(item, timeout=_POLL_SECONDS)
            return True
        except queue.Full:
            continue
    return False
