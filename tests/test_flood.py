"""A flood from one user stays that user's problem (issue 19): the dispatcher in process, a real
PostgreSQL, the fake Telegram over HTTP, real aiogram, the test in lock_keeper's place.

What is checked: every flooded update is accepted and marked done (none lost, none left
claimed); the flooder gets one notice per burst and an answer to what it sent last; a payment
and a command inside the flood still run; every press is answered (no spinner) though only the
last runs; another chat is answered while the flood is still being worked through; a chat's
queue in memory stays bounded while its worker is busy.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import asyncpg
import pytest
from aiogram import Dispatcher, F, Router
from aiogram.filters import Command
from aiogram.types import CallbackQuery, Message

import config
from actors.dispatcher import UpdateDispatcher
from actors.mailbox import Mailbox
from bot import flood, texts
from bot.fsm_storage import PostgresStorage
from fakes.telegram.updates import callback_update, message_update, successful_payment_update
from fakes.telegram_api import FakeTelegram
from ingest import updates as updates_
from ingest.bot_api import make_bot
from messages.pipeline import Wake
from messages.roles import CurrentRole, Role, RoleChanged, RoleQuery
from store import inbox, leader
from store.database import Database
from store.inbox import Incoming
from tests.actors_kit import until
from tests.procs import FAKE_TOKEN

pytestmark = pytest.mark.timeout(90)
BOT_ID = int(FAKE_TOKEN.split(":")[0])
NAME = leader.lock_name(BOT_ID)
FLOODER, OTHER, BUSY = 901, 902, 903
NOTICE_RU = texts.t("ru", "flood_notice")


def router() -> Router:
    r = Router(name="flood-test")

    @r.message(Command("start"))
    async def start(message: Message) -> None:
        await message.answer("hello")

    @r.message(Command("hang"))
    async def hang(message: Message) -> None:
        await asyncio.Event().wait()

    @r.message(F.successful_payment)
    async def paid(message: Message) -> None:
        assert message.successful_payment is not None
        await message.answer(f"paid {message.successful_payment.invoice_payload}")

    @r.message()
    async def echo(message: Message) -> None:
        await message.answer(f"echo {message.text}")

    @r.callback_query()
    async def pressed(query: CallbackQuery, pre_answered: bool = False) -> None:
        if not pre_answered:
            await query.answer()
        assert query.message is not None
        await query.message.answer(f"pressed {query.data}")

    return r


@dataclass
class Harness:
    db: Database
    fake: FakeTelegram
    box: Mailbox
    actor: UpdateDispatcher
    epoch: int

    def grant(self) -> None:
        self.box.tell_nowait(RoleChanged(Role.ACTIVE, self.epoch, "test", time.monotonic() + 3600))

    async def post(self, *updates: dict[str, Any]) -> None:
        rows = [Incoming(u["update_id"], *updates_.classify(u), json.dumps(u)) for u in updates]
        await inbox.append_batch(self.db, BOT_ID, "test", rows)
        self.box.tell_nowait(Wake())

    async def rows(self) -> dict[int, asyncpg.Record]:
        records = await self.db.require().fetch(
            "SELECT update_id, state, outcome FROM inbox WHERE bot_id = $1", BOT_ID)
        return {r["update_id"]: r for r in records}

    async def done_rows(self) -> dict[int, asyncpg.Record]:
        async def all_done() -> dict[int, asyncpg.Record] | None:
            rows = await self.rows()
            return rows if all(r["state"] == 2 for r in rows.values()) else None
        return await until(all_done, timeout=30, what="every update marked done")

    def texts(self, chat: int) -> list[str]:
        return [c.params.get("text", "") for c in self.fake.sent_messages(chat)]


@pytest.fixture
async def harness(db: Database, fake: FakeTelegram, database_url: str) -> AsyncIterator[Callable[..., Any]]:
    made: list[Harness] = []

    async def make(**env: str) -> Harness:
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
        dp.include_router(router())
        keeper_box = Mailbox("lock_keeper-stand-in", (RoleQuery, CurrentRole), 1000)
        box = UpdateDispatcher.new_mailbox(f"dispatcher-{len(made)}")
        actor = UpdateDispatcher(box, settings, db, make_bot(FAKE_TOKEN, fake.base_url, timeout=5), dp, keeper_box)
        await actor.start()
        made.append(Harness(db, fake, box, actor, epoch))
        return made[-1]

    yield make
    for h in made:
        await h.actor.stop(5.0)


def flood_of(first_id: int) -> tuple[list[dict[str, Any]], list[str]]:
    """300 texts with a payment and a command inside, 100 presses on one screen, then a last text;
    returns the updates and the presses' query ids."""
    updates = [message_update(first_id + i, FLOODER, f"spam {i}") for i in range(300)]
    updates.insert(150, successful_payment_update(first_id + 1000, FLOODER, 50, "pack-50"))
    updates.insert(200, message_update(first_id + 1001, FLOODER, "/start"))
    presses = [callback_update(first_id + 2000 + i, FLOODER, f"p{i}", message_id=7) for i in range(100)]
    updates += presses
    updates.append(message_update(first_id + 3000, FLOODER, "last words"))
    for number, update in enumerate(updates):  # update_id order is the order they were sent in
        update["update_id"] = first_id + number
    return updates, [p["callback_query"]["id"] for p in presses]


async def test_a_flooding_chat_gets_one_notice_and_an_answer_to_its_last_message_while_another_chat_is_answered(
        harness: Callable[..., Any]) -> None:
    h: Harness = await harness()
    flooded, query_ids = flood_of(10_000)
    other = message_update(20_000, OTHER, "/start")
    await h.post(*flooded, other)
    h.grant()

    await h.fake.wait_for(lambda: "echo last words" in h.texts(FLOODER), timeout=60, what="the last message answered")
    await h.fake.wait_for(lambda: h.texts(OTHER), timeout=10, what="the other chat answered")
    rows = await h.done_rows()

    assert len(rows) == len(flooded) + 1, "every update was accepted"
    assert {r["outcome"] for r in rows.values()} <= {"ok", "flood", "stale_press"}, "none failed, none left claimed"
    said = h.texts(FLOODER)
    assert said.count(NOTICE_RU) == 1, "one notice for the burst"
    assert said.index(NOTICE_RU) < said.index("echo last words"), "the notice comes before the answer it announces"
    assert said[-1] == "echo last words", "the last answer is to the last message"
    assert "paid pack-50" in said and rows[10_150]["outcome"] == "ok", "the payment inside the flood ran"
    assert "hello" in said, "the command inside the flood ran"
    assert len(said) <= 6, f"the flood was coalesced, not answered one by one: {said}"
    answered = {c.params.get("callback_query_id") for c in h.fake.calls("answerCallbackQuery")}
    assert set(query_ids) <= answered, "every press was answered: no spinner waits"
    dropped = [u for u, r in rows.items() if r["outcome"] in ("flood", "stale_press")]
    assert len(dropped) >= len(flooded) - 6

    calls = [c for c in h.fake.calls("sendMessage")]
    order = [(int(c.params["chat_id"]), c.params.get("text")) for c in calls]
    assert order.index((OTHER, "hello")) < order.index((FLOODER, "echo last words")), \
        "the other chat did not wait for the flood to be worked through"


async def test_the_notice_speaks_the_language_the_user_chose_over_telegrams(harness: Callable[..., Any]) -> None:
    h: Harness = await harness()
    await h.db.require().execute(
        "INSERT INTO users (bot_id, user_id, language, lang) VALUES ($1, $2, 'ru', 'en')", BOT_ID, FLOODER)
    await h.post(*[message_update(40_000 + i, FLOODER, f"spam {i}") for i in range(60)])  # Telegram says ru
    h.grant()
    await h.fake.wait_for(lambda: "echo spam 59" in h.texts(FLOODER), timeout=60, what="the last message answered")
    said = h.texts(FLOODER)
    assert texts.t("en", "flood_notice") in said and NOTICE_RU not in said, said


async def test_a_flood_waiting_behind_a_busy_worker_is_coalesced_in_memory_not_held_whole(
        harness: Callable[..., Any]) -> None:
    """The pump claims in update_id order up to HIGH_WATER: a chat holding all of it would keep
    every other chat's updates in the inbox while its one worker is busy."""
    h: Harness = await harness(DISPATCH_CONCURRENCY="2", UPDATE_DEADLINE="50")
    h.grant()
    await h.post(message_update(30_000, FLOODER, "/hang"))
    await until(lambda: h.actor.running or None, timeout=10, what="the flooder's worker busy")
    await h.post(*[message_update(30_001 + i, FLOODER, f"spam {i}") for i in range(400)])
    await h.post(message_update(31_000, OTHER, "/start"))
    await h.fake.wait_for(lambda: h.texts(OTHER), timeout=20, what="the other chat answered")

    async def coalesced() -> bool:
        rows = await h.rows()
        return bool(sum(r["outcome"] == "flood" for r in rows.values()) >= 400 - flood.CHAT_QUEUE_MAX)
    await until(coalesced, timeout=20, what="the waiting flood marked done")
    queue = h.actor.queues[("chat", FLOODER)]
    assert len(queue) <= flood.CHAT_QUEUE_MAX, f"{len(queue)} updates of one chat held in memory"
    assert queue[-1].update_id == 30_400, "the newest one is kept"
    assert h.actor.running, "all while the flooder's worker was still busy"


def test_the_policy_admits_a_burst_then_drops_all_but_the_newest_and_notices_once_per_burst() -> None:
    policy = flood.Flood(rate=2.0, burst=3.0, quiet=10.0)
    never = lambda: False  # noqa: E731
    verdicts = [policy.admit(1, 0.0, behind=1, waited=False, is_kept=never) for _ in range(6)]
    assert verdicts == [flood.Verdict.ADMIT] * 3 + [flood.Verdict.NOTICE, flood.Verdict.DROP, flood.Verdict.DROP]
    assert policy.admit(1, 0.0, behind=0, waited=False, is_kept=never) is flood.Verdict.WAIT, "the last waits"
    assert policy.wait(1, 0.0) == pytest.approx(0.5)
    assert policy.admit(1, 0.5, behind=1, waited=True, is_kept=never) is flood.Verdict.DROP, \
        "superseded while it waited: the newer one gets the token"
    assert policy.admit(1, 0.5, behind=0, waited=False, is_kept=never) is flood.Verdict.ADMIT
    assert policy.admit(1, 0.5, behind=1, waited=False, is_kept=lambda: True) is flood.Verdict.ADMIT, "kept"
    assert policy.admit(2, 0.5, behind=1, waited=False, is_kept=never) is flood.Verdict.ADMIT, "another chat"
    assert policy.admit(1, 20.0, behind=1, waited=False, is_kept=never) is flood.Verdict.ADMIT, "refilled"
    for _ in range(2):
        policy.admit(1, 20.0, behind=1, waited=False, is_kept=never)
    assert policy.admit(1, 20.0, behind=1, waited=False, is_kept=never) is flood.Verdict.NOTICE, "a new burst"
    assert policy.admit(3, 0.0, behind=3, waited=False, is_kept=never) is flood.Verdict.NOTICE, \
        "a whole burst queued behind one update is a flood at once"


def test_payments_commands_and_what_is_not_a_persons_message_are_never_dropped() -> None:
    def kept(update: dict[str, Any]) -> bool:
        kind = updates_.classify(update)[0]
        return flood.kept(kind, flood.parse(json.dumps(update)))
    assert kept(successful_payment_update(1, 5, 50, "pack"))
    refunded = message_update(2, 5, "x")
    del refunded["message"]["text"]
    refunded["message"]["refunded_payment"] = {"currency": "XTR", "total_amount": 50}
    assert kept(refunded)
    assert kept(message_update(3, 5, "/start ref-42")) and kept(message_update(4, 5, "/cancel"))
    assert kept({"update_id": 5, "my_chat_member": {"chat": {"id": 5}}})
    assert not kept(message_update(6, 5, "hello")) and not kept(callback_update(7, 5, "p1"))


def test_the_policy_forgets_idle_chats_past_its_bound() -> None:
    policy = flood.Flood(keep=100)
    for chat in range(1000):
        policy.admit(chat, float(chat), behind=0, waited=False, is_kept=lambda: False)
    assert len(policy.buckets) <= 100
