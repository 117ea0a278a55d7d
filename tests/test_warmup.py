"""store/warmup.py on a real PostgreSQL: a new pool connection walks the hot path, keeps its
prepared statements, and leaves nothing behind; a database without the schema leaves the
connection cold but usable; the db actor's migrations are followed by warm connections."""

from __future__ import annotations

import asyncio
from datetime import UTC, date, datetime

import asyncpg
import pytest

from actors.db import DbActor
from store import fence, first_contacts, fsm, grants, inbox, jobs, standing, warmup
from store.database import Database
from supervisor import ChildSpec, Supervisor
from tests.actors_kit import until
from tests.conftest import migrated

pytestmark = pytest.mark.timeout(60)

# a Confirm's statements, in the order its update runs them
HOT = (fence.CHECK, inbox.CLAIM[True], inbox.CLAIM[False], first_contacts.FIRST_CONTACT,
       first_contacts.FIRST_CONTACTS, fsm.READ, standing.STANDING, standing.STANDINGS,
       grants.STANDING,
       jobs.CONFIRM, jobs.step_sql(*jobs.SUBMITTING, 0), jobs.step_sql(*jobs.SUBMITTED, 1),
       jobs.step_sql(*jobs.status_message_step(True), 1), jobs.step_sql(*jobs.status_message_step(False), 1),
       fsm.CLEAR, inbox.MARK_DONE)


async def left_behind(conn: asyncpg.Connection) -> dict[str, int]:
    """Rows of the warm-up's bot or leader rows that are still there."""
    counts = {table: await conn.fetchval(f"SELECT count(*) FROM {table} WHERE bot_id = $1", warmup.WARM_BOT)
              for table in ("users", "accounts", "ledger", "jobs")}
    counts["leader"] = await conn.fetchval("SELECT count(*) FROM leader WHERE name LIKE 'trt:warmup:%'")
    return {table: n for table, n in counts.items() if n}


async def prepared(conn: asyncpg.Connection) -> set[str]:
    return {row["statement"] for row in await conn.fetch("SELECT statement FROM pg_prepared_statements")}


async def test_warm_walks_to_a_submitted_job_and_rolls_every_row_back(db: Database) -> None:
    async with db.require().acquire() as conn:
        assert await warmup.warm(conn)
        assert await left_behind(conn) == {}
        assert set(HOT) <= await prepared(conn)
        assert await conn.fetchval("SELECT 1") == 1  # no transaction left open


async def test_a_warmed_connection_runs_a_confirms_reads_and_done_mark_without_preparing_or_reading_types(
        db: Database) -> None:
    """The statements a Confirm meets cold on a connection the walk warmed were prepared there
    mid-burst (the terms' read on 8 of the first 18 Confirms, bench.generation), and the done
    mark's arrays made asyncpg read their types (three round trips and a heavy catalog query)."""
    async with db.require().acquire() as conn:
        assert await warmup.warm(conn)
        before = await prepared(conn)
        ran: list[str] = []
        conn.add_query_logger(lambda record: ran.append(record.query))
        await conn.fetchval(fence.CHECK, "trt:nobody", 1)
        await conn.fetchrow(fsm.READ, 1, 2, 2, 0, "", "default")
        await grants.standing(conn, 1, 2, "some/model", 500, day=date(2026, 12, 6), now=datetime.now(UTC))
        await conn.fetchval(fsm.CLEAR, 1, 2, 2, 0, "", "default")
        await conn.execute(inbox.MARK_DONE, 1, [3, 4], ["done", "done"])
        conn.remove_query_logger(ran.append)
        assert await prepared(conn) == before
        assert ran == [fence.CHECK, fsm.READ, grants.STANDING, fsm.CLEAR, inbox.MARK_DONE]  # no type look-up


async def test_every_new_pool_connection_is_warmed_once(database_url: str) -> None:
    await migrated(database_url)
    database = Database(database_url, "test", pool_size=3, warm=warmup.warm)
    await database.connect()
    try:
        pool = database.require()
        held = [await pool.acquire() for _ in range(3)]  # three distinct connections, two of them new
        try:
            assert database.warmed_connections == 3
            for conn in held:
                assert set(HOT) <= await prepared(conn)
            assert await left_behind(held[0]) == {}
        finally:
            for conn in held:
                await pool.release(conn)
        async with pool.acquire() as conn:  # a connection given back is not walked again
            await conn.fetchval("SELECT 1")
        assert database.warmed_connections == 3
    finally:
        await database.close()


async def test_a_database_without_the_schema_leaves_the_connection_cold_and_usable(database_url: str) -> None:
    conn = await asyncpg.connect(database_url)
    try:
        assert not await warmup.warm(conn)
        assert await conn.fetchval("SELECT 1") == 1
        assert not conn.is_in_transaction()
    finally:
        await conn.close()


async def test_a_connection_opened_while_the_inbox_is_locked_is_handed_out_cold_not_held_behind_the_lock(
        database_url: str) -> None:
    """The walk runs inside whoever's acquire() opened the connection: a trace batch's, say. Held
    behind a long lock on the inbox, it made that caller miss its deadline (and the supervisor
    restart the intake with it); the walk now gives up past WAIT_LIMIT instead."""
    await migrated(database_url)
    database = Database(database_url, "test", pool_size=2, warm=warmup.warm)
    await database.connect()
    blocker = await asyncpg.connect(database_url)
    try:
        pool = database.require()
        first = await pool.acquire()  # the pool's first connection, warmed before the lock
        assert database.warmed_connections == 1
        async with blocker.transaction():
            await blocker.execute("LOCK TABLE inbox IN SHARE MODE")  # the walk's claim and done mark wait on it
            opening = asyncio.ensure_future(pool.acquire())  # a new connection, while the lock is held
            await asyncio.wait({opening}, timeout=20)
            handed_out = opening.done()
        second = await opening  # the lock is gone: whatever happened, the connection comes
        try:
            assert handed_out, "the new connection was held behind the lock on the inbox"
            assert database.warmed_connections == 1, "the walk gave up: this connection is cold"
            assert not second.is_in_transaction() and await second.fetchval("SELECT 1") == 1
            assert await second.fetchval("SHOW lock_timeout") == "0", "the limit was the walk's alone"
            assert await left_behind(second) == {}
        finally:
            await pool.release(second)
            await pool.release(first)
    finally:
        await blocker.close()
        await database.close()


async def test_concurrent_warm_ups_do_not_wait_on_each_other(db: Database) -> None:
    """Each walk has its own leader row and user (its backend's pid): none blocks on another's
    uncommitted unique keys."""
    pool = db.require()

    async def one() -> bool:
        async with pool.acquire() as conn:
            return await warmup.warm(conn)
    assert await asyncio.wait_for(asyncio.gather(*(one() for _ in range(4))), 20) == [True] * 4


async def test_the_db_actors_pool_comes_after_its_migrations_so_its_first_connection_is_warm(
        database_url: str) -> None:
    database = Database(database_url, "test", pool_size=2, warm=warmup.warm)
    box = DbActor.new_mailbox("db")
    sup = Supervisor("test", [ChildSpec.actor(DbActor, box, database)])
    await sup.start()
    try:
        await until(lambda: database.pool is not None and database.migrations, 30, "migrations applied")
        # the migrations ran on a connection of their own: the pool's first connection is walked
        assert database.warmed_connections == 1
        async with database.require().acquire() as conn:
            assert set(HOT) <= await prepared(conn)
        assert database.warmed_connections == 1
    finally:
        await sup.stop()


async def test_a_full_pool_opens_every_connection_at_start_each_warmed_before_any_burst(database_url: str) -> None:
    """A served process's pool (`full`): a burst's connections are open and walked before it comes."""
    await migrated(database_url)
    database = Database(database_url, "test", pool_size=4, warm=warmup.warm, full=True)
    await database.connect()
    try:
        pool = database.require()
        assert pool.get_size() == 4 and database.warmed_connections == 4
        held = [await pool.acquire() for _ in range(4)]  # a burst: no connection is opened for it
        try:
            assert database.warmed_connections == 4
            for conn in held:
                assert set(HOT) <= await prepared(conn)
        finally:
            for conn in held:
                await pool.release(conn)
    finally:
        await database.close()


async def test_the_db_actor_opens_a_full_pool_only_once_the_schema_is_complete(database_url: str) -> None:
    database = Database(database_url, "test", pool_size=3, warm=warmup.warm, full=True)
    box = DbActor.new_mailbox("db")
    sup = Supervisor("test", [ChildSpec.actor(DbActor, box, database)])
    await sup.start()
    try:
        await until(lambda: database.pool is not None and database.migrations, 30, "migrations applied")
        assert database.require().get_size() == 3
        assert database.warmed_connections == 3, "the connection made before the schema was not kept"
    finally:
        await sup.stop()
