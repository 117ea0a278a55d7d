"""Subscriptions for Stars end to end in-process (tests/wizard_kit.Chat: the real Dispatcher and
routers, the fake Telegram over HTTP, a real PostgreSQL): the plans screen, Buy (an order, then
createInvoiceLink with subscription_period, as a URL button), the first payment and renewals
(is_recurring: the period extended and the monthly credit paid once per charge id, the user told
once), Telegram's `subscription` update, Cancel renewal (editUserStarSubscription), and what the
user gets at the confirmation: the plan's daily allowance, the discount, then nothing once the
period ended. The `money` fixture checks the money invariants after each test."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

import pytest
from aiogram import Bot
from aiogram.exceptions import TelegramBadRequest
from aiogram.types import LabeledPrice

from bot import keyboards, texts
from bot.routers import subscription
from catalog.plans import load
from fakes.telegram.updates import pre_checkout_update, recurring_payment_update, subscription_update
from fakes.telegram_api import FakeTelegram
from store import accounts, stars, subscriptions
from tests.conftest import Money
from tests.wizard_kit import CATALOG, IDS, Chat, price_of, rub, settings_with, t

pytestmark = pytest.mark.timeout(120)
PLANS = load(catalog=CATALOG)
START = PLANS.get("start")
PRO = PLANS.get("pro")
assert START is not None and PRO is not None
DAY = 86_400


def sub_chat(money: Money, fake: FakeTelegram, bot: Bot, user: int = 7501, lang: str = "ru") -> Chat:
    return Chat(money, fake, bot, settings_with(welcome_bonus=0), user=user, lang=lang)


def texts_to(chat: Chat) -> list[str]:
    return [c.text or "" for c in chat.screens]


async def buy(chat: Chat, plan_id: str) -> str:
    """Press Buy: the invoice link's payload (and check the link was sent as a URL button)."""
    before = len(chat.fake.calls("createInvoiceLink"))
    await chat.press(subscription.buy_data(plan_id))
    calls = [c for c in chat.fake.calls("createInvoiceLink") if c.ok]
    assert len(calls) == before + 1
    link = calls[-1].result
    markup = chat.last.params["reply_markup"]
    assert markup["inline_keyboard"][0][0]["url"] == link and str(link).startswith("https://t.me/$")
    return str(calls[-1].params["payload"])


async def pay(chat: Chat, payload: str, stars_: int, charge: str, expires: int, *, first: bool = False) -> None:
    await chat.feed(recurring_payment_update(next(IDS), chat.user, stars_, payload, expires,
                                             telegram_payment_charge_id=charge, first=first,
                                             language_code=chat.lang))


def until(chat: Chat, unix: int) -> str:
    return datetime.fromtimestamp(unix, UTC).astimezone(chat.settings.zone).strftime("%d.%m.%Y")


async def current(chat: Chat) -> subscriptions.Subscription | None:
    return await subscriptions.current(chat.money.db, chat.money.bot_id, chat.user, datetime.now(UTC))


async def test_the_plans_screen_shows_each_plan_with_its_price_and_what_it_gives(money: Money, fake: FakeTelegram,
                                                                                  bot: Bot) -> None:
    chat = sub_chat(money, fake, bot)
    await chat.say("/balance")
    assert keyboards.SUBSCRIPTION in chat.data(), "Balance leads to the plans"
    await chat.press(keyboards.SUBSCRIPTION)
    screen = chat.last.text or ""
    assert t("sub_none") in screen
    for plan in PLANS:
        line = t("sub_plan_line", title=plan.title.ru, stars=plan.stars,
                 gives=subscription.gives("ru", plan, CATALOG))
        assert line in screen
        assert subscription.buy_data(plan.id) in chat.data()
    assert t("sub_gives_credit", amount=rub(30_000)) in screen and t("sub_gives_discount", discount=15) in screen
    assert all(len(d.encode()) <= 64 for d in chat.data())


async def test_buy_commits_an_order_then_sends_a_subscription_invoice_link(money: Money, fake: FakeTelegram,
                                                                           bot: Bot) -> None:
    chat = sub_chat(money, fake, bot)
    await chat.say("/subscribe")
    payload = await buy(chat, "start")
    [call] = chat.fake.calls("createInvoiceLink")
    assert call.params["currency"] == "XTR" and call.params["subscription_period"] == 2_592_000
    assert call.params["prices"] == [{"label": START.title.ru, "amount": START.stars}]
    assert not call.params.get("provider_token")
    order_id = stars.order_of(chat.settings.webhook_secret, money.bot_id, payload)
    assert order_id is not None
    order = await subscriptions.order(money.db, money.bot_id, order_id)
    assert order is not None and (order.kind, order.plan, order.stars, order.kopecks, order.status) == (
        "subscription", "start", START.stars, START.monthly_credit, "open")
    assert chat.last.text == t("sub_invoice_ready", title=START.title.ru, stars=START.stars)
    update = pre_checkout_update(next(IDS), chat.user, START.stars, payload)
    await chat.feed(update)  # the Stars router answers every order's pre-checkout
    [answer] = chat.fake.calls("answerPreCheckoutQuery")
    assert answer.params["ok"] is True


async def test_the_fake_refuses_what_telegram_refuses_for_a_subscription_link(bot: Bot) -> None:
    base: dict[str, Any] = {"title": "Plan", "description": "A plan", "payload": "1.x", "currency": "XTR"}
    link = await bot.create_invoice_link(**base, prices=[LabeledPrice(label="Plan", amount=10_000)],
                                         subscription_period=2_592_000)
    assert link.startswith("https://t.me/$")
    for period, amount in ((86_400, 100), (2_592_000, 10_001)):
        with pytest.raises(TelegramBadRequest):
            await bot.create_invoice_link(**base, prices=[LabeledPrice(label="Plan", amount=amount)],
                                          subscription_period=period)


async def test_the_first_payment_activates_the_plan_and_credits_its_month_once(money: Money, fake: FakeTelegram,
                                                                              bot: Bot) -> None:
    chat = sub_chat(money, fake, bot)
    await chat.say("/subscribe")
    payload = await buy(chat, "start")
    expires = int(time.time()) + 30 * DAY
    for _ in range(3):  # delivered, then twice again (a redelivery, another instance)
        await pay(chat, payload, START.stars, "ch-first", expires, first=True)
    sub = await current(chat)
    assert sub is not None and sub.plan == "start" and int(sub.expires_at.timestamp()) == expires
    assert sub.renews and sub.daily == dict(START.daily)
    assert await chat.balance() == accounts.Balance(START.monthly_credit, 0)
    told = [x for x in texts_to(chat) if x == t("sub_active_until", title=START.title.ru, until=until(chat, expires))]
    assert len(told) == 1, "told once"
    credited = t("credited_subscription", amount=rub(START.monthly_credit), balance=rub(START.monthly_credit))
    assert texts_to(chat).count(credited) == 1
    await chat.say("/subscribe")
    screen = chat.last.text or ""
    assert t("sub_current", title=START.title.ru, until=until(chat, expires)) in screen
    assert t("sub_allowance_left", model="Nano Banana", left=3, count=3) in screen
    assert f"{subscription.PREFIX}cancel:{sub.id}" in chat.data()
    assert not any(d.startswith(f"{subscription.PREFIX}buy:") for d in chat.data()), "no second renewing plan"


async def test_a_renewal_extends_the_period_and_credits_once_per_charge_id(money: Money, fake: FakeTelegram,
                                                                           bot: Bot) -> None:
    chat = sub_chat(money, fake, bot)
    await chat.say("/subscribe")
    payload = await buy(chat, "start")
    first = int(time.time()) + 30 * DAY
    await pay(chat, payload, START.stars, "ch-1", first, first=True)
    await pay(chat, payload, START.stars, "ch-2", first + 30 * DAY)
    await pay(chat, payload, START.stars, "ch-2", first + 30 * DAY)  # the renewal delivered twice
    await pay(chat, payload, START.stars, "ch-1", first, first=True)  # and the first one late
    sub = await current(chat)
    assert sub is not None and int(sub.expires_at.timestamp()) == first + 30 * DAY
    assert await chat.balance() == accounts.Balance(2 * START.monthly_credit, 0)
    rows = await money.db.require().fetch(
        "SELECT charge_id, recurring, kopecks FROM star_payments WHERE bot_id = $1 AND user_id = $2 ORDER BY charge_id",
        money.bot_id, chat.user)
    assert [(r["charge_id"], r["recurring"], r["kopecks"]) for r in rows] == [
        ("ch-1", True, START.monthly_credit), ("ch-2", True, START.monthly_credit)]


async def test_the_subscription_update_records_canceled_failed_and_active(money: Money, fake: FakeTelegram,
                                                                          bot: Bot) -> None:
    chat = sub_chat(money, fake, bot)
    await chat.say("/subscribe")
    payload = await buy(chat, "start")
    expires = int(time.time()) + 30 * DAY
    await pay(chat, payload, START.stars, "ch-1", expires, first=True)
    title, end = START.title.ru, until(chat, expires)
    for _ in range(2):
        await chat.feed(subscription_update(next(IDS), chat.user, payload, "canceled"))
    sub = await current(chat)
    assert sub is not None and (sub.state, sub.canceled_by) == ("canceled", "user"), "runs to its end"
    assert texts_to(chat).count(t("sub_state_canceled", title=title, until=end)) == 1, "told once"
    await chat.feed(subscription_update(next(IDS), chat.user, payload, "active"))
    sub = await current(chat)
    assert sub is not None and sub.state == "active" and chat.last.text == t("sub_state_active", title=title)
    await chat.feed(subscription_update(next(IDS), chat.user, payload, "failed"))
    sub = await current(chat)
    assert sub is not None and sub.state == "failed"
    assert chat.last.text == t("sub_state_failed", title=title)
    await chat.say("/subscribe")
    assert t("sub_failed", until=end) in (chat.last.text or "")
    assert subscription.buy_data("start") in chat.data(), "a failed renewal: the user may subscribe again"
    before = len(chat.screens)
    await chat.feed(subscription_update(next(IDS), chat.user, "1.forged", "canceled"))
    assert len(chat.screens) == before and (await current(chat)) is not None


async def test_cancel_renewal_asks_telegram_and_keeps_the_paid_period(money: Money, fake: FakeTelegram,
                                                                      bot: Bot) -> None:
    chat = sub_chat(money, fake, bot)
    await chat.say("/subscribe")
    payload = await buy(chat, "start")
    expires = int(time.time()) + 30 * DAY
    await pay(chat, payload, START.stars, "ch-1", expires, first=True)
    await chat.say("/subscribe")
    sub = await current(chat)
    assert sub is not None
    await chat.press(f"{subscription.PREFIX}cancel:{sub.id}")
    [call] = chat.fake.calls("editUserStarSubscription")
    assert call.params == {"user_id": chat.user, "telegram_payment_charge_id": "ch-1", "is_canceled": True}
    assert chat.last.text == t("sub_cancel_done", until=until(chat, expires))
    sub = await current(chat)
    assert sub is not None and (sub.state, sub.canceled_by) == ("canceled", "bot") and sub.cancel_asked_at
    await chat.say("/subscribe")
    assert t("sub_canceled", until=until(chat, expires)) in (chat.last.text or "")
    await chat.press(f"{subscription.PREFIX}resume:{sub.id}")
    assert chat.fake.calls("editUserStarSubscription")[-1].params["is_canceled"] is False
    sub = await current(chat)
    assert sub is not None and sub.renews
    other = sub_chat(money, fake, bot, user=7502)
    await other.press(f"{subscription.PREFIX}cancel:{sub.id}")
    assert len(chat.fake.calls("editUserStarSubscription")) == 2, "not someone else's subscription"


async def confirmation(chat: Chat, model_id: str) -> str:
    """Open the model, type a prompt, take the defaults: the confirmation's text."""
    await chat.open_model(model_id)
    await chat.say("a cat")
    for _ in range(5):  # each asked choice: its first button
        if (chat.last.text or "").startswith(texts.t(chat.lang, "confirm_header")):
            break
        await chat.press(chat.data()[0])
    return chat.last.text or ""


async def test_the_allowance_is_offered_and_taken_then_paid_again_when_used_up(money: Money, fake: FakeTelegram,
                                                                              bot: Bot) -> None:
    chat = sub_chat(money, fake, bot)
    await chat.say("/subscribe")
    payload = await buy(chat, "start")
    await pay(chat, payload, START.stars, "ch-1", int(time.time()) + 30 * DAY, first=True)
    price = price_of("google/nano-banana", {})
    for left in (3, 2, 1):
        screen = await confirmation(chat, "google/nano-banana")
        assert t("confirm_plan", price=rub(price), left=left) in screen
        await chat.press(chat.action("ok"))
    made = await chat.jobs()
    assert [j.paid_with for j in made] == ["plan"] * 3 and all(j.held == 0 for j in made)
    assert await chat.balance() == accounts.Balance(START.monthly_credit, 0)
    screen = await confirmation(chat, "google/nano-banana")
    assert t("confirm_price", price=rub(price)) in screen, "the day's allowance is used up: paid"
    await chat.say("/history")
    assert t("paid_plan") in (chat.last.text or "")


async def test_the_discount_applies_to_paid_generations_then_ends_with_the_period(money: Money, fake: FakeTelegram,
                                                                                 bot: Bot) -> None:
    assert PRO is not None
    chat = sub_chat(money, fake, bot)
    await chat.say("/subscribe")
    payload = await buy(chat, "pro")
    await pay(chat, payload, PRO.stars, "ch-1", int(time.time()) + 30 * DAY, first=True)
    model_id = "seedream/4.5-text-to-image"
    full = price_of(model_id, {})
    paid = full * (100 - PRO.discount) // 100
    screen = await confirmation(chat, model_id)
    assert t("confirm_discount", price=rub(paid), full=rub(full), discount=PRO.discount) in screen
    await chat.press(chat.action("ok"))
    [job] = await chat.jobs()
    assert (job.paid_with, job.price, job.held) == ("money", paid, paid)
    # another user whose period Telegram reported as already over: no discount, no allowance
    late = sub_chat(money, fake, bot, user=7503)
    await late.say("/subscribe")
    payload = await buy(late, "pro")
    await late.top_up(10_000)
    await pay(late, payload, PRO.stars, "ch-late", int(time.time()) - 60, first=True)
    assert await current(late) is None
    assert t("confirm_price", price=rub(full)) in await confirmation(late, model_id)
    assert t("confirm_price", price=rub(price_of("google/nano-banana", {}))) in await confirmation(
        late, "google/nano-banana")


async def test_a_payment_naming_no_order_is_recorded_and_the_user_sent_to_paysupport(
        money: Money, fake: FakeTelegram, bot: Bot) -> None:
    chat = sub_chat(money, fake, bot)
    await chat.say("/start")
    await pay(chat, "999.deadbeefdeadbeef", 100, "ch-x", int(time.time()) + 30 * DAY, first=True)
    assert chat.last.text == t("sub_paid_unknown")
    assert await current(chat) is None and await chat.balance() == accounts.Balance(0, 0)


def test_every_subscription_text_exists_in_both_languages() -> None:
    from bot.phrases import subscription as phrases

    assert phrases.TEXTS["ru"].keys() == phrases.TEXTS["en"].keys()
    assert all(texts.t("en", key) for key in phrases.TEXTS["en"])




async def test_an_english_user_gets_the_plans_and_the_confirmation_in_english(money: Money, fake: FakeTelegram,
                                                                             bot: Bot) -> None:
    chat = sub_chat(money, fake, bot, user=7504, lang="en")
    await chat.say("/subscribe")
    assert (chat.last.text or "").startswith(texts.t("en", "sub_header"))
    assert texts.t("en", "sub_btn_buy", title=START.title.en, stars=START.stars) in [b for b, _ in chat.buttons()]
    payload = await buy(chat, "start")
    assert chat.fake.calls("createInvoiceLink")[-1].params["title"] == START.title.en
    await pay(chat, payload, START.stars, "ch-en", int(time.time()) + 30 * DAY, first=True)
    screen = await confirmation(chat, "google/nano-banana")
    assert texts.t("en", "confirm_plan", price=texts.money("en", price_of("google/nano-banana", {})), left=3) in screen
