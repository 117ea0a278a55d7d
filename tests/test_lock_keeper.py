"""lock_keeper in process on a real PostgreSQL, the test in its subscribers' place: what it tells
them, that a late word about a replaced connection changes nothing, and that it lets the lock go
only once every subscriber stopped acting or the lease it granted ran out."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import pytest

import config
from actors.lock_keeper import LockKeeper
from actors.mailbox import Mailbox
from messages.roles import LockConnectionLost, Relinquish, Role, RoleChanged
from store import leader
from store.database import Database
from tests.actors_kit import until
from tests.procs import FAKE_TOKEN

pytestmark = pytest.mark.timeout(60)
NAME = leader.lock_name(int(FAKE_TOKEN.split(":")[0]))


def latest(box: Mailbox) -> RoleChanged | None:
    """The state queued for a subscriber (control messages keep only the newest of a type)."""
    env = box._control.get(RoleChanged)
    return env.msg if env is not None else None


@pytest.fixture
async def keeper(db: Database, database_url: str) -> AsyncIterator[Any]:
    made: list[LockKeeper] = []

    async def make(*subscribers: Mailbox) -> LockKeeper:
        settings = config.load("serve", {"TELEGRAM_BOT_TOKEN": FAKE_TOKEN, "DATABASE_URL": database_url,
                                          "HEARTBEAT_INTERVAL": "0.5", "LOCK_RETRY_INTERVAL": "0.2",
                                          "STALE_AFTER": "3"})
        actor = LockKeeper(LockKeeper.new_mailbox("lock_keeper"), settings, db, list(subscribers))
        await actor.start()
        made.append(actor)
        return actor

    yield make
    for actor in made:
        await actor.stop(10.0)


def subscriber(name: str) -> Mailbox:
    return Mailbox(name, (RoleChanged, Relinquish), 8)


async def test_every_heartbeat_tells_the_subscribers_the_state_again_with_a_fresh_lease(keeper: Any) -> None:
    box = subscriber("sub")
    actor: LockKeeper = await keeper(box)
    first = await until(lambda: latest(box), what="the state told")
    assert first.role is Role.ACTIVE and first.epoch == actor.epoch and first.lease_until > time.monotonic()
    box._control.clear()  # as if the subscriber had read it (or missed it while restarting)
    again = await until(lambda: latest(box), what="the state told again at the next heartbeat")
    assert again.role is Role.ACTIVE and again.lease_until > first.lease_until


async def test_a_late_connection_lost_for_a_replaced_connection_does_not_demote(keeper: Any) -> None:
    actor: LockKeeper = await keeper()
    assert actor.role is Role.ACTIVE
    await actor.mailbox.ask(LockConnectionLost("an old connection's goodbye", actor.session_serial - 1))
    assert actor.role is Role.ACTIVE and actor.demotions == 0
    await actor.mailbox.ask(LockConnectionLost("this connection ended", actor.session_serial))
    assert actor.role is Role.PASSIVE and actor.demotions == 1


async def lock_is_free(database_url: str) -> bool:
    conn = await asyncpg.connect(database_url)
    try:
        keys = leader.lock_keys(NAME)
        if await leader.try_lock(conn, keys):
            await leader.unlock(conn, keys)
            return True
        return False
    finally:
        await conn.close()


async def test_a_stopping_keeper_holds_the_lock_until_a_silent_subscriber_s_lease_runs_out(
        keeper: Any, database_url: str) -> None:
    silent = subscriber("silent")
    silent.consumers = 1  # an actor runs on it, but it never gets to answer (busy, or hung)
    actor: LockKeeper = await keeper(silent)
    lease_until = actor.lease_until
    stopping = asyncio.create_task(actor.stop(10.0))
    assert not await lock_is_free(database_url)
    await until(lambda: lock_is_free(database_url), timeout=10, what="the lock let go")
    freed = time.monotonic()
    await stopping
    assert freed >= lease_until, "let go before the lease it granted ran out"
    assert isinstance(silent._control_asks[0].msg, Relinquish)


async def test_a_stopping_keeper_lets_go_as_soon_as_every_subscriber_confirmed(
        keeper: Any, database_url: str, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    box = subscriber("obedient")
    box.consumers = 1
    actor: LockKeeper = await keeper(box)

    async def obey() -> None:
        env = await box.get()
        while not isinstance(env.msg, Relinquish):
            env = await box.get()
        assert env.reply is not None
        env.reply.set_result(True)

    answering = asyncio.create_task(obey())
    await actor.stop(10.0)
    await answering
    assert await lock_is_free(database_url)
    events = [getattr(r, "event", r.getMessage()) for r in caplog.records]
    assert "relinquished" in events and "relinquish_unconfirmed" not in events, "no wait for the lease"
