"""correlation_flusher: writes trace events to PostgreSQL in batches, off every hot path.

Producers tell it TraceEvents through telemetry.tracing and never wait: its mailbox drops the
oldest event when full (counted as dropped), because losing a trace line is better than slowing
an update. Events are written with one COPY per batch, when a batch is full or on the timer. A
batch that fails (the database restarting) is kept and tried again with backoff while new events
gather behind it up to a bound (beyond it the oldest go, counted); after `attempts` failures the
batch is given up (counted), so a database that stays away costs traces, never memory.

A write that hangs (a lock on the table, a pool whose connections are all busy) is a failed
write too: each is bounded by `write_timeout`, and a flush starts no new batch past
`write_timeout` either, so a flush ends well inside its handler's deadline. A flusher that
missed its deadline crashed instead: its buffer was lost uncounted, and the root's rest_for_one
restarted the work subtree and the intake behind it, for the sake of trace lines. (A write that
timed out after the server had committed it is written again: a trace line twice, never lost.)
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from typing import Any, ClassVar

from actors.actor import Actor, handles
from actors.backoff import Backoff
from actors.mailbox import Mailbox, Overflow
from messages.control import Tick
from messages.trace import TraceEvent
from store import traces
from store.database import DB_ERRORS, Database, DatabaseUnavailable
from telemetry import logs
from telemetry.metrics import METRICS

log = logs.get("correlation_flusher")

Row = tuple[str, float, str, str, dict[str, Any] | None]


class CorrelationFlusher(Actor):
    capacity: ClassVar[int] = 20_000
    overflow: ClassVar[Overflow] = Overflow.DROP_OLDEST

    def __init__(self, mailbox: Mailbox, database: Database, batch: int = 1_000, interval: float = 0.5,
                 attempts: int = 5, held: int = 50_000, retry: Backoff | None = None,
                 write_timeout: float = 2.0) -> None:
        super().__init__(mailbox)
        self.database = database
        self.batch_size = batch
        self.interval = interval
        self.attempts = attempts
        self.held = held  # events kept in memory while the database is away
        self.retry = retry or Backoff(min=0.5, max=8.0)
        self.write_timeout = write_timeout  # Tick's deadline (5 s) > the budget + one write
        self.buffer: deque[Row] = deque()
        self.failing: list[Row] = []  # the batch being retried
        self.failures = 0
        self.retry_at = 0.0
        self.written = 0
        self.dropped = 0
        self.given_up = 0
        self.write_error: str | None = None

    async def on_start(self) -> None:
        self.every(self.interval)

    @handles(TraceEvent, deadline=10.0)
    async def collect(self, msg: TraceEvent) -> None:
        """This event and the run of events queued behind it, in one turn (a handler call each cost
        more than the event's row)."""
        for event in (msg, *self.mailbox.take_nowait(TraceEvent, self.batch_size)):
            self.buffer.append((event.correlation_id, event.at, event.actor, event.event, event.data))
        over = min(len(self.buffer) + len(self.failing) - self.held, len(self.buffer))
        if over > 0:  # the database is away and memory is bounded: the oldest go, counted
            for _ in range(over):
                self.buffer.popleft()
            self.dropped += over
            METRICS.traces.labels("dropped").inc(over)
        if len(self.buffer) >= self.batch_size:
            await self.flush()

    async def on_tick(self, msg: Tick) -> None:
        await self.flush()

    async def flush(self) -> None:
        """Write the batch being retried (when its time has come), then full batches of new events
        until `write_timeout` is spent (the rest wait for the next tick)."""
        budget = time.monotonic() + self.write_timeout
        if self.failing and not await self._write(self.failing):
            return
        while self.buffer and time.monotonic() < budget:
            batch = [self.buffer.popleft() for _ in range(min(self.batch_size, len(self.buffer)))]
            self.failing = batch
            if not await self._write(batch):
                return

    async def _write(self, batch: list[Row]) -> bool:
        if self.failures and time.monotonic() < self.retry_at:
            return False
        try:
            async with asyncio.timeout(self.write_timeout):
                await traces.insert_many(self.database, batch)
        except (*DB_ERRORS, DatabaseUnavailable) as exc:  # a write past write_timeout among them
            self.failures += 1
            self.write_error = logs.redact(f"{type(exc).__name__}: {exc}")[:200]
            if self.failures >= self.attempts:
                self.given_up += len(batch)
                METRICS.traces.labels("given_up").inc(len(batch))
                log.warning("traces_given_up", extra={"count": len(batch), "attempts": self.failures,
                                                      "error_text": self.write_error})
                self.failing, self.failures = [], 0
                return True  # the next batch starts afresh
            self.retry_at = time.monotonic() + self.retry.delay(self.failures)
            return False
        self.written += len(batch)
        METRICS.traces.labels("written").inc(len(batch))
        self.failing, self.failures = [], 0
        return True

    async def on_stop(self) -> None:
        if self.database.pool is None:
            return
        self.failures = 0  # one last try for everything, now
        try:
            await self.flush()
        except Exception as exc:  # stopping anyway; say what was lost
            log.warning("traces_lost_on_stop", extra={"count": len(self.buffer) + len(self.failing),
                                                      "error_text": str(exc)[:200]})

    def health(self) -> dict[str, Any]:
        return {"written": self.written, "dropped": self.dropped + self.mailbox.stats.dropped,
                "given_up": self.given_up, "buffered": len(self.buffer) + len(self.failing),
                "retrying": self.failures, "write_error": self.write_error}
