"""A paid Confirm committed without reading its terms again (store.jobs.Order.terms_read False,
sql/024_confirm_money.sql), against a real PostgreSQL: the commit's own check that nothing but
money at the full price applies says what the terms' read (grants.standing, as bot/flow.py's
terms() decides) says, over every kind of subscription, allowance, grant and discount; and what
the commit answers when it does not (TermsChanged, after a replay's Existing and before a short
balance), holding nothing. The `money` fixture checks the money invariants after each test."""

from __future__ import annotations

import dataclasses
import itertools
from datetime import date, datetime, timedelta

import pytest

from store import accounts, grants, jobs
from store.jobs import Created, Existing, Failed, InsufficientFunds, TermsChanged, TimedOut
from tests.conftest import Money
from tests.test_grants import DAY, MODEL, T0, USER, confirm, give, order, subscribe, user

pytestmark = pytest.mark.timeout(120)
OTHER = "z-image"


def unread(nonce: str, price: int = 400, *, model: str = MODEL, user_id: int = USER) -> jobs.Order:
    return dataclasses.replace(order(nonce, "money", price, model=model, user_id=user_id), terms_read=False)


async def only_money(money: Money, user_id: int, model: str, price: int, day: date, now: datetime) -> bool:
    return bool(await money.db.require().fetchval("SELECT trt_only_money($1, $2, $3, $4, $5, $6)",
                                                  money.bot_id, user_id, model, price, day, now))


def read_says(standing: grants.Standing, price: int) -> str:
    """What terms() makes of the read: "plan", "grant", "discount" or "money" (the full price)."""
    entitled = standing.entitlement
    if entitled.kind is not None:
        return entitled.kind
    return "discount" if grants.discounted(price, entitled.discount) != price else "money"


# (discount, daily allowances) of each subscription the user pays for, the first expiring at 30 days
# and any second one at 40; and the user's plan generations of MODEL today: none, one, one failed, one
# timed out (neither of the last two used any)
SUBSCRIPTIONS: list[list[tuple[int, dict[str, int]]]] = [
    [], [(0, {})], [(0, {MODEL: 0})], [(0, {MODEL: 1})], [(0, {MODEL: 2})], [(0, {OTHER: 2})], [(20, {})],
    [(20, {MODEL: 1})], [(20, {}), (0, {})]]
USES = ["none", "one", "one failed", "one timed out"]
# a promo grant: none, one of any price, one up to 100 kopecks, one used, one used by a failed job
GRANTS = ["none", "any", "cheap", "used", "used by a failed job"]


async def test_the_commits_own_check_says_what_the_terms_read_says_for_every_kind_of_standing(money: Money) -> None:
    """Each user gets one combination, then both are asked at three prices, for two models, while
    the subscriptions last and after the first has ended: every answer must agree, and the grid
    must make the read say each of its four answers."""
    users: list[int] = []
    for number, (subs, uses, granted) in enumerate(itertools.product(SUBSCRIPTIONS, USES, GRANTS)):
        allowance = max((daily.get(MODEL, 0) for _, daily in subs), default=0)
        if uses != "none" and not allowance:
            continue  # no plan generation without an allowance
        uid = USER + 100 + number
        await user(money, uid, balance=10_000)
        if granted != "none":
            await give(money, 1, f"promo:{uid}", uid, max_price=100 if granted == "cheap" else None)
        if granted.startswith("used"):  # before any plan, which would come first
            used = await confirm(money, order(f"g{uid}", "grant", user_id=uid))
            assert isinstance(used, Created)
            if granted == "used by a failed job":
                await jobs.finish(money.db, money.name, money.epoch, used.job.id, Failed("temporary"))
        for i, (discount, daily) in enumerate(subs):
            await subscribe(money, uid, daily=daily, discount=discount, expires=T0 + timedelta(days=30 + 10 * i),
                            charge=f"ch-{uid}-{i}")
        if uses != "none":
            planned = await confirm(money, order(f"p{uid}", "plan", user_id=uid))
            assert isinstance(planned, Created)
            if uses != "one":
                end = Failed("temporary") if uses == "one failed" else TimedOut()
                await jobs.finish(money.db, money.name, money.epoch, planned.job.id, end)
        users.append(uid)

    disagree, said = [], set()
    for uid, model, price, now in itertools.product(users, (MODEL, OTHER), (1, 100, 400),
                                                    (T0, T0 + timedelta(days=35))):
        says = read_says(await grants.standing(money.db, money.bot_id, uid, model, price, day=DAY, now=now), price)
        said.add(says)
        if await only_money(money, uid, model, price, DAY, now) != (says == "money"):
            disagree.append((uid, model, price, now, says))
    assert not disagree
    assert said == {"plan", "grant", "discount", "money"}, "the grid reaches every answer of the read"


async def test_an_unread_confirm_is_created_while_only_money_applies_and_refused_once_a_grant_came(
        money: Money) -> None:
    await user(money, balance=2_000)
    made = await confirm(money, unread("n1"))
    assert isinstance(made, Created) and (made.job.paid_with, made.job.price, made.job.held) == ("money", 400, 400)
    await give(money, 1, "promo:late", max_price=500)
    assert isinstance(await confirm(money, unread("n2")), TermsChanged)
    assert await accounts.balance(money.db, money.bot_id, USER) == accounts.Balance(2_000, 400), "nothing more held"
    replayed = await confirm(money, unread("n1"))
    assert isinstance(replayed, Existing) and replayed.job.id == made.job.id, "a replay: its job, before any refusal"
    dear = await confirm(money, unread("n3", 900))
    assert isinstance(dear, Created) and dear.job.held == 900, "a grant up to 500 leaves 900 to money"
    assert await accounts.balance(money.db, money.bot_id, USER) == accounts.Balance(2_000, 1_300)


async def test_an_unread_confirm_short_of_money_says_the_terms_changed_when_a_plan_now_covers_it(
        money: Money) -> None:
    await user(money, balance=100)
    short = await confirm(money, unread("n1"))
    assert isinstance(short, InsufficientFunds) and (short.available, short.price) == (100, 400)
    await subscribe(money, daily={MODEL: 1})
    assert isinstance(await confirm(money, unread("n2")), TermsChanged), "the plan pays: no top-up asked for"
    assert isinstance(await confirm(money, order("n3", "plan")), Created)
    again = await confirm(money, unread("n4"))
    assert isinstance(again, InsufficientFunds), "the day's allowance is used: money again"


async def test_an_unread_confirm_is_refused_when_a_discount_would_lower_its_price(money: Money) -> None:
    await user(money, balance=10_000)
    await subscribe(money, daily={}, discount=15)
    assert isinstance(await confirm(money, unread("n1", 700, model=OTHER)), TermsChanged)
    one = await confirm(money, unread("n2", 1, model=OTHER))
    assert isinstance(one, Created) and one.job.held == 1, "15% off one kopeck is still one kopeck"
    assert await accounts.balance(money.db, money.bot_id, USER) == accounts.Balance(10_000, 1)


async def test_only_money_at_the_full_price_may_be_confirmed_unread(money: Money) -> None:
    await user(money, balance=1_000)
    for wrong in (dataclasses.replace(order("n1", "free"), terms_read=False),
                  dataclasses.replace(order("n2", "money", 340, full_price=400), terms_read=False)):
        with pytest.raises(ValueError):
            await confirm(money, wrong)
    assert await accounts.balance(money.db, money.bot_id, USER) == accounts.Balance(1_000, 0)


async def test_a_confirm_with_createtasks_intent_makes_its_job_submitting_in_its_epoch_and_refuses_as_before(
        money: Money) -> None:
    """sql/025: the job is made 'submitting', its first attempt counted and its epoch named, in the
    Confirm's own transaction; every refusal is trt_confirm_money's, with nothing made."""
    await user(money, balance=1_000)
    sending = dataclasses.replace(unread("n1"), submitting=True)
    made = await confirm(money, sending)
    assert isinstance(made, Created)
    assert (made.job.state, made.job.attempts, made.job.intent_epoch, made.job.held) == (
        "submitting", 1, money.epoch, 400)
    assert (await jobs.job(money.db, made.job.id)) == made.job, "the row as committed"
    replayed = await confirm(money, sending)
    assert isinstance(replayed, Existing) and replayed.job.id == made.job.id
    plain = await confirm(money, unread("n2"))
    assert isinstance(plain, Created) and (plain.job.state, plain.job.attempts, plain.job.intent_epoch) == (
        "created", 0, None)
    short = await confirm(money, dataclasses.replace(unread("n3"), submitting=True))
    assert isinstance(short, InsufficientFunds) and short.available == 200
    await give(money, 1, "promo:late", max_price=500)
    assert isinstance(await confirm(money, dataclasses.replace(unread("n4", 100), submitting=True)), TermsChanged)
    assert await accounts.balance(money.db, money.bot_id, USER) == accounts.Balance(1_000, 800)
    with pytest.raises(ValueError):  # read terms are committed by trt_confirm, which makes no intent
        await confirm(money, dataclasses.replace(order("n5", "money", 100), submitting=True))
