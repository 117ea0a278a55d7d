"""correlation_flusher: batches trace events into Postgres off the hot path.

Producers tell it TraceEvents and never wait: the mailbox drops the newest when full (counted),
because losing a trace line is better than slowing an update. Events are written with one COPY
per batch, when the batch is full or on the flush timer.
"""

from __future__ import annotations

from typing import Any, ClassVar

from actors.actor import Actor, handles
from actors.mailbox import Mailbox, Overflow
from messages.control import Tick
from messages.trace import TraceEvent
from store import traces
from store.database import Database, DatabaseUnavailable
from telemetry import logs
from telemetry.metrics import METRICS

log = logs.get("correlation_flusher")


class CorrelationFlusher(Actor):
    capacity: ClassVar[int] = 20_000
    overflow: ClassVar[Overflow] = Overflow.DROP_NEWEST

    def __init__(self, mailbox: Mailbox, database: Database, batch: int = 500, interval: float = 0.5) -> None:
        super().__init__(mailbox)
        self.database = database
        self.batch_size = batch
        self.interval = interval
        self.buffer: list[tuple[str, float, str, str, dict[str, Any] | None]] = []
        self.written = 0
        self.lost = 0

    async def on_start(self) -> None:
        self.every(self.interval)

    @handles(TraceEvent, deadline=10.0)
    async def collect(self, msg: TraceEvent) -> None:
        self.buffer.append((msg.correlation_id, msg.at, msg.actor, msg.event, msg.data))
        if len(self.buffer) >= self.batch_size:
            await self.flush()

    async def on_tick(self, msg: Tick) -> None:
        await self.flush()

    async def flush(self) -> None:
        if not self.buffer:
            return
        batch, self.buffer = self.buffer, []
        try:
            await traces.insert_many(self.database, batch)
            self.written += len(batch)
            METRICS.traces.labels("written").inc(len(batch))
        except (DatabaseUnavailable, OSError, TimeoutError) as exc:
            self.lost += len(batch)
            METRICS.traces.labels("lost").inc(len(batch))
            log.warning("traces_lost", extra={"count": len(batch), "error_text": str(exc)[:200]})

    async def on_stop(self) -> None:
        if self.database.pool is not None:
            try:
                await self.flush()
            except Exception as exc:  # stopping anyway; say what was lost
                log.warning("traces_lost_on_stop", extra={"count": len(self.buffer), "error_text": str(exc)[:200]})

    def health(self) -> dict[str, Any]:
        return {"written": self.written, "lost": self.lost, "buffered": len(self.buffer)}
