"""The jobs actor across a kill -9, black box: two `run.py serve` processes on one PostgreSQL, the
fake Telegram and the fake KIE as real HTTP servers, KIE's callbacks posted to the standby's URL
(the public base URL outlives the leader). Jobs are confirmed the way the wizard confirms them
(store.jobs.confirm under the leader's epoch), then the ACTIVE instance is killed:

* between confirm and createTask's answer (KIE slow to answer: the jobs are 'submitting', the
  tasks are created after the process died): the new leader learns each task from its callback;
* while the tasks run (polled): the new leader polls them and takes their callbacks;
* while results are being sent (Telegram slow): the new leader sends what was not committed.

Every job ends delivered, money moves once (store.invariants), KIE has one task per job, and a
result reaches its user twice only when the kill fell between Telegram's answer and the commit.
"""

from __future__ import annotations

import collections
import time
from collections.abc import AsyncIterator
from datetime import date
from typing import Any
from urllib.parse import urlsplit

import asyncpg
import pytest

from catalog import payload
from catalog.loader import shipped
from fakes.kie_api import CREATE_PATH, FakeKie
from fakes.telegram_api import FakeTelegram
from store import accounts, invariants, jobs, leader
from store.database import Database
from store.fence import Fenced
from store.jobs import Created, Job, Order
from tests.procs import FAKE_TOKEN, TrtProcess, eventually, free_port, one_active

pytestmark = pytest.mark.timeout(240)
BOT_ID = int(FAKE_TOKEN.split(":")[0])
NAME = leader.lock_name(BOT_ID)
MODEL = "google/nano-banana"
PRICE = 700


@pytest.fixture
async def fakes() -> AsyncIterator[tuple[FakeTelegram, FakeKie]]:
    async with FakeTelegram() as telegram, FakeKie(duration=1.0) as kie:
        yield telegram, kie


@pytest.fixture
async def store_db(database_url: str) -> AsyncIterator[Database]:
    database = Database(database_url, "test", pool_size=4)
    await database.connect()
    yield database
    await database.close()


def env(database_url: str, telegram: FakeTelegram, kie: FakeKie, port: int, callback_port: int) -> dict[str, str]:
    return {"TELEGRAM_BOT_TOKEN": FAKE_TOKEN, "DATABASE_URL": database_url, "TELEGRAM_API_BASE": telegram.base_url,
            "WEBHOOK_BASE_URL": f"http://127.0.0.1:{callback_port}", "BOT_MODE": "webhook",
            "WEBHOOK_SECRET": "failover-secret-0123", "KIE_API_KEY": "kie-failover-key", "KIE_API_BASE": kie.base_url,
            "KIE_UPLOAD_BASE": kie.base_url, "DOWNLOAD_TRUSTED_HOSTS": urlsplit(kie.base_url).netloc,
            "PORT": str(port), "TELEGRAM_RATE_GLOBAL": "0",
            "TELEGRAM_RATE_PER_CHAT": "0", "HEARTBEAT_INTERVAL": "0.5", "LOCK_RETRY_INTERVAL": "0.2",
            "STALE_AFTER": "3", "RESTART_BACKOFF_MIN": "0.05", "RESTART_BACKOFF_MAX": "0.5"}


async def driving(proc: TrtProcess) -> TrtProcess:
    async def probe() -> bool:
        body = await proc.health()
        return body["role"] == "ACTIVE" and body["jobs"]["driving"]
    await eventually(probe, 30, f"{proc.base} ACTIVE and driving jobs")
    return proc


async def pair(spawn: Any, database_url: str, telegram: FakeTelegram, kie: FakeKie) -> tuple[TrtProcess, TrtProcess]:
    """The leader, and a standby whose URL KIE calls back (so callbacks outlive the leader)."""
    first_port, second_port = free_port(), free_port()
    first = spawn(env(database_url, telegram, kie, first_port, second_port), name="a")
    await driving(first)
    second = spawn(env(database_url, telegram, kie, second_port, second_port), name="b")
    await second.wait_healthy()
    assert await one_active([first, second]) is first
    return first, second


async def confirm(db: Database, user: int) -> Job:
    """What the wizard does at Confirm, under the current leader's epoch; run again under the next
    one when the leader changed between reading the epoch and writing (as the dispatcher would)."""
    for _ in range(10):
        try:
            return await _confirm(db, user)
        except Fenced:
            continue
    raise AssertionError("the leader kept changing for 10 tries")


async def _confirm(db: Database, user: int) -> Job:
    epoch = await db.require().fetchval("SELECT epoch FROM leader WHERE name = $1", NAME)
    await accounts.ensure_user(db, NAME, epoch, BOT_ID, user, "en", 0)
    await accounts.credit(db, NAME, epoch, BOT_ID, user, 5 * PRICE, f"seed:{user}")
    order = Order(user_id=user, chat_id=user, nonce=f"failover-{user}", model=MODEL, sku="test",
                  input=payload.build(shipped().model(MODEL), {"prompt": f"picture {user}"}), price=PRICE,
                  paid_with="money", day=date.today())
    created = await jobs.confirm(db, NAME, epoch, BOT_ID, order, free_daily_limit=5, max_active=10)
    assert isinstance(created, Created), created
    return created.job


async def states(db: Database, ids: list[int]) -> dict[int, Job]:
    found = {}
    for job_id in ids:
        job = await jobs.job(db, job_id)
        assert job is not None
        found[job_id] = job
    return found


async def all_delivered(db: Database, ids: list[int], timeout: float = 60) -> dict[int, Job]:
    async def probe() -> dict[int, Job] | None:
        found = await states(db, ids)
        return found if all(j.delivered_at is not None for j in found.values()) else None
    return await eventually(probe, timeout, "every job delivered", interval=0.1)


async def check_money(db: Database, ids: list[int]) -> None:
    problems = await invariants.check(db, BOT_ID)
    assert not problems, "\n".join(problems)
    rows = await db.require().fetch("SELECT job_id, kind FROM ledger WHERE job_id = ANY($1::bigint[])", ids)
    kinds = collections.Counter((r["job_id"], r["kind"]) for r in rows)
    for job_id in ids:
        assert (kinds[(job_id, "hold")], kinds[(job_id, "capture")], kinds[(job_id, "release")]) == (1, 1, 0), job_id


def photos(telegram: FakeTelegram, chat: int) -> list[Any]:
    return [c for c in telegram.calls("sendPhoto", chat) if c.ok]


async def test_kill_9_between_confirm_and_create_tasks_answer(database_url, store_db, fakes, spawn) -> None:
    telegram, kie = fakes
    first, second = await pair(spawn, database_url, telegram, kie)
    kie.inject(CREATE_PATH, delay=4.0, count=3)  # KIE takes its time to answer: the leader dies meanwhile
    early = [await confirm(store_db, 9100 + i) for i in range(3)]

    async def in_flight() -> bool:
        found = await states(store_db, [j.id for j in early])
        return len(kie.calls(CREATE_PATH)) >= 3 and all(j.state == "submitting" for j in found.values())
    await eventually(in_flight, 30, "three createTask requests on the wire, their intents committed")
    first.kill()
    late = [await confirm(store_db, 9200 + i) for i in range(2)]  # confirmed while nobody leads
    await driving(second)
    ids = [j.id for j in early + late]
    done = await all_delivered(store_db, ids)
    assert all(j.state == "succeeded" for j in done.values()), {j.id: (j.state, j.failure) for j in done.values()}
    assert len(kie.tasks) == 5, "one task per job: no createTask repeated after the kill"
    assert {j.kie_task_id for j in done.values()} == set(kie.tasks)
    for job in early + late:
        assert len(photos(telegram, job.chat_id)) == 1, f"job {job.id} delivered once"
    await check_money(store_db, ids)
    events = [line.get("event") for line in second.log_lines()]
    assert events.count("task_id_from_callback") == 3, "the new leader learnt the lost answers from the callbacks"


async def test_kill_9_while_the_tasks_run(database_url, store_db, fakes, spawn) -> None:
    telegram, kie = fakes
    first, second = await pair(spawn, database_url, telegram, kie)
    kie.plan(hold=True)
    made = [await confirm(store_db, 9300 + i) for i in range(4)]
    ids = [j.id for j in made]

    async def running() -> bool:
        return all(j.state == "running" for j in (await states(store_db, ids)).values())
    await eventually(running, 30, "every task polled as running")
    first.kill()
    found = await states(store_db, ids)
    kie.finish(found[ids[0]].kie_task_id or "")  # its callback may reach the standby before it leads
    await driving(second)
    for job_id in ids[1:]:
        kie.finish(found[job_id].kie_task_id or "")
    done = await all_delivered(store_db, ids)
    assert all(j.state == "succeeded" for j in done.values())
    assert len(kie.tasks) == 4
    for job in made:
        assert len(photos(telegram, job.chat_id)) == 1, f"job {job.id} delivered once"
    await check_money(store_db, ids)


async def test_kill_9_while_results_are_sent(database_url, store_db, fakes, spawn) -> None:
    telegram, kie = fakes
    first, second = await pair(spawn, database_url, telegram, kie)
    telegram.inject("sendDocument", delay=1.5, count=100)  # the photo is out, the original file is slow
    made = [await confirm(store_db, 9400 + i) for i in range(4)]
    ids = [j.id for j in made]
    await telegram.wait_for(lambda: len([c for c in telegram.calls("sendPhoto") if c.ok]) >= 2, timeout=30,
                            what="deliveries under way")
    first.kill()
    killed_at = time.time()
    await driving(second)
    done = await all_delivered(store_db, ids)
    assert all(j.state == "succeeded" for j in done.values())
    assert len(kie.tasks) == 4
    twice = 0
    for job in made:
        sent = photos(telegram, job.chat_id)
        assert 1 <= len(sent) <= 2, f"job {job.id}: {len(sent)} photos"
        if len(sent) == 2:  # only when Telegram had answered before the kill and the commit had not happened
            twice += 1
            assert sent[0].at <= killed_at, f"job {job.id} sent twice, the first after the kill"
    print(f"kill -9 during delivery: {twice} of {len(made)} results sent twice")
    await check_money(store_db, ids)
    conn = await asyncpg.connect(database_url)
    try:
        assert await conn.fetchval("SELECT count(*) FROM kie_callbacks WHERE applied_at IS NULL") == 0
    finally:
        await conn.close()
