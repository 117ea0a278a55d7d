"""Group commit: many concurrent callers share one database round trip.

Every webhook request must wait for its update to be durable before answering 200, and a commit
per request would cost a round trip (and an fsync) each. Callers submit an item and await its
result; a flusher takes what has gathered (up to `max_batch`, waiting at most `linger` seconds
for more when the batch is not full) and commits it in one statement. A failed flush fails
every caller in it, so nobody is told "durable" for what was not committed.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Generic, TypeVar

T = TypeVar("T")
R = TypeVar("R")


class GroupCommit(Generic[T, R]):
    def __init__(self, flush: Callable[[Sequence[T]], Awaitable[Sequence[R]]], *, max_batch: int = 256,
                 linger: float = 0.002, parallel: int = 2) -> None:
        self.flush = flush
        self.max_batch = max_batch
        self.linger = linger
        self.slots = asyncio.Semaphore(parallel)
        self.pending: list[tuple[T, asyncio.Future[R]]] = []
        self.arrived = asyncio.Event()
        self.full = asyncio.Event()
        self.runner: asyncio.Task[None] | None = None
        self.flushing: set[asyncio.Task[None]] = set()
        self.batches = 0
        self.items = 0

    async def submit(self, item: T) -> R:
        """Wait until `item` is committed (its result) or its batch failed (the exception)."""
        if self.runner is None or self.runner.done():
            self.runner = asyncio.get_running_loop().create_task(self._run(), name="group-commit")
        future: asyncio.Future[R] = asyncio.get_running_loop().create_future()
        future.add_done_callback(_retrieved)  # a caller that gave up leaves nobody to read the error
        self.pending.append((item, future))
        self.arrived.set()
        if len(self.pending) >= self.max_batch:
            self.full.set()
        return await asyncio.shield(future)  # a caller giving up must not cancel the batch's future

    async def _run(self) -> None:
        while True:
            await self.arrived.wait()
            await self.slots.acquire()
            if len(self.pending) < self.max_batch and self.linger > 0:
                try:
                    async with asyncio.timeout(self.linger):
                        await self.full.wait()
                except TimeoutError:
                    pass
            batch, self.pending = self.pending[:self.max_batch], self.pending[self.max_batch:]
            if len(self.pending) < self.max_batch:
                self.full.clear()
            if not self.pending:
                self.arrived.clear()
            if not batch:
                self.slots.release()
                continue
            task = asyncio.get_running_loop().create_task(self._flush(batch))
            self.flushing.add(task)
            task.add_done_callback(self.flushing.discard)

    async def _flush(self, batch: list[tuple[T, asyncio.Future[R]]]) -> None:
        try:
            results = await self.flush([item for item, _ in batch])
        except BaseException as exc:
            for _, future in batch:
                if not future.done():
                    future.set_exception(exc if isinstance(exc, Exception) else ConnectionError("flush cancelled"))
            if not isinstance(exc, Exception):
                raise
        else:
            self.batches += 1
            self.items += len(batch)
            for (_, future), result in zip(batch, results, strict=True):
                if not future.done():
                    future.set_result(result)
        finally:
            self.slots.release()

    async def close(self) -> None:
        """Stop taking batches; callers still waiting get an error (never a false success)."""
        if self.runner is not None:
            self.runner.cancel()
            await asyncio.gather(self.runner, return_exceptions=True)
        for task in list(self.flushing):
            task.cancel()
        await asyncio.gather(*self.flushing, return_exceptions=True)
        for _, future in self.pending:
            if not future.done():
                future.set_exception(ConnectionError("ingress is stopping"))
        self.pending.clear()


def _retrieved(future: asyncio.Future[Any]) -> None:
    if not future.cancelled():
        future.exception()
