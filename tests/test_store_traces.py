"""store.traces on a real PostgreSQL: a story per row per batch, read back whole and in order,
with what the table of a row per event (before sql/023) still holds; trimmed by age in both."""

from __future__ import annotations

import time

import pytest

from store import traces
from store.database import Database

pytestmark = pytest.mark.timeout(60)
DAY = 86400.0


async def test_a_batch_is_one_row_per_story_and_each_story_reads_back_in_order(db: Database) -> None:
    now = time.time()
    written = await traces.insert_many(db, [
        ("u1", now, "ingress", "received", {"new": True}),
        ("j7", now + 0.001, "kie_poller", "kie_state", {"state": "waiting"}),
        ("u1", now + 0.002, "dispatcher", "handler_end", None),
    ])
    assert written == 2
    story = await traces.for_correlation(db, "u1")
    assert [(s["actor"], s["event"], s["data"]) for s in story] == [
        ("ingress", "received", {"new": True}), ("dispatcher", "handler_end", None)]
    assert story[0]["at"] == pytest.approx(now) and story[1]["at"] == pytest.approx(now + 0.002)
    assert await traces.for_correlation(db, "u2") == []


async def test_a_story_begun_in_the_old_table_reads_back_with_its_later_steps_in_time_order(db: Database) -> None:
    """An instance deployed before sql/023 wrote a row per event; the story goes on in trace_parts."""
    now = time.time()
    await db.require().execute(
        """INSERT INTO traces (correlation_id, at, actor, event, data)
           VALUES ('j5', to_timestamp($1), 'kie_poller', 'created', '{"task": "t"}'),
                  ('j5', to_timestamp($2), 'kie_poller', 'kie_state', NULL)""", now, now + 2)
    await traces.insert_many(db, [("j5", now + 1, "dispatcher", "confirmed", None),
                                  ("j5", now + 3, "kie_poller", "delivered", {"items": 1})])
    story = await traces.for_correlation(db, "j5")
    assert [s["event"] for s in story] == ["created", "confirmed", "kie_state", "delivered"]
    assert story[0]["data"] == {"task": "t"} and story[3]["data"] == {"items": 1}


async def test_a_value_json_cannot_take_is_written_as_its_text_not_failing_the_whole_batch(db: Database) -> None:
    class Odd:
        def __str__(self) -> str:
            return "odd value"

    await traces.insert_many(db, [("u3", time.time(), "test", "step", {"value": Odd()}),
                                  ("u4", time.time(), "test", "step", {"n": 1})])
    assert (await traces.for_correlation(db, "u3"))[0]["data"] == {"value": "odd value"}
    assert (await traces.for_correlation(db, "u4"))[0]["data"] == {"n": 1}


async def test_the_trim_takes_what_is_past_the_retention_from_both_tables_and_keeps_the_rest(db: Database) -> None:
    now = time.time()
    await traces.insert_many(db, [("u8", now - 10 * DAY, "test", "old", None), ("u9", now, "test", "new", None)])
    await db.require().execute(
        """INSERT INTO traces (correlation_id, at, actor, event)
           VALUES ('u10', to_timestamp($1), 'test', 'old'), ('u11', to_timestamp($2), 'test', 'new')""",
        now - 10 * DAY, now)
    assert await traces.trim(db, 7 * DAY) == 2
    kept = [cid for cid in ("u8", "u9", "u10", "u11") if await traces.for_correlation(db, cid)]
    assert kept == ["u9", "u11"]


async def test_a_nan_is_written_as_null_and_an_int_past_64_bits_whole(db: Database) -> None:
    """PostgreSQL's json refuses NaN, and orjson refuses ints past 64 bits: either would have failed
    the batch it was in, losing every story in it."""
    await traces.insert_many(db, [("u5", time.time(), "test", "step", {"ms": float("nan"), "big": 2**70}),
                                  ("u6", time.time(), "test", "step", {"ms": float("nan")}),
                                  ("u7", time.time(), "test", "step", {1: "non-string key"})])
    assert (await traces.for_correlation(db, "u5"))[0]["data"]["big"] == 2**70
    assert (await traces.for_correlation(db, "u6"))[0]["data"] == {"ms": None}
    assert (await traces.for_correlation(db, "u7"))[0]["data"] == {"1": "non-string key"}
