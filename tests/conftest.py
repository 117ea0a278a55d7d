"""Shared fixtures: a real PostgreSQL (DATABASE_URL, or an embedded one for the session) and a
fresh database per test, plus helpers to run `run.py` as a subprocess."""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest

from fakes.telegram_api import FakeTelegram
from store import invariants, migrations
from store.database import Database
from tests.procs import TrtProcess, eventually


def _with_database(url: str, name: str) -> str:
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, "/" + name, parts.query, parts.fragment))


_SERVER: list[Any] = []


@pytest.fixture(scope="session")
def pg_server_url() -> Iterator[str]:
    """The PostgreSQL every test uses: DATABASE_URL when set, else an embedded one for this session."""
    if os.environ.get("DATABASE_URL"):
        yield os.environ["DATABASE_URL"]
        return
    from store import embedded

    directory = Path(tempfile.mkdtemp(prefix="trt-test-pg-"))
    directory.chmod(0o755)  # pgserver runs the server as its own OS user when we are root
    server, url = embedded.start(directory)
    _SERVER.append(server)
    try:
        yield url
    finally:
        _SERVER.clear()
        embedded.stop(server)
        shutil.rmtree(directory, ignore_errors=True)


@pytest.fixture
def restart_postgres(pg_server_url: str) -> Callable[[], None]:
    """Stop and start the embedded server (skips with an external DATABASE_URL we do not control)."""
    if not _SERVER:
        pytest.skip("restarting PostgreSQL needs the embedded server; DATABASE_URL points elsewhere")
    server = _SERVER[0]

    def restart() -> None:
        server._stop()
        server.ensure_postgres_running()

    return restart


async def create_database(server_url: str, name: str | None = None) -> tuple[str, str]:
    """A new empty database on the server (one left by an earlier run under `name` is dropped
    first): its name and URL. Shared by the tests, the soak and the benchmarks."""
    name = name or f"trt_test_{uuid.uuid4().hex[:12]}"
    admin = await asyncpg.connect(server_url)
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    return name, _with_database(server_url, name)


async def drop_database(server_url: str, name: str) -> None:
    admin = await asyncpg.connect(server_url)
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()


@pytest.fixture
async def database_url(pg_server_url: str) -> AsyncIterator[str]:
    """A fresh, empty database for one test, dropped afterwards."""
    name, url = await create_database(pg_server_url)
    yield url
    await drop_database(pg_server_url, name)


async def migrated(url: str) -> None:
    """The database at `url` with every migration applied."""
    conn = await asyncpg.connect(url)
    try:
        await migrations.apply(conn)
    finally:
        await conn.close()


async def until_one_waits_on_a_lock(db: Database) -> None:
    """Until some backend of this database waits on a lock (a bounded wait: 10 s)."""
    await eventually(lambda: db.require().fetchval(
        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'"),
        10, "a backend waiting on a lock", interval=0.01)


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[Database]:
    """The fresh database migrated, behind the Database handle the program's store/ functions take."""
    await migrated(database_url)
    database = Database(database_url, "test", pool_size=8)
    await database.connect()
    yield database
    await database.close()


class Money:
    """A database with a leader row, for fenced money calls: lock `name` led at `epoch` by bot `bot_id`."""

    bot_id = 4242
    name = "trt:leader:4242"

    def __init__(self, db: Database, epoch: int) -> None:
        self.db = db
        self.epoch = epoch

    async def until_one_waits_on_a_lock(self) -> None:
        await until_one_waits_on_a_lock(self.db)

    async def new_leader(self) -> int:
        """Another instance takes over: the epoch grows, and fenced calls under the old one are refused."""
        self.epoch = await self.db.require().fetchval(
            "UPDATE leader SET epoch = epoch + 1, instance = 'next' WHERE name = $1 RETURNING epoch", self.name)
        return self.epoch


@pytest.fixture
async def money(db: Database) -> AsyncIterator[Money]:
    """`db` led by a fake leader (epoch 1); after the test the money invariants must hold
    (store/invariants.py), whatever the test did."""
    await db.require().execute(
        """INSERT INTO leader (name, epoch, instance, pid, heartbeat_at, acquired_at)
           VALUES ($1, 1, 'test', 0, now(), now())""", Money.name)
    yield Money(db, 1)
    problems = await invariants.check(db)
    assert not problems, "money invariants broken after the test:\n" + "\n".join(problems)


@pytest.fixture
def spawn(tmp_path: Path) -> Iterator[type[TrtProcess]]:
    """Start run.py processes that are killed at the end of the test, whatever happens."""
    started: list[TrtProcess] = []

    def make(env: dict[str, str], command: str = "serve", name: str = "trt") -> TrtProcess:
        proc = TrtProcess(tmp_path, env, command, name).start()
        started.append(proc)
        return proc

    yield make  # type: ignore[misc]
    for proc in started:
        proc.kill()


@pytest.fixture
async def fake() -> AsyncIterator[FakeTelegram]:
    """A fake Telegram Bot API on 127.0.0.1 for one test (tests of the fake KIE name theirs `fake` too)."""
    async with FakeTelegram() as server:
        yield server


@pytest.fixture
async def bot(fake: FakeTelegram) -> AsyncIterator[Any]:
    """The bot as the dispatcher makes it (5xx retried twice), against the fake Telegram, with the
    wizard tests' token (tests/wizard_kit.py; imported here, as it imports this module)."""
    from ingest.bot_api import make_bot
    from ingest.send_limiter import SendLimiter
    from tests.wizard_kit import TOKEN

    made = make_bot(TOKEN, fake.base_url, timeout=10, limiter=SendLimiter(0, 0, max_retries=2))
    yield made
    await made.session.close()


@pytest.fixture
def chat(money: Money, fake: FakeTelegram, bot: Any) -> Any:
    """One user's chat with the whole conversation layer (tests/wizard_kit.Chat)."""
    from tests.wizard_kit import Chat

    return Chat(money, fake, bot)
