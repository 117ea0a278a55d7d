"""The poller's store step on a real PostgreSQL: an update the database refuses never stalls the rest."""

from __future__ import annotations

import pytest

import config
from actors.lock_keeper import LockKeeper
from actors.poller import Poller
from ingest import updates
from store.database import Database
from store.inbox import Incoming
from tests.procs import FAKE_TOKEN

pytestmark = pytest.mark.timeout(60)
BOT_ID = int(FAKE_TOKEN.split(":")[0])


def poller(db: Database, url: str) -> Poller:
    settings = config.load("serve", {"TELEGRAM_BOT_TOKEN": FAKE_TOKEN, "DATABASE_URL": url, "BOT_MODE": "polling"})
    return Poller(Poller.new_mailbox("poller"), settings, db, LockKeeper.new_mailbox("lock_keeper"), lambda: None)


async def stored(db: Database) -> dict[int, str]:
    rows = await db.require().fetch("SELECT update_id, payload FROM inbox WHERE bot_id = $1", BOT_ID)
    return {r["update_id"]: r["payload"] for r in rows}


async def test_a_batch_with_a_lone_surrogate_is_stored_whole(db: Database, database_url: str) -> None:
    batch = [{"update_id": 1, "message": {"chat": {"id": 5}, "text": "\ud800"}},
             {"update_id": 2, "message": {"chat": {"id": 5}, "text": "/start"}}]
    p = poller(db, database_url)
    assert await p._store([updates.from_object(u) for u in batch]) == {1, 2}
    assert p.refused == 0 and set(await stored(db)) == {1, 2}


async def test_an_update_the_database_refuses_is_skipped_and_counted_and_the_rest_stored(
        db: Database, database_url: str) -> None:
    refused = Incoming(2, "message", 5, '{"update_id": 2, "text": "\x00"}')  # a NUL: no text column takes it
    rows = [updates.from_object({"update_id": 1, "message": {"chat": {"id": 5}, "text": "a"}}), refused,
            updates.from_object({"update_id": 3, "message": {"chat": {"id": 5}, "text": "b"}})]
    p = poller(db, database_url)
    assert await p._store(rows) == {1, 3}
    assert p.refused == 1 and p.health()["refused"] == 1
    assert set(await stored(db)) == {1, 3}
    assert await p._store(rows) == set(), "a refetch of the same batch: the stored ones are duplicates"
