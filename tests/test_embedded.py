"""store/embedded.py: the embedded PostgreSQL's own settings hold, across a restart too."""

from __future__ import annotations

from collections.abc import Callable

import asyncpg
import pytest

from tests.procs import eventually

pytestmark = pytest.mark.timeout(60)


async def wal_init_zero(url: str) -> str | None:
    conn = await asyncpg.connect(url)
    try:
        value = await conn.fetchval("SHOW wal_init_zero")
    finally:
        await conn.close()
    return value if value == "off" else None


async def test_the_embedded_server_makes_new_wal_segments_without_zero_filling_them_even_after_a_restart(
        pg_server_url: str, restart_postgres: Callable[[], None]) -> None:
    # zero-filling a 16 MB segment holds WALWriteLock: every commit of a young cluster stalled on it
    assert await eventually(lambda: wal_init_zero(pg_server_url), 10, "wal_init_zero off") == "off"
    restart_postgres()  # skips with a DATABASE_URL that is not ours
    assert await eventually(lambda: wal_init_zero(pg_server_url), 10, "wal_init_zero off after a restart") == "off"
