"""The TraceBuffer the hot path appends trace events to: bounded by dropping the oldest (said to
the producer, so it is counted), one nudge when a batch fills, and events made on another thread
handed to the loop that owns it."""

from __future__ import annotations

import asyncio
import threading

import pytest

from telemetry.metrics import METRICS
from telemetry.trace_buffer import TraceBuffer, TraceEvent
from tests.actors_kit import until

pytestmark = pytest.mark.timeout(30)


def event(n: int) -> TraceEvent:
    return TraceEvent(f"u{n}", float(n), "test", "step")


def test_past_its_capacity_the_oldest_event_goes_and_the_put_says_so() -> None:
    buffer = TraceBuffer(capacity=3)
    assert [buffer.put(event(n)) for n in range(5)] == [True, True, True, False, False]
    assert buffer.dropped == 2 and len(buffer) == 3
    assert buffer.take(2) == [event(2), event(3)], "the newest kept, oldest first"
    assert buffer.take(10) == [event(4)] and buffer.take(10) == []


def test_the_append_that_fills_a_batch_nudges_once() -> None:
    buffer = TraceBuffer()
    nudged: list[int] = []
    buffer.nudge_at, buffer.nudge = 4, lambda: nudged.append(len(buffer))
    for n in range(7):
        buffer.put(event(n))
    assert nudged == [4], "once, when the batch filled; not again for every event behind it"
    buffer.take(7)
    for n in range(4):
        buffer.put(event(n))
    assert nudged == [4, 4], "again once the flusher took the batch and another filled"


async def test_an_event_made_on_another_thread_is_appended_on_the_loop_that_owns_the_buffer() -> None:
    buffer = TraceBuffer(capacity=2)
    owner = threading.get_ident()
    seen: list[int] = []
    buffer.nudge_at, buffer.nudge = 1, lambda: seen.append(threading.get_ident())
    dropped = METRICS.registry.get_sample_value("trt_trace_events_total", {"outcome": "dropped"}) or 0.0

    def elsewhere() -> list[bool]:
        return [buffer.put(event(n)) for n in range(3)]

    assert await asyncio.to_thread(elsewhere) == [True] * 3, "handed over, not yet appended"
    await until(lambda: buffer.dropped == 1, 5, "the three appended on the owner's loop")
    assert seen == [owner], "appended (and the flusher nudged) on the owner's thread"
    assert buffer.take(5) == [event(1), event(2)]
    counted = METRICS.registry.get_sample_value("trt_trace_events_total", {"outcome": "dropped"}) or 0.0
    assert counted - dropped == 1, "the event it pushed out is counted, though the producer was told True"


def test_a_buffer_made_outside_a_loop_loses_another_threads_events_and_says_so() -> None:
    buffer = TraceBuffer()
    result: list[bool] = []
    worker = threading.Thread(target=lambda: result.append(buffer.put(event(1))))
    worker.start()
    worker.join(5)
    assert result == [False] and len(buffer) == 0
