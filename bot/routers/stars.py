"""Top up with Telegram Stars: the packs and a custom amount (st:...), the invoice, the
pre-checkout query, and the payment service messages (successful_payment, refunded_payment).

The order is committed before sendInvoice, so the payment that follows always finds it; the
pre-checkout is one indexed read (Telegram waits 10 s at most); a payment credits once per charge
id in one fenced transaction (store/stars.py) and a paid Star is never lost: a payload that names
no order of this user still credits, at the current rate, logged loudly. A subscription's
renewals (is_recurring) are the subscription router's, placed before this one.
"""

from __future__ import annotations

from typing import Any

from aiogram import Bot, F, Router
from aiogram.exceptions import TelegramAPIError, TelegramNetworkError
from aiogram.filters import Command, StateFilter
from aiogram.fsm.context import FSMContext
from aiogram.fsm.state import State, StatesGroup
from aiogram.fsm.storage.base import BaseStorage
from aiogram.types import (
    CallbackQuery,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    LabeledPrice,
    Message,
    PreCheckoutQuery,
)

from bot import keyboards
from bot.flow import CONFIRM, Ctx, Wiz
from bot.money_in import after_credit
from bot.services import Services
from bot.texts import lang_of, t
from bot.typed_input import ask_input, end_input
from store import stars as store
from telemetry import logs

log = logs.get("bot")

PREFIX = "st:"
OPEN = "st:open"
BUY = "st:buy:"
CUSTOM = "st:custom"
CANCEL = "st:cancel"
MAX_STARS = 1_000_000  # more than any one payment Telegram takes (and star_payments.stars is an integer)


class StarsInput(StatesGroup):
    amount = State()


def buy_data(stars: int) -> str:
    return f"{BUY}{stars}"


def back_to(wiz: Wiz | None) -> str | None:
    """The kept confirmation's Show button (as Balance offers it)."""
    return keyboards.step_data(wiz.nonce, "show") if wiz is not None and wiz.at == CONFIRM else None


# --- the screen ----------------------------------------------------------------------------------


def _markup(lang: str, packs: list[tuple[int, str]], back: str | None) -> InlineKeyboardMarkup:
    buttons = [InlineKeyboardButton(text=t(lang, "btn_stars_pack", stars=n, amount=amount), callback_data=buy_data(n))
               for n, amount in packs]
    rows = [buttons[i:i + 2] for i in range(0, len(buttons), 2)]
    rows.append([keyboards.button(t(lang, "btn_stars_custom"), CUSTOM)])
    return InlineKeyboardMarkup(inline_keyboard=rows + keyboards.top_up(lang, back).inline_keyboard)


async def send_screen(ctx: Ctx, back: str | None) -> None:
    """The packs with what each credits at the current rate, a custom amount, the 0-Stars hint,
    and the way back to a kept confirmation (`back`: its Show button's data)."""
    settings = ctx.services.settings
    rate = await store.current_rate(ctx.services.database, settings.bot_id, settings.stars_rate)
    packs = [(n, ctx.money(n * rate)) for n in settings.stars_presets]
    text = ctx.t("stars_screen", rate=ctx.money(rate)) + "\n\n" + ctx.t("stars_hint")
    await ctx.bot.send_message(ctx.chat_id, text, reply_markup=_markup(ctx.lang, packs, back))


def _cancel_markup(lang: str) -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup(inline_keyboard=[[keyboards.button(t(lang, "btn_stars_cancel"), CANCEL)]])


def parse_stars(text: str | None, low: int, high: int) -> int | None:
    """A typed whole number of Stars within the bounds, else None ("1 000" and "1000⭐" count)."""
    cleaned = (text or "").replace(" ", "").replace("\u00a0", "").replace("⭐", "").strip()
    if not cleaned.isdigit() or len(cleaned) > 9:
        return None
    value = int(cleaned)
    return value if low <= value <= high else None


async def send_invoice(ctx: Ctx, stars: int, fence_epoch: int, back: str | None) -> None:
    """An order at the current rate, committed, then its invoice (XTR, one price, whole Stars)."""
    settings, db = ctx.services.settings, ctx.services.database
    order = await store.create_order(db, ctx.services.lock_name, fence_epoch, settings.bot_id, ctx.user_id, stars,
                                     default_rate=settings.stars_rate, ttl=settings.stars_order_ttl)
    amount = ctx.money(order.kopecks)
    try:
        await ctx.bot.send_invoice(
            ctx.chat_id, title=ctx.t("stars_invoice_title"),
            description=ctx.t("stars_invoice_description", stars=stars, amount=amount),
            payload=store.payload(settings.webhook_secret, settings.bot_id, order.id), currency="XTR",
            prices=[LabeledPrice(label=ctx.t("stars_invoice_label", stars=stars), amount=stars)])
    except (TelegramAPIError, TelegramNetworkError) as exc:
        log.warning("stars_invoice_failed", extra={"order_id": order.id, "error_text": str(exc)[:200]})
        await ctx.bot.send_message(ctx.chat_id, ctx.t("stars_invoice_failed"),
                                   reply_markup=keyboards.top_up(ctx.lang, back))
        return
    log.info("stars_invoice_sent", extra={"order_id": order.id, "stars": stars, "kopecks": order.kopecks})
    hours = max(1, round(settings.stars_order_ttl / 3600))
    await ctx.bot.send_message(ctx.chat_id, ctx.t("stars_invoice_sent", stars=stars, amount=amount, hours=hours),
                               reply_markup=keyboards.top_up(ctx.lang, back))


def router() -> Router:
    router = Router(name="stars")

    @router.callback_query(F.data == OPEN)
    async def open_screen(query: CallbackQuery, bot: Bot, state: FSMContext, services: Services,
                          wiz: Wiz | None = None) -> None:
        await send_screen(Ctx.of(query, bot, services, state), back_to(wiz))

    @router.message(Command("topup"))
    async def topup_command(message: Message, bot: Bot, state: FSMContext, services: Services,
                            raw_state: str | None = None, wiz: Wiz | None = None) -> None:
        if raw_state == StarsInput.amount.state:
            wiz = await end_input(state)
        await send_screen(Ctx.of(message, bot, services, state), back_to(wiz))

    @router.callback_query(F.data.startswith(BUY))
    async def buy(query: CallbackQuery, bot: Bot, state: FSMContext, services: Services, fence_epoch: int,
                  raw_state: str | None = None, wiz: Wiz | None = None) -> None:
        ctx = Ctx.of(query, bot, services, state)
        settings = services.settings
        text = (query.data or "")[len(BUY):]
        stars = int(text) if text.isdigit() and len(text) < 7 else 0
        if stars not in settings.stars_presets and not settings.stars_min <= stars <= settings.stars_max:
            await send_screen(ctx, back_to(wiz))  # a button we never made: the screen again
            return
        if raw_state == StarsInput.amount.state:
            wiz = await end_input(state)
        await send_invoice(ctx, stars, fence_epoch, back_to(wiz))

    @router.callback_query(F.data == CUSTOM)
    async def custom(query: CallbackQuery, bot: Bot, state: FSMContext, services: Services) -> None:
        ctx = Ctx.of(query, bot, services, state)
        settings = services.settings
        await ask_input(state, StarsInput.amount)
        await bot.send_message(ctx.chat_id, ctx.t("stars_custom_ask", min=settings.stars_min, max=settings.stars_max),
                               reply_markup=_cancel_markup(ctx.lang))

    @router.callback_query(F.data == CANCEL)
    async def cancel(query: CallbackQuery, bot: Bot, state: FSMContext, services: Services,
                     raw_state: str | None = None, wiz: Wiz | None = None) -> None:
        if raw_state == StarsInput.amount.state:
            wiz = await end_input(state)
        await send_screen(Ctx.of(query, bot, services, state), back_to(wiz))

    @router.pre_checkout_query()
    async def pre_checkout(query: PreCheckoutQuery, services: Services) -> None:
        """Cheap checks only, every order kind (top-ups and subscriptions): Telegram waits 10 s."""
        settings = services.settings
        order_id = store.order_of(settings.webhook_secret, settings.bot_id, query.invoice_payload)
        refusal = await store.check_checkout(services.database, settings.bot_id, order_id, query.from_user.id,
                                             query.total_amount, query.currency)
        try:
            if refusal is None:
                await query.answer(ok=True)
            else:
                await query.answer(ok=False, error_message=t(lang_of(query.from_user), refusal))
        except (TelegramAPIError, TelegramNetworkError) as exc:  # too late, or answered by another run
            log.warning("pre_checkout_answer_failed", extra={"order_id": order_id, "error_text": str(exc)[:200]})
        log.info("pre_checkout", extra={"order_id": order_id, "user_id": query.from_user.id,
                                        "stars": query.total_amount, "refusal": refusal})

    @router.message(F.successful_payment, ~F.successful_payment.is_recurring)
    async def paid(message: Message, bot: Bot, services: Services, fence_epoch: int,
                   fsm_storage: BaseStorage) -> None:
        await on_payment(message, bot, services, fence_epoch, fsm_storage)

    @router.message(F.refunded_payment)
    async def refunded(message: Message, bot: Bot, services: Services, fence_epoch: int,
                       fsm_storage: BaseStorage) -> None:
        await on_refunded(message, bot, services, fence_epoch, fsm_storage)

    @router.message(StateFilter(StarsInput.amount), F.text, ~F.text.startswith("/"))
    async def typed(message: Message, bot: Bot, state: FSMContext, services: Services, fence_epoch: int) -> None:
        ctx = Ctx.of(message, bot, services, state)
        settings = services.settings
        stars = parse_stars(message.text, settings.stars_min, settings.stars_max)
        if stars is None:
            await bot.send_message(ctx.chat_id, ctx.t("stars_custom_bad", min=settings.stars_min,
                                                      max=settings.stars_max), reply_markup=_cancel_markup(ctx.lang))
            return
        wiz = await end_input(state)
        await send_invoice(ctx, stars, fence_epoch, back_to(wiz))

    return router


async def on_payment(message: Message, bot: Bot, services: Services, fence_epoch: int, storage: BaseStorage) -> None:
    """Credit once per charge id, then tell the user (also when a crash came between the commit
    and the message: the redelivery finds the payment untold)."""
    payment, user = message.successful_payment, message.from_user
    assert payment is not None
    settings = services.settings
    charge = payment.telegram_payment_charge_id
    facts: dict[str, Any] = {"user_id": None if user is None else user.id, "stars": payment.total_amount,
                             "charge": charge[:100]}
    if user is None or payment.currency != "XTR" or not charge or not 0 < payment.total_amount <= MAX_STARS:
        log.error("stars_payment_malformed", extra={**facts, "currency": payment.currency[:10]})
        return  # not a payment Telegram makes: only someone holding the webhook secret could post it
    order_id = store.order_of(settings.webhook_secret, settings.bot_id, payment.invoice_payload)
    done = await store.record_payment(services.database, services.lock_name, fence_epoch, settings.bot_id, user.id,
                                      charge, order_id=order_id, stars=payment.total_amount,
                                      default_rate=settings.stars_rate, referral_bonus=settings.referral_bonus)
    facts.update(order_id=done.order_id, kopecks=done.credited.amount, fresh=done.credited.fresh)
    if not done.matched:  # the user paid: credited at the current rate all the same
        log.error("stars_payment_unmatched", extra={**facts, "payload_order": order_id})
    log.info("stars_paid", extra=facts)
    if done.credited.fresh or not done.told:
        await after_credit(bot, services, storage, done.credited, lang=lang_of(user))
        await store.mark_told(services.database, settings.bot_id, charge)


async def on_refunded(message: Message, bot: Bot, services: Services, fence_epoch: int,
                      storage: BaseStorage) -> None:
    """Telegram returned a payment's Stars (our refund, or one we did not start): the credit is
    taken back once, whichever way the refund came."""
    refund, user = message.refunded_payment, message.from_user
    assert refund is not None
    settings = services.settings
    charge = refund.telegram_payment_charge_id
    result = await store.refunded(services.database, services.lock_name, fence_epoch, settings.bot_id, charge)
    facts = {"user_id": None if user is None else user.id, "stars": refund.total_amount, "charge": charge}
    if result.payment is None:
        log.error("stars_refund_unknown_payment", extra=facts)
    elif result.spent:
        log.error("stars_refund_spent", extra={**facts, "kopecks": result.payment.kopecks})
    else:
        log.info("stars_refunded", extra={**facts, "fresh": result.reversal is not None and result.reversal.fresh})
    if result.reversal is not None and result.reversal.fresh:  # our own refund told the user already
        await after_credit(bot, services, storage, result.reversal, lang=lang_of(user))
