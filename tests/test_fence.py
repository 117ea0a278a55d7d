"""Fenced transactions against a real PostgreSQL: they never hold up the leader's heartbeat, and
one left open by a frozen leader cannot hold up the next leader's epoch bump for ever."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import AsyncIterator

import asyncpg
import pytest

from store import leader
from store.database import Database
from store.fence import Fenced, fenced, fenced_probe
from store.lock_session import LockSession
from tests.conftest import migrated
from tests.procs import eventually

pytestmark = pytest.mark.timeout(60)
NAME = leader.lock_name(4242)
KEYS = leader.lock_keys(NAME)


async def open_session(url: str, instance: str) -> LockSession:
    return await LockSession.open(url, instance_id=instance, heartbeat_interval=2.0, name=NAME, keys=KEYS,
                                  on_lost=lambda _session: None)


@pytest.fixture
async def leader_session(database_url: str) -> AsyncIterator[tuple[LockSession, int]]:
    """A leader holding the lock, and the epoch it recorded."""
    await migrated(database_url)
    session = await open_session(database_url, "leader-1")
    assert await session.try_lock()
    epoch = await session.bump_epoch("leader-1", os.getpid(), None)
    yield session, epoch
    await session.close()


async def test_a_stream_of_fenced_transactions_never_holds_up_the_heartbeat(database_url, leader_session) -> None:
    """Share lockers jump ahead of a waiting UPDATE of the row they lock, so a heartbeat on the
    leader row waited for as long as fenced traffic overlapped (a healthy leader demoted itself).
    A heartbeat-style UPDATE of the leader row, run alongside, shows the traffic does hold it."""
    session, epoch = leader_session
    db = Database(database_url, "fence-stream", pool_size=4)
    await db.connect()
    legacy = await asyncpg.connect(database_url)
    stop = asyncio.Event()
    done = [0, 0, 0, 0]
    holding = [0]  # transactions holding the share lock now
    changed = asyncio.Condition()

    def handed_over() -> bool:
        return holding[0] > 1 or stop.is_set()

    async def fenced_traffic(i: int) -> None:
        while not stop.is_set():
            async with fenced(db, NAME, epoch) as conn:
                async with changed:
                    holding[0] += 1
                    changed.notify_all()
                await conn.execute("SELECT pg_sleep(0.04)")
                # hand over hand: let go only once another transaction holds the share lock, so it
                # is held without a gap however the four are scheduled
                async with changed:
                    await changed.wait_for(handed_over)
                    holding[0] -= 1
                    changed.notify_all()
            done[i] += 1

    workers = [asyncio.create_task(fenced_traffic(i)) for i in range(4)]
    control: asyncio.Task[str] | None = None
    waits: list[float] = []
    try:
        async def flowing() -> bool:
            return min(done) >= 2

        await eventually(flowing, 10, "fenced traffic from all four connections")
        control = asyncio.create_task(legacy.execute(
            "UPDATE leader SET heartbeat_at = now() WHERE name = $1 AND epoch = $2", NAME, epoch))
        began = time.monotonic()
        while time.monotonic() - began < 2.0:
            started = time.monotonic()
            async with asyncio.timeout(1.5):  # a liveness bound, far above a round trip
                assert await session.heartbeat(epoch)
            waits.append(time.monotonic() - started)
        assert not control.done(), "the leader row was free for a moment: the traffic did not hold it"
    finally:
        stop.set()
        await asyncio.gather(*workers)
        if control is not None:
            async with asyncio.timeout(10):  # with the traffic gone the leader row is free again
                assert await control == "UPDATE 1"
        await legacy.close()
        await db.close()
    assert min(done) >= 10, f"fenced transactions per connection: {done}"
    assert len(waits) >= 10 and max(waits) < 1.5


async def test_a_fenced_transaction_left_open_by_a_frozen_leader_ends_and_lets_the_next_epoch_bump_through(
        database_url, leader_session) -> None:
    """A frozen process keeps its fenced transaction open and idle; the next leader's epoch bump
    waits for it. The pool's idle_in_transaction_session_timeout ends it on the server."""
    session, epoch = leader_session
    frozen_db = Database(database_url, "frozen-leader", pool_size=1, idle_in_transaction_timeout=1.0)
    await frozen_db.connect()
    entered, wake = asyncio.Event(), asyncio.Event()

    async def frozen_leader() -> None:
        async with fenced(frozen_db, NAME, epoch) as conn:
            entered.set()
            await wake.wait()  # frozen: the transaction stays open, nothing is sent
            await conn.execute("SELECT 1")

    frozen = asyncio.create_task(frozen_leader())
    standby = await open_session(database_url, "leader-2")
    try:
        async with asyncio.timeout(10):
            await entered.wait()
        idle_since = time.monotonic()
        assert await session.unlock()  # the old leader's lock is gone (its session ended)
        assert await standby.try_lock()
        async with asyncio.timeout(10):  # liveness: without the server timeout this waits for ever
            new_epoch = await standby.bump_epoch("leader-2", os.getpid(), "leader-1", timeout=30)
        waited = time.monotonic() - idle_since
        assert new_epoch == epoch + 1
        assert waited >= 0.9, f"the bump finished after {waited:.2f}s: it did not wait for the open transaction"
        wake.set()
        with pytest.raises((asyncpg.PostgresError, asyncpg.InterfaceError)):
            await frozen  # the server ended that session
        with pytest.raises(Fenced):  # a woken ex-leader's next fenced write is refused
            await fenced_probe(frozen_db, NAME, epoch, "after waking up")
        async with frozen_db.require().acquire() as conn:
            assert await conn.fetchval("SHOW idle_in_transaction_session_timeout") == "1s"
    finally:
        wake.set()
        if not frozen.done():
            frozen.cancel()
        await asyncio.gather(frozen, return_exceptions=True)
        await standby.close()
        await frozen_db.close()
