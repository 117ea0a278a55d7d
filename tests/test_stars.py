"""Telegram Stars top-ups end to end in-process (tests/wizard_kit.Chat: the real Dispatcher and
routers, the fake Telegram over HTTP, a real PostgreSQL): the packs and a custom amount, the
invoice, the pre-checkout's checks and reasons, a payment credited once per charge id whatever
repeats, the admin's refunds (reversed once, spent money refused, Telegram's refusal undone once),
Telegram's refunded_payment, the rate and its history, and /paysupport, /terms, /privacy. The
`money` fixture checks the money invariants after each test."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from aiogram import Bot

from bot import keyboards, texts, typed_input
from bot.flow import Wizard
from bot.routers import admin_refunds, stars
from fakes.telegram.updates import chat_dict, pre_checkout_update, successful_payment_update, user_dict
from fakes.telegram_api import Call, FakeTelegram
from store import accounts, audit, money_in, subscriptions
from store import stars as store
from tests.conftest import Money
from tests.wizard_kit import IDS, Chat, rub, settings_with, t

pytestmark = pytest.mark.timeout(120)
ADMIN = 9001
RATE = 150


def stars_chat(money: Money, fake: FakeTelegram, bot: Bot, user: int = 7301, lang: str = "ru",
               **changes: Any) -> Chat:
    settings = settings_with(**({"admin_ids": frozenset({ADMIN}), "stars_rate": RATE, "welcome_bonus": 0} | changes))
    return Chat(money, fake, bot, settings, user=user, lang=lang)


def invoices(chat: Chat) -> list[Call]:
    return [c for c in chat.fake.calls("sendInvoice", chat.user) if c.ok]


async def buy(chat: Chat, n: int) -> str:
    """Press a pack (or any amount's button): the invoice's payload."""
    before = len(invoices(chat))
    await chat.press(stars.buy_data(n))
    made = invoices(chat)
    assert len(made) == before + 1, "one invoice"
    return str(made[-1].params["payload"])


async def checkout(chat: Chat, total: int, payload: str) -> tuple[bool, str | None]:
    """A pre-checkout query as Telegram sends it when the user presses Pay: the bot's answer."""
    update = pre_checkout_update(next(IDS), chat.user, total, payload, language_code=chat.lang)
    query_id = update["pre_checkout_query"]["id"]
    await chat.feed(update)
    [answer] = [c for c in chat.fake.calls("answerPreCheckoutQuery")
                if str(c.params.get("pre_checkout_query_id")) == query_id]
    return bool(answer.params["ok"]), answer.params.get("error_message")


def payment_update(chat: Chat, total: int, payload: str, charge: str) -> dict[str, Any]:
    return successful_payment_update(next(IDS), chat.user, total, payload, telegram_payment_charge_id=charge,
                                     language_code=chat.lang)


def refunded_update(chat: Chat, total: int, payload: str, charge: str) -> dict[str, Any]:
    """The service message Telegram sends when a payment's Stars went back to the user."""
    update_id = next(IDS)
    user = user_dict(chat.user, "Test", chat.lang)
    return {"update_id": update_id, "message": {
        "message_id": update_id, "from": user, "chat": chat_dict(chat.user, user), "date": 1_700_000_000,
        "refunded_payment": {"currency": "XTR", "total_amount": total, "invoice_payload": payload,
                             "telegram_payment_charge_id": charge}}}


def texts_to(chat: Chat) -> list[str]:
    return [c.text or "" for c in chat.screens]


async def paid(chat: Chat, n: int, charge: str) -> str:
    """Buy n Stars, pass the pre-checkout and pay: the payload."""
    payload = await buy(chat, n)
    assert await checkout(chat, n, payload) == (True, None)
    await chat.feed(payment_update(chat, n, payload, charge))
    return payload


async def test_a_pack_is_invoiced_confirmed_and_credited_once_per_charge(money: Money, fake: FakeTelegram,
                                                                         bot: Bot) -> None:
    chat = stars_chat(money, fake, bot)
    await chat.say("/start")
    await chat.press(keyboards.TOP_UP)
    screen = chat.last.text or ""
    assert t("stars_screen", rate=rub(RATE)) in screen and t("stars_hint") in screen
    assert t("btn_stars_pack", stars=100, amount=rub(100 * RATE)) in [text for text, _ in chat.buttons()]
    assert stars.CUSTOM in chat.data() and chat.data()[-2:] == [keyboards.MENU_BALANCE, keyboards.MENU_OPEN]

    payload = await buy(chat, 100)
    invoice = invoices(chat)[-1].params
    assert invoice["currency"] == "XTR" and invoice["prices"] == [{"label": "Пополнение: 100 ⭐", "amount": 100}]
    assert not invoice.get("provider_token") and len(payload.encode()) <= 128
    assert await checkout(chat, 100, payload) == (True, None)
    told = len(chat.screens)
    await chat.feed(payment_update(chat, 100, payload, "stxCharge1"))
    assert await chat.balance() == accounts.Balance(100 * RATE, 0)
    assert chat.last.text == t("credited_stars", amount=rub(100 * RATE), balance=rub(100 * RATE))

    await chat.feed(payment_update(chat, 100, payload, "stxCharge1"))  # the same payment, another update id
    chat.restart()  # ...and after a restart
    await chat.feed(payment_update(chat, 100, payload, "stxCharge1"))
    assert await chat.balance() == accounts.Balance(100 * RATE, 0), "credited once"
    assert len(chat.screens) == told + 1, "told once"
    [row] = await money.db.require().fetch("SELECT told_at, order_id FROM star_payments")
    assert row["told_at"] is not None and row["order_id"] == int(payload.split(".")[0])
    order = await store.get_order(money.db, money.bot_id, row["order_id"])
    assert order is not None and order.status == "paid" and order.kopecks == 100 * RATE
    assert await checkout(chat, 100, payload) == (False, t("pay_refused_paid"))


async def test_a_payment_not_yet_told_is_told_by_its_redelivery(money: Money, fake: FakeTelegram,
                                                                bot: Bot) -> None:
    chat = stars_chat(money, fake, bot)
    await chat.say("/start")
    payload = await buy(chat, 50)
    await chat.feed(payment_update(chat, 50, payload, "stxUntold"))
    await money.db.require().execute("UPDATE star_payments SET told_at = NULL")  # a crash before the message
    before = len(chat.screens)
    await chat.feed(payment_update(chat, 50, payload, "stxUntold"))
    assert len(chat.screens) == before + 1 and chat.last.text == t("credited_stars", amount=rub(50 * RATE),
                                                                       balance=rub(50 * RATE))
    await chat.feed(payment_update(chat, 50, payload, "stxUntold"))
    assert len(chat.screens) == before + 1
    assert await chat.balance() == accounts.Balance(50 * RATE, 0)


async def test_checkouts_are_refused_with_a_reason_in_the_users_language(money: Money, fake: FakeTelegram,
                                                                         bot: Bot) -> None:
    chat = stars_chat(money, fake, bot)
    await chat.say("/start")
    payload = await buy(chat, 100)
    order_id, tag = payload.split(".")
    tampered = f"{int(order_id) + 1}.{tag}"
    assert await checkout(chat, 100, tampered) == (False, t("pay_refused_unknown"))
    assert await checkout(chat, 100, f"{order_id}.{'0' * len(tag)}") == (False, t("pay_refused_unknown"))
    assert await checkout(chat, 100, "garbage") == (False, t("pay_refused_unknown"))
    assert await checkout(chat, 1, payload) == (False, t("pay_refused_amount"))

    other = stars_chat(money, fake, bot, user=7302, lang="en")
    await other.say("/start")
    assert await checkout(other, 100, payload) == (False, texts.t("en", "pay_refused_unknown")), "not their order"
    late = await buy(other, 50)
    await money.db.require().execute("UPDATE star_orders SET expires_at = now() - interval '1 second' WHERE id = $1",
                                     int(late.split(".")[0]))
    assert await checkout(other, 50, late) == (False, texts.t("en", "pay_refused_expired"))

    renewing = await money.db.require().fetchval(
        """INSERT INTO star_orders (bot_id, user_id, kind, plan, stars, kopecks, rate, status, expires_at)
           VALUES ($1, $2, 'subscription', 'basic', 300, 0, 150, 'paid', now() - interval '40 days') RETURNING id""",
        money.bot_id, chat.user)
    subscription = store.payload(chat.settings.webhook_secret, money.bot_id, renewing)
    assert await checkout(chat, 300, subscription) == (True, None), "a renewal carries the paid order's payload"

    await money.db.require().execute("UPDATE users SET banned = true WHERE user_id = $1", chat.user)
    assert await checkout(chat, 100, payload) == (False, t("pay_refused_banned"))
    assert await chat.balance() == accounts.Balance(0, 0)


async def test_a_payment_naming_no_order_still_credits_at_the_current_rate(money: Money, fake: FakeTelegram,
                                                                           bot: Bot) -> None:
    chat = stars_chat(money, fake, bot)
    await chat.say("/start")
    payload = await buy(chat, 100)  # ordered at 150 kopecks a Star
    await chat.say("/start")
    admin = stars_chat(money, fake, bot, user=ADMIN)
    await admin.press(admin_refunds.RATE_SET)
    await admin.say("200")
    assert await store.current_rate(money.db, money.bot_id, RATE) == 200
    await chat.feed(payment_update(chat, 100, payload, "stxOrdered"))
    assert await chat.balance() == accounts.Balance(100 * RATE, 0), "the rate at the order's creation"
    await chat.feed(payment_update(chat, 7, "not-ours", "stxStray"))
    assert await chat.balance() == accounts.Balance(100 * RATE + 7 * 200, 0), "a paid Star is never lost"
    stray = await store.payment(money.db, money.bot_id, "stxStray")
    assert stray is not None and stray.order_id is None and stray.kopecks == 1400


async def test_a_custom_amount_within_bounds_keeps_the_confirmation(money: Money, fake: FakeTelegram,
                                                                    bot: Bot) -> None:
    chat = stars_chat(money, fake, bot, stars_min=10, stars_max=2_000)
    await chat.top_up(300)
    await chat.open_model("flux-2/pro-text-to-image")
    await chat.say("a dragon")
    await chat.press(chat.data()[0])
    await chat.press(chat.find("1K"))
    ok = chat.action("ok")
    await chat.press(keyboards.TOP_UP)
    back = chat.find(t("btn_back_to_confirmation"))
    await chat.press(stars.CUSTOM)
    assert chat.last.text == t("stars_custom_ask", min=10, max=2_000)
    for bad in ("9", "2001", "abc", "1.5", "-20"):
        await chat.say(bad)
        assert chat.last.text == t("stars_custom_bad", min=10, max=2_000), bad
    assert invoices(chat) == []
    await chat.say("1 500")
    [invoice] = invoices(chat)
    assert invoice.params["prices"] == [{"label": "Пополнение: 1500 ⭐", "amount": 1500}]
    assert back in chat.data(), "the way back to the kept confirmation"
    state, data = await chat.state()
    assert state == Wizard.step.state and typed_input.PREVIOUS not in data
    await chat.feed(payment_update(chat, 1500, str(invoice.params["payload"]), "stxCustom"))
    assert chat.action("ok") == ok, "the confirmation offered again after the credit"
    await chat.press(ok)
    [job] = await chat.jobs()
    assert job.state == "created"

    await chat.press(stars.CUSTOM)
    await chat.press(stars.CANCEL)
    assert (chat.last.text or "").startswith(t("stars_screen", rate=rub(RATE)).split("\n")[0])
    await chat.press(stars.buy_data(99_999))  # a button never offered
    assert len(invoices(chat)) == 1


async def test_an_admin_refund_reverses_once_whatever_repeats(money: Money, fake: FakeTelegram, bot: Bot) -> None:
    chat = stars_chat(money, fake, bot)
    await chat.say("/start")
    payload = await paid(chat, 100, "stxRefundMe")
    admin = stars_chat(money, fake, bot, user=ADMIN)
    await admin.press(admin_refunds.REFUNDS)
    assert "stxRefundMe" in (admin.last.text or "")
    button = admin.find("100 ⭐")
    await admin.press(button)
    await admin.press(button)  # a double press
    assert await chat.balance() == accounts.Balance(0, 0)
    assert texts_to(admin)[-4] == t("adm_refund_done", charge="stxRefundMe", stars=100, user=chat.user,
                                    amount=rub(100 * RATE))
    assert texts_to(admin)[-2] == t("adm_refund_already", charge="stxRefundMe")
    assert [c.ok for c in fake.calls("refundStarPayment")] == [True, False]
    assert fake.star_refunds == {(chat.user, "stxRefundMe")}  # type: ignore[attr-defined]
    assert texts_to(chat).count(t("stars_refunded_user", charge="stxRefundMe", amount=rub(100 * RATE))) == 1
    await chat.feed(refunded_update(chat, 100, payload, "stxRefundMe"))  # Telegram's word on it
    await chat.feed(refunded_update(chat, 100, payload, "stxRefundMe"))
    assert await chat.balance() == accounts.Balance(0, 0)
    reversals = await money.db.require().fetch("SELECT balance_delta FROM ledger WHERE kind = 'reversal'")
    assert [r["balance_delta"] for r in reversals] == [-100 * RATE]
    [row] = await audit.recent(money.db, money.bot_id, action="stars_refund")
    assert row.admin_id == ADMIN and row.target == "stxRefundMe"
    refunded = await store.payment(money.db, money.bot_id, "stxRefundMe")
    assert refunded is not None and refunded.state == "refunded" and refunded.refunded_by == ADMIN


async def test_a_refund_of_spent_stars_is_refused_and_changes_nothing(money: Money, fake: FakeTelegram,
                                                                      bot: Bot) -> None:
    chat = stars_chat(money, fake, bot)
    await chat.say("/start")
    await paid(chat, 100, "stxSpent")
    await money_in.money_in(money.db, money.name, money.epoch, money.bot_id, chat.user, -100, source="admin",
                            key="admin:spent-some")
    admin = stars_chat(money, fake, bot, user=ADMIN)
    await admin.press(admin_refunds.REFUND + "stxSpent")
    assert texts_to(admin)[-2] == t("adm_refund_spent", charge="stxSpent", amount=rub(100 * RATE))
    assert fake.calls("refundStarPayment") == []
    assert await chat.balance() == accounts.Balance(100 * RATE - 100, 0)
    found = await store.payment(money.db, money.bot_id, "stxSpent")
    assert found is not None and found.state == "paid"


async def test_a_refund_telegram_refuses_gives_the_money_back_once(money: Money, fake: FakeTelegram,
                                                                   bot: Bot) -> None:
    chat = stars_chat(money, fake, bot)
    await chat.say("/start")
    await paid(chat, 100, "stxRefused")
    fake.inject("refundStarPayment", status=400, description="Bad Request: CHARGE_NOT_FOUND")
    admin = stars_chat(money, fake, bot, user=ADMIN)
    await admin.press(admin_refunds.REFUND + "stxRefused")
    assert texts_to(admin)[-2].startswith(t("adm_refund_refused", charge="stxRefused", reason="x").split(":")[0])
    assert await chat.balance() == accounts.Balance(100 * RATE, 0)
    await admin.press(admin_refunds.REFUND + "stxRefused")
    assert texts_to(admin)[-2] == t("adm_refund_refused_before", charge="stxRefused")
    assert len(fake.calls("refundStarPayment")) == 1
    assert await chat.balance() == accounts.Balance(100 * RATE, 0)
    found = await store.payment(money.db, money.bot_id, "stxRefused")
    assert found is not None and found.state == "refused"


async def test_a_refund_telegram_does_not_answer_is_retried_by_a_second_press(money: Money, fake: FakeTelegram,
                                                                              bot: Bot) -> None:
    chat = stars_chat(money, fake, bot)
    await chat.say("/start")
    await paid(chat, 100, "stxSlow")
    fake.inject("refundStarPayment", status=500, count=3)  # the bot retries a 5xx twice
    admin = stars_chat(money, fake, bot, user=ADMIN)
    await admin.press(admin_refunds.REFUND + "stxSlow")
    assert texts_to(admin)[-2].startswith(t("adm_refund_retry", reason="x").split("(")[0])
    assert await chat.balance() == accounts.Balance(0, 0), "the intent stands"
    await admin.press(admin_refunds.REFUND + "stxSlow")
    assert texts_to(admin)[-2] == t("adm_refund_done", charge="stxSlow", stars=100, user=chat.user,
                                    amount=rub(100 * RATE))
    assert await chat.balance() == accounts.Balance(0, 0)


async def test_a_refund_telegram_made_without_us_is_taken_back_once(money: Money, fake: FakeTelegram,
                                                                    bot: Bot) -> None:
    chat = stars_chat(money, fake, bot)
    await chat.say("/start")
    payload = await paid(chat, 50, "stxDispute")
    await chat.feed(refunded_update(chat, 50, payload, "stxDispute"))
    await chat.feed(refunded_update(chat, 50, payload, "stxDispute"))
    assert await chat.balance() == accounts.Balance(0, 0)
    assert texts_to(chat).count(t("debited_reversal", amount=rub(50 * RATE), balance=rub(0))) == 1
    admin = stars_chat(money, fake, bot, user=ADMIN)
    await admin.press(admin_refunds.REFUND + "stxDispute")
    assert await chat.balance() == accounts.Balance(0, 0)


async def test_the_rate_is_set_by_admins_with_its_history_and_refused_to_others(money: Money, fake: FakeTelegram,
                                                                                bot: Bot) -> None:
    admin = stars_chat(money, fake, bot, user=ADMIN)
    await admin.press(admin_refunds.RATE)
    assert t("adm_rate_header", rate=rub(RATE)) in (admin.last.text or "") and t("adm_rate_default") in (
        admin.last.text or "")
    await admin.press(admin_refunds.RATE_SET)
    await admin.say("0")
    assert admin.last.text == t("adm_rate_bad")
    await admin.say("175")
    assert texts_to(admin)[-2] == t("adm_rate_set", before=rub(RATE), after=rub(175))
    assert "175" not in str(await admin.state())
    [row] = await audit.recent(money.db, money.bot_id, action="stars_rate")
    assert (row.admin_id, row.before, row.after) == (ADMIN, RATE, 175)
    assert [r.kopecks for r in await store.rates(money.db, money.bot_id)] == [175]

    user = stars_chat(money, fake, bot)
    await user.press(admin_refunds.RATE)
    await user.press(admin_refunds.REFUNDS)
    assert not any(t("adm_rate_header", rate=rub(175)) in text for text in texts_to(user))
    assert not any(t("adm_refunds_header") in text or t("adm_refunds_none") in text for text in texts_to(user))
    await user.say("/start")
    payload = await buy(user, 10)
    order = await store.get_order(money.db, money.bot_id, int(payload.split(".")[0]))
    assert order is not None and order.kopecks == 1750 and order.rate == 175


async def test_paysupport_terms_and_privacy_answer_in_any_state(money: Money, fake: FakeTelegram, bot: Bot) -> None:
    chat = stars_chat(money, fake, bot, lang="en")
    await chat.say("/start")
    await paid(chat, 50, "stxSupport")
    await chat.press(stars.CUSTOM)  # waiting for a typed amount
    before = await chat.state()
    await chat.say("/paysupport")
    text = chat.last.text or ""
    assert texts.t("en", "paysupport_default") in text and "stxSupport" in text and "50 ⭐" in text
    await chat.say("/terms")
    assert chat.last.text == texts.t("en", "terms_default")
    await chat.say("/privacy")
    assert chat.last.text == texts.t("en", "privacy_default")
    assert await chat.state() == before, "the state is left alone"

    custom = stars_chat(money, fake, bot, user=7303, paysupport_text="Write to @help", terms_text="Our terms",
                        privacy_text="Our policy")
    await custom.say("/paysupport")
    assert (custom.last.text or "").startswith("Write to @help") and t("paysupport_none") in (custom.last.text or "")
    await custom.say("/terms")
    assert custom.last.text == "Our terms"
    await custom.say("/privacy")
    assert custom.last.text == "Our policy"


async def test_a_user_banned_after_paying_is_still_credited(money: Money, fake: FakeTelegram, bot: Bot) -> None:
    chat = stars_chat(money, fake, bot)
    await chat.say("/start")
    payload = await buy(chat, 100)
    assert await checkout(chat, 100, payload) == (True, None)
    await money.db.require().execute("UPDATE users SET banned = true WHERE user_id = $1", chat.user)
    await chat.feed(payment_update(chat, 100, payload, "stxBanned"))
    assert await chat.balance() == accounts.Balance(100 * RATE, 0), "a paid Star is never lost"


async def test_concurrent_deliveries_and_two_admins_at_once_move_money_once(money: Money, fake: FakeTelegram,
                                                                            bot: Bot) -> None:
    chat = stars_chat(money, fake, bot, admin_ids=frozenset({ADMIN, ADMIN + 1}))
    await chat.say("/start")
    payload = await buy(chat, 100)
    await asyncio.gather(*(chat.feed(payment_update(chat, 100, payload, "stxRace")) for _ in range(4)))
    assert await chat.balance() == accounts.Balance(100 * RATE, 0)
    admins = [stars_chat(money, fake, bot, user=user, admin_ids=frozenset({ADMIN, ADMIN + 1}))
              for user in (ADMIN, ADMIN + 1)]
    await asyncio.gather(*(admin.press(admin_refunds.REFUND + "stxRace") for admin in admins))
    assert await chat.balance() == accounts.Balance(0, 0)
    assert len(await audit.recent(money.db, money.bot_id, action="stars_refund")) == 1
    assert fake.star_refunds == {(chat.user, "stxRace")}  # type: ignore[attr-defined]


async def test_an_invoice_paid_twice_credits_both_payments(money: Money, fake: FakeTelegram, bot: Bot) -> None:
    chat = stars_chat(money, fake, bot)
    await chat.say("/start")
    payload = await paid(chat, 50, "stxTwiceA")  # e.g. a forwarded invoice's Pay, or a double tap
    await chat.feed(payment_update(chat, 50, payload, "stxTwiceB"))
    assert await chat.balance() == accounts.Balance(2 * 50 * RATE, 0), "the user paid twice: both count"
    first, second = [await store.payment(money.db, money.bot_id, c) for c in ("stxTwiceA", "stxTwiceB")]
    assert first is not None and second is not None and first.order_id == second.order_id


async def test_refunding_a_subscription_charge_ends_its_period(money: Money, fake: FakeTelegram, bot: Bot) -> None:
    chat = stars_chat(money, fake, bot)
    await chat.say("/start")
    now = datetime.now(UTC)
    order_id = await subscriptions.create_order(
        money.db, money.name, money.epoch, money.bot_id, chat.user, plan="test", stars=300, kopecks=3000,
        default_rate=RATE, ttl_seconds=3600, now=now)
    await subscriptions.pay(money.db, money.name, money.epoch, money.bot_id,
                            subscriptions.Payment(chat.user, "stxPlan", order_id, 300, now + timedelta(days=30)),
                            subscriptions.Terms("test", 3000, {}, 0), now=now)
    assert await subscriptions.current(money.db, money.bot_id, chat.user, now) is not None
    admin = stars_chat(money, fake, bot, user=ADMIN)
    await admin.press(admin_refunds.REFUND + "stxPlan")
    assert await chat.balance() == accounts.Balance(0, 0)
    assert await subscriptions.current(money.db, money.bot_id, chat.user, datetime.now(UTC)) is None


async def test_topup_opens_the_packs_from_anywhere_and_help_names_it(money: Money, fake: FakeTelegram,
                                                                      bot: Bot) -> None:
    chat = stars_chat(money, fake, bot)
    await chat.say("/topup")
    assert stars.buy_data(chat.settings.stars_presets[0]) in chat.data()
    await chat.say("/help")
    assert "/topup" in chat.last.params["text"] and "/promo" in chat.last.params["text"]
