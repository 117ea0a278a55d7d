"""A Stars payment across processes, black box: two `run.py serve` processes on one PostgreSQL in
webhook mode, the fake Telegram (and the fake KIE the service needs) as real HTTP servers, every
update delivered to the standby's URL (both instances write the inbox; the leader handles). The
user buys a pack through the buttons the bot sent, Telegram's pre-checkout is answered by the
leader, and the payment is then delivered again, after a kill -9 of the leader, to the standby
that takes over: one credit per charge id (store.invariants), the user told once.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import urlsplit

import pytest

from bot import texts
from bot.routers import stars
from fakes.kie_api import FakeKie
from fakes.telegram_api import Call, FakeTelegram, pre_checkout_update, successful_payment_update
from store import accounts, invariants, leader
from store.database import Database
from tests.procs import FAKE_TOKEN, TrtProcess, eventually, free_port, one_active

pytestmark = pytest.mark.timeout(240)
BOT_ID = int(FAKE_TOKEN.split(":")[0])
NAME = leader.lock_name(BOT_ID)
RATE = 150
LANG = "en"


@pytest.fixture
async def fakes() -> AsyncIterator[tuple[FakeTelegram, FakeKie]]:
    async with FakeTelegram() as telegram, FakeKie(duration=1.0) as kie:
        yield telegram, kie


@pytest.fixture
async def store_db(database_url: str) -> AsyncIterator[Database]:
    database = Database(database_url, "test", pool_size=2)
    await database.connect()
    yield database
    await database.close()


def env(database_url: str, telegram: FakeTelegram, kie: FakeKie, port: int, webhook_port: int) -> dict[str, str]:
    return {"TELEGRAM_BOT_TOKEN": FAKE_TOKEN, "DATABASE_URL": database_url, "TELEGRAM_API_BASE": telegram.base_url,
            "WEBHOOK_BASE_URL": f"http://127.0.0.1:{webhook_port}", "BOT_MODE": "webhook",
            "WEBHOOK_SECRET": "stars-e2e-secret-0123", "KIE_API_KEY": "kie-stars-key", "KIE_API_BASE": kie.base_url,
            "KIE_UPLOAD_BASE": kie.base_url, "DOWNLOAD_TRUSTED_HOSTS": urlsplit(kie.base_url).netloc,
            "PORT": str(port), "WELCOME_BONUS": "0", "STARS_RATE": str(RATE),
            "TELEGRAM_RATE_GLOBAL": "0", "TELEGRAM_RATE_PER_CHAT": "0", "HEARTBEAT_INTERVAL": "0.5",
            "LOCK_RETRY_INTERVAL": "0.2", "STALE_AFTER": "3", "INBOX_SWEEP_INTERVAL": "0.2",
            "RESTART_BACKOFF_MIN": "0.05", "RESTART_BACKOFF_MAX": "0.5"}


async def active(proc: TrtProcess) -> TrtProcess:
    async def probe() -> bool:
        return bool((await proc.health())["role"] == "ACTIVE")
    await eventually(probe, 30, f"{proc.base} ACTIVE")
    return proc


async def pair(spawn: Any, database_url: str, telegram: FakeTelegram, kie: FakeKie) -> tuple[TrtProcess, TrtProcess]:
    """The leader, and a standby whose URL Telegram delivers to (so deliveries outlive the leader)."""
    first_port, second_port = free_port(), free_port()
    first = await active(spawn(env(database_url, telegram, kie, first_port, second_port), name="a"))
    second = spawn(env(database_url, telegram, kie, second_port, second_port), name="b")
    await second.wait_healthy()
    await telegram.wait_for(lambda: telegram.webhook_info().get("url"), 30, "the webhook set")
    assert await one_active([first, second]) is first
    return first, second


def t(key: str, **values: Any) -> str:
    return texts.t(LANG, key, **values)


def credited_notices(telegram: FakeTelegram, chat: int, kopecks: int) -> list[Call]:
    text = t("credited_stars", amount=texts.money(LANG, kopecks), balance=texts.money(LANG, kopecks))
    return [c for c in telegram.sent_messages(chat) if c.text == text]


async def invoice(telegram: FakeTelegram, chat: int, n: int) -> str:
    """/start, then the pack's button the bot sent under Top up: the invoice's payload."""
    await telegram.deliver(telegram.user_message(chat, "/start", language_code=LANG))
    await telegram.wait_for(1, 30, "the menu", method="sendMessage", chat_id=chat)
    await telegram.deliver(telegram.user_callback(chat, "bal:topup", language_code=LANG))

    def pack() -> str | None:
        for call in telegram.sent_messages(chat):
            markup = call.params.get("reply_markup") or {}
            for row in markup.get("inline_keyboard", []):
                for b in row:
                    if b.get("callback_data") == stars.buy_data(n):
                        return str(b["callback_data"])
        return None
    data = await telegram.wait_for(pack, 30, "the Stars packs")
    await telegram.deliver(telegram.user_callback(chat, data, language_code=LANG))
    [sent] = await telegram.wait_for(1, 30, "the invoice", method="sendInvoice", chat_id=chat)
    return str(sent.params["payload"])


async def confirmed(telegram: FakeTelegram, chat: int, n: int, payload: str) -> None:
    update = pre_checkout_update(telegram.next_update_id(), chat, n, payload, language_code=LANG)
    query_id = update["pre_checkout_query"]["id"]
    await telegram.deliver(update)
    answer = await telegram.wait_for(
        lambda: next((c for c in telegram.calls("answerPreCheckoutQuery")
                      if str(c.params.get("pre_checkout_query_id")) == query_id), None), 10, "the pre-checkout answer")
    assert answer.params["ok"] is True, answer.params


def payment(telegram: FakeTelegram, chat: int, n: int, payload: str, charge: str) -> dict[str, Any]:
    return successful_payment_update(telegram.next_update_id(), chat, n, payload, telegram_payment_charge_id=charge,
                                     language_code=LANG)


async def handled(db: Database, update_id: int) -> None:
    async def probe() -> bool:
        return await db.require().fetchval(
            "SELECT state = 2 FROM inbox WHERE bot_id = $1 AND update_id = $2", BOT_ID, update_id) is True
    await eventually(probe, 60, f"update {update_id} handled")


async def credits(db: Database, charge: str) -> int:
    return int(await db.require().fetchval(
        "SELECT count(*) FROM ledger WHERE bot_id = $1 AND idempotency_key = $2", BOT_ID, f"stars:{charge}"))


async def check_money(db: Database) -> None:
    problems = await invariants.check(db, BOT_ID)
    assert not problems, "\n".join(problems)


async def test_a_payment_delivered_again_after_a_kill_9_to_the_standby_credits_once(
        database_url: str, store_db: Database, fakes: tuple[FakeTelegram, FakeKie], spawn: Any) -> None:
    telegram, kie = fakes
    first, second = await pair(spawn, database_url, telegram, kie)
    chat, n, charge = 8101, 100, "stxE2eOnce"
    payload = await invoice(telegram, chat, n)
    await confirmed(telegram, chat, n, payload)
    paid = payment(telegram, chat, n, payload, charge)
    await telegram.deliver(paid)
    await telegram.deliver(paid)  # Telegram's own redelivery of that update
    await handled(store_db, paid["update_id"])
    assert await accounts.balance(store_db, BOT_ID, chat) == accounts.Balance(n * RATE, 0)
    await telegram.wait_for(lambda: credited_notices(telegram, chat, n * RATE), 30, "the user told")

    first.kill()
    again = payment(telegram, chat, n, payload, charge)  # the same payment under another update id
    await telegram.deliver(again)
    await active(second)
    await handled(store_db, again["update_id"])
    assert await credits(store_db, charge) == 1
    assert await accounts.balance(store_db, BOT_ID, chat) == accounts.Balance(n * RATE, 0)
    assert len(credited_notices(telegram, chat, n * RATE)) == 1, "told once"
    await check_money(store_db)


async def test_a_leader_killed_while_telling_the_user_leaves_one_credit_and_the_standby_tells(
        database_url: str, store_db: Database, fakes: tuple[FakeTelegram, FakeKie], spawn: Any) -> None:
    telegram, kie = fakes
    first, second = await pair(spawn, database_url, telegram, kie)
    chat, n, charge = 8102, 250, "stxE2eKilled"
    payload = await invoice(telegram, chat, n)
    await confirmed(telegram, chat, n, payload)
    telegram.inject("sendMessage", hang=True, count=1)  # the credit commits; telling the user hangs
    paid = payment(telegram, chat, n, payload, charge)
    await telegram.deliver(paid)

    async def committed() -> bool:
        return await credits(store_db, charge) == 1
    await eventually(committed, 30, "the credit committed")
    first.kill()
    await active(second)
    await handled(store_db, paid["update_id"])  # the new leader runs the update again
    await telegram.wait_for(lambda: credited_notices(telegram, chat, n * RATE), 30, "the user told by the standby")
    assert await credits(store_db, charge) == 1
    assert await accounts.balance(store_db, BOT_ID, chat) == accounts.Balance(n * RATE, 0)
    told = await store_db.require().fetchval(
        "SELECT told_at IS NOT NULL FROM star_payments WHERE bot_id = $1 AND charge_id = $2", BOT_ID, charge)
    assert told
    await check_money(store_db)
