"""ACTIVE/PASSIVE across real processes on one database: exclusivity, failover, fencing."""

from __future__ import annotations

import asyncio
import os
import signal
import time

import asyncpg
import pytest

from store import leader
from store.lock_session import LockSession
from tests.conftest import migrated
from tests.procs import FAKE_TOKEN, eventually, one_active, roles

pytestmark = pytest.mark.timeout(120)
CHAOS = "chaos-token-leadership"
NAME = leader.lock_name(int(FAKE_TOKEN.split(":")[0]))


def env(database_url: str, **extra: str) -> dict[str, str]:
    base = {"TELEGRAM_BOT_TOKEN": FAKE_TOKEN, "DATABASE_URL": database_url, "CHAOS_TOKEN": CHAOS,
            "HEARTBEAT_INTERVAL": "0.5", "LOCK_RETRY_INTERVAL": "0.2", "STALE_AFTER": "3",
            "RESTART_BACKOFF_MIN": "0.05", "RESTART_BACKOFF_MAX": "0.5"}
    base.update(extra)
    return base


@pytest.mark.parametrize("name", ["", " ", "a", "é" * 3, "🤖" * 500, "x" * 100_000, "\x00\udcff", "trt:leader:0",
                                  "trt:leader:9999999999"])
def test_lock_keys_are_signed_int32(name: str) -> None:
    k1, k2 = leader.lock_keys(name)
    assert -(2**31) <= k1 < 2**31 and -(2**31) <= k2 < 2**31
    assert leader.lock_keys(name) == (k1, k2)


def test_two_bots_get_different_keys() -> None:
    assert leader.lock_keys(leader.lock_name(123)) != leader.lock_keys(leader.lock_name(124))


async def age_heartbeat(url: str, seconds: float) -> None:
    """As if the recorded leader had not heartbeated for `seconds`."""
    conn = await asyncpg.connect(url)
    try:
        await conn.execute("UPDATE leader_heartbeat SET heartbeat_at = now() - make_interval(secs => $1)", seconds)
    finally:
        await conn.close()


async def test_extreme_keys_lock_and_are_found_in_pg_locks(database_url) -> None:
    """The seeds' 'OID out of range' and '(integer, bigint) does not exist' cannot happen."""
    await migrated(database_url)
    holder, other = await asyncpg.connect(database_url), await asyncpg.connect(database_url)
    try:
        for keys in [(-(2**31), 2**31 - 1), (2**31 - 1, -(2**31)), (-1, -1), leader.lock_keys("🤖")]:
            name = f"extreme:{keys}"
            assert await leader.try_lock(holder, keys)
            assert not await leader.try_lock(other, keys)
            await leader.bump_epoch(holder, name, "holder", 1)
            await age_heartbeat(database_url, 60)
            assert await leader.terminate_stale_holder(other, name, keys, 15.0) == [holder.get_server_pid()]
            holder.terminate()
            holder = await asyncpg.connect(database_url)

            async def freed(keys: tuple[int, int] = keys) -> bool:
                return await leader.try_lock(other, keys)

            await eventually(freed, 10, f"the lock {keys} free once its holder's backend has ended")
            assert await leader.unlock(other, keys)
    finally:
        await holder.close()
        await other.close()


async def open_session(url: str, instance: str) -> LockSession:
    return await LockSession.open(url, instance_id=instance, heartbeat_interval=2.0, name=NAME,
                                  keys=leader.lock_keys(NAME), on_lost=lambda _session: None)


async def test_a_standby_never_terminates_a_holder_elected_after_the_stale_leader_it_read(database_url) -> None:
    """A standby reads a stale heartbeat, and meanwhile the stale leader lets go and a fresh backend
    takes the lock (not recorded yet: it has not bumped the epoch). Ending "whoever holds the lock"
    killed the fresh one; only the recorded backend with a stale heartbeat may be ended."""
    await migrated(database_url)
    a, b, standby = [await open_session(database_url, name) for name in ("a", "b", "standby")]
    try:
        assert await a.try_lock()
        await a.bump_epoch("a", os.getpid(), None)
        await age_heartbeat(database_url, 60)
        assert await a.unlock()
        assert await b.try_lock()  # the fresh holder, between its lock and its epoch bump
        assert not await standby.try_lock()
        seen = await standby.holder()
        assert seen is not None and seen.instance == "a" and seen.heartbeat_age > 15  # stale, as read
        assert await standby.terminate_stale_holder(15.0) == []
        assert await b.holder() is not None and not b.closed  # b's session still answers
        assert not await standby.try_lock()
        assert await b.bump_epoch("b", os.getpid(), None) == seen.epoch + 1
    finally:
        for session in (a, b, standby):
            await session.close()


async def test_a_standby_terminates_the_recorded_leader_once_its_heartbeat_is_stale(database_url) -> None:
    await migrated(database_url)
    a, standby = await open_session(database_url, "a"), await open_session(database_url, "standby")
    try:
        assert await a.try_lock()
        epoch = await a.bump_epoch("a", os.getpid(), None)
        assert await a.heartbeat(epoch)
        seen = await standby.holder()
        assert seen is not None and seen.backend_pid == a.backend_pid and seen.heartbeat_age < 15
        assert await standby.terminate_stale_holder(15.0) == []  # fresh: left alone
        await age_heartbeat(database_url, 60)
        assert await standby.terminate_stale_holder(15.0) == [a.backend_pid]
        await eventually(standby.try_lock, 10, "the lock free once the stale leader's backend has ended")
    finally:
        await a.close()
        await standby.close()


async def test_a_recorded_pid_now_used_by_another_backend_is_never_terminated(database_url) -> None:
    """The server reuses process ids: the recorded backend is its pid and its start time."""
    await migrated(database_url)
    a, standby = await open_session(database_url, "a"), await open_session(database_url, "standby")
    try:
        assert await a.try_lock()
        await a.bump_epoch("a", os.getpid(), None)
        await age_heartbeat(database_url, 60)
        conn = await asyncpg.connect(database_url)
        try:  # as if the recorded backend had ended and a's backend had got its pid
            await conn.execute("UPDATE leader_heartbeat SET backend_start = backend_start - interval '1 hour'")
        finally:
            await conn.close()
        assert await standby.terminate_stale_holder(15.0) == []
        assert await a.holder() is not None and not a.closed
    finally:
        await a.close()
        await standby.close()


async def test_a_heartbeat_is_refused_once_another_leader_has_bumped_the_epoch(database_url) -> None:
    await migrated(database_url)
    a, b = await open_session(database_url, "a"), await open_session(database_url, "b")
    try:
        epoch = await a.bump_epoch("a", os.getpid(), None)
        assert await a.heartbeat(epoch)
        assert not await b.heartbeat(epoch)  # not the backend that bumped
        assert await b.bump_epoch("b", os.getpid(), "a") == epoch + 1
        assert not await a.heartbeat(epoch)
        assert await b.heartbeat(epoch + 1)
    finally:
        await a.close()
        await b.close()


async def test_holder_reports_the_age_of_the_last_heartbeat(database_url) -> None:
    await migrated(database_url)
    a = await open_session(database_url, "a")
    try:
        epoch = await a.bump_epoch("a", os.getpid(), None)
        await age_heartbeat(database_url, 60)
        seen = await a.holder()
        assert seen is not None and (seen.instance, seen.epoch) == ("a", epoch) and 59 < seen.heartbeat_age < 70
        assert await a.heartbeat(epoch)
        seen = await a.holder()
        assert seen is not None and seen.heartbeat_age < 5
        conn = await asyncpg.connect(database_url)
        try:  # a leader of a version from before leader_heartbeat bumps the epoch and heartbeats its row
            await conn.execute("""UPDATE leader SET epoch = epoch + 1, instance = 'older version',
                                  heartbeat_at = now() - interval '30 seconds'""")
        finally:
            await conn.close()
        seen = await a.holder()
        assert seen is not None and seen.instance == "older version" and 29 < seen.heartbeat_age < 40
        assert seen.backend_pid is None
    finally:
        await a.close()


async def leader_row(database_url: str) -> tuple[int, str] | None:
    conn = await asyncpg.connect(database_url)
    try:
        return await leader.current(conn, NAME)
    finally:
        await conn.close()


async def test_exactly_one_active_among_three(database_url, spawn) -> None:
    procs = [spawn(env(database_url), name=f"p{i}") for i in range(3)]
    for p in procs:
        await p.wait_healthy()
    first = await eventually(lambda: one_active(procs), 20, "one ACTIVE")
    seen_two = 0
    for _ in range(40):
        found = await roles(procs)
        active = [r for r in found if r[0] == "ACTIVE"]
        seen_two += len(active) > 1
        row = await leader_row(database_url)
        assert row is not None and row[1] == first.env["INSTANCE_ID"]
    assert seen_two == 0
    body = await first.health()
    assert body["leadership"]["leader_instance"] == first.env["INSTANCE_ID"]
    passive = [p for p in procs if p is not first]
    for p in passive:
        b = await p.health()
        assert b["role"] == "PASSIVE" and b["status"] in ("pass", "warn")
        assert b["leadership"]["leader_instance"] == first.env["INSTANCE_ID"]


async def test_kill9_sigterm_and_epochs_only_grow(database_url, spawn) -> None:
    procs = [spawn(env(database_url), name=f"k{i}") for i in range(3)]
    for p in procs:
        await p.wait_healthy()
    active = await eventually(lambda: one_active(procs), 20, "one ACTIVE")
    epoch0 = (await active.health())["epoch"]

    began = time.monotonic()
    active.kill()
    rest = [p for p in procs if p is not active]
    second = await eventually(lambda: one_active(rest), 20, "a standby ACTIVE after kill -9")
    took = time.monotonic() - began
    epoch1 = (await second.health())["epoch"]
    assert epoch1 > epoch0
    print(f"failover after kill -9: {took:.2f}s")

    began = time.monotonic()
    second.signal(signal.SIGTERM)
    last = [p for p in rest if p is not second]
    third = await eventually(lambda: one_active(last), 20, "the last standby ACTIVE after SIGTERM")
    print(f"failover after SIGTERM: {time.monotonic() - began:.2f}s")
    assert await second.wait_exit(10) == 0
    assert (await third.health())["epoch"] > epoch1
    released = [x for x in second.log_lines() if x["event"] == "leadership_released"]
    assert released, "the leader released its lock on SIGTERM"

    conn = await asyncpg.connect(database_url)
    try:
        epochs = [e for e, _ in await leader.history(conn, NAME)]
    finally:
        await conn.close()
    assert epochs == sorted(epochs) and len(set(epochs)) == len(epochs) and len(epochs) >= 3


async def test_sigstop_leader_is_replaced_and_fenced_after_sigcont(database_url, spawn) -> None:
    a = spawn(env(database_url), name="frozen")
    await a.wait_healthy()
    await eventually(lambda: one_active([a]), 20, "first ACTIVE")
    old_epoch = (await a.health())["epoch"]
    b = spawn(env(database_url), name="standby")
    await b.wait_healthy()

    began = time.monotonic()
    a.signal(signal.SIGSTOP)
    await eventually(lambda: one_active([b]), 30, "the standby ACTIVE while the leader is frozen")
    print(f"failover after SIGSTOP: {time.monotonic() - began:.2f}s")
    new_epoch = (await b.health())["epoch"]
    assert new_epoch > old_epoch

    a.signal(signal.SIGCONT)
    # the woken leader tries a fenced write with the epoch it held; it must be refused
    status, _ = await a.post("/chaos/lock_keeper", {"fault": "fenced_write"}, {"X-Chaos-Token": CHAOS}, timeout=10)
    assert status == 202

    async def demoted() -> dict | None:
        body = await a.health()
        probes = body["actors"]["lock_keeper"]["fenced_probes"]
        return body if body["role"] == "PASSIVE" and probes["fenced"] + probes["failed"] >= 1 else None

    body = await eventually(demoted, 20, "the old leader PASSIVE and its fenced write refused")
    assert body["actors"]["lock_keeper"]["fenced_probes"]["written"] == 0
    conn = await asyncpg.connect(database_url)
    try:
        stale = await conn.fetchval("SELECT count(*) FROM fenced_writes WHERE epoch = $1", old_epoch)
        row = await leader.current(conn, NAME)
    finally:
        await conn.close()
    assert stale == 0
    assert row == (new_epoch, b.env["INSTANCE_ID"])
    assert (await b.health())["role"] == "ACTIVE"


async def test_database_restart_demotes_both_and_one_reacquires(database_url, spawn, restart_postgres) -> None:
    procs = [spawn(env(database_url), name=f"r{i}") for i in range(2)]
    for p in procs:
        await p.wait_healthy()
    first = await eventually(lambda: one_active(procs), 20, "one ACTIVE")
    epoch0 = (await first.health())["epoch"]
    await asyncio.to_thread(restart_postgres)

    async def demoted_once() -> bool:
        return (await first.health())["leadership"]["demotions"] >= 1

    await eventually(demoted_once, 30, "the leader demoted by the restart")
    again = await eventually(lambda: one_active(procs), 30, "one ACTIVE after the restart")
    assert (await again.health())["epoch"] > epoch0
    for _ in range(10):
        assert sum(r == "ACTIVE" for r, _ in await roles(procs)) <= 1
