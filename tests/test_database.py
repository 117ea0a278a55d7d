"""Migrations against a real PostgreSQL, the migrate and check commands, the embedded database."""

from __future__ import annotations

import asyncio
import subprocess
import sys

import asyncpg
import pytest

from store import migrations
from store.database import Database
from tests.procs import FAKE_TOKEN, ROOT, free_port

pytestmark = pytest.mark.timeout(120)


async def test_concurrent_migrations_apply_each_once(database_url, tmp_path) -> None:
    sql = tmp_path / "sql"
    sql.mkdir()
    (sql / "001_first.sql").write_text("CREATE TABLE IF NOT EXISTS a (id int);")
    (sql / "002_second.sql").write_text("INSERT INTO a VALUES (1);")  # not idempotent on purpose
    conns = [await asyncpg.connect(database_url) for _ in range(4)]
    try:
        results = await asyncio.gather(*(migrations.apply(c, sql) for c in conns))
        fresh = [name for _, applied in results for name in applied]
        assert sorted(fresh) == ["001_first", "002_second"]
        assert await conns[0].fetchval("SELECT count(*) FROM a") == 1
        rows = await conns[0].fetch("SELECT version, name FROM schema_migrations ORDER BY version")
        assert [(r["version"], r["name"]) for r in rows] == [(1, "001_first"), (2, "002_second")]
        assert await migrations.pending(conns[0], sql) == []
        (sql / "003_third.sql").write_text("ALTER TABLE a ADD COLUMN IF NOT EXISTS b text;")
        assert await migrations.pending(conns[0], sql) == ["003_third"]
    finally:
        for c in conns:
            await c.close()


async def test_bad_migration_names_and_failures(database_url, tmp_path) -> None:
    sql = tmp_path / "sql"
    sql.mkdir()
    (sql / "1-bad.sql").write_text("SELECT 1;")
    with pytest.raises(migrations.MigrationError, match="NNN_lower_case_name"):
        migrations.discover(sql)
    (sql / "1-bad.sql").unlink()
    (sql / "001_ok.sql").write_text("CREATE TABLE IF NOT EXISTS ok (id int);")
    (sql / "002_broken.sql").write_text("CREATE TABLE broken (id nonsense_type);")
    conn = await asyncpg.connect(database_url)
    try:
        with pytest.raises(migrations.MigrationError, match="002_broken failed"):
            await migrations.apply(conn, sql)
        # one transaction: nothing of the batch stays behind
        assert await conn.fetchval("SELECT to_regclass('ok') IS NULL")
    finally:
        await conn.close()


def test_project_migrations_are_idempotent_sql() -> None:
    for m in migrations.discover():
        text = m.sql.upper()
        for statement in ("CREATE TABLE ", "CREATE INDEX ", "CREATE UNIQUE INDEX "):
            assert text.count(statement) == text.count(statement + "IF NOT EXISTS"), m.name


def run(command: str, env: dict[str, str], timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(ROOT / "run.py"), command], env={"PATH": "/usr/bin:/bin", **env},
                          capture_output=True, text=True, timeout=timeout)


def test_migrate_and_check_commands(database_url, tmp_path) -> None:
    env = {"DATABASE_URL": database_url, "DATA_DIR": str(tmp_path), "TELEGRAM_API_BASE": f"http://127.0.0.1:{free_port()}"}
    names = [m.name for m in migrations.discover()]
    done = run("check", {**env, "TELEGRAM_BOT_TOKEN": FAKE_TOKEN})
    assert done.returncode == 1  # no Telegram there
    assert "ok   database" in done.stdout + done.stderr
    assert f"{len(names)} pending: {', '.join(names)}" in done.stdout + done.stderr
    assert "FAIL telegram" in done.stdout  # the report goes to stdout, failed or not
    assert FAKE_TOKEN not in done.stdout + done.stderr
    assert "Traceback" not in done.stderr

    done = run("migrate", env)
    assert done.returncode == 0, done.stderr
    assert f"{len(names)} applied now: {', '.join(names)}" in done.stdout
    done = run("migrate", env)
    assert done.returncode == 0 and "0 applied now" in done.stdout

    dead = {**env, "DATABASE_URL": f"postgresql://u:pw-secret-9@127.0.0.1:{free_port()}/x"}
    done = run("check", dead)
    assert done.returncode == 1
    assert "FAIL database" in done.stdout and "pw-secret-9" not in done.stderr + done.stdout
    assert "Traceback" not in done.stderr


async def test_embedded_database_first_and_second_run(spawn, tmp_path) -> None:
    """Without DATABASE_URL the process starts its own PostgreSQL under DATA_DIR and reuses it."""
    env = {"TELEGRAM_BOT_TOKEN": FAKE_TOKEN, "DATA_DIR": str(tmp_path / "data")}
    (tmp_path / "data").mkdir()
    (tmp_path / "data").chmod(0o755)
    for attempt in ("first", "second"):
        trt = spawn(env, name=attempt)
        body = await trt.wait_healthy(status="pass", timeout=90)
        assert body["database"]["embedded"] is True and body["database"]["migrations"] >= 1
        trt.signal(15)
        assert await trt.wait_exit(30) == 0
        applied = [line for line in trt.log_lines() if line["event"] == "migration_applied"]
        assert bool(applied) == (attempt == "first")
    assert (tmp_path / "data" / "pg" / "PG_VERSION").exists()


async def test_a_pool_release_costs_no_reset_statement_but_still_ends_a_transaction(database_url) -> None:
    db = Database(database_url, "pool-reset-test", pool_size=1)
    await db.connect()
    watcher = await asyncpg.connect(database_url)
    try:
        pool = db.require()
        await pool.execute("SELECT 41 + 1")
        last = await watcher.fetchval(
            "SELECT query FROM pg_stat_activity WHERE application_name = 'trt:pool-reset-test'")
        assert last == "SELECT 41 + 1", f"the release sent {last!r} after the statement"
        async with pool.acquire() as conn:
            transaction = conn.transaction()
            await transaction.start()  # left open on purpose: the release must roll it back
            await conn.execute("CREATE TEMP TABLE IF NOT EXISTS left_open (id int)")
        async with pool.acquire() as conn:
            assert not conn.is_in_transaction()
            assert await conn.fetchval("SELECT to_regclass('pg_temp.left_open') IS NULL")
    finally:
        await watcher.close()
        await db.close()


async def test_pool_connections_end_idle_transactions_and_long_statements_on_the_server(database_url) -> None:
    """A frozen process must not keep a (fenced) transaction open for ever: the pool's connections
    carry idle_in_transaction_session_timeout and statement_timeout."""
    db = Database(database_url, "timeouts-test", pool_size=2)
    short = Database(database_url, "short-statements", pool_size=1, statement_timeout=0.2)
    await db.connect()
    await short.connect()
    try:
        async with db.require().acquire() as conn:
            assert await conn.fetchval("SHOW idle_in_transaction_session_timeout") == "5s"
            assert await conn.fetchval("SHOW statement_timeout") == "30s"
        with pytest.raises(asyncpg.QueryCanceledError):
            await short.require().execute("SELECT pg_sleep(2)")
    finally:
        await db.close()
        await short.close()


async def test_a_migration_longer_than_the_pool_statement_timeout_still_applies(database_url, tmp_path) -> None:
    sql = tmp_path / "sql"
    sql.mkdir()
    (sql / "001_slow.sql").write_text("SELECT pg_sleep(0.6); CREATE TABLE IF NOT EXISTS slow (id int);")
    db = Database(database_url, "slow-migration", pool_size=1, statement_timeout=0.2)
    await db.connect()
    try:
        async with db.require().acquire() as conn:
            assert (await migrations.apply(conn, sql))[1] == ["001_slow"]
            # the migration's own setting ended with its transaction
            assert await conn.fetchval("SHOW statement_timeout") == "200ms"
    finally:
        await db.close()
