"""Leadership statements: the advisory lock, the epoch row, the heartbeat row, stale-holder takeover.

All of these run on lock_keeper's dedicated connection (never the pool: asyncpg's pool runs
pg_advisory_unlock_all() on release, and a transaction pooler cannot hold session locks).

The epoch lives in `leader`, which fenced transactions hold FOR SHARE; the heartbeat lives in
`leader_heartbeat`, which nothing else locks, because share lockers jump ahead of a waiting UPDATE
of their row and back-to-back fenced traffic would hold a heartbeat there for seconds.
"""

from __future__ import annotations

import hashlib
import struct
from dataclasses import dataclass

import asyncpg


def lock_name(bot_id: int) -> str:
    return f"trt:leader:{bot_id}"


def lock_keys(name: str) -> tuple[int, int]:
    """Two signed int32 keys from a stable name: never overflow, never shared across bots."""
    digest = hashlib.sha256(name.encode("utf-8", "surrogatepass")).digest()
    k1, k2 = struct.unpack(">ii", digest[:8])
    return k1, k2


async def try_lock(conn: asyncpg.Connection, keys: tuple[int, int]) -> bool:
    """Take the session lock if free. Never call it again on a session that holds it: locks stack."""
    return bool(await conn.fetchval("SELECT pg_try_advisory_lock($1::int4, $2::int4)", *keys))


async def unlock(conn: asyncpg.Connection, keys: tuple[int, int]) -> bool:
    return bool(await conn.fetchval("SELECT pg_advisory_unlock($1::int4, $2::int4)", *keys))


async def bump_epoch(conn: asyncpg.Connection, name: str, instance: str, pid: int,
                     took_over: str | None = None, *, timeout: float | None = None) -> int:
    """Record the acquisition: epoch + 1 in `leader` (the UPDATE waits for an old leader's open
    fenced transactions, up to the pool's idle_in_transaction_timeout for a frozen one: `timeout`,
    seconds per statement, lets it wait longer than the connection's command_timeout), and in the
    same transaction the heartbeat row naming this connection's backend, the one a standby may
    terminate when its heartbeat goes stale."""
    async with conn.transaction():
        epoch = await conn.fetchval(
            """INSERT INTO leader (name, epoch, instance, pid, heartbeat_at, acquired_at)
               VALUES ($1, 1, $2, $3, now(), now())
               ON CONFLICT (name) DO UPDATE
                  SET epoch = leader.epoch + 1, instance = EXCLUDED.instance, pid = EXCLUDED.pid,
                      heartbeat_at = now(), acquired_at = now()
               RETURNING epoch""",
            name, instance, pid, timeout=timeout,
        )
        # clock_timestamp(), not now(): the UPDATE above may have waited, and the heartbeat must
        # not start out aged by that wait
        await conn.execute(
            """INSERT INTO leader_heartbeat (name, epoch, instance, backend_pid, backend_start, heartbeat_at)
               VALUES ($1, $2, $3, pg_backend_pid(),
                       (SELECT backend_start FROM pg_stat_activity WHERE pid = pg_backend_pid()),
                       clock_timestamp())
               ON CONFLICT (name) DO UPDATE
                  SET epoch = EXCLUDED.epoch, instance = EXCLUDED.instance, backend_pid = EXCLUDED.backend_pid,
                      backend_start = EXCLUDED.backend_start, heartbeat_at = EXCLUDED.heartbeat_at""",
            name, epoch, instance, timeout=timeout,
        )
        await conn.execute(
            """INSERT INTO leader_history (name, epoch, instance, pid, acquired_at, took_over)
               VALUES ($1, $2, $3, $4, now(), $5) ON CONFLICT DO NOTHING""",
            name, epoch, instance, pid, took_over, timeout=timeout,
        )
    return int(epoch)


async def heartbeat(conn: asyncpg.Connection, name: str, epoch: int) -> bool:
    """Fenced heartbeat on the heartbeat row: False when another leader has bumped the epoch since,
    or when this is not the backend that bumped it (then a standby could not end it if it froze)."""
    status: str = await conn.execute(
        """UPDATE leader_heartbeat SET heartbeat_at = now()
           WHERE name = $1 AND epoch = $2 AND backend_pid = pg_backend_pid()""",
        name, epoch,
    )
    return status == "UPDATE 1"


@dataclass(frozen=True)
class Holder:
    instance: str
    epoch: int
    heartbeat_age: float
    backend_pid: int | None = None  # None: a leader from before leader_heartbeat, not recorded


async def holder(conn: asyncpg.Connection, name: str) -> Holder | None:
    """The current leader and its heartbeat's age. A leader row ahead of the heartbeat row was
    bumped by a version from before leader_heartbeat, which still heartbeats the leader row."""
    row = await conn.fetchrow(
        """SELECT l.instance, l.epoch,
                  extract(epoch FROM now() - CASE WHEN h.epoch = l.epoch THEN h.heartbeat_at
                                                  ELSE l.heartbeat_at END)::float8 AS age,
                  CASE WHEN h.epoch = l.epoch THEN h.backend_pid END AS backend_pid
           FROM leader l LEFT JOIN leader_heartbeat h ON h.name = l.name
           WHERE l.name = $1""",
        name,
    )
    return None if row is None else Holder(row["instance"], row["epoch"], row["age"], row["backend_pid"])


async def terminate_stale_holder(conn: asyncpg.Connection, name: str, keys: tuple[int, int],
                                 stale_after: float) -> list[int]:
    """End the lock's holder only if it is the backend recorded in leader_heartbeat (pid and start
    time, so a reused pid does not match) and its heartbeat is older than `stale_after` seconds,
    all in one statement: a leader elected since the caller read the staleness holds the lock from
    a backend not recorded yet, and is left alone. An (int4, int4) advisory lock shows in pg_locks
    as classid = key1, objid = key2 (unsigned oids), objsubid 2."""
    rows = await conn.fetch(
        """SELECT l.pid, pg_terminate_backend(l.pid) AS ended
           FROM leader_heartbeat h
           JOIN pg_locks l ON l.pid = h.backend_pid
           JOIN pg_stat_activity a ON a.pid = h.backend_pid
           WHERE h.name = $1 AND h.heartbeat_at < now() - make_interval(secs => $4)
             AND a.backend_start IS NOT DISTINCT FROM h.backend_start
             AND l.locktype = 'advisory' AND l.granted AND l.objsubid = 2
             AND l.classid::int4 = $2::int4 AND l.objid::int4 = $3::int4
             AND l.pid <> pg_backend_pid()""",
        name, *keys, stale_after,
    )
    return [r["pid"] for r in rows if r["ended"]]


async def history(conn: asyncpg.Connection | asyncpg.Pool, name: str) -> list[tuple[int, str]]:
    rows = await conn.fetch("SELECT epoch, instance FROM leader_history WHERE name = $1 ORDER BY epoch", name)
    return [(r["epoch"], r["instance"]) for r in rows]


async def current(conn: asyncpg.Connection | asyncpg.Pool, name: str) -> tuple[int, str] | None:
    row = await conn.fetchrow("SELECT epoch, instance FROM leader WHERE name = $1", name)
    return None if row is None else (row["epoch"], row["instance"])


@dataclass(frozen=True)
class Leadership:
    """What `run.py check` shows about the lock: the leader row as recorded, and whether a session
    holds the advisory lock right now (a row says who led last; only pg_locks says anyone leads)."""

    name: str
    keys: tuple[int, int]
    migrated: bool  # False: the leader tables do not exist yet (nothing has run the migrations)
    holder: Holder | None
    lock_pids: tuple[int, ...]  # backends holding the advisory lock now (one, or none)
    lock_application: str | None  # the holder's application_name (trt-lock:<instance>), when visible

    @property
    def held(self) -> bool:
        return bool(self.lock_pids)


async def describe(conn: asyncpg.Connection, bot_id: int) -> Leadership:
    """Read-only: the leader row and heartbeat of `bot_id`'s lock, and who holds the lock now.
    Takes no lock and writes nothing, so an operator may run it against a live deployment."""
    name = lock_name(bot_id)
    keys = lock_keys(name)
    locks = await conn.fetch(
        """SELECT l.pid, a.application_name
           FROM pg_locks l LEFT JOIN pg_stat_activity a ON a.pid = l.pid
           WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 2
             AND l.classid::int4 = $1::int4 AND l.objid::int4 = $2::int4
           ORDER BY l.pid""",
        *keys,
    )
    pids = tuple(int(r["pid"]) for r in locks)
    application = next((r["application_name"] for r in locks if r["application_name"]), None)
    migrated = bool(await conn.fetchval(
        "SELECT to_regclass('leader') IS NOT NULL AND to_regclass('leader_heartbeat') IS NOT NULL"))
    found = await holder(conn, name) if migrated else None
    return Leadership(name, keys, migrated, found, pids, application)


async def inspect(url: str, bot_id: int, timeout: float = 5.0) -> Leadership:
    """describe() on a short connection of its own (never the pool, never the lock session), for
    `run.py check`."""
    conn = await asyncpg.connect(url, timeout=timeout, command_timeout=timeout,
                                 server_settings={"application_name": "trt-check"})
    try:
        return await describe(conn, bot_id)
    finally:
        await conn.close()
