"""The update pipeline end to end: /webhook -> inbox -> dispatcher -> aiogram -> the fake Telegram.

Real processes (`run.py serve`) on a real PostgreSQL; the fake Telegram Bot API is a real HTTP
server the bot reaches through TELEGRAM_API_BASE. Updates are posted as Telegram posts them: one
chat's updates one at a time (the next after the previous was acknowledged), chats in parallel.
"""

from __future__ import annotations

import asyncio
import collections
import json
import random
import signal
import time
from collections.abc import AsyncIterator, Iterable
from typing import Any

import aiohttp
import asyncpg
import pytest

from bot.fsm_storage import PostgresStorage
from fakes.telegram_api import FakeTelegram, callback_update, message_update
from tests.procs import FAKE_TOKEN, TrtProcess, eventually, one_active

pytestmark = pytest.mark.timeout(180)
SECRET = "pipeline-secret_0123"
CHAOS = "chaos-token-pipeline"
BOT_ID = int(FAKE_TOKEN.split(":")[0])


def env(database_url: str, fake: FakeTelegram, **extra: str) -> dict[str, str]:
    base = {"TELEGRAM_BOT_TOKEN": FAKE_TOKEN, "DATABASE_URL": database_url, "TELEGRAM_API_BASE": fake.base_url,
            "WEBHOOK_BASE_URL": "https://bot.example.com", "BOT_MODE": "webhook", "WEBHOOK_SECRET": SECRET,
            "CHAOS_TOKEN": CHAOS, "TELEGRAM_RATE_GLOBAL": "0", "TELEGRAM_RATE_PER_CHAT": "0",
            "HEARTBEAT_INTERVAL": "0.5", "LOCK_RETRY_INTERVAL": "0.2", "STALE_AFTER": "3",
            "INBOX_SWEEP_INTERVAL": "0.2", "RESTART_BACKOFF_MIN": "0.05", "RESTART_BACKOFF_MAX": "0.5"}
    base.update(extra)
    return base


async def active(proc: TrtProcess) -> TrtProcess:
    async def probe() -> bool:
        body = await proc.health()
        return body["role"] == "ACTIVE" and body["actors"]["dispatcher"]["consuming"]
    await eventually(probe, 30, f"{proc.base} ACTIVE and consuming")
    return proc


class Poster:
    """Posts updates to /webhook with the secret over one keep-alive session."""

    def __init__(self, session: aiohttp.ClientSession, secret: str = SECRET) -> None:
        self.session = session
        self.secret = secret

    async def post(self, proc: TrtProcess, update: Any, *, secret: str | None = None, raw: bytes | None = None,
                   headers: dict[str, str] | None = None) -> tuple[int, str]:
        sent = {"X-Telegram-Bot-Api-Secret-Token": self.secret if secret is None else secret,
                "Content-Type": "application/json"}
        if secret == "":
            sent.pop("X-Telegram-Bot-Api-Secret-Token")
        sent.update(headers or {})
        data = raw if raw is not None else json.dumps(update).encode()
        async with self.session.post(proc.base + "/webhook", data=data, headers=sent) as response:
            return response.status, await response.text()


@pytest.fixture
async def poster() -> AsyncIterator[Poster]:
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=15)) as session:
        yield Poster(session)


def kind_of(call: Any) -> str:
    """What a sendMessage was: the main menu, help, fallback, apology, ... by its keyboard and text."""
    markup = call.params.get("reply_markup") or {}
    data = [b.get("callback_data") for row in markup.get("inline_keyboard", []) for b in row]
    if "menu:balance" in data:
        return "menu"
    if data == ["menu:open"]:
        return "apology" if "u" in call.params.get("text", "") and _has_ref(call.params["text"]) else "help"
    return "other"


def _has_ref(text: str) -> bool:
    return any(word.strip(".,:;()«»\"'").startswith("u") and word.strip(".,:;()«»\"'")[1:].isdigit()
               for word in text.split())


def per_chat(calls: Iterable[Any]) -> dict[int, list[Any]]:
    out: dict[int, list[Any]] = collections.defaultdict(list)
    for call in calls:
        out[int(call.params["chat_id"])].append(call)
    return out


async def inbox_rows(database_url: str) -> dict[int, asyncpg.Record]:
    conn = await asyncpg.connect(database_url)
    try:
        rows = await conn.fetch("SELECT update_id, state, outcome, attempts, kind FROM inbox WHERE bot_id = $1",
                                BOT_ID)
    finally:
        await conn.close()
    return {r["update_id"]: r for r in rows}


async def stream(poster: Poster, targets: list[TrtProcess], plan: dict[int, list[dict[str, Any]]],
                 parallel: int = 50) -> set[int]:
    """Post each chat's updates in order, chats in parallel; retry an update on another target until
    one acknowledges it (as Telegram redelivers). Returns the update_ids acknowledged with 200."""
    acked: set[int] = set()
    gate = asyncio.Semaphore(parallel)

    async def one_chat(updates: list[dict[str, Any]]) -> None:
        async with gate:
            for update in updates:
                for attempt in range(200):
                    target = targets[attempt % len(targets)]
                    try:
                        status, _ = await poster.post(target, update)
                    except (aiohttp.ClientError, OSError, TimeoutError):
                        status = 0
                    if status == 200:
                        acked.add(update["update_id"])
                        break
                    await asyncio.sleep(0.05 * min(attempt + 1, 10))  # a redelivery pause, as Telegram's
                else:
                    raise AssertionError(f"update {update['update_id']} was never acknowledged")

    await asyncio.gather(*(one_chat(u) for u in plan.values()))
    return acked


def start_plan(chats: int, per: int, first_id: int = 1000, text: str = "/start",
               language: str = "ru") -> dict[int, list[dict[str, Any]]]:
    plan: dict[int, list[dict[str, Any]]] = {}
    update_id = first_id
    for _ in range(per):
        for c in range(chats):
            chat = 10_000 + c
            plan.setdefault(chat, []).append(message_update(update_id, chat, text, language_code=language))
            update_id += 1
    return plan


async def test_a_thousand_updates_over_a_hundred_chats_each_answered_once_in_order(
        database_url, fake, spawn, poster) -> None:
    proc = await active(spawn(env(database_url, fake)))
    rng = random.Random(7)
    plan: dict[int, list[dict[str, Any]]] = {}
    expected: dict[int, list[str]] = {}
    update_id = 5000
    for _ in range(10):
        for c in range(100):
            chat = 20_000 + c
            command = "/start" if rng.random() < 0.7 else "/help"  # distinct replies make order visible
            plan.setdefault(chat, []).append(message_update(update_id, chat, command))
            expected.setdefault(chat, []).append("menu" if command == "/start" else "help")
            update_id += 1
    acked = await stream(poster, [proc], plan)
    assert len(acked) == 1000
    await fake.wait_for(1000, method="sendMessage", timeout=60, what="1,000 replies")
    got = per_chat(fake.calls("sendMessage"))
    assert sum(len(v) for v in got.values()) == 1000
    for chat, kinds in expected.items():
        assert [kind_of(c) for c in got[chat]] == kinds, f"chat {chat} answered out of order"
    assert sum(k == "menu" for ks in expected.values() for k in ks) == sum(
        kind_of(c) == "menu" for cs in got.values() for c in cs)

    async def all_done() -> bool:
        rows = await inbox_rows(database_url)
        return len(rows) == 1000 and all(r["state"] == 2 and r["outcome"] == "ok" for r in rows.values())
    await eventually(all_done, 20, "every update marked done")
    body = await proc.health()
    assert body["inbox"]["handled"] >= 1000 and body["inbox"]["failed"] == 0


async def test_the_same_update_twice_and_concurrently_gets_one_reply(database_url, fake, spawn, poster) -> None:
    proc = await active(spawn(env(database_url, fake)))
    once = message_update(7001, 501, "/start")
    assert (await poster.post(proc, once))[0] == 200
    assert (await poster.post(proc, once))[0] == 200
    twice = message_update(7002, 502, "/start")
    statuses = await asyncio.gather(*(poster.post(proc, twice) for _ in range(10)))
    assert [s for s, _ in statuses] == [200] * 10
    await fake.wait_for(2, method="sendMessage", timeout=15, what="two replies")
    after = message_update(7003, 502, "/help")  # a later update of the same chat proves nothing else is coming
    assert (await poster.post(proc, after))[0] == 200
    await fake.wait_for(3, method="sendMessage", timeout=15, what="the help reply")
    assert len(fake.sent_messages(501)) == 1 and len(fake.sent_messages(502)) == 2
    _, metrics = await proc.get("/metrics")
    assert 'trt_updates_received_total{result="duplicate",source="webhook"} 10.0' in metrics


async def test_bad_requests_get_the_right_status_and_nothing_breaks(database_url, fake, spawn, poster) -> None:
    proc = await active(spawn(env(database_url, fake)))
    start = message_update(8001, 601, "/start")
    assert (await poster.post(proc, start, secret="wrong-secret"))[0] == 401
    assert (await poster.post(proc, start, secret=""))[0] == 401
    assert (await poster.post(proc, None, raw=b'{"update_id": 1, "x": "' + b"a" * (2 * 1024 * 1024) + b'"}'))[0] == 413
    assert (await poster.post(proc, None, raw=b'{"update_id": 8002, "message": {'))[0] == 400
    assert (await poster.post(proc, None, raw=b"\xff\xfe not utf-8"))[0] == 400
    assert (await poster.post(proc, [start]))[0] == 400
    assert (await poster.post(proc, {"message": start["message"]}))[0] == 400
    assert (await poster.post(proc, {"update_id": "8003", "message": start["message"]}))[0] == 400
    assert (await poster.post(proc, {"update_id": True, "message": start["message"]}))[0] == 400
    unknown = {"update_id": 8004, "brand_new_update_type": {"id": 1, "chat": {"id": 601, "type": "private"}}}
    edited = message_update(8005, 601, "edited text")
    edited["edited_message"] = edited.pop("message") | {"edit_date": 1}
    member = {"update_id": 8006, "my_chat_member": {
        "chat": {"id": 601, "type": "private", "first_name": "T"}, "from": {"id": 601, "is_bot": False,
                                                                            "first_name": "T"},
        "date": 1, "old_chat_member": {"status": "member", "user": {"id": BOT_ID, "is_bot": True, "first_name": "B"}},
        "new_chat_member": {"status": "kicked", "until_date": 0,
                            "user": {"id": BOT_ID, "is_bot": True, "first_name": "B"}}}}
    extra_fields = message_update(8007, 602, "/start") | {"some_future_field": {"nested": [1, 2]}}
    for update in (unknown, edited, member, extra_fields):
        assert (await poster.post(proc, update))[0] == 200, update
    assert (await poster.post(proc, start))[0] == 200
    await fake.wait_for(lambda: fake.sent_messages(601), timeout=15, what="the valid /start answered")
    await fake.wait_for(lambda: fake.sent_messages(602), timeout=15, what="the update with extra fields answered")
    assert [kind_of(c) for c in fake.sent_messages(601)] == ["menu"]

    async def settled() -> dict[int, asyncpg.Record] | None:
        rows = await inbox_rows(database_url)
        return rows if all(r["state"] == 2 for r in rows.values()) and len(rows) == 5 else None
    rows = await eventually(settled, 15, "the five accepted updates done")
    assert rows[8004]["outcome"] == "skipped" and rows[8004]["kind"] == "brand_new_update_type"
    assert rows[8005]["outcome"] == "ok" and rows[8006]["outcome"] == "ok"
    _, metrics = await proc.get("/metrics")
    for reason in ("secret_wrong", "secret_missing", "too_large", "not_json", "not_object", "no_update_id"):
        assert f'trt_webhook_rejected_total{{reason="{reason}"}}' in metrics, reason
    body = await proc.health()
    assert body["status"] == "pass", body["problems"]
    assert SECRET not in proc.log_text()
    unauthorized = [line for line in proc.log_lines() if line.get("event") == "webhook_unauthorized"]
    assert len(unauthorized) == 1, "a wrong secret is logged at most once a minute per source"


async def test_a_failing_and_a_hanging_handler_get_an_apology_and_the_chat_goes_on(
        database_url, fake, spawn, poster) -> None:
    proc = await active(spawn(env(database_url, fake, UPDATE_DEADLINE="1")))
    for update_id, text in ((9001, "/chaos_raise"), (9002, "/chaos_hang"), (9003, "/start")):
        assert (await poster.post(proc, message_update(update_id, 701, text)))[0] == 200
    await fake.wait_for(lambda: len(fake.sent_messages(701)) >= 3, timeout=20, what="two apologies and a menu")
    sent = fake.sent_messages(701)
    assert [kind_of(c) for c in sent] == ["apology", "apology", "menu"]
    assert "u9001" in sent[0].params["text"] and "u9002" in sent[1].params["text"]
    body = await proc.health()
    dispatcher = body["actors"]["dispatcher"]
    assert dispatcher["restarts"] == 0 and dispatcher["consuming"] and dispatcher["failed"] == 2
    events = {(line.get("event"), line.get("reason")) for line in proc.log_lines()}
    assert ("update_failed", "error") in events and ("update_failed", "deadline") in events

    async def marked() -> dict[int, asyncpg.Record] | None:  # done marks are written a moment after the send
        rows = await inbox_rows(database_url)
        return rows if all(rows[u]["state"] == 2 for u in (9001, 9002, 9003)) else None
    rows = await eventually(marked, 15, "the three updates marked done")
    assert [rows[u]["outcome"] for u in (9001, 9002, 9003)] == ["error", "deadline", "ok"]


async def test_telegram_429_is_waited_out_and_nothing_is_dropped(database_url, fake, spawn, poster) -> None:
    proc = await active(spawn(env(database_url, fake)))
    fake.inject("sendMessage", retry_after=1, count=3)
    plan = start_plan(chats=5, per=2, first_id=9100)
    await stream(poster, [proc], plan)
    await fake.wait_for(lambda: len([c for c in fake.calls("sendMessage") if c.ok]) >= 10, timeout=30,
                        what="ten menus delivered after the 429s")
    failed = [c for c in fake.calls("sendMessage") if c.status == 429]
    assert len(failed) == 3
    for chat in plan:
        assert [kind_of(c) for c in fake.sent_messages(chat)] == ["menu", "menu"]
    _, metrics = await proc.get("/metrics")
    assert 'trt_telegram_retry_after_total{method="sendMessage"} 3.0' in metrics


async def test_updates_posted_to_the_passive_instance_are_handled_by_the_active_one(
        database_url, fake, spawn, poster) -> None:
    first = await active(spawn(env(database_url, fake), name="a"))
    second = spawn(env(database_url, fake), name="b")
    await second.wait_healthy()
    assert (await second.health())["role"] == "PASSIVE"
    for i in range(5):
        assert (await poster.post(second, message_update(9200 + i, 801 + i, "/start")))[0] == 200
    await fake.wait_for(5, method="sendMessage", timeout=10, what="the ACTIVE instance answering")

    async def counted() -> bool:  # an update counts as handled a moment after its reply went out
        return (await first.health())["inbox"]["handled"] >= 5
    await eventually(counted, 10, "the ACTIVE instance counting the five handled")
    assert (await second.health())["actors"]["dispatcher"]["handled"] == 0


async def test_passive_reject_mode_answers_callback_queries_in_the_webhook_response(
        database_url, fake, spawn, poster) -> None:
    await active(spawn(env(database_url, fake), name="a"))
    second = spawn(env(database_url, fake, PASSIVE_MODE="REJECT"), name="b")
    await second.wait_healthy()
    status, text = await poster.post(second, callback_update(9300, 901, "menu:help", language_code="en"))
    assert status == 200
    reply = json.loads(text)
    assert reply["method"] == "answerCallbackQuery" and reply["text"]
    assert reply["callback_query_id"] == callback_update(9300, 901, "menu:help")["callback_query"]["id"]
    status, text = await poster.post(second, message_update(9301, 901, "/start"))
    assert status == 200 and text == ""
    await fake.wait_for(lambda: fake.sent_messages(901), timeout=15, what="the update stored and handled")


async def test_kill_9_of_the_active_mid_stream_loses_nothing(database_url, fake, spawn, poster) -> None:
    procs = [spawn(env(database_url, fake), name=f"k{i}") for i in range(2)]
    for proc in procs:
        await proc.wait_healthy()
    first = await active(await eventually(lambda: one_active(procs), 30, "one ACTIVE"))
    standby = next(p for p in procs if p is not first)
    plan = start_plan(chats=200, per=10, first_id=100_000)
    streaming = asyncio.create_task(stream(poster, [first, standby], plan))
    await fake.wait_for(500, method="sendMessage", timeout=60, what="500 replies before the kill")
    first.kill()
    acked = await asyncio.wait_for(streaming, 120)
    assert len(acked) == 2000
    await active(standby)
    try:
        await fake.wait_for(lambda: all(len(fake.sent_messages(c)) >= 10 for c in plan), timeout=60,
                            what="every acknowledged /start answered")
    except TimeoutError:
        rows = await inbox_rows(database_url)
        print("inbox (state, outcome):", collections.Counter((r["state"], r["outcome"]) for r in rows.values()))
        print("standby inbox health:", (await standby.health()).get("inbox"))
        raise
    replies = per_chat(c for c in fake.calls("sendMessage") if c.ok)
    duplicates = sum(len(v) for v in replies.values()) - 2000
    rows = await inbox_rows(database_url)
    rerun = [u for u, r in rows.items() if r["attempts"] > 1]
    print(f"kill -9 mid-stream: 2000 acknowledged, {duplicates} duplicate replies, {len(rerun)} updates re-run")
    assert all(kind_of(c) == "menu" for v in replies.values() for c in v)
    assert 0 <= duplicates <= len(rerun), "a duplicate reply for an update that was not in flight"
    # per chat: an extra reply only where one of that chat's updates was claimed and not marked
    # done at the kill (running, or finished with its done mark not yet written), i.e. re-run
    rerun_set = set(rerun)
    for chat, updates in plan.items():
        extra = len(replies.get(chat, [])) - len(updates)
        again = sum(u["update_id"] in rerun_set for u in updates)
        assert extra <= again, f"chat {chat}: {extra} extra replies but {again} of its updates re-ran"


async def test_a_demoted_leader_stops_consuming_at_once_and_the_new_one_finishes(
        database_url, fake, spawn, poster) -> None:
    # the demoted one retries the lock only after 30 s, so the standby (0.2 s) is surely next
    first = await active(spawn(env(database_url, fake, INSTANCE_ID="demote-a", LOCK_RETRY_INTERVAL="30"),
                               name="a"))
    # the standby reaches the same fake under another host name, so the fake tells their calls apart
    other_base = fake.base_url.replace("127.0.0.1", "localhost")
    standby = spawn(env(database_url, fake, INSTANCE_ID="demote-b", TELEGRAM_API_BASE=other_base), name="b")
    await standby.wait_healthy()
    first_host = fake.base_url.split("//", 1)[1]
    fake.inject("sendMessage", delay=0.2, count=100_000)  # slow sends: many in flight at the demotion
    chats = range(3001, 3301)
    for number, chat in enumerate(chats):
        assert (await poster.post(first, message_update(200_000 + number, chat, "/start")))[0] == 200
    await fake.wait_for(40, method="sendMessage", timeout=30, what="the leader busy sending")
    conn = await asyncpg.connect(database_url)
    try:  # the lock connection dies: the leader must give up the role and stop consuming
        assert await conn.fetchval(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE application_name = $1",
            "trt-lock:demote-a") == 1
    finally:
        await conn.close()

    async def stopped() -> bool:
        body = await first.health()
        return body["role"] == "PASSIVE" and not body["actors"]["dispatcher"]["consuming"]
    await eventually(stopped, 15, "the demoted leader PASSIVE and not consuming")
    seen_passive = time.monotonic()
    await active(standby)
    await fake.wait_for(lambda: all(fake.sent_messages(c) for c in chats), timeout=60,
                        what="every /start answered by the new leader")
    from_first = [c for c in fake.calls("sendMessage") if c.host == first_host]
    # a request already on the wire when the role flipped can be read by the fake a moment after
    # the health answer that showed PASSIVE (same event loop); nothing may start after that
    late = [c for c in from_first if c.at > seen_passive + 0.5]
    assert not late, f"{len(late)} sends by the demoted leader after it said PASSIVE"
    assert any(c.host != first_host for c in fake.calls("sendMessage")), "the new leader did the rest"
    replies = per_chat(c for c in fake.calls("sendMessage") if c.ok)
    duplicates = sum(len(v) for v in replies.values()) - len(chats)
    rows = await inbox_rows(database_url)
    print(f"demotion mid-stream: {len(from_first)} sends by the old leader, {duplicates} duplicate replies")
    for number, chat in enumerate(chats):  # a second reply only where the update was claimed twice
        assert len(replies[chat]) == 1 or rows[200_000 + number]["attempts"] > 1, f"chat {chat} answered twice"


async def test_polling_mode_end_to_end_with_a_restart_in_the_middle(database_url, fake, spawn) -> None:
    polling = env(database_url, fake, BOT_MODE="polling")
    polling.pop("WEBHOOK_BASE_URL")
    proc = await active(spawn(polling, name="poll1"))
    for i in range(5):
        fake.push_update(fake.user_message(1100 + i, "/start"))
    await fake.wait_for(5, method="sendMessage", timeout=30, what="five menus by polling")
    proc.signal(signal.SIGTERM)
    assert await proc.wait_exit(30) == 0
    for i in range(5):  # sent while the bot is down: Telegram keeps them
        fake.push_update(fake.user_message(1100 + i, "/help"))
    again = await active(spawn(polling, name="poll2"))
    await fake.wait_for(10, method="sendMessage", timeout=30, what="five help replies after the restart")
    for i in range(5):
        assert [kind_of(c) for c in fake.sent_messages(1100 + i)] == ["menu", "help"]
    assert fake.calls("deleteWebhook") and fake.pending_updates == []
    assert (await again.health())["actors"]["poller"]["polling"] is True


async def test_fsm_state_set_before_a_restart_is_there_after_it(database_url, fake, spawn, poster) -> None:
    from aiogram.fsm.storage.base import StorageKey

    from store.database import Database

    proc = await active(spawn(env(database_url, fake), name="f1"))
    db = Database(database_url, "test")
    await db.connect()
    try:
        storage = PostgresStorage(db)
        key = StorageKey(bot_id=BOT_ID, chat_id=1201, user_id=1201)
        await storage.set_state(key, "wizard:prompt")
        await storage.set_data(key, {"model": "flux"})
    finally:
        await db.close()
    proc.kill()
    again = await active(spawn(env(database_url, fake), name="f2"))
    assert (await poster.post(again, message_update(9400, 1201, "/cancel")))[0] == 200
    assert (await poster.post(again, message_update(9401, 1201, "/cancel")))[0] == 200
    await fake.wait_for(lambda: len(fake.sent_messages(1201)) >= 2, timeout=15, what="two /cancel replies")
    first, second = (c.params["text"] for c in fake.sent_messages(1201))
    assert first != second, "the first /cancel found the state set before the restart, the second found none"


LONE_SURROGATE = "\ud800"  # what the JSON escape "\ud800" decodes to: valid JSON, not encodable as UTF-8


async def test_polling_stores_an_update_with_a_lone_surrogate_and_goes_on_to_the_next(
        database_url, fake, spawn) -> None:
    polling = env(database_url, fake, BOT_MODE="polling")
    polling.pop("WEBHOOK_BASE_URL")
    proc = await active(spawn(polling, name="poll"))
    odd = fake.push_update(fake.user_message(1200, LONE_SURROGATE))
    start = fake.push_update(fake.user_message(1200, "/start"))
    await fake.wait_for(lambda: "menu" in [kind_of(c) for c in fake.sent_messages(1200)], timeout=30,
                        what="the /start after the odd update answered")
    rows = await inbox_rows(database_url)
    assert {odd["update_id"], start["update_id"]} <= set(rows), "both stored"

    async def both_done() -> bool:
        rows = await inbox_rows(database_url)
        return all(rows[u]["state"] == 2 for u in (odd["update_id"], start["update_id"]))
    await eventually(both_done, 30, "both updates handled")
    poller = (await proc.health())["actors"]["poller"]
    assert poller["offset"] == start["update_id"] + 1 and poller["poll_error"] is None, poller


async def test_a_webhook_update_with_a_lone_surrogate_is_acknowledged_and_stored(
        database_url, fake, spawn, poster) -> None:
    proc = await active(spawn(env(database_url, fake)))
    update = message_update(1300, 1300, LONE_SURROGATE)
    raw = json.dumps(update).encode()
    assert b"\\ud800" in raw, "sent as Telegram would: an escape in otherwise plain JSON"
    assert (await poster.post(proc, None, raw=raw))[0] == 200

    async def done() -> bool:
        rows = await inbox_rows(database_url)
        return 1300 in rows and rows[1300]["state"] == 2
    await eventually(done, 30, "the update stored and handled")
    # an unknown update type whose name is no name: stored under kind "unknown", never a 503 for the batch
    for update_id, kind in ((1302, LONE_SURROGATE), (1303, "x\u0000")):
        assert (await poster.post(proc, {"update_id": update_id, kind: {"chat": {"id": 1300}}}))[0] == 200
    rows = await inbox_rows(database_url)
    assert rows[1302]["kind"] == rows[1303]["kind"] == "unknown"
    assert (await poster.post(proc, message_update(1301, 1300, "/start")))[0] == 200
    await fake.wait_for(lambda: "menu" in [kind_of(c) for c in fake.sent_messages(1300)], timeout=30,
                        what="the chat goes on")
