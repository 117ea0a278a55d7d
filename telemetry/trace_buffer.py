"""Trace events waiting for correlation_flusher: a trace step costs the hot path one append here.

They went to the flusher's mailbox before: an envelope per event, and the actor woken for each run
of them, at five or more events an update. That took 18% of end-to-end throughput. Now a producer
appends a tuple, the flusher takes batches on its timer, and the append that fills a batch nudges it
once, so a burst is written without waiting for the timer. Bounded: past `capacity` the oldest
event goes, counted, so a database that is away costs trace lines, never memory. The tree makes
the buffer, so it outlives the flusher's restarts as its mailbox did.
"""

from __future__ import annotations

import asyncio
import threading
from collections import deque
from collections.abc import Callable
from typing import Any, NamedTuple

from telemetry.metrics import METRICS


class TraceEvent(NamedTuple):
    """One step of a story: `at` is unix time, `data` plain JSON values."""

    correlation_id: str
    at: float
    actor: str
    event: str
    data: dict[str, Any] | None = None


class TraceBuffer:
    """Appended to on the loop that made it; an event made on another thread (the intake loop's) is
    handed to that loop, because taking and appending are not atomic together."""

    def __init__(self, capacity: int = 50_000) -> None:
        if capacity < 1:
            raise ValueError("a trace buffer holds at least one event")
        self.capacity = capacity
        self.events: deque[TraceEvent] = deque()
        self.dropped = 0  # pushed out by newer events since start
        self.nudge_at = 0  # the flusher's batch: reaching it calls `nudge` (0: never)
        self.nudge: Callable[[], object] | None = None
        self._home_thread = threading.get_ident()
        try:
            self._home: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
        except RuntimeError:
            self._home = None

    def __len__(self) -> int:
        return len(self.events)

    def put(self, event: TraceEvent) -> bool:
        """Keep the event; False when that pushed the oldest one out (or it could not be handed over)."""
        if threading.get_ident() != self._home_thread:
            home = self._home
            if home is None or home.is_closed():
                return False
            home.call_soon_threadsafe(self._put_handed_over, event)
            return True
        events = self.events
        kept = len(events) < self.capacity
        if not kept:
            events.popleft()
            self.dropped += 1
        events.append(event)
        if len(events) == self.nudge_at and self.nudge is not None:
            self.nudge()
        return kept

    def take(self, most: int) -> list[TraceEvent]:
        """The oldest `most` events, gone from the buffer."""
        events = self.events
        return [events.popleft() for _ in range(min(most, len(events)))]

    def _put_handed_over(self, event: TraceEvent) -> None:
        if not self.put(event):
            METRICS.traces.labels("dropped").inc()
