"""correlation_flusher on the real PostgreSQL: what a burst, a database that goes away, one
that stays away and a write held behind a lock do to trace events. Every event emitted is either
written once or counted as dropped or given up; none is lost silently, none written twice (the
one exception, a write that times out after the server committed it, is not staged here)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import pytest

from actors.backoff import Backoff
from actors.correlation_flusher import CorrelationFlusher
from store import traces
from store.database import Database
from supervisor import ChildSpec, Supervisor
from telemetry import tracing
from telemetry.metrics import METRICS
from telemetry.trace_buffer import TraceBuffer
from tests.actors_kit import until

pytestmark = pytest.mark.timeout(60)
FAST = Backoff(min=0.01, max=0.05)


def counted(outcome: str) -> float:
    return METRICS.registry.get_sample_value("trt_trace_events_total", {"outcome": outcome}) or 0.0


async def rows(db: Database) -> list[tuple[str, str]]:
    """Every event written, as (correlation id, event), in the order written (the table only grows)."""
    found = await db.require().fetch(
        """SELECT p.correlation_id, s.step->>2 AS event
           FROM trace_parts p, json_array_elements(p.steps) WITH ORDINALITY AS s(step, n)
           ORDER BY p.ctid, s.n""")
    return [(r["correlation_id"], r["event"]) for r in found]


class Running:
    """A flusher under its supervisor, the tracing sink pointed at its buffer."""

    def __init__(self, database: Database, capacity: int = 50_000, **kwargs: Any) -> None:
        self.events = TraceBuffer(capacity)
        self.box = CorrelationFlusher.new_mailbox("correlation_flusher")
        kwargs = {"interval": 0.02, "retry": FAST, **kwargs}
        self.sup = Supervisor("sup", [ChildSpec.actor(CorrelationFlusher, self.box, self.events, database, **kwargs)],
                              backoff=FAST)

    @property
    def flusher(self) -> CorrelationFlusher:
        child = self.sup.child("correlation_flusher")
        assert isinstance(child, CorrelationFlusher)
        return child

    def idle(self) -> bool:
        health = self.flusher.health()
        return self.box.depth == 0 and health["buffered"] == 0


@pytest.fixture
async def flusher_of() -> AsyncIterator[Any]:
    made: list[Running] = []

    async def make(database: Database, **kwargs: Any) -> Running:
        running = Running(database, **kwargs)
        await running.sup.start()
        tracing.install(running.events.put)
        made.append(running)
        return running

    yield make
    tracing.install(None)
    for running in made:
        await running.sup.stop(5)


async def test_a_burst_past_the_buffer_loses_only_the_oldest_events_and_counts_them(
        db: Database, flusher_of: Any) -> None:
    running = await flusher_of(db, capacity=1_000)
    written, dropped = counted("written"), counted("dropped")
    for n in range(20_000):  # producers never wait: all of it is emitted before the flusher runs once
        tracing.emit("step", {"n": n}, correlation_id=f"u{n}", actor="test")
    await until(running.idle, 30, "the flusher drained")
    stored = await rows(db)
    assert len(stored) + (counted("dropped") - dropped) == 20_000, "every event written or counted as dropped"
    assert counted("written") - written == len(stored) == 1_000
    assert [cid for cid, _ in stored] == [f"u{n}" for n in range(19_000, 20_000)], "the newest are kept, in order"


async def test_events_outside_any_story_are_not_traced(db: Database, flusher_of: Any) -> None:
    running = await flusher_of(db)
    tracing.emit("no_story")
    tracing.emit("a_story", correlation_id="u1")
    await until(lambda: running.flusher.written == 1, 10, "one event written")
    assert await rows(db) == [("u1", "a_story")]


async def test_a_failed_batch_is_retried_and_written_once_when_the_database_comes_back(
        db: Database, database_url: str, flusher_of: Any) -> None:
    away = Database(database_url, "test-away", pool_size=2)  # not connected yet: every write fails
    running = await flusher_of(away, batch=10, attempts=1_000)
    for n in range(25):
        tracing.emit("step", correlation_id=f"j{n}", actor="test")
    await until(lambda: running.flusher.health()["retrying"] >= 3, 10, "the batch retried with backoff")
    assert running.flusher.written == 0 and running.flusher.health()["buffered"] == 25
    assert "DatabaseUnavailable" in (running.flusher.health()["write_error"] or "")
    await away.connect()
    try:
        await until(lambda: running.flusher.written == 25, 10, "everything written once the database is back")
        assert sorted(cid for cid, _ in await rows(db)) == sorted(f"j{n}" for n in range(25)), "each exactly once"
        assert running.flusher.given_up == 0
    finally:
        await away.close()


async def test_a_write_held_behind_a_lock_is_a_failed_write_retried_not_a_crash_that_loses_the_buffer(
        db: Database, database_url: str, flusher_of: Any) -> None:
    """A COPY that hangs (here behind a lock on the table) once kept the tick past its 5 s
    deadline: the flusher crashed, its buffer went uncounted, and the root's rest_for_one
    restarted everything after it, the intake included."""
    running = await flusher_of(db, batch=10, attempts=1_000, write_timeout=0.3)
    first = running.flusher
    blocker = await asyncpg.connect(database_url)
    try:
        async with blocker.transaction():
            await blocker.execute("LOCK TABLE trace_parts IN SHARE MODE")  # COPY waits on it
            for n in range(25):
                tracing.emit("step", correlation_id=f"j{n}", actor="test")
            await until(lambda: first.health()["retrying"] >= 2, 20, "the held write timed out and is retried")
            assert "TimeoutError" in (first.health()["write_error"] or "")
            assert running.flusher is first and first.health()["buffered"] == 25
            seen = running.sup.snapshot()["correlation_flusher"]
            assert seen["restarts"] == 0 and seen["deadline_misses"] == 0
    finally:
        await blocker.close()
    await until(lambda: first.written == 25, 20, "everything written once the lock is gone")
    assert sorted(cid for cid, _ in await rows(db)) == sorted(f"j{n}" for n in range(25)), "each exactly once"
    assert running.flusher is first and first.given_up == 0


async def test_a_batch_the_database_never_takes_is_given_up_after_its_attempts_and_counted(
        db: Database, database_url: str, flusher_of: Any) -> None:
    away = Database(database_url, "test-away", pool_size=2)
    running = await flusher_of(away, batch=10, attempts=3, capacity=15)
    given_up, dropped = counted("given_up"), counted("dropped")
    for n in range(40):
        tracing.emit("step", correlation_id=f"j{n}", actor="test")
    await until(lambda: running.flusher.given_up >= 10, 10, "the first batch given up")
    assert counted("given_up") - given_up == running.flusher.given_up
    # memory is bounded while the database is away: beyond the buffer's capacity the oldest go, counted
    assert running.flusher.health()["buffered"] <= 15 + 10, "the buffer and the batch being retried"
    assert counted("dropped") - dropped == running.events.dropped >= 40 - 15
    await away.connect()
    try:
        await until(running.idle, 10, "the rest written once the database is back")
        assert running.flusher.written + running.flusher.given_up + running.events.dropped == 40
    finally:
        await away.close()


async def test_log_lines_under_a_correlation_id_join_its_trace_but_not_the_flushers_own(
        db: Database, flusher_of: Any) -> None:
    import logging

    from telemetry import logs

    running = await flusher_of(db)
    token = logs.correlation_id.set("u77")
    try:
        logs.get("dispatcher").warning("update_failed", extra={"reason": "error", "error_text": "boom"})
        logs.get("correlation_flusher").warning("traces_given_up", extra={"count": 1})
        logging.getLogger("trt.dispatcher").debug("below the level")
    finally:
        logs.correlation_id.reset(token)
    await until(lambda: running.flusher.written >= 1, 10, "the log line traced")
    found = await traces.for_correlation(db, "u77")
    assert [step["event"] for step in found] == ["update_failed"]
    assert found[0]["data"]["level"] == "warning" and found[0]["data"]["error_text"] == "boom"


async def test_a_full_batch_is_written_at_once_not_on_the_next_tick(db: Database, flusher_of: Any) -> None:
    """The append that fills a batch nudges the flusher: a burst does not wait for the timer (an
    hour here) while the buffer overflows."""
    running = await flusher_of(db, batch=100, interval=3600)
    for n in range(99):
        tracing.emit("step", correlation_id=f"u{n}", actor="test")
    assert running.box.depth == 0, "no nudge before the batch is full"
    tracing.emit("step", correlation_id="u99", actor="test")
    await until(lambda: running.flusher.written == 100, 10, "the full batch written without a tick")
    assert len(await rows(db)) == 100


async def test_a_story_is_one_row_per_batch_and_reads_back_in_the_order_it_happened(
        db: Database, flusher_of: Any) -> None:
    running = await flusher_of(db, batch=6, interval=3600)
    for n in range(3):  # two stories interleaved, one batch
        tracing.emit(f"a{n}", {"n": n}, correlation_id="u1", actor="test")
        tracing.emit(f"b{n}", correlation_id="u2", actor="test")
    await until(lambda: running.flusher.written == 6, 10, "the first batch written")
    for n in range(3, 9):  # u1's story goes on in the next batch
        tracing.emit(f"a{n}", {"n": n}, correlation_id="u1", actor="test")
    await until(lambda: running.flusher.written == 12, 10, "the second batch written")
    parts = await db.require().fetch("SELECT correlation_id FROM trace_parts ORDER BY ctid")
    assert [r["correlation_id"] for r in parts] == ["u1", "u2", "u1"], "a row per story per batch"
    story = await traces.for_correlation(db, "u1")
    assert [step["event"] for step in story] == [f"a{n}" for n in range(9)]
    assert [step["data"] for step in story] == [{"n": n} for n in range(9)]
    assert all(step["actor"] == "test" for step in story)


async def test_events_that_arrive_during_a_write_wait_for_the_next_flush_not_a_copy_of_their_own(
        db: Database, database_url: str, flusher_of: Any) -> None:
    """Draining them too made the flusher COPY, back to back, the few events that came during the
    last COPY: fifty small writes a second under load, each story split over many rows."""
    from messages.control import Tick

    running = await flusher_of(db, interval=3600)
    for n in range(10):
        tracing.emit("first", correlation_id=f"u{n}", actor="test")
    blocker = await asyncpg.connect(database_url)
    try:
        async with blocker.transaction():
            await blocker.execute("LOCK TABLE trace_parts IN SHARE MODE")  # the COPY waits on it
            flushed = asyncio.create_task(running.box.ask(Tick(), timeout=20))
            await until(lambda: len(running.flusher.failing) == 10 and not running.events, 10, "the write under way")
            for n in range(10):
                tracing.emit("second", correlation_id=f"u{n}", actor="test")
    finally:
        await blocker.close()
    await flushed
    assert running.flusher.written == 10 and len(running.events) == 10, "the second events wait for the next flush"
    await running.box.ask(Tick(), timeout=20)
    assert running.flusher.written == 20
    assert len(await rows(db)) == 20
