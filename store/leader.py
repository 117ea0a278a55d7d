"""Leadership statements: the advisory lock, the epoch row, stale-holder takeover.

All of these run on lock_keeper's dedicated connection (never the pool: asyncpg's pool runs
pg_advisory_unlock_all() on release, and a transaction pooler cannot hold session locks).
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
                     took_over: str | None = None) -> int:
    """Record the acquisition: epoch + 1. Waits for an old leader's open fenced transactions."""
    async with conn.transaction():
        epoch = await conn.fetchval(
            """INSERT INTO leader (name, epoch, instance, pid, heartbeat_at, acquired_at)
               VALUES ($1, 1, $2, $3, now(), now())
               ON CONFLICT (name) DO UPDATE
                  SET epoch = leader.epoch + 1, instance = EXCLUDED.instance, pid = EXCLUDED.pid,
                      heartbeat_at = now(), acquired_at = now()
               RETURNING epoch""",
            name, instance, pid,
        )
        await conn.execute(
            """INSERT INTO leader_history (name, epoch, instance, pid, acquired_at, took_over)
               VALUES ($1, $2, $3, $4, now(), $5) ON CONFLICT DO NOTHING""",
            name, epoch, instance, pid, took_over,
        )
    return int(epoch)


async def heartbeat(conn: asyncpg.Connection, name: str, epoch: int) -> bool:
    """Fenced heartbeat: False when another leader has bumped the epoch since."""
    status: str = await conn.execute(
        "UPDATE leader SET heartbeat_at = now() WHERE name = $1 AND epoch = $2", name, epoch
    )
    return status == "UPDATE 1"


@dataclass(frozen=True)
class Holder:
    instance: str
    epoch: int
    heartbeat_age: float


async def holder(conn: asyncpg.Connection, name: str) -> Holder | None:
    row = await conn.fetchrow(
        """SELECT instance, epoch, extract(epoch FROM now() - heartbeat_at)::float8 AS age
           FROM leader WHERE name = $1""",
        name,
    )
    return None if row is None else Holder(row["instance"], row["epoch"], row["age"])


async def terminate_holder(conn: asyncpg.Connection, keys: tuple[int, int]) -> list[int]:
    """End the backend holding our lock (an (int4, int4) lock: classid = key1, objid = key2, objsubid 2)."""
    rows = await conn.fetch(
        """SELECT l.pid, pg_terminate_backend(l.pid) AS ended
           FROM pg_locks l
           WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 2
             AND l.classid::int4 = $1::int4 AND l.objid::int4 = $2::int4
             AND l.pid <> pg_backend_pid()""",
        *keys,
    )
    return [r["pid"] for r in rows if r["ended"]]


async def history(conn: asyncpg.Connection | asyncpg.Pool, name: str) -> list[tuple[int, str]]:
    rows = await conn.fetch("SELECT epoch, instance FROM leader_history WHERE name = $1 ORDER BY epoch", name)
    return [(r["epoch"], r["instance"]) for r in rows]


async def current(conn: asyncpg.Connection | asyncpg.Pool, name: str) -> tuple[int, str] | None:
    row = await conn.fetchrow("SELECT epoch, instance FROM leader WHERE name = $1", name)
    return None if row is None else (row["epoch"], row["instance"])
