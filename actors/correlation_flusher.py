"""correlation_flusher: writes trace events to PostgreSQL in batches, off every hot path.

Producers append TraceEvents to the tree's TraceBuffer through telemetry.tracing and never wait:
the buffer drops its oldest event when full (counted as dropped), because losing a trace line is
better than slowing an update. The flusher takes a batch on its timer, or when the append that
fills one nudges it with a Tick, and writes it with one COPY (store.traces: one row per story in
the batch). A batch that fails (the database restarting) is kept and tried again with backoff
while new events gather in the buffer up to its bound; after `attempts` failures the batch is
given up (counted), so a database that stays away costs traces, never memory.

A write that hangs (a lock on the table, a pool whose connections are all busy) is a failed
write too: each is bounded by `write_timeout`, and a flush starts no new batch past
`write_timeout` either, so a flush ends well inside its handler's deadline. A flusher that
missed its deadline crashed instead: its batch was lost uncounted, and the root's rest_for_one
restarted the work subtree and the intake behind it, for the sake of trace lines. (A write that
timed out after the server had committed it is written again: a trace line twice, never lost.)
"""

from __future__ import annotations

import asyncio
import time
from typing import Any, ClassVar

from actors.actor import Actor
from actors.backoff import Backoff
from actors.mailbox import Mailbox, MailboxError, Overflow
from messages.control import Tick
from store import traces
from store.database import DB_ERRORS, Database, DatabaseUnavailable
from telemetry import logs
from telemetry.metrics import METRICS
from telemetry.trace_buffer import TraceBuffer, TraceEvent

log = logs.get("correlation_flusher")


class CorrelationFlusher(Actor):
    capacity: ClassVar[int] = 8  # Ticks only: the events wait in the TraceBuffer
    overflow: ClassVar[Overflow] = Overflow.DROP_OLDEST

    def __init__(self, mailbox: Mailbox, events: TraceBuffer, database: Database, batch: int = 4_000,
                 interval: float = 0.5, attempts: int = 5, retry: Backoff | None = None,
                 write_timeout: float = 2.0) -> None:
        super().__init__(mailbox)
        self.events = events
        self.database = database
        self.batch_size = batch
        self.interval = interval
        self.attempts = attempts
        self.retry = retry or Backoff(min=0.5, max=8.0)
        self.write_timeout = write_timeout  # Tick's deadline (5 s) > the budget + one write
        self.failing: list[TraceEvent] = []  # the batch being retried
        self.failures = 0
        self.retry_at = 0.0
        self.written = 0
        self.given_up = 0
        self.write_error: str | None = None

    async def on_start(self) -> None:
        self.events.nudge_at = self.batch_size
        self.events.nudge = self._nudge
        self.every(self.interval)

    def _nudge(self) -> None:
        """A batch is waiting: flush now rather than on the timer (a burst would otherwise overflow)."""
        try:
            self.mailbox.tell_nowait(Tick())
        except MailboxError:  # restarting: the next incarnation's timer comes soon enough
            pass

    async def on_tick(self, msg: Tick) -> None:
        await self.flush()

    async def flush(self) -> None:
        """Write the batch being retried (when its time has come), then the events waiting when the
        flush began, in batches, until `write_timeout` is spent (the rest wait for the next tick).
        Events that arrive meanwhile wait too: draining them as well made a COPY of the few that
        came during the last one, back to back, and split each story into many rows."""
        budget = time.monotonic() + self.write_timeout
        if self.failing and not await self._write(self.failing):
            return
        waiting = len(self.events)
        while waiting > 0 and self.events and time.monotonic() < budget:
            self.failing = self.events.take(min(self.batch_size, waiting))
            waiting -= len(self.failing)
            if not await self._write(self.failing):
                return

    async def _write(self, batch: list[TraceEvent]) -> bool:
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
            log.warning("traces_lost_on_stop", extra={"count": len(self.events) + len(self.failing),
                                                      "error_text": str(exc)[:200]})

    def health(self) -> dict[str, Any]:
        return {"written": self.written, "dropped": self.events.dropped,
                "given_up": self.given_up, "buffered": len(self.events) + len(self.failing),
                "retrying": self.failures, "write_error": self.write_error}
