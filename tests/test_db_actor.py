"""actors/db.py's ping on a real PostgreSQL: a pool with every connection in use is the
process being busy, not the database being down, and never a crash of the db actor (which sits
first under the root's rest_for_one: its crash restarts the whole tree, the leadership with it)."""

from __future__ import annotations

import pytest

from actors.backoff import Backoff
from actors.db import DbActor
from store.database import Database, PoolBusy
from supervisor import ChildSpec, Supervisor
from tests.actors_kit import until
from tests.conftest import migrated

pytestmark = pytest.mark.timeout(60)


async def test_a_ping_with_every_pool_connection_in_use_raises_pool_busy_and_the_pool_serves_after(
        database_url: str) -> None:
    await migrated(database_url)
    database = Database(database_url, "test", pool_size=2)
    await database.connect()
    try:
        pool = database.require()
        held = [await pool.acquire() for _ in range(2)]
        with pytest.raises(PoolBusy, match="all 2 pool connections in use"):
            await database.ping(0.2)
        for conn in held:
            await pool.release(conn)
        assert await database.ping(0.2) >= 0 and database.state == "up"
    finally:
        await database.close()


async def test_a_pool_with_every_connection_in_use_makes_health_warn_and_leaves_the_db_actor_running_and_up(
        database_url: str) -> None:
    """Unbounded, the ping waited for a connection until the tick's 15 s deadline and the db
    actor crashed."""
    await migrated(database_url)
    database = Database(database_url, "test", pool_size=2)
    box = DbActor.new_mailbox("db")
    sup = Supervisor("test", [ChildSpec.actor(DbActor, box, database, ping_interval=0.05, ping_timeout=0.3)],
                     backoff=Backoff(min=0.01, max=0.05))
    await sup.start()
    try:
        await until(lambda: database.pool is not None and database.state == "up", 30, "connected")
        pool = database.require()
        held = [await pool.acquire() for _ in range(2)]
        try:
            seen = await until(lambda: sup.snapshot()["db"]["problems"] and sup.snapshot()["db"], 20,
                               "the busy pool named in the db actor's health")
            assert "all 2 pool connections in use" in seen["problems"][0]
            assert database.state == "up", "busy is not down: acks go on"
            assert seen["restarts"] == 0 and seen["deadline_misses"] == 0
        finally:
            for conn in held:
                await pool.release(conn)
        await until(lambda: not sup.snapshot()["db"]["problems"], 20, "the warning gone with the busy spell")
        assert sup.snapshot()["db"]["restarts"] == 0
    finally:
        await sup.stop()
