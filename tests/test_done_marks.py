"""The dispatcher's done marks on a real PostgreSQL: batched by the load, never lost to a stop."""

from __future__ import annotations

import asyncio
import logging

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
