"""Free generations by entitlement (store/grants.py) against a real PostgreSQL: a promo grant given
once per key and used exactly once however many confirmations race for it, a plan's daily
allowance never exceeded, a failed job giving its use back, the plan's discount checked at Confirm,
and a subscription's end taking all of it away at subscription_expiration_date (time injected,
never waited for); and the plans file's validation. The `money` fixture checks the money
invariants (with the entitlement ones) after each test."""

from __future__ import annotations

import asyncio
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

from catalog.loader import CatalogError, shipped
from catalog.plans import load
from store import accounts, grants, jobs, subscriptions
from store.fence import fenced
from store.jobs import Created, Failed, Order, TermsChanged
from tests.conftest import Money

pytestmark = pytest.mark.timeout(120)
USER = 7401
T0 = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
DAY = date(2026, 12, 1)
MODEL = "google/nano-banana"


async def user(money: Money, user_id: int = USER, balance: int = 0) -> None:
    await accounts.ensure_user(money.db, money.name, money.epoch, money.bot_id, user_id, "ru", 0)
    if balance:
        await accounts.credit(money.db, money.name, money.epoch, money.bot_id, user_id, balance, f"seed:{user_id}")


async def subscribe(money: Money, user_id: int = USER, *, daily: dict[str, int] | None = None, discount: int = 0,
                    expires: datetime = T0 + timedelta(days=30), charge: str = "ch-1") -> subscriptions.Paid:
    order_id = await subscriptions.create_order(
        money.db, money.name, money.epoch, money.bot_id, user_id, plan="test", stars=100, kopecks=0,
        default_rate=150, ttl_seconds=3600, now=T0)
    terms = subscriptions.Terms("test", 0, daily if daily is not None else {MODEL: 2}, discount)
    return await subscriptions.pay(money.db, money.name, money.epoch, money.bot_id,
                                   subscriptions.Payment(user_id, charge, order_id, 100, expires), terms, now=T0)


async def give(money: Money, count: int, key: str, user_id: int = USER, max_price: int | None = None) -> bool:
    async with fenced(money.db, money.name, money.epoch) as conn:
        return await grants.grant(conn, money.bot_id, user_id, count, key=key, epoch=money.epoch,
                                  max_price=max_price)


def order(nonce: str, paid_with: jobs.PaidWith, price: int = 400, *, at: datetime = T0, model: str = MODEL,
          full_price: int | None = None, user_id: int = USER) -> Order:
    return Order(user_id=user_id, chat_id=user_id, nonce=nonce, model=model, sku="default", input={"prompt": "x"},
                 price=price, paid_with=paid_with, day=DAY, full_price=full_price, at=at)


async def confirm(money: Money, o: Order) -> jobs.Confirmation:
    return await jobs.confirm(money.db, money.name, money.epoch, money.bot_id, o, free_daily_limit=5, max_active=100)


async def test_a_grant_is_given_once_per_key(money: Money) -> None:
    await user(money)
    assert await give(money, 2, "promo:A:7401")
    assert not await give(money, 2, "promo:A:7401"), "the same redemption applied again gives nothing"
    assert await grants.grants_left(money.db, money.bot_id, USER) == [("promo:A:7401", 2)]


async def test_a_promo_grant_is_used_exactly_once_under_concurrency(money: Money) -> None:
    await user(money)
    await give(money, 1, "promo:ONE:7401")
    results = await asyncio.gather(*(confirm(money, order(f"n{i}", "grant")) for i in range(20)))
    created = [r for r in results if isinstance(r, Created)]
    assert len(created) == 1 and all(isinstance(r, TermsChanged) for r in results if r not in created)
    assert created[0].job.paid_with == "grant" and created[0].job.held == 0
    assert await accounts.balance(money.db, money.bot_id, USER) == accounts.Balance(0, 0)
    entitled = await grants.entitlement(money.db, money.bot_id, USER, MODEL, 400, day=DAY, now=T0)
    assert entitled.kind is None


async def test_a_failed_job_gives_its_grant_back(money: Money) -> None:
    await user(money)
    await give(money, 1, "promo:B:7401")
    first = await confirm(money, order("n1", "grant"))
    assert isinstance(first, Created)
    assert isinstance(await confirm(money, order("n2", "grant")), TermsChanged)
    await jobs.finish(money.db, money.name, money.epoch, first.job.id, Failed("temporary"))
    assert isinstance(await confirm(money, order("n3", "grant")), Created), "a failed generation gave nothing"


async def test_a_grant_covers_generations_up_to_its_price(money: Money) -> None:
    await user(money)
    await give(money, 1, "promo:C:7401", max_price=500)
    assert (await grants.entitlement(money.db, money.bot_id, USER, MODEL, 500, day=DAY, now=T0)).kind == "grant"
    assert (await grants.entitlement(money.db, money.bot_id, USER, MODEL, 501, day=DAY, now=T0)).kind is None
    assert isinstance(await confirm(money, order("n1", "grant", price=900)), TermsChanged)


async def test_the_plan_allowance_is_never_exceeded_under_concurrency(money: Money) -> None:
    await user(money)
    await subscribe(money, daily={MODEL: 3})
    results = await asyncio.gather(*(confirm(money, order(f"n{i}", "plan")) for i in range(10)))
    assert len([r for r in results if isinstance(r, Created)]) == 3
    assert await grants.allowance_used(money.db, money.bot_id, USER, MODEL, DAY) == 3
    assert (await grants.entitlement(money.db, money.bot_id, USER, MODEL, 400, day=DAY, now=T0)).kind is None
    tomorrow = await grants.entitlement(money.db, money.bot_id, USER, MODEL, 400, day=DAY + timedelta(days=1),
                                        now=T0 + timedelta(days=1))
    assert (tomorrow.kind, tomorrow.left) == ("plan", 3), "the allowance is a day's"
    other = await grants.entitlement(money.db, money.bot_id, USER, "z-image", 400, day=DAY, now=T0)
    assert other.kind is None, "only the listed models"


async def test_the_plan_comes_before_a_grant_and_the_grant_keeps(money: Money) -> None:
    await user(money)
    await subscribe(money, daily={MODEL: 1})
    await give(money, 1, "promo:D:7401")
    assert (await grants.entitlement(money.db, money.bot_id, USER, MODEL, 400, day=DAY, now=T0)).kind == "plan"
    assert isinstance(await confirm(money, order("n1", "plan")), Created)
    assert (await grants.entitlement(money.db, money.bot_id, USER, MODEL, 400, day=DAY, now=T0)).kind == "grant"


async def test_the_discount_is_checked_at_confirm(money: Money) -> None:
    await user(money, balance=10_000)
    await subscribe(money, daily={}, discount=15)
    assert grants.discounted(700, 15) == 595
    entitled = await grants.entitlement(money.db, money.bot_id, USER, "z-image", 700, day=DAY, now=T0)
    assert (entitled.kind, entitled.discount) == (None, 15)
    made = await confirm(money, order("n1", "money", 595, model="z-image", full_price=700))
    assert isinstance(made, Created) and made.job.price == made.job.held == 595
    wrong = await confirm(money, order("n2", "money", 500, model="z-image", full_price=700))
    assert isinstance(wrong, TermsChanged), "a discount the plan does not give"


async def test_the_end_of_the_period_ends_every_benefit_without_any_update(money: Money) -> None:
    """Telegram reported subscription_expiration_date; no renewal came: at that instant the
    allowance and the discount are gone (time injected), and a confirmation made before it that
    is pressed after it is refused."""
    end = T0 + timedelta(days=30)
    await user(money, balance=10_000)
    await subscribe(money, daily={MODEL: 2}, discount=10, expires=end)
    before = await grants.entitlement(money.db, money.bot_id, USER, MODEL, 400, day=DAY, now=end - timedelta(seconds=1))
    assert (before.kind, before.discount) == ("plan", 10)
    after = await grants.entitlement(money.db, money.bot_id, USER, MODEL, 400, day=DAY, now=end)
    assert (after.kind, after.discount) == (None, 0)
    assert await subscriptions.current(money.db, money.bot_id, USER, end) is None
    assert isinstance(await confirm(money, order("n1", "plan", at=end)), TermsChanged)
    assert isinstance(await confirm(money, order("n2", "money", 360, model="z-image", full_price=400, at=end)),
                      TermsChanged)
    assert isinstance(await confirm(money, order("n3", "plan", at=end - timedelta(seconds=1))), Created)


async def test_a_renewal_extends_the_period_once_per_charge_id(money: Money) -> None:
    await user(money)
    first = await subscribe(money, expires=T0 + timedelta(days=30), charge="ch-1")
    assert first.fresh and first.subscription is not None
    order_id = first.subscription.order_id
    renewal = subscriptions.Payment(USER, "ch-2", order_id, 100, T0 + timedelta(days=60))
    terms = subscriptions.Terms("test", 0, {MODEL: 2}, 0)
    done = [await subscriptions.pay(money.db, money.name, money.epoch, money.bot_id, renewal, terms,
                                    now=T0 + timedelta(days=30)) for _ in range(2)]
    assert [d.fresh for d in done] == [True, False]
    sub = await subscriptions.current(money.db, money.bot_id, USER, T0 + timedelta(days=45))
    assert sub is not None and sub.expires_at == T0 + timedelta(days=60) and sub.last_charge_id == "ch-2"
    late = await subscriptions.pay(money.db, money.name, money.epoch, money.bot_id,
                                   subscriptions.Payment(USER, "ch-1", order_id, 100, T0 + timedelta(days=30)),
                                   terms, now=T0 + timedelta(days=31))
    assert not late.fresh and late.subscription is not None
    assert late.subscription.expires_at == T0 + timedelta(days=60), "a late duplicate never shortens it"


def test_the_plans_file_is_validated_whole(tmp_path: Path) -> None:
    bad = tmp_path / "plans.yaml"
    bad.write_text(
        """plans:
  - {id: a, title: {ru: А, en: A}, stars: 0, monthly_credit: 100}
  - {id: b, title: {ru: Б, en: B}, stars: 20000, monthly_credit: -1}
  - {id: c, title: {ru: В}, stars: 10, daily: {no/such-model: 2}}
  - {id: d, title: {ru: Г, en: D}, stars: 10, discount: 95, colour: red}
  - {id: e, title: {ru: Д, en: E}, stars: 10}
""", encoding="utf-8")
    with pytest.raises(CatalogError) as caught:
        load(bad, shipped())
    text = "\n".join(caught.value.problems)
    for expected in ("(a): stars must be", "(b): stars must be", "(b): monthly_credit", "(c): title",
                     "no/such-model", "(d): discount", "unknown key 'colour'", "(e): gives nothing"):
        assert expected in text, f"{expected!r} not reported in:\n{text}"
    shipped_plans = load(catalog=shipped())
    assert [p.id for p in shipped_plans] and all(1 <= p.stars <= 10_000 for p in shipped_plans)


def test_a_failed_free_generation_by_plan_or_promo_says_nothing_was_used_up() -> None:
    from bot import delivery_texts

    for paid_with in ("plan", "grant"):
        assert delivery_texts.t("ru", "refund_free") in delivery_texts.failure("ru", "temporary", paid_with)


async def test_a_refunded_subscription_charge_ends_its_period_at_once(money: Money) -> None:
    await user(money)
    await subscribe(money, daily={MODEL: 2}, charge="ch-r")
    refund_at = T0 + timedelta(days=3)
    for _ in range(2):
        async with fenced(money.db, money.name, money.epoch) as conn:
            revoked = await subscriptions.revoke(conn, money.bot_id, "ch-r", refund_at)
        assert revoked is not None and revoked.expires_at == refund_at and not revoked.renews
    assert await subscriptions.current(money.db, money.bot_id, USER, refund_at) is None
    async with fenced(money.db, money.name, money.epoch) as conn:
        assert await subscriptions.revoke(conn, money.bot_id, "no-such-charge", refund_at) is None


async def test_the_standing_read_at_once_is_what_the_separate_reads_say(money: Money) -> None:
    """grants.standing() (one round trip, read for every confirmation and on Confirm) says what
    the subscription, the allowance used, the grants left and the balance say one by one."""
    never = await grants.standing(money.db, money.bot_id, USER + 9, MODEL, 400, day=DAY, now=T0)
    assert never == grants.Standing(grants.Entitlement(None), 0), "a user never seen has nothing"
    await user(money, balance=1_000)
    paid = await subscribe(money, daily={MODEL: 1}, discount=20)
    await give(money, 2, "promo:a")
    await give(money, 1, "promo:cheap", max_price=100)  # does not cover 400
    first = await grants.standing(money.db, money.bot_id, USER, MODEL, 400, day=DAY, now=T0)
    assert first.available == 1_000
    assert first.entitlement == grants.Entitlement("plan", 1, 1, paid.subscription.id, discount=20, plan="test")
    assert isinstance(await confirm(money, order("s1", "plan")), Created)  # the day's allowance is used
    second = await grants.standing(money.db, money.bot_id, USER, MODEL, 400, day=DAY, now=T0)
    assert second.entitlement == grants.Entitlement("grant", 2, grant_key="promo:a", discount=20, plan="test")
    assert await grants.grants_left(money.db, money.bot_id, USER, 400) == [("promo:a", 2)]
    other = await grants.standing(money.db, money.bot_id, USER, "other/model", 50, day=DAY, now=T0)
    assert other.entitlement.kind == "grant" and other.entitlement.left == 3, "both grants cover 50"
    later = await grants.standing(money.db, money.bot_id, USER, MODEL, 400, day=DAY, now=T0 + timedelta(days=31))
    assert later.entitlement == grants.Entitlement("grant", 2, grant_key="promo:a"), "the plan has ended"
    held = await confirm(money, order("s2", "money", 400, at=T0 + timedelta(days=31)))
    assert isinstance(held, Created)
    after = await grants.standing(money.db, money.bot_id, USER, MODEL, 400, day=DAY, now=T0 + timedelta(days=31))
    assert after.available == (await accounts.balance(money.db, money.bot_id, USER)).available == 600
