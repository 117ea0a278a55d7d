"""The janitor's inbox trim on a real PostgreSQL: only this bot's handled updates go; unfinished
ones stay and are counted."""

from __future__ import annotations

import logging

import pytest

from actors.janitor import Janitor
from messages.control import Tick
from store import inbox, kie_callbacks
from store.database import Database
from store.inbox import Incoming

pytestmark = pytest.mark.timeout(60)
BOT, OTHER = 111, 222
DAY = 86400.0


async def store(db: Database, bot_id: int, update_id: int, *, days_old: float, done: bool) -> None:
    """One inbox row as the pipeline leaves it, then aged by moving received_at back."""
    await inbox.append_batch(db, bot_id, "test", [Incoming(update_id, "message", 1, "{}")])
    if done:
        await inbox.mark_done(db, bot_id, [(update_id, "ok")])
    await db.require().execute(
        "UPDATE inbox SET received_at = now() - make_interval(secs => $3) WHERE bot_id = $1 AND update_id = $2",
        bot_id, update_id, days_old * DAY)


async def left(db: Database) -> set[tuple[int, int]]:
    return {(r["bot_id"], r["update_id"]) for r in await db.require().fetch("SELECT bot_id, update_id FROM inbox")}


async def test_two_bots_on_one_database_trim_only_their_own_rows(db: Database) -> None:
    for bot_id in (BOT, OTHER):
        await store(db, bot_id, 1, days_old=10, done=True)
        await store(db, bot_id, 2, days_old=1, done=True)
    assert await inbox.trim(db, BOT, 7 * DAY) == (1, 0)
    assert await left(db) == {(BOT, 2), (OTHER, 1), (OTHER, 2)}, "the other bot's old row is the other bot's business"
    assert await inbox.trim(db, OTHER, 7 * DAY) == (1, 0)
    assert await left(db) == {(BOT, 2), (OTHER, 2)}


async def test_an_old_unfinished_update_survives_the_trim_and_is_counted(db: Database) -> None:
    await store(db, BOT, 1, days_old=10, done=False)  # stranded: never handled
    await store(db, BOT, 2, days_old=10, done=True)
    await store(db, BOT, 3, days_old=1, done=False)  # recent and waiting: not past the retention
    await store(db, OTHER, 4, days_old=10, done=False)  # another bot's: not ours to count
    assert await inbox.trim(db, BOT, 7 * DAY) == (1, 1)
    assert await left(db) == {(BOT, 1), (BOT, 3), (OTHER, 4)}


async def test_the_janitor_warns_about_unfinished_updates_past_the_retention_and_shows_them_in_health(
        db: Database, caplog: pytest.LogCaptureFixture) -> None:
    await store(db, BOT, 1, days_old=10, done=False)
    await store(db, OTHER, 2, days_old=10, done=True)
    janitor = Janitor(Janitor.new_mailbox("janitor"), db, BOT, 7 * DAY)
    with caplog.at_level(logging.WARNING, logger="trt.janitor"):
        await janitor.on_tick(Tick())
    assert janitor.health()["inbox_unfinished_past_retention"] == 1
    assert [r.getMessage() for r in caplog.records] == ["inbox_unfinished_past_retention"]
    assert await left(db) == {(BOT, 1), (OTHER, 2)}


async def test_applied_kie_callbacks_past_the_retention_go_and_unapplied_ones_stay(db: Database) -> None:

    ids = {}
    for name, bot_id in (("old_applied", BOT), ("old_pending", BOT), ("new_applied", BOT), ("other_bot", OTHER)):
        ids[name] = await kie_callbacks.store_callback(db, bot_id, "test", "{}", task_id=name)
    await kie_callbacks.mark_callbacks_applied(db, [ids["old_applied"], ids["new_applied"], ids["other_bot"]])
    await db.require().execute(
        "UPDATE kie_callbacks SET applied_at = now() - interval '10 days', received_at = now() - interval '10 days' "
        "WHERE id = ANY($1::bigint[])", [ids["old_applied"], ids["other_bot"]])
    await db.require().execute("UPDATE kie_callbacks SET received_at = now() - interval '10 days' WHERE id = $1",
                               ids["old_pending"])
    janitor = Janitor(Janitor.new_mailbox("janitor"), db, BOT, 7 * DAY)
    await janitor.on_tick(Tick())
    kept = {r["task_id"] for r in await db.require().fetch("SELECT task_id FROM kie_callbacks")}
    assert kept == {"old_pending", "new_applied", "other_bot"}, "a pending callback may still be needed by its job"
