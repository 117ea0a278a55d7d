"""The role under faults, black-box: real `run.py serve` processes on one PostgreSQL, the fake
Telegram over HTTP, faults through /chaos. These reproduce what a review found: an ACTIVE
instance that stopped handling updates for good while /health said pass, and two instances
acting at once after a crash of the leader's lock_keeper."""

from __future__ import annotations

import collections
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import asyncpg
import pytest

from fakes.telegram_api import message_update
from tests.procs import FAKE_TOKEN, TrtProcess, eventually, one_active
from tests.test_pipeline import SECRET, Poster, env, per_chat

pytestmark = pytest.mark.timeout(180)
CHAOS = {"X-Chaos-Token": "chaos-token-pipeline"}


@pytest.fixture
async def poster() -> AsyncIterator[Poster]:
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=15)) as session:
        yield Poster(session, SECRET)


async def consuming(proc: TrtProcess) -> bool:
    body = await proc.health()
    return body["role"] == "ACTIVE" and body["actors"]["dispatcher"]["consuming"]


async def test_a_dispatcher_restarted_while_lock_keeper_is_slow_goes_back_to_work(
        database_url, fake, spawn, poster) -> None:
    """The restarted dispatcher's role question timed out while lock_keeper was busy; it took that
    for PASSIVE and nothing ever told it otherwise: updates waited for ever, /health said pass."""
    trt = spawn(env(database_url, fake, HEARTBEAT_INTERVAL="2", LOCK_RETRY_INTERVAL="1", STALE_AFTER="15"))
    await eventually(lambda: consuming(trt), 30, "ACTIVE and consuming")
    assert (await poster.post(trt, message_update(1, 701, "/start")))[0] == 200
    await fake.wait_for(lambda: fake.sent_messages(701), timeout=15, what="the first /start answered")

    assert (await trt.post("/chaos/lock_keeper", {"fault": "slow", "seconds": 2.7}, CHAOS))[0] == 202
    assert (await trt.post("/chaos/dispatcher", {"fault": "crash"}, CHAOS))[0] == 202

    async def restarted() -> bool:
        item = (await trt.health())["actors"]["dispatcher"]
        return item["restarts"] >= 1 and item["state"] == "running"
    await eventually(restarted, 15, "the dispatcher restarted")
    for n, chat in enumerate(range(702, 706)):
        assert (await poster.post(trt, message_update(10 + n, chat, "/start")))[0] == 200
    await fake.wait_for(lambda: all(fake.sent_messages(c) for c in range(702, 706)), timeout=30,
                        what="the four /start after the restart answered")
    await eventually(lambda: consuming(trt), 10, "ACTIVE and consuming again")


async def _after_first(database_url: str) -> list[tuple[int, str, float]] | None:
    history = await leadership(database_url)
    return history if len(history) >= 2 else None


async def leadership(database_url: str) -> list[tuple[int, str, float]]:
    """(epoch, instance, acquired at as time.time()) of every acquisition, oldest first."""
    conn = await asyncpg.connect(database_url)
    try:
        rows = await conn.fetch("SELECT epoch, instance, extract(epoch FROM acquired_at)::float8 AS at "
                                "FROM leader_history WHERE name = $1 ORDER BY epoch",
                                f"trt:leader:{FAKE_TOKEN.split(':')[0]}")
    finally:
        await conn.close()
    return [(r["epoch"], r["instance"], r["at"]) for r in rows]


def outside_leadership(calls: list[Any], hosts: dict[str, str], history: list[tuple[int, str, float]],
                       slack: float = 0.05) -> list[str]:
    """Sends that reached the fake while their instance did not hold the lock (slack: the fake's
    arrival after the sender's write; both clocks are this machine's)."""
    to_wall = time.time() - time.monotonic()
    spans = [(inst, at, history[i + 1][2] if i + 1 < len(history) else float("inf"))
             for i, (_, inst, at) in enumerate(history)]
    bad = []
    for call in calls:
        instance = hosts[call.host]
        wall = call.at + to_wall
        if not any(inst == instance and start - slack <= wall <= end + slack for inst, start, end in spans):
            bad.append(f"{instance} sent {call.method} to chat {call.params.get('chat_id')} at {wall:.3f}")
    return bad


async def test_a_crash_of_the_leaders_lock_keeper_never_lets_two_instances_act_at_once(
        database_url, fake, spawn, poster) -> None:
    """lock_keeper used to unlock as it crashed, while the dispatcher still drained for seconds:
    the standby was ACTIVE within 0.1 s and 7 chats were answered by both."""
    run = uuid.uuid4().hex[:6]
    hosts = {fake.base_url.split("//", 1)[1]: f"a-{run}",
             fake.base_url.replace("127.0.0.1", "localhost").split("//", 1)[1]: f"b-{run}"}
    bases = [fake.base_url, fake.base_url.replace("127.0.0.1", "localhost")]
    procs = [spawn(env(database_url, fake, INSTANCE_ID=name, TELEGRAM_API_BASE=base), name=name)
             for base, name in zip(bases, hosts.values(), strict=True)]
    for proc in procs:
        await proc.wait_healthy()
    leader = await eventually(lambda: one_active(procs), 30, "one ACTIVE")
    await eventually(lambda: consuming(leader), 30, "the leader consuming")
    fake.inject("sendMessage", delay=0.5, count=100_000)  # slow sends: many in flight, a backlog at the crash
    chats = range(4001, 4301)
    for number, chat in enumerate(chats):
        assert (await poster.post(leader, message_update(300_000 + number, chat, "/start")))[0] == 200
    await fake.wait_for(40, method="sendMessage", timeout=30, what="the leader busy sending")
    assert (await leader.post("/chaos/lock_keeper", {"fault": "crash"}, CHAOS))[0] == 202
    await fake.wait_for(lambda: all(fake.sent_messages(c) for c in chats), timeout=90,
                        what="every /start answered")
    history = await eventually(lambda: _after_first(database_url), 30, "a new leadership after the crash")
    sends = [c for c in fake.calls("sendMessage")]
    bad = outside_leadership(sends, hosts, history)
    answered_by = {chat: {hosts[c.host] for c in calls} for chat, calls in per_chat(sends).items()}
    twice = [chat for chat, calls in per_chat(c for c in sends if c.ok).items() if len(calls) > 1]
    print(f"lock_keeper crash: epochs {[(e, i) for e, i, _ in history]}, "
          f"{collections.Counter(hosts[c.host] for c in sends)} sends, {len(twice)} chats answered twice")
    assert not bad, "sends outside the sender's leadership:\n" + "\n".join(bad[:10])
    assert not [c for c, who in answered_by.items() if len(who) > 1], "a chat answered by two instances"
    assert not twice, f"chats answered twice: {twice[:10]}"
