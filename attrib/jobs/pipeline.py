"""Streaming helpers for jobs over many inputs: decode ahead in worker threads, batch, and finish (render,
write) in the background while the next batch computes, committing results in input order.

Memory stays flat: at most ``ahead`` decoded inputs and ``backlog`` unfinished results are held at once.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, TypeVar

T = TypeVar("T")
R = TypeVar("R")


def prefetch(pool: ThreadPoolExecutor, items: Iterable[T], fn: Callable[[T], R], ahead: int) -> Iterator[R]:
    """``fn(item)`` for each item, computed by ``pool`` up to ``ahead`` items in advance, yielded in order."""
    window: deque[Future] = deque()
    for item in items:
        window.append(pool.submit(fn, item))
        if len(window) >= ahead:
            yield window.popleft().result()
    while window:
        yield window.popleft().result()


def batches(items: Iterable[T], size: int) -> Iterator[list[T]]:
    """Consecutive lists of ``size`` items (the last may be shorter)."""
    batch: list[T] = []
    for item in items:
        batch.append(item)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


class OrderedFinisher:
    """Runs finishing work in a background pool and commits the results in submission order.

    ``commit(result)`` runs on the caller's thread, in order, as soon as every earlier result is committed;
    ``submit`` blocks while more than ``backlog`` results are unfinished.
    """

    def __init__(self, pool: ThreadPoolExecutor, commit: Callable[[Any], None], backlog: int) -> None:
        self.pool, self.commit, self.backlog = pool, commit, max(1, backlog)
        self.queue: deque[Future] = deque()

    def submit(self, fn: Callable[..., Any], *args: Any) -> None:
        self.queue.append(self.pool.submit(fn, *args))
        self._drain(block=len(self.queue) > self.backlog)

    def done(self, value: Any) -> None:
        """Commit an already finished result (in order with the others)."""
        future: Future = Future()
        future.set_result(value)
        self.queue.append(future)
        self._drain(block=False)

    def _drain(self, block: bool) -> None:
        while self.queue and (self.queue[0].done() or (block and len(self.queue) > self.backlog)):
            self.commit(self.queue.popleft().result())

    def close(self) -> None:
        """Wait for and commit everything still pending."""
        while self.queue:
            self.commit(self.queue.popleft().result())
