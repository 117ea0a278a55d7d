"""The one credit path (store/money_in.py) and what follows it (bot/money_in.py) on a real
PostgreSQL: a credit once per key, a referrer paid once per pair whatever races, a paid
generation's success paying it too, the invariants catching a second credit of one payment, and
a banned user getting one message and nothing else. The `money` fixture checks the invariants
after every test."""

from __future__ import annotations

import asyncio
from zoneinfo import ZoneInfo

import pytest

from store import accounts, invariants, jobs, money_in
from store.database import Database
from store.fence import fenced
from store.jobs import Order, Succeeded
from tests.conftest import Money
from tests.wizard_kit import Chat, t

pytestmark = pytest.mark.timeout(60)
REFERRER, FRIEND = 2001, 2002


async def _user(money: Money, user_id: int) -> None:
    await accounts.ensure_user(money.db, money.name, money.epoch, money.bot_id, user_id, "ru", 0)


async def _link(money: Money, user_id: int, referrer: int) -> None:
    await money.db.require().execute(
        "INSERT INTO referrals (bot_id, user_id, referrer_id) VALUES ($1, $2, $3)", money.bot_id, user_id, referrer)


async def _credit(money: Money, user_id: int, amount: int, key: str, bonus: int = 1000,
                  source: money_in.Source = "stars") -> money_in.Credited:
    """A credit as its cause makes it: a Stars credit with its payment row (the invariants ask for one)."""
    async with fenced(money.db, money.name, money.epoch) as conn:
        if source == "stars" and key.startswith("stars:"):
            await conn.execute("""INSERT INTO star_payments (bot_id, charge_id, user_id, stars, kopecks)
                                  VALUES ($1, $2, $3, 1, $4) ON CONFLICT DO NOTHING""",
                               money.bot_id, key.removeprefix("stars:"), user_id, amount)
        return await money_in.credit_in(conn, money.bot_id, user_id, amount, source=source, key=key,
                                        epoch=money.epoch, referral_bonus=bonus)


async def test_a_credit_moves_money_once_per_key_and_names_its_source(money: Money) -> None:
    await _user(money, FRIEND)
    first = await _credit(money, FRIEND, 5000, "stars:1")
    again = await _credit(money, FRIEND, 5000, "stars:1")
    assert first.fresh and not again.fresh and first.entry.id == again.entry.id
    assert again.balance == accounts.Balance(5000, 0)
    assert await money_in.revenue(money.db, money.bot_id) == {"stars": 5000}
    with pytest.raises(ValueError, match="starts with its source"):
        await _credit(money, FRIEND, 5000, "transfer:x")
    with pytest.raises(ValueError, match="must be positive"):
        await _credit(money, FRIEND, -5, "promo:2", source="promo")


async def test_concurrent_first_payments_pay_the_referrer_once(money: Money) -> None:
    for user in (REFERRER, FRIEND):
        await _user(money, user)
    await _link(money, FRIEND, REFERRER)
    results = await asyncio.gather(*(_credit(money, FRIEND, 10_000, f"stars:{n}") for n in range(8)))
    assert sum(r.referral is not None for r in results) == 1
    assert (await accounts.balance(money.db, money.bot_id, REFERRER)).balance == 1000
    assert (await accounts.balance(money.db, money.bot_id, FRIEND)).balance == 80_000


async def test_an_admin_credit_does_not_pay_the_referrer(money: Money) -> None:
    """(A promo code's credit neither: tests/test_referrals.py.)"""
    for user in (REFERRER, FRIEND):
        await _user(money, user)
    await _link(money, FRIEND, REFERRER)
    assert (await money_in.money_in(money.db, money.name, money.epoch, money.bot_id, FRIEND, 700, source="admin",
                                    key="admin:1", referral_bonus=1000)).referral is None
    assert (await accounts.balance(money.db, money.bot_id, REFERRER)).balance == 0


async def test_a_paid_generation_that_succeeds_pays_the_referrer_once(money: Money) -> None:
    for user in (REFERRER, FRIEND):
        await _user(money, user)
    await _link(money, FRIEND, REFERRER)
    await money_in.money_in(money.db, money.name, money.epoch, money.bot_id, FRIEND, 5000, source="admin",
                            key="admin:seed")
    order = Order(user_id=FRIEND, chat_id=FRIEND, nonce="n1", model="m", sku="s", input={}, price=1200,
                  paid_with="money", day=jobs.local_day(ZoneInfo("Europe/Moscow")))
    made = await jobs.confirm(money.db, money.name, money.epoch, money.bot_id, order, free_daily_limit=5,
                              max_active=3)
    assert isinstance(made, jobs.Created)
    steps = await asyncio.gather(*(jobs.finish(money.db, money.name, money.epoch, made.job.id, Succeeded({}),
                                               referral_bonus=1000) for _ in range(4)))
    assert [s.referral for s in steps if s.referral] == [money_in.referrals.Rewarded(REFERRER, FRIEND, 1000)]
    assert (await accounts.balance(money.db, money.bot_id, REFERRER)).balance == 1000


async def test_a_negative_admin_adjustment_never_overdraws(money: Money) -> None:
    await _user(money, FRIEND)
    await money_in.money_in(money.db, money.name, money.epoch, money.bot_id, FRIEND, 300, source="admin", key="admin:a")
    with pytest.raises(accounts.Overdraft):
        await money_in.money_in(money.db, money.name, money.epoch, money.bot_id, FRIEND, -301, source="admin",
                                key="admin:b")
    after = await money_in.money_in(money.db, money.name, money.epoch, money.bot_id, FRIEND, -300, source="admin",
                                    key="admin:c")
    assert after.balance == accounts.Balance(0, 0)


async def test_the_invariants_catch_a_stars_payment_credited_twice(db: Database) -> None:
    """On `db`, not `money`: this test breaks the invariants on purpose."""
    await db.require().execute("""INSERT INTO leader (name, epoch, instance, pid, heartbeat_at, acquired_at)
                                  VALUES ($1, 1, 'test', 0, now(), now())""", Money.name)
    money = Money(db, 1)
    await _user(money, FRIEND)
    await db.require().execute("""INSERT INTO star_payments (bot_id, charge_id, user_id, stars, kopecks)
                                  VALUES ($1, 'ch1', $2, 10, 1500)""", money.bot_id, FRIEND)
    await _credit(money, FRIEND, 1500, "stars:ch1", source="stars")
    assert await invariants.check(db, money.bot_id) == []
    await _credit(money, FRIEND, 1500, "subscription:ch1", source="subscription")  # the same charge, again
    problems = await invariants.check(db, money.bot_id)
    assert any("credited 2 times" in p for p in problems), problems
    async with fenced(db, money.name, money.epoch) as conn:  # a Stars credit with no payment recorded
        await money_in.credit_in(conn, money.bot_id, FRIEND, 700, source="stars", key="stars:nobody", epoch=1)
    assert any("without its payment" in p for p in await invariants.check(db, money.bot_id))


async def test_a_banned_user_gets_one_polite_message_and_nothing_else(chat: Chat) -> None:
    await chat.say("/start")
    assert chat.last.params["text"].startswith("Привет")
    with accounts.forgetting(chat.money.db, chat.money.bot_id, chat.user):  # set_banned's caller commits
        async with fenced(chat.money.db, chat.money.name, chat.money.epoch) as conn:
            assert await accounts.set_banned(conn, chat.money.bot_id, chat.user, True) is False
    before = len(chat.screens)
    await chat.say("/start")
    await chat.say("/balance")
    await chat.press("menu:balance")
    assert [c.params["text"] for c in chat.screens[before:]] == [t("banned")]
    await chat.say("/paysupport")  # what Telegram's terms require, and where the ban's message points
    assert chat.last.params["text"] != t("banned") and len(chat.screens) == before + 2
    with accounts.forgetting(chat.money.db, chat.money.bot_id, chat.user):  # set_banned's caller commits
        async with fenced(chat.money.db, chat.money.name, chat.money.epoch) as conn:
            assert await accounts.set_banned(conn, chat.money.bot_id, chat.user, False) is True
    await chat.say("/start")
    assert chat.last.params["text"].startswith("Привет")
