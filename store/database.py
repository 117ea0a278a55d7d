"""The process's handle on PostgreSQL: the pool the db actor owns and its state for /health.

Other actors get this handle from the tree builder and reach the pool through store/ functions;
when the db actor restarts it replaces the pool inside the same handle, so nobody holds a stale one.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import urlsplit

import asyncpg

from telemetry import logs

log = logs.get("store")


class DatabaseUnavailable(Exception):
    """The database cannot be used right now (not connected yet, or down)."""


class PoolBusy(Exception):
    """Every pool connection stayed in use for the whole wait: the server may be fine, the
    process is using all it may. Not an outage: acks still commit on the intake's own pool."""


# what a statement raises when the database is down, restarting or unreachable: retry later
# (InternalClientError: "another operation is in progress" on a connection the server is ending)
DB_ERRORS = (DatabaseUnavailable, asyncpg.PostgresError, asyncpg.InterfaceError, asyncpg.InternalClientError,
             OSError, TimeoutError)
# of those, what says "not now" rather than "this statement is wrong": the connection or the
# server is gone or refusing, a statement was cancelled or timed out, a serialization conflict;
# work that met one of these is retried, never reported as failed for good
DB_UNAVAILABLE = (DatabaseUnavailable, asyncpg.InterfaceError, asyncpg.InternalClientError, OSError, TimeoutError,
                  asyncpg.PostgresConnectionError, asyncpg.OperatorInterventionError,
                  asyncpg.InsufficientResourcesError, asyncpg.TransactionRollbackError)


class PooledConnection(asyncpg.Connection):  # type: ignore[misc]  # asyncpg ships no types: Connection is Any
    """A pool connection given back without asyncpg's reset statement (`pg_advisory_unlock_all();
    CLOSE ALL; UNLISTEN *; RESET ALL`), which is one more round trip on every release, that is on
    every single-statement call. Nothing here leaves session state on a pool connection: the
    leader's advisory lock lives on its own connection, nobody LISTENs or SETs on the pool (the
    warm-up's SET LOCAL ends with its transaction), and an open transaction is still rolled back
    on release (asyncpg does that part without the query)."""

    def get_reset_query(self) -> str:
        return ""


def _ms(seconds: float) -> str:
    """A server setting in milliseconds; a positive value never rounds down to 0 (which means none)."""
    return str(max(1, round(seconds * 1000)) if seconds > 0 else 0)


def describe_url(url: str) -> str:
    """The URL without credentials, for logs and reports."""
    parts = urlsplit(url)
    host = parts.hostname or "unix-socket"
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{host}{port}{parts.path}"


class Database:
    """Pool, connection state and the last measured round trip."""

    def __init__(self, url: str, instance_id: str, embedded: bool = False, pool_size: int = 10,
                 idle_in_transaction_timeout: float = 5.0, statement_timeout: float = 30.0,
                 warm: Callable[[asyncpg.Connection], Awaitable[bool]] | None = None, full: bool = False) -> None:
        """The two timeouts (seconds, 0 = none) are server settings of every pool connection, so a
        frozen or stuck process cannot keep a fenced transaction open, and with it the leader row
        that the next leader's epoch bump waits for, for ever. `warm` (store/warmup.warm) runs on
        every new pool connection before its first use.

        `full` (a served process): the pool opens all its connections at connect, each walked by
        `warm`, and asyncpg keeps them open (a floor connection is never retired for idleness, and
        one lost is opened again). Otherwise a burst, the first after a start or the first that
        needs more connections than the traffic before it did, opens and walks connections while
        it waits: bench.generation's 50 Confirms at once spent twice the CPU (TRT and PostgreSQL)
        from the presses to the 18th createTask once the users' first contacts, which used to grow
        the pool beforehand, shared statements (store/first_contacts.py). DATABASE_POOL_SIZE is
        what an operator sizes PostgreSQL for anyway."""
        self.url = url
        self.instance_id = instance_id
        self.embedded = embedded
        self.pool_size = pool_size
        self.idle_in_transaction_timeout = idle_in_transaction_timeout
        self.statement_timeout = statement_timeout
        self.pool: asyncpg.Pool | None = None
        self.state = "connecting"
        self.last_error: str | None = None
        self.last_error_at: float | None = None
        self.latency: float | None = None
        self.server_version: str | None = None
        self.migrations: list[str] = []
        self.warm = warm
        self.full = full
        self.warmed_connections = 0  # new pool connections that walked the hot path (store/warmup.py)

    async def connect(self, timeout: float = 5.0) -> None:
        """Open the pool (all of a `full` one's connections); raises OSError / asyncpg errors when
        the server cannot be reached."""
        pool = await asyncpg.create_pool(
            self.url,
            min_size=self.pool_size if self.full else 1,
            max_size=self.pool_size,
            timeout=timeout,
            command_timeout=30,
            # a connection's plans last as long as it does (store/warmup.py): keep an idle one an hour
            max_inactive_connection_lifetime=3600,
            connection_class=PooledConnection,
            init=self._warm,
            server_settings={
                "application_name": f"trt:{self.instance_id}"[:63],
                "idle_in_transaction_session_timeout": _ms(self.idle_in_transaction_timeout),
                "statement_timeout": _ms(self.statement_timeout),
            },
        )
        await self.close()
        self.pool = pool
        async with pool.acquire() as conn:
            self.server_version = await conn.fetchval("SHOW server_version")
        self.mark_up(None)

    async def _warm(self, conn: asyncpg.Connection) -> None:
        if self.warm is not None and await self.warm(conn):
            self.warmed_connections += 1

    async def close(self) -> None:
        pool, self.pool = self.pool, None
        if pool is not None:
            try:
                await pool.close()
            except Exception:  # a broken pool is being thrown away anyway
                pool.terminate()

    def require(self) -> asyncpg.Pool:
        if self.pool is None or self.state == "down":
            raise DatabaseUnavailable(f"database is {self.state}")
        return self.pool

    async def ping(self, timeout: float = 5.0) -> float:
        """One round trip through the pool, each part bounded by `timeout`; returns its seconds.

        Waiting for a connection and the round trip are told apart: a pool whose connections
        are all in use raises PoolBusy (the process is busy, the server may be fine); a server
        that does not answer raises TimeoutError. Unbounded, either kept the db actor's tick past
        its deadline, and the actor's crash restarted the whole tree behind it (rest_for_one)."""
        pool = self.require() if self.pool is not None else None
        if pool is None:
            raise DatabaseUnavailable("database is not connected")
        try:
            conn = await pool.acquire(timeout=timeout)
        except TimeoutError:
            if pool.get_idle_size() == 0 and pool.get_size() >= pool.get_max_size():
                raise PoolBusy(f"all {pool.get_max_size()} pool connections in use for {timeout:g} s") from None
            raise  # a connection being opened did not come: the server's side
        try:
            started = time.perf_counter()
            await conn.fetchval("SELECT 1", timeout=timeout)
            elapsed = time.perf_counter() - started
        finally:
            await pool.release(conn, timeout=timeout)
        self.mark_up(elapsed)
        return elapsed

    def mark_up(self, latency: float | None) -> None:
        if self.state != "up":
            log.info("database_up", extra={"database": describe_url(self.url)})
        self.state = "up"
        if latency is not None:
            self.latency = latency

    def mark_down(self, error: BaseException) -> None:
        text = f"{type(error).__name__}: {error}"[:300]
        if self.state != "down":
            log.error("database_down", extra={"database": describe_url(self.url), "error_text": text})
        self.state = "down"
        self.last_error, self.last_error_at = text, time.time()

    def health(self) -> dict[str, Any]:
        return {
            "state": self.state,
            "url": describe_url(self.url),
            "embedded": self.embedded,
            "server_version": self.server_version,
            "latency_ms": None if self.latency is None else round(self.latency * 1000, 2),
            "migrations": len(self.migrations),
            "last_error": self.last_error,
            "last_error_at": self.last_error_at,
        }
