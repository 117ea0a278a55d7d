"""Applies sql/NNN_name.sql files in order, each once, under a transaction-level advisory lock.

Two processes starting together (a deploy overlapping the old instance) both call apply(); the
lock makes the second wait and then find nothing left to do, instead of racing on DDL.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

import asyncpg

from telemetry import logs

log = logs.get("store")

SQL_DIR = Path(__file__).resolve().parent.parent / "sql"
# (int4, int4) advisory key of the migration lock: "TRT\0" and 1; no other lock uses this class id
LOCK_KEYS = (0x54525400, 1)
_NAME = re.compile(r"^(\d{3,})_([a-z0-9_]+)\.sql$")


class MigrationError(Exception):
    """The sql/ directory is inconsistent or a migration failed."""


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode()).hexdigest()[:16]


def discover(directory: Path = SQL_DIR) -> list[Migration]:
    """The migrations on disk, in version order; duplicate versions or stray names are errors."""
    found: dict[int, Migration] = {}
    for path in sorted(directory.glob("*.sql")):
        match = _NAME.match(path.name)
        if not match:
            raise MigrationError(f"{path.name}: migration files are named NNN_lower_case_name.sql")
        version = int(match.group(1))
        if version in found:
            raise MigrationError(f"two migrations share version {version}: {found[version].name}, {path.stem}")
        found[version] = Migration(version, path.stem, path.read_text(encoding="utf-8"))
    return [found[v] for v in sorted(found)]


async def _prepare(conn: asyncpg.Connection) -> dict[int, str]:
    await conn.execute("SELECT pg_advisory_xact_lock($1::int4, $2::int4)", *LOCK_KEYS)
    await conn.execute(
        """CREATE TABLE IF NOT EXISTS schema_migrations (
               version    integer PRIMARY KEY,
               name       text NOT NULL,
               checksum   text NOT NULL,
               applied_at timestamptz NOT NULL DEFAULT now())"""
    )
    rows = await conn.fetch("SELECT version, checksum FROM schema_migrations")
    return {r["version"]: r["checksum"] for r in rows}


async def apply(conn: asyncpg.Connection, directory: Path = SQL_DIR) -> tuple[list[str], list[str]]:
    """Apply what is pending in one transaction. Returns (all applied names, newly applied names)."""
    migrations = discover(directory)
    fresh: list[str] = []
    async with conn.transaction():
        # pool connections carry a statement_timeout; a long migration must not be cut by it
        await conn.execute("SET LOCAL statement_timeout = 0")
        done = await _prepare(conn)
        for m in migrations:
            if m.version in done:
                if done[m.version] != m.checksum:
                    log.warning("migration_changed_after_apply", extra={"migration": m.name})
                continue
            try:
                await conn.execute(m.sql)
            except asyncpg.PostgresError as exc:
                raise MigrationError(f"{m.name} failed: {type(exc).__name__}: {exc}") from exc
            await conn.execute(
                "INSERT INTO schema_migrations (version, name, checksum) VALUES ($1, $2, $3)",
                m.version, m.name, m.checksum,
            )
            fresh.append(m.name)
            log.info("migration_applied", extra={"migration": m.name})
    return [m.name for m in migrations], fresh


async def pending(conn: asyncpg.Connection, directory: Path = SQL_DIR) -> list[str]:
    """Names not applied yet (read-only: for `run.py check`)."""
    exists = await conn.fetchval("SELECT to_regclass('schema_migrations') IS NOT NULL")
    done: set[int] = set()
    if exists:
        done = {r["version"] for r in await conn.fetch("SELECT version FROM schema_migrations")}
    return [m.name for m in discover(directory) if m.version not in done]


async def apply_at(url: str, timeout: float = 10.0, directory: Path = SQL_DIR) -> tuple[list[str], list[str]]:
    """apply() on a connection of its own: for `run.py migrate` (no pool, no tree), and for the db
    actor before it opens its pool (whose connections are then walked with the schema complete)."""
    conn = await asyncpg.connect(url, timeout=timeout)
    try:
        return await apply(conn, directory)
    finally:
        await conn.close()


async def inspect(url: str, timeout: float = 10.0) -> tuple[str, list[str]]:
    """(server version, pending migration names) on a connection of its own, for `run.py check`."""
    conn = await asyncpg.connect(url, timeout=timeout)
    try:
        version: str = await conn.fetchval("SHOW server_version")
        return version, await pending(conn)
    finally:
        await conn.close()
