"""Promo codes (issue 18): concurrent redemptions never pass max uses, one redemption per user per
code, expired / unknown / disabled / used-up codes refused with their reason, an amount code
credited through the one credit path and a generations code granted; the admin's screens create
and disable codes with an audit row each and are refused to anyone else. Real PostgreSQL, the
fake Telegram over HTTP."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest

from bot import flow, keyboards
from bot.routers import promo as promo_router
from store import accounts, audit, promo
from store.fence import fenced
from tests.conftest import Money
from tests.wizard_kit import Chat, price_of, rub, t

pytestmark = pytest.mark.timeout(90)

BOT = Money.bot_id
ADMIN = 9001
USER = 9101


@pytest.fixture(autouse=True)
async def promo_invariants(money: Money) -> AsyncIterator[None]:
    """After each test: uses are redemptions, each redemption gave once, no credit without one."""
    yield
    problems = await promo.invariants(money.db, BOT)
    assert not problems, "\n".join(problems)


async def user(money: Money, user_id: int) -> None:
    await accounts.ensure_user(money.db, money.name, money.epoch, BOT, user_id, "ru", 0)


async def make(money: Money, code: str, value: int = 500, max_uses: int = 10, *, kind: promo.Kind = "amount",
               expires: timedelta = timedelta(days=30)) -> promo.Code:
    async with fenced(money.db, money.name, money.epoch) as conn:
        return await promo.create(conn, BOT, ADMIN, code, kind, value, max_uses, datetime.now(UTC) + expires)


async def redeem(money: Money, user_id: int, text: str) -> promo.Redeemed:
    return await promo.redeem(money.db, money.name, money.epoch, BOT, user_id, text)


async def refusal(money: Money, user_id: int, text: str) -> str:
    with pytest.raises(promo.Refused) as caught:
        await redeem(money, user_id, text)
    return caught.value.reason


async def promo_credits(money: Money) -> list[tuple[int, int]]:
    rows = await money.db.require().fetch(
        "SELECT user_id, balance_delta FROM ledger WHERE bot_id = $1 AND source = 'promo' ORDER BY user_id", BOT)
    return [(r["user_id"], r["balance_delta"]) for r in rows]


async def test_fifty_concurrent_redemptions_of_a_ten_use_code_credit_exactly_ten(money: Money) -> None:
    users = range(20_000, 20_050)
    for user_id in users:
        await user(money, user_id)
    code = await make(money, "SPRING", 500, 10)

    async def attempt(user_id: int) -> str:
        try:
            await redeem(money, user_id, "spring")
            return "redeemed"
        except promo.Refused as exc:
            return exc.reason

    outcomes = await asyncio.gather(*(attempt(u) for u in users))
    assert outcomes.count("redeemed") == 10 and outcomes.count("used_up") == 40, outcomes
    credits = await promo_credits(money)
    assert len(credits) == 10 and {amount for _, amount in credits} == {500}
    after = await promo.get(money.db, BOT, code.id)
    assert after is not None and after.uses == 10
    redeemed = await money.db.require().fetchval("SELECT count(*) FROM promo_redemptions WHERE code_id = $1", code.id)
    assert redeemed == 10, "a refused redemption leaves no row"


async def test_the_same_user_redeems_a_code_once(money: Money) -> None:
    await user(money, USER)
    code = await make(money, "ONCE", 700, 10)
    first = await redeem(money, USER, "ONCE")
    assert first.fresh and first.credited is not None and first.credited.fresh
    await promo.told(money.db, BOT, code.id, USER)
    assert await refusal(money, USER, " once ") == "already"
    assert await promo_credits(money) == [(USER, 700)]


async def test_the_same_user_twice_at_once_is_credited_once(money: Money) -> None:
    await user(money, USER)
    await make(money, "TWICE", 700, 10)
    results = await asyncio.gather(*(redeem(money, USER, "TWICE") for _ in range(5)), return_exceptions=True)
    assert [r.fresh for r in results if isinstance(r, promo.Redeemed)].count(True) == 1
    assert await promo_credits(money) == [(USER, 700)]
    assert (await accounts.balance(money.db, BOT, USER)).balance == 700


async def test_a_rerun_before_the_user_was_told_gives_the_redemption_again_without_money(money: Money) -> None:
    """A crash between the commit and the notice: the update runs again and tells the user."""
    await user(money, USER)
    await make(money, "RERUN", 300, 10)
    await redeem(money, USER, "RERUN")
    again = await redeem(money, USER, "RERUN")
    assert not again.fresh and again.credited is not None and not again.credited.fresh
    assert await promo_credits(money) == [(USER, 300)]


async def test_expired_unknown_disabled_and_malformed_codes_are_refused(money: Money) -> None:
    await user(money, USER)
    await make(money, "OLD", expires=timedelta(seconds=-1))
    off = await make(money, "OFF")
    async with fenced(money.db, money.name, money.epoch) as conn:
        await promo.disable(conn, BOT, off.id, ADMIN)
    assert await refusal(money, USER, "OLD") == "expired"
    assert await refusal(money, USER, "NOSUCH") == "unknown"
    assert await refusal(money, USER, "OFF") == "inactive"
    assert await refusal(money, USER, "no such code!") == "unknown"
    assert await refusal(money, USER, "") == "unknown"
    assert await promo_credits(money) == []
    assert await money.db.require().fetchval("SELECT count(*) FROM promo_redemptions") == 0


async def test_a_used_up_code_is_refused(money: Money) -> None:
    for user_id in (USER, USER + 1):
        await user(money, user_id)
    await make(money, "SOLO", max_uses=1)
    await redeem(money, USER, "SOLO")
    assert await refusal(money, USER + 1, "SOLO") == "used_up"


async def test_a_generations_code_grants_free_generations_once(money: Money) -> None:
    await user(money, USER)
    code = await make(money, "FREE3", 3, 10, kind="generations")
    done = await redeem(money, USER, "free3")
    assert done.generations == 3 and done.credited is None
    await redeem(money, USER, "free3")  # not told yet: given again, granted nothing more
    rows = await money.db.require().fetch("SELECT user_id, count FROM grants WHERE bot_id = $1", BOT)
    assert [(r["user_id"], r["count"]) for r in rows] == [(USER, 3)]
    await promo.told(money.db, BOT, code.id, USER)
    assert await refusal(money, USER, "FREE3") == "already"
    assert await promo_credits(money) == []


async def test_a_code_text_is_unique_per_bot(money: Money) -> None:
    await make(money, "DUP")
    with pytest.raises(promo.CodeTaken):
        await make(money, "dup")


def test_the_admins_line_is_parsed_or_its_fault_named() -> None:
    assert promo_router.parse_new("spring rub 100 50 30") == promo_router.NewCode("SPRING", "amount", 10_000, 50, 30)
    assert promo_router.parse_new("X_1 rub 99,50 5 1") == promo_router.NewCode("X_1", "amount", 9950, 5, 1)
    assert promo_router.parse_new("FREE gen 3 100 7") == promo_router.NewCode("FREE", "generations", 3, 100, 7)
    assert promo_router.parse_new("SPRING usd 100 50 30") == "promo_admin_bad_kind"
    assert promo_router.parse_new("S! rub 100 50 30") == "promo_admin_bad_code"
    for bad in ("SPRING rub 0 50 30", "SPRING rub 1.001 50 30", "SPRING rub 100 0 30", "SPRING rub 100 5 9999",
                "SPRING gen 1.5 5 5", "SPRING rub nan 5 5", "SPRING rub 100 5"):
        assert promo_router.parse_new(bad) == "promo_admin_bad_number", bad


# --- through the bot ----------------------------------------------------------------------------

def admin_chat(chat: Chat) -> Chat:
    settings = dataclasses.replace(chat.settings, admin_ids=frozenset({ADMIN}))
    return Chat(chat.money, chat.fake, chat.bot, settings, user=ADMIN)


async def test_a_user_redeems_with_the_command_and_with_the_button(chat: Chat) -> None:
    await make(chat.money, "HELLO", 25_000)
    await make(chat.money, "AGAIN", 5_000)
    await chat.say("/start")
    before = (await chat.balance()).balance
    await chat.say("/promo hello")
    assert chat.last.text == t("credited_promo", amount=rub(25_000), balance=rub(before + 25_000))
    await chat.say("/promo HELLO")
    assert chat.last.text == t("promo_already", code="HELLO")

    await chat.press(keyboards.PROMO)
    assert chat.last.text == t("promo_ask")
    await chat.say("again")
    assert chat.last.text == t("credited_promo", amount=rub(5_000), balance=rub(before + 30_000))
    assert (await chat.state())[0] is None
    await chat.say("/promo NOPE")
    assert chat.last.text == t("promo_unknown", code="NOPE")


async def test_an_admin_creates_lists_and_disables_codes_each_audited(chat: Chat) -> None:
    admin = admin_chat(chat)
    await admin.say("/start")
    await admin.press(promo_router.ADMIN)
    assert t("promo_admin_none") in (admin.last.text or "")
    await admin.press(promo_router.ADMIN_NEW)
    assert admin.last.text == t("promo_admin_ask")
    await admin.say("SPRING rub 1OO 5 30")
    assert admin.last.text == t("promo_admin_bad", why=t("promo_admin_bad_number"))
    await admin.say("SPRING rub 100 5 30")
    assert (admin.last.text or "").startswith(t("promo_admin_created", code="SPRING", value=rub(10_000), max_uses=5,
                                                until=(datetime.now(UTC) + timedelta(days=30)).astimezone(
                                                    chat.settings.zone).strftime("%d.%m.%Y")))
    (code,) = await promo.codes(chat.money.db, BOT)
    assert (code.code, code.kind, code.value, code.max_uses, code.uses) == ("SPRING", "amount", 10_000, 5, 0)
    off = f"{promo_router.ADMIN_OFF}{code.id}"
    assert off in admin.data()
    await admin.press(off)
    assert (admin.last.text or "").startswith(t("promo_admin_disabled", code="SPRING"))
    assert off not in admin.data()

    actions = await audit.recent(chat.money.db, BOT)
    assert [(a.action, a.admin_id, a.target) for a in actions] == [
        ("promo_disable", ADMIN, f"promo:{code.id}"), ("promo_create", ADMIN, f"promo:{code.id}")]
    assert actions[0].before["disabled"] is False and actions[0].after["disabled"] is True
    assert actions[1].before is None and actions[1].after["value"] == 10_000

    await chat.say("/promo spring")
    assert chat.last.text == t("promo_inactive", code="SPRING")


async def test_the_admins_promo_screens_are_refused_to_anyone_else(chat: Chat) -> None:
    code = await make(chat.money, "KEEP")
    await chat.say("/start")
    for data in (promo_router.ADMIN, promo_router.ADMIN_NEW, f"{promo_router.ADMIN_OFF}{code.id}"):
        await chat.press(data)
        assert "KEEP" not in (chat.last.text or "") and t("promo_admin_ask") != chat.last.text, data
    assert (await chat.state())[0] is None
    still = await promo.get(chat.money.db, BOT, code.id)
    assert still is not None and still.disabled_at is None
    assert await audit.recent(chat.money.db, BOT) == []


async def test_a_promo_code_at_a_short_confirmation_keeps_it_and_offers_it_again(chat: Chat) -> None:
    model_id = "flux-2/pro-text-to-image"
    await make(chat.money, "RESCUE", 50_000)
    await chat.say("/start")
    await chat.top_up(300)
    await chat.open_model(model_id)
    await chat.say("a dragon")
    await chat.press(chat.data()[0])
    await chat.press(chat.find("1K"))
    ok = chat.action("ok")
    await chat.press(keyboards.MENU_BALANCE)
    await chat.press(keyboards.PROMO)  # inside the wizard: no state of its own, the confirmation stays
    assert chat.last.text == t("promo_ask_in_wizard") and (await chat.state())[0] == flow.Wizard.step.state
    await chat.say("/promo rescue")
    told = [c.text for c in chat.screens[-2:]]
    assert told[0] == t("credited_promo", amount=rub(50_000), balance=rub(50_300))
    assert t("confirmation_again") in (told[1] or "") and chat.action("ok") == ok
    await chat.press(ok)
    [job] = await chat.jobs()
    assert job.held == price_of(model_id, {"resolution": "1K"})


async def test_the_promo_invariants_see_a_use_without_its_redemption(money: Money) -> None:
    code = await make(money, "COUNTED")
    await money.db.require().execute("UPDATE promo_codes SET uses = 1 WHERE id = $1", code.id)
    assert await promo.invariants(money.db, BOT) == [f"promo code COUNTED ({code.id}): 1 uses but 0 redemptions"]
    await money.db.require().execute("UPDATE promo_codes SET uses = 0 WHERE id = $1", code.id)


async def test_a_generations_code_tells_the_user_how_many_they_got(chat: Chat) -> None:
    await make(chat.money, "FREE2", 2, 5, kind="generations")
    await chat.say("/promo free2")
    assert chat.last.text == t("promo_generations", code="FREE2", count=2)
    await chat.say("/promo free2")
    assert chat.last.text == t("promo_already", code="FREE2")
