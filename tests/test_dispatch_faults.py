"""The dispatcher under faults, in process: a real PostgreSQL, the fake Telegram over HTTP, real
aiogram, and the test in lock_keeper's place (it tells the role and grants the lease).

What is checked: an update is done, failed for good (apology), or run again (no apology, no
done mark) when the fence refuses, the database is unreachable, or a deadline fires after an
intent was committed; nothing is sent outside the lease; claims whose commit answer was lost are
not stranded in the live session.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import json
import logging
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import asyncpg
import pytest
from aiogram import Dispatcher, Router
from aiogram.filters import Command
from aiogram.types import Message, PreCheckoutQuery

import config
from actors import dispatcher as dispatcher_module
from actors.dispatcher import UpdateDispatcher
from actors.mailbox import Mailbox
from bot.fsm_storage import PostgresStorage
from fakes.telegram_api import FakeTelegram, message_update, pre_checkout_update
from ingest import updates as updates_
from ingest.bot_api import make_bot
from messages.pipeline import Wake
from messages.roles import CurrentRole, EpochRefused, Role, RoleChanged, RoleQuery
from store import inbox, leader
from store.database import Database, DatabaseUnavailable
from store.fence import fenced_probe
from store.inbox import Incoming
from tests.actors_kit import until
from tests.procs import FAKE_TOKEN

pytestmark = pytest.mark.timeout(60)
BOT_ID = int(FAKE_TOKEN.split(":")[0])
NAME = leader.lock_name(BOT_ID)


@dataclass
class Runs:
    """How often each test command ran, so a handler can fail on its first runs only."""

    counts: collections.Counter[str] = field(default_factory=collections.Counter)
    released: asyncio.Event = field(default_factory=asyncio.Event)  # /stubborn's cleanup may end


def faulty_router(db: Database, runs: Runs) -> Router:
    router = Router(name="faults")

    def first(key: str, times: int = 1) -> bool:
        runs.counts[key] += 1
        return runs.counts[key] <= times

    @router.message(Command("fenced"))
    async def fenced_once(message: Message, fence_epoch: int) -> None:
        if first("fenced"):
            await fenced_probe(db, NAME, fence_epoch - 1, "a write under an epoch that is not ours")
        await message.answer("fenced ok")

    @router.message(Command("flaky"))
    async def flaky(message: Message) -> None:
        if first("flaky", 2):
            raise DatabaseUnavailable("database is down")
        await message.answer("flaky ok")

    @router.message(Command("intent"))
    async def intent_then_hang(message: Message, fence_epoch: int) -> None:
        await fenced_probe(db, NAME, fence_epoch, f"intent of update {message.message_id}")
        if first("intent"):
            await asyncio.Event().wait()  # the deadline fires after the intent committed
        await message.answer("intent ok")

    @router.message(Command("stubborn"))
    async def stubborn(message: Message) -> None:
        runs.counts["stubborn"] += 1
        try:
            await asyncio.Event().wait()
        finally:
            await runs.released.wait()  # a cleanup that awaits: a stop's cancel does not end the task

    @router.message(Command("lost_cancel"))
    async def lost_cancel(message: Message) -> None:
        runs.counts["lost_cancel"] += 1
        with contextlib.suppress(asyncio.CancelledError):  # what 3.11's asyncio.wait_for does when a result
            await asyncio.Event().wait()                   # lands in the same step as the cancel

    @router.message(Command("hang"))
    async def hang(message: Message) -> None:
        await asyncio.Event().wait()

    @router.message()
    async def echo(message: Message) -> None:
        await message.answer(f"echo {message.text}")

    @router.pre_checkout_query()
    async def pre_checkout(query: PreCheckoutQuery) -> None:
        await query.answer(ok=True)

    return router


@dataclass
class Harness:
    db: Database
    fake: FakeTelegram
    box: Mailbox
    actor: UpdateDispatcher
    epoch: int
    keeper: asyncio.Task[None] | None = None
    lease: float = 3600.0

    def grant(self, lease: float | None = None) -> None:
        self.box.tell_nowait(RoleChanged(Role.ACTIVE, self.epoch, "test", time.monotonic() + (lease or self.lease)))

    def keep_granting(self, every: float = 0.1) -> None:
        """As lock_keeper does after every heartbeat."""
        async def loop() -> None:
            while True:
                self.grant()
                await asyncio.sleep(every)
        self.keeper = asyncio.create_task(loop())

    async def post(self, *updates: dict[str, Any]) -> None:
        rows = [Incoming(u["update_id"], *updates_.classify(u), json.dumps(u)) for u in updates]
        await inbox.append_batch(self.db, BOT_ID, "test", rows)
        self.box.tell_nowait(Wake())

    async def rows(self) -> dict[int, asyncpg.Record]:
        records = await self.db.require().fetch(
            "SELECT update_id, state, outcome, attempts FROM inbox WHERE bot_id = $1", BOT_ID)
        return {r["update_id"]: r for r in records}

    async def done_rows(self) -> dict[int, asyncpg.Record]:
        """The rows once every one is done (done marks are written a moment after the answer)."""
        async def all_done() -> dict[int, asyncpg.Record] | None:
            rows = await self.rows()
            return rows if all(r["state"] == 2 for r in rows.values()) else None
        return await until(all_done, timeout=10, what="every update marked done")

    def texts(self, chat: int) -> list[str]:
        return [c.params.get("text", "") for c in self.fake.sent_messages(chat)]


@pytest.fixture
async def harness(db: Database, fake: FakeTelegram, database_url: str) -> AsyncIterator[Callable[..., Any]]:
    made: list[Harness] = []

    async def make(runs: Runs | None = None, **env: str) -> Harness:
        settings = config.load("serve", {"TELEGRAM_BOT_TOKEN": FAKE_TOKEN, "DATABASE_URL": database_url,
                                          "TELEGRAM_API_BASE": fake.base_url, "TELEGRAM_RATE_GLOBAL": "0",
                                          "TELEGRAM_RATE_PER_CHAT": "0", "INBOX_SWEEP_INTERVAL": "0.1",
                                          "DISPATCH_CONCURRENCY": "4", **env})
        conn = await asyncpg.connect(database_url)
        try:
            epoch = await leader.bump_epoch(conn, NAME, "test", 1)
        finally:
            await conn.close()
        dp = Dispatcher(storage=PostgresStorage(db))
        dp.include_router(faulty_router(db, runs or Runs()))
        keeper_box = Mailbox("lock_keeper-stand-in", (RoleQuery, CurrentRole), 1000)
        box = UpdateDispatcher.new_mailbox(f"dispatcher-{len(made)}")
        bot = make_bot(FAKE_TOKEN, fake.base_url, timeout=5)
        actor = UpdateDispatcher(box, settings, db, bot, dp, keeper_box)
        await actor.start()
        made.append(Harness(db, fake, box, actor, epoch))
        return made[-1]

    yield make
    for h in made:
        if h.keeper is not None:
            h.keeper.cancel()
        await h.actor.stop(5.0)


def chat_updates(chat: int, first_id: int, texts: list[str]) -> list[dict[str, Any]]:
    return [message_update(first_id + i, chat, text) for i, text in enumerate(texts)]


async def test_a_claim_whose_commit_answer_was_lost_is_not_stranded_in_the_live_session(
        harness: Callable[..., Any], monkeypatch: pytest.MonkeyPatch) -> None:
    h: Harness = await harness()
    real_claim = inbox.claim
    lost = []

    async def claim_then_lose_the_answer(*args: Any, **kwargs: Any) -> list[inbox.Claimed]:
        claimed = await real_claim(*args, **kwargs)
        if claimed and not lost:
            lost.extend(claimed)
            raise ConnectionResetError("the COMMIT reached the server, its answer did not reach us")
        return claimed

    monkeypatch.setattr(inbox, "claim", claim_then_lose_the_answer)
    await h.post(*chat_updates(501, 1000, [f"m{i}" for i in range(6)]))
    h.keep_granting()
    await h.fake.wait_for(lambda: len(h.fake.sent_messages(501)) >= 6, timeout=20, what="all six answered")
    assert lost, "the fault was injected"
    assert h.texts(501) == [f"echo m{i}" for i in range(6)], "in update_id order, each once"
    assert all(r["outcome"] == "ok" for r in (await h.done_rows()).values())


async def test_a_fenced_write_in_a_handler_runs_the_update_again_without_an_apology(
        harness: Callable[..., Any]) -> None:
    runs = Runs()
    h: Harness = await harness(runs)
    await h.post(*chat_updates(502, 2000, ["/fenced", "after"]))
    h.keep_granting()
    await h.fake.wait_for(lambda: len(h.fake.sent_messages(502)) >= 2, timeout=20, what="both answered")
    assert h.texts(502) == ["fenced ok", "echo after"], "no apology, and the chat kept its order"
    assert runs.counts["fenced"] == 2
    rows = await h.done_rows()
    assert rows[2000]["outcome"] == "ok" and rows[2000]["attempts"] == 2, "claimed again after the refusal"


async def test_an_unreachable_database_in_a_handler_runs_the_update_again(harness: Callable[..., Any]) -> None:
    runs = Runs()
    h: Harness = await harness(runs)
    await h.post(*chat_updates(503, 3000, ["/flaky", "after"]))
    h.keep_granting()
    await h.fake.wait_for(lambda: len(h.fake.sent_messages(503)) >= 2, timeout=20, what="both answered")
    assert h.texts(503) == ["flaky ok", "echo after"]
    assert runs.counts["flaky"] == 3
    assert (await h.done_rows())[3000]["outcome"] == "ok"


async def test_a_deadline_after_a_committed_intent_runs_the_update_again_but_a_plain_one_apologises(
        harness: Callable[..., Any]) -> None:
    runs = Runs()
    h: Harness = await harness(runs, UPDATE_DEADLINE="0.5")
    await h.post(*chat_updates(504, 4000, ["/intent", "/hang", "after"]))
    h.keep_granting()
    await h.fake.wait_for(lambda: len(h.fake.sent_messages(504)) >= 3, timeout=20, what="three answers")
    texts = h.texts(504)
    assert texts[0] == "intent ok", texts
    assert "u4001" in texts[1], "the plain deadline is failed for good, with the reference"
    assert texts[2] == "echo after"
    rows = await h.done_rows()
    assert (rows[4000]["outcome"], rows[4001]["outcome"], rows[4002]["outcome"]) == ("ok", "deadline", "ok")


async def test_nothing_is_sent_past_the_lease_and_the_work_resumes_when_it_is_renewed(
        harness: Callable[..., Any]) -> None:
    h: Harness = await harness()
    h.grant(lease=0.4)
    await h.post(*chat_updates(505, 5000, ["a"]))
    await h.fake.wait_for(lambda: h.fake.sent_messages(505), timeout=10, what="the first answer within the lease")
    await until(lambda: not h.actor.may_act(), timeout=5, what="the lease ran out")
    await h.post(*chat_updates(505, 5001, ["b", "c"]))
    sent_before = len(h.fake.calls())
    with pytest.raises(TimeoutError):  # a bounded look for what must not happen
        await h.fake.wait_for(lambda: len(h.fake.calls()) > sent_before, timeout=1.0, what="a send past the lease")
    assert [r["state"] for u, r in sorted((await h.rows()).items()) if u > 5000] == [0, 0], "not even claimed"
    h.keep_granting()
    await h.fake.wait_for(lambda: len(h.fake.sent_messages(505)) >= 3, timeout=10, what="the rest after renewal")
    assert h.texts(505) == ["echo a", "echo b", "echo c"]


def logged(caplog: pytest.LogCaptureFixture, event: str) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.getMessage() == event]


async def stopped_while_running(harness: Callable[..., Any], caplog: pytest.LogCaptureFixture, chat: int,
                                first_id: int, command: str) -> Runs:
    """`/command` running in `chat` when the dispatcher is told its epoch was refused (a stop)."""
    caplog.set_level(logging.INFO, logger="trt.dispatcher")
    runs = Runs()
    h: Harness = await harness(runs)
    h.grant()
    await h.post(*chat_updates(chat, first_id, [f"/{command}"]))
    await until(lambda: runs.counts[command] == 1, what=f"/{command} running")
    h.box.tell_nowait(EpochRefused(h.epoch))
    return runs


async def test_a_stop_held_up_by_a_task_that_does_not_end_when_cancelled_says_where_it_waits(
        harness: Callable[..., Any], caplog: pytest.LogCaptureFixture) -> None:
    """The soak once saw a role change wait 5 s on the stop's cancelled tasks, with nothing in the
    log to say which: now a stop still waiting after STOP_SLOW names each late task's await."""
    runs = await stopped_while_running(harness, caplog, 507, 7000, "stubborn")
    await until(lambda: logged(caplog, "dispatch_stop_slow"), timeout=10, what="the slow stop logged")
    [line] = logged(caplog, "dispatch_stop_slow")
    assert line.late == 1 and any("in stubborn > " in where for where in line.awaiting), line.awaiting
    runs.released.set()
    await until(lambda: logged(caplog, "dispatch_stopped"), timeout=10, what="the stop finished once the cleanup ended")


async def test_a_stop_ends_a_worker_whose_handler_lost_the_cancellation_instead_of_waiting_for_it_for_ever(
        harness: Callable[..., Any], caplog: pytest.LogCaptureFixture) -> None:
    """A handler that swallows the stop's cancel (as Python 3.11's asyncio.wait_for can, inside
    asyncpg or aiohttp) returns normally; its worker must end there, not park on `acting` until
    the role change's deadline (soak seed 2117: a 5 s stall, every late task at the loop's top)."""
    runs = await stopped_while_running(harness, caplog, 508, 8000, "lost_cancel")
    await until(lambda: logged(caplog, "dispatch_stopped"), timeout=10, what="the stop finished")
    assert not logged(caplog, "dispatch_stop_slow")
    assert runs.counts["lost_cancel"] == 1


async def test_a_stale_fence_refusal_of_an_earlier_epoch_does_not_stop_the_current_one(
        harness: Callable[..., Any]) -> None:
    """The pump's refusal under an old epoch, landing after a newer ACTIVE, once stopped consuming
    for good (the PASSIVE it sent itself ignored the epoch)."""
    h: Harness = await harness()
    h.grant()
    await until(lambda: h.actor.health()["consuming"], what="consuming")
    h.box.tell_nowait(EpochRefused(h.epoch - 1))
    await h.post(*chat_updates(506, 6000, ["still here"]))
    await h.fake.wait_for(lambda: h.fake.sent_messages(506), timeout=10, what="answered after the stale refusal")
    assert h.actor.health()["consuming"]
    h.box.tell_nowait(EpochRefused(h.epoch))
    await until(lambda: not h.actor.health()["consuming"], what="a refusal of the current epoch stops it")


async def test_an_update_telegram_would_never_send_is_done_as_invalid_without_an_apology(
        harness: Callable[..., Any], caplog: pytest.LogCaptureFixture) -> None:
    h: Harness = await harness()
    invalid = message_update(6000, 506, "hello")
    invalid["message"]["date"] = "not a date"  # someone holding the secret, not Telegram
    await h.post(invalid, *chat_updates(506, 6001, ["after"]))
    h.keep_granting()
    await h.fake.wait_for(lambda: len(h.fake.sent_messages(506)) >= 1, timeout=20, what="the next update answered")
    rows = await h.done_rows()
    assert (rows[6000]["outcome"], rows[6001]["outcome"]) == ("invalid", "ok")
    assert h.texts(506) == ["echo after"], "no apology to the chat an invalid update names"
    [line] = [r for r in caplog.records if r.getMessage() == "update_invalid"]
    assert line.levelname == "WARNING" and "message.date" in line.error_text  # type: ignore[attr-defined]
    assert not [r for r in caplog.records if r.getMessage() == "update_failed"]


async def test_a_pre_checkout_query_is_answered_while_every_worker_is_busy_with_slow_chats(
        harness: Callable[..., Any]) -> None:
    """Telegram fails a payment whose pre-checkout query is not answered within 10 s: it must
    not wait for a worker, even when the only one is stuck in a chat's slow handler."""
    h: Harness = await harness(DISPATCH_CONCURRENCY="1", UPDATE_DEADLINE="50")
    h.keep_granting()
    await h.post(message_update(7000, 701, "/hang"))
    await until(lambda: h.actor.running or None, timeout=10, what="the only worker busy with /hang")
    await h.post(pre_checkout_update(7001, 702, 50, "order-1", query_id="pcq-1"))
    await h.fake.wait_for(lambda: h.fake.calls("answerPreCheckoutQuery"), timeout=20, what="the pre-checkout answer")
    assert h.fake.calls("answerPreCheckoutQuery")[0].params["ok"] is True
    assert h.actor.running, "answered while the slow chat still held the only worker"
    rows = await h.rows()
    assert rows[7000]["state"] != 2 and rows[7001]["state"] in (1, 2)


async def test_more_claims_left_by_a_dead_leader_than_one_claim_batch_are_all_taken_over(
        harness: Callable[..., Any], monkeypatch: pytest.MonkeyPatch) -> None:
    """test_pipeline's kill -9 once the acks outran dispatch: the dead leader held 1,500 claims, the
    new one took over one batch (500) and then read only unclaimed rows, stranding the rest."""
    monkeypatch.setattr(dispatcher_module, "CLAIM_BATCH", 5)
    h: Harness = await harness()
    await h.post(*[message_update(3000 + i, 700 + i, f"t{i}") for i in range(12)])
    dead = await inbox.claim(h.db, NAME, h.epoch, BOT_ID, 100, "dead-leader/0")  # claimed, never handled
    assert len(dead) == 12
    h.keep_granting()
    await h.fake.wait_for(lambda: all(h.texts(700 + i) == [f"echo t{i}"] for i in range(12)), timeout=20,
                          what="all twelve answered")
    assert all(r["outcome"] == "ok" for r in (await h.done_rows()).values())
