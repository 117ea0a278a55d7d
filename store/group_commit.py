"""Group commit: many concurrent callers share one database round trip.

Every webhook request must wait for its update to be durable before answering 200, and a commit
per request would cost a round trip (and an fsync) each. Callers submit an item and await its
result; a flusher takes what has gathered (up to `max_batch`, waiting at most `linger` seconds
for more when the batch is not full) and commits it in one statement. A failed flush fails
every caller in it, so nobody is told "durable" for what was not committed.

By default nothing lingers: a batch goes as soon as a flush slot is free, and while every slot's
commit is in flight the next batch gathers by itself (natural batching), so a quiet intake answers
after one commit and a busy one still shares each. bench.ingress's open loop at the stock app's
saturation rate, interleaved runs: a 2 ms linger gave ack p50/p99 10.1/37.4 and 10.8/44.7 ms,
none 6.8/21.1 and 6.3/25.0 ms, and more acks/s at saturation.

A flush slot is held either by the runner (while it lingers) or by one flush task, and it goes
back when that holder ends, however it ends: the object outlives close() (ingress closes it on
every stop and keeps it across restarts), so a slot lost to a cancellation would be lost for good.

A caller's wait is bounded by `timeout` here, with one timer for the whole group commit that looks
at the oldest waiting item, not a timer per caller: under uvloop every timer is a libuv handle
whose start and close are callbacks of their own, and on the intake thread each callback is a turn
at the GIL. An item whose caller timed out still commits (its batch is not cancelled); the caller
was told TimeoutError, so its sender retries and the inbox's key makes the retry a duplicate.
"""

from __future__ import annotations

import asyncio
import functools
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Generic, TypeVar

T = TypeVar("T")
R = TypeVar("R")
Batch = list[tuple[T, asyncio.Future[R], float]]  # item, its caller's future, submitted at (monotonic)

class GroupCommit(Generic[T, R]):
    def __init__(self, flush: Callable[[Sequence[T]], Awaitable[Sequence[R]]], *, max_batch: int = 256,
                 linger: float = 0.0, parallel: int = 2, timeout: float | None = None) -> None:
        self.flush = flush
        self.max_batch = max_batch
        self.linger = linger
        self.parallel = parallel
        self.timeout = timeout  # a caller's longest wait for its result (None: as long as the flush takes)
        self.expiry: asyncio.TimerHandle | None = None  # the one timer that fails callers past `timeout`
        self.slots = asyncio.Semaphore(parallel)
        self.busy = 0  # slots taken (by the lingering runner or by flush tasks)
        self.saturated_since: float | None = None  # when the last free slot was taken
        self.pending: Batch[T, R] = []  # item, its caller's future, submitted at
        self.arrived = asyncio.Event()
        self.full = asyncio.Event()
        self.runner: asyncio.Task[None] | None = None
        self.flushing: dict[asyncio.Task[None], Batch[T, R]] = {}  # flush task -> its batch, in submit order
        self.batches = 0
        self.items = 0

    async def submit(self, item: T) -> R:
        """Wait until `item` is committed (its result) or its batch failed (the exception)."""
        future = self.submit_nowait(item)
        future.add_done_callback(_retrieved)  # a caller that gave up leaves nobody to read the error
        return await asyncio.shield(future)  # a caller giving up must not cancel the batch's future

    def submit_nowait(self, item: T) -> asyncio.Future[R]:
        """Queue `item`; the future gets its result, its batch's exception, or TimeoutError past
        `timeout`. For a caller that answers from a callback, without a task of its own; it must
        read the future's outcome (a done callback does), and never cancel it (the batch sets it)."""
        loop = asyncio.get_running_loop()
        if self.runner is None or self.runner.done():
            self.runner = loop.create_task(self._run(), name="group-commit")
        future: asyncio.Future[R] = loop.create_future()
        now = time.monotonic()
        self.pending.append((item, future, now))
        self.arrived.set()
        if len(self.pending) >= self.max_batch:
            self.full.set()
        if self.timeout is not None and self.expiry is None:
            self.expiry = loop.call_later(self.timeout, self._expire)
        return future

    def _expire(self) -> None:
        """Fail every caller waiting past `timeout` (in a flush or not); look again when the oldest
        caller still waiting is due. Each list is in submit order, so each scan stops at the first
        caller not yet due."""
        self.expiry = None
        assert self.timeout is not None
        due = time.monotonic() - self.timeout
        oldest: float | None = None
        for batch in (*self.flushing.values(), self.pending):
            for _, future, submitted in batch:
                if future.done():
                    continue
                if submitted > due:
                    oldest = submitted if oldest is None else min(oldest, submitted)
                    break
                future.set_exception(TimeoutError(f"not committed within {self.timeout:g} s"))
        if oldest is not None:
            self.expiry = asyncio.get_running_loop().call_later(oldest - due, self._expire)

    async def _take_slot(self) -> None:
        await self.slots.acquire()
        self.busy += 1
        if self.busy >= self.parallel:
            self.saturated_since = time.monotonic()

    def _give_slot(self) -> None:
        self.busy -= 1
        self.saturated_since = None
        self.slots.release()

    async def _run(self) -> None:
        while True:
            await self.arrived.wait()
            await self._take_slot()
            handed = False  # the slot goes with the batch to its flush task, or back right here
            try:
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
                if batch:
                    task = asyncio.get_running_loop().create_task(self._flush(batch))
                    self.flushing[task] = batch
                    task.add_done_callback(functools.partial(self._flushed, batch))
                    handed = True
            finally:
                if not handed:
                    self._give_slot()

    async def _flush(self, batch: Batch[T, R]) -> None:
        try:
            results = await self.flush([item for item, _, _ in batch])
        except Exception as exc:
            for _, future, _ in batch:
                if not future.done():
                    future.set_exception(exc)
        else:
            self.batches += 1
            self.items += len(batch)
            for (_, future, _), result in zip(batch, results, strict=True):
                if not future.done():
                    future.set_result(result)

    def _flushed(self, batch: Batch[T, R], task: asyncio.Task[None]) -> None:
        """A flush task ended (even cancelled before it ever ran): its slot is free, its callers answered."""
        self.flushing.pop(task, None)
        self._give_slot()
        for _, future, _ in batch:
            if not future.done():
                future.set_exception(ConnectionError("flush cancelled"))

    async def close(self) -> None:
        """Stop taking batches; callers still waiting get an error (never a false success).

        The object stays usable: the next submit starts a fresh runner, with every slot free.
        """
        runner, self.runner = self.runner, None
        if self.expiry is not None:
            self.expiry.cancel()
            self.expiry = None
        if runner is not None:
            runner.cancel()
            await asyncio.gather(runner, return_exceptions=True)
        flushing = list(self.flushing)
        for task in flushing:
            task.cancel()
        await asyncio.gather(*flushing, return_exceptions=True)
        pending, self.pending = self.pending, []
        for _, future, _ in pending:
            if not future.done():
                future.set_exception(ConnectionError("group commit closed"))
        self.arrived.clear()
        self.full.clear()

    def stats(self) -> dict[str, Any]:
        """What /health shows of it: waiting items, the oldest wait (in a flush or not), slots, batches.

        Read from another thread when the commits run on the intake loop: each list is taken once
        (`pending` is replaced, never emptied in place), so no read meets one half-changed."""
        now = time.monotonic()
        waits = [batch[0][2] for batch in list(self.flushing.values())]
        pending = self.pending
        if pending:
            waits.append(pending[0][2])  # pending is in submit order
        oldest = min(waits, default=None)
        saturated = self.saturated_since
        return {"pending": len(pending), "flushing": len(waits) - (1 if pending else 0),
                "oldest_pending_seconds": 0.0 if oldest is None else round(now - oldest, 3),
                "free_slots": self.parallel - self.busy, "slots": self.parallel,
                "no_free_slot_seconds": 0.0 if saturated is None or not pending else round(now - saturated, 3),
                "batches": self.batches, "items": self.items}

    def problems(self, limit: float) -> list[str]:
        """Why it looks stuck (empty when it is not): a submit waiting longer than `limit`, or no free
        slot for that long while items wait; a 200 that takes that long is a 503 for Telegram."""
        stats = self.stats()
        out = []
        if stats["oldest_pending_seconds"] > limit:
            out.append(f"a commit has waited {stats['oldest_pending_seconds']:.1f}s (over {limit:g}s)")
        if stats["no_free_slot_seconds"] > limit:
            out.append(f"no free commit slot for {stats['no_free_slot_seconds']:.1f}s with {stats['pending']} pending")
        return out


def _retrieved(future: asyncio.Future[Any]) -> None:
    if not future.cancelled():
        future.exception()
