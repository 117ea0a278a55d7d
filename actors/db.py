"""The db actor: owns the asyncpg pool, applies migrations at start, watches the connection.

An unreachable database does not crash the tree (that would turn an outage into a restart loop
and take /health down with it): the actor reports `down`, keeps retrying on its timer, and the
rest of the process keeps answering. A migration that fails is a bug, not an outage: it fails
the start, so a bad deploy stops loudly. A pool with every connection in use is neither: the
ping says so (PoolBusy) and /health warns, while the database stays `up`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

import asyncpg

from actors.actor import Actor
from actors.mailbox import Mailbox
from messages.control import Tick
from store import migrations
from store.database import Database, PoolBusy
from telemetry import logs

log = logs.get("db")

# errors that mean "the server is not there right now", as opposed to bugs
OUTAGE_ERRORS = (OSError, TimeoutError, asyncpg.PostgresConnectionError, asyncpg.InterfaceError,
                 asyncpg.CannotConnectNowError, asyncpg.TooManyConnectionsError)


class DbActor(Actor):
    start_deadline: float = 120.0  # migrations of a big table may take a while
    default_deadline: ClassVar[float] = 15.0

    def __init__(self, mailbox: Mailbox, database: Database, ping_interval: float = 2.0,
                 sql_dir: Path = migrations.SQL_DIR, ping_timeout: float = 5.0) -> None:
        super().__init__(mailbox)
        self.database = database
        self.ping_interval = ping_interval
        self.ping_timeout = ping_timeout  # each of the ping's two waits; both well inside the tick's deadline
        self.sql_dir = sql_dir
        self.busy: str | None = None  # what the last ping found, when the pool had no connection free

    async def on_start(self) -> None:
        await self._connect()
        self.every(self.ping_interval)

    async def _connect(self) -> None:
        try:
            # the schema first, on a connection of its own: every pool connection is then walked
            # through the hot path as it opens (store/warmup.py), all of a full pool's at once
            self.database.migrations, fresh = await migrations.apply_at(self.database.url, directory=self.sql_dir)
            if fresh:
                log.info("migrations_applied", extra={"applied": fresh})
            await self.database.connect()
        except OUTAGE_ERRORS as exc:
            self.database.mark_down(exc)
            await self.database.close()

    async def on_tick(self, msg: Tick) -> None:
        if self.database.pool is None:
            await self._connect()
            return
        try:
            await self.database.ping(self.ping_timeout)
        except PoolBusy as exc:
            if self.busy is None:
                log.warning("db_pool_busy", extra={"error_text": str(exc)})
            self.busy = str(exc)
            return
        except OUTAGE_ERRORS as exc:
            self.database.mark_down(exc)
        self.busy = None

    async def on_stop(self) -> None:
        await self.database.close()

    def health(self) -> dict[str, Any]:
        return {"database_state": self.database.state,
                "warmed_connections": self.database.warmed_connections,  # store/warmup.py
                "problems": [] if self.busy is None else [self.busy]}
