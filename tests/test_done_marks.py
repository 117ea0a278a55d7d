"""The dispatcher's done marks on a real PostgreSQL: batched by the load, never lost to a stop."""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

import pytest

from ingest.done_marks import DoneMarks
from store import inbox
from store.database import Database
from store.inbox import Incoming
from tests.conftest import until_one_waits_on_a_lock

pytestmark = pytest.mark.timeout(60)
BOT = 111


async def stored(db: Database, *update_ids: int) -> None:
    await inbox.append_batch(db, BOT, "test", [Incoming(u, "message", u, "{}") for u in update_ids])


async def outcomes(db: Database) -> dict[int, str | None]:
    rows = await db.require().fetch("SELECT update_id, outcome FROM inbox WHERE bot_id = $1 AND state = 2", BOT)
    return {r["update_id"]: r["outcome"] for r in rows}


async def test_marks_that_end_while_a_statement_runs_are_written_by_the_next_one(db: Database) -> None:
    await stored(db, 1, 2, 3)
    marks = DoneMarks(db, BOT)
    writer = asyncio.create_task(marks.write())
    try:
        async with db.require().acquire() as blocker, blocker.transaction():
            await blocker.execute("SELECT 1 FROM inbox WHERE bot_id = $1 AND update_id = 1 FOR UPDATE", BOT)
            marks.add(1, "ok")
            await until_one_waits_on_a_lock(db)  # the writer's statement, behind our lock
            marks.add(2, "ok")
            marks.add(3, "error")
            assert len(marks) == 3, "nothing leaves memory before it is written"
        await marks.flush(10.0)
        assert await outcomes(db) == {1: "ok", 2: "ok", 3: "error"}
        assert len(marks) == 0 and marks.flushed.is_set()
    finally:
        writer.cancel()


async def test_a_writer_cancelled_mid_statement_keeps_its_marks_for_the_stops_last_attempt(db: Database) -> None:
    await stored(db, 1, 2)
    marks = DoneMarks(db, BOT)
    writer = asyncio.create_task(marks.write())
    async with db.require().acquire() as blocker, blocker.transaction():
        await blocker.execute("SELECT 1 FROM inbox WHERE bot_id = $1 FOR UPDATE", BOT)
        marks.add(1, "ok")
        marks.add(2, "deadline")
        await until_one_waits_on_a_lock(db)  # the writer's statement, behind our lock
        writer.cancel()  # a stop, mid-statement
        await asyncio.gather(writer, return_exceptions=True)
        assert len(marks) == 2, "a cancelled statement wrote nothing: its marks must stay"
    await marks.last_attempt()
    assert await outcomes(db) == {1: "ok", 2: "deadline"}
    assert len(marks) == 0


async def test_a_flush_that_times_out_says_how_many_marks_wait(db: Database, caplog: pytest.LogCaptureFixture) -> None:
    await stored(db, 7)
    marks = DoneMarks(db, BOT)  # no writer running: nothing will write them
    marks.add(7, "ok")
    with caplog.at_level(logging.WARNING, logger="trt.dispatcher"):
        await marks.flush(0.05)
    assert [r.__dict__.get("count") for r in caplog.records if r.getMessage() == "done_marks_unflushed"] == [1]
    assert await outcomes(db) == {}


def scanned(plan: dict[str, Any]) -> int:
    """Rows every scan of a table (or index) produced in an EXPLAIN ANALYZE JSON plan, loops counted."""
    own = 0
    if plan["Node Type"] in ("Seq Scan", "Index Scan", "Index Only Scan", "Bitmap Index Scan"):
        own = int(plan["Actual Rows"]) * int(plan["Actual Loops"])
    return own + sum(scanned(child) for child in plan.get("Plans", []))


async def test_a_big_batch_of_marks_reads_only_its_own_rows_on_an_inbox_grown_since_its_last_analyze(
        db: Database) -> None:
    """A busy minute's batch on an inbox whose statistics lag its growth (a burst after a quiet
    spell) made the planner hash-join every row the bot kept: 7 ms for 12,000 rows, growing with
    the table, and a slower write makes the next batch bigger still."""
    pool = db.require()
    await pool.execute("ALTER TABLE inbox SET (autovacuum_enabled = false)")  # the statistics stay stale
    await stored(db, *range(1, 51))
    await inbox.append_batch(db, BOT + 1, "test", [Incoming(u, "message", u, "{}") for u in range(1, 5001)])
    await pool.execute("ANALYZE inbox")  # this bot had 50 rows then
    for first in range(1000, 13000, 1000):
        await stored(db, *range(first, first + 1000))
    batch = list(range(12000, 12200))
    explained = await pool.fetchval("EXPLAIN (ANALYZE, FORMAT JSON) " + inbox.MARK_DONE,  # runs it, too
                                    BOT, batch, ["ok"] * len(batch))
    plan = json.loads(explained)[0]["Plan"]
    assert scanned(plan) <= 2 * len(batch), f"the marks read far more rows than their own: {plan}"
    assert await outcomes(db) == dict.fromkeys(batch, "ok")
