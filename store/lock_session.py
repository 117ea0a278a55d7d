"""The leader lock's own connection: opened, kept alive, and closed here, so no actor needs to
know asyncpg.

It is a direct connection, never the pool (asyncpg's pool runs pg_advisory_unlock_all() on
release, and a transaction pooler cannot hold session locks). The server ends a silent (frozen)
holder's session by itself through idle_session_timeout set on this connection, and TCP
keepalives on both sides bound how long a vanished peer keeps it. Any error on it means the lock
may be gone: the caller treats it as lost and never reuses the connection (a lock call that
timed out on the client may have been granted on the server).
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Callable

import asyncpg

from store import leader

# what a lock statement raises when the connection or the server is gone; after a SIGCONT it can be
# InternalClientError
LOCK_ERRORS = (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError, asyncpg.InternalClientError)


def idle_session_timeout(heartbeat_interval: float) -> float:
    """Seconds of silence after which the server ends the lock session (and frees the lock):
    three heartbeats, so one late heartbeat is not fatal."""
    return max(3.0, 3 * heartbeat_interval)


class LockSession:
    """One dedicated connection and the leadership statements that run on it."""

    def __init__(self, conn: asyncpg.Connection, name: str, keys: tuple[int, int]) -> None:
        self._conn = conn
        self.name = name
        self.keys = keys

    @classmethod
    async def open(cls, url: str, *, instance_id: str, heartbeat_interval: float, name: str,
                   keys: tuple[int, int], on_lost: Callable[[LockSession], None]) -> LockSession:
        """Connect with the server-side idle timeout of three heartbeats and keepalives on both ends;
        `on_lost(session)` is called when the server or the network ends the connection."""
        idle_ms = int(idle_session_timeout(heartbeat_interval) * 1000)
        conn = await asyncpg.connect(
            url,
            timeout=5,
            command_timeout=max(2.0, heartbeat_interval),
            server_settings={
                "application_name": f"trt-lock:{instance_id}"[:63],
                # the server ends a silent (frozen) holder's session, freeing the lock
                "idle_session_timeout": str(idle_ms),
                "tcp_keepalives_idle": "5",
                "tcp_keepalives_interval": "2",
                "tcp_keepalives_count": "3",
            },
        )
        _keepalive(conn)
        session = cls(conn, name, keys)
        conn.add_termination_listener(lambda _conn: on_lost(session))
        return session

    @property
    def closed(self) -> bool:
        return bool(self._conn.is_closed())

    @property
    def backend_pid(self) -> int:
        """The server process of this connection: what bump_epoch records and a standby may end."""
        return int(self._conn.get_server_pid())

    async def try_lock(self) -> bool:
        return await leader.try_lock(self._conn, self.keys)

    async def unlock(self) -> bool:
        return await leader.unlock(self._conn, self.keys)

    async def bump_epoch(self, instance: str, pid: int, took_over: str | None, *, timeout: float | None = None) -> int:
        """`timeout`: seconds per statement instead of the connection's command_timeout (the bump may
        wait for a frozen ex-leader's fenced transaction until the server ends it)."""
        return await leader.bump_epoch(self._conn, self.name, instance, pid, took_over, timeout=timeout)

    async def heartbeat(self, epoch: int) -> bool:
        """A round trip on the lock connection, then the fenced heartbeat row update."""
        await self._conn.fetchval("SELECT 1")
        return await leader.heartbeat(self._conn, self.name, epoch)

    async def holder(self) -> leader.Holder | None:
        return await leader.holder(self._conn, self.name)

    async def terminate_stale_holder(self, stale_after: float) -> list[int]:
        """Takeover: end the holder only if it is the recorded leader's backend and its heartbeat is
        older than `stale_after` seconds, in one statement (see leader.terminate_stale_holder)."""
        return await leader.terminate_stale_holder(self._conn, self.name, self.keys, stale_after)

    async def close(self, timeout: float = 2.0) -> None:
        try:
            await asyncio.wait_for(self._conn.close(), timeout)
        except LOCK_ERRORS:
            self._conn.terminate()

    def terminate(self) -> None:
        self._conn.terminate()


def _keepalive(conn: asyncpg.Connection) -> None:
    """Our side of the keepalives: notice a vanished server within ~11 s (TCP only; a Unix socket
    has no peer to vanish). asyncpg exposes the socket only through its transport."""
    transport = conn._transport
    sock = transport.get_extra_info("socket") if transport else None
    if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
        for opt, value in (("TCP_KEEPIDLE", 5), ("TCP_KEEPINTVL", 2), ("TCP_KEEPCNT", 3)):
            if hasattr(socket, opt):
                sock.setsockopt(socket.IPPROTO_TCP, getattr(socket, opt), value)
