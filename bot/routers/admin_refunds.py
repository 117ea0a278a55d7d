"""The admins' Stars screens (ADMIN_IDS only): refunds (adm:refunds) and the Stars rate (adm:rate).

A refund commits its intent first (the credit taken back under the fence, the payment marked,
an audit row) and only then asks Telegram (refundStarPayment), so a crash, a double press or two
admins at once take the money back once; CHARGE_ALREADY_REFUNDED counts as done; a credit
already spent is refused before anything changes; a refund Telegram refuses for good gives the
money back once and tells the admin."""

from __future__ import annotations

from aiogram import Bot, F, Router
from aiogram.exceptions import TelegramBadRequest, TelegramForbiddenError
from aiogram.filters import StateFilter
from aiogram.fsm.context import FSMContext
from aiogram.fsm.state import State, StatesGroup
from aiogram.fsm.storage.base import BaseStorage
from aiogram.types import CallbackQuery, InlineKeyboardMarkup, Message

from bot import keyboards
from bot.admins import IsAdmin
from bot.money_in import after_credit, language
from bot.services import Services
from bot.texts import lang_of, money, t
from bot.typed_input import ask_input, end_input
from store import stars
from store.fence import fenced
from telemetry import logs

log = logs.get("bot")

REFUNDS = "adm:refunds"
REFUND = "adm:refunds:r:"
RATE = "adm:rate"
RATE_SET = "adm:rate:set"
ADMIN_MENU = "adm:menu"
LISTED = 10
CHARGE_IN_DATA = 40  # a charge id's start in a button (callback data is at most 64 bytes)
RATE_MAX = 100_000


class RateInput(StatesGroup):
    kopecks = State()


def short(charge_id: str) -> str:
    return charge_id if len(charge_id) <= 14 else f"{charge_id[:6]}…{charge_id[-6:]}"


async def send_refunds(bot: Bot, services: Services, chat_id: int, lang: str) -> None:
    settings = services.settings
    payments = await stars.recent_payments(services.database, settings.bot_id, limit=LISTED)
    lines = [t(lang, "adm_refunds_header" if payments else "adm_refunds_none")]
    rows = []
    for p in payments:
        day = p.paid_at.astimezone(settings.zone).strftime("%d.%m %H:%M")
        lines.append(t(lang, "adm_refunds_line", day=day, user=p.user_id, stars=p.stars,
                       amount=money(lang, p.kopecks), charge=short(p.charge_id),
                       state=t(lang, "adm_refund_state_" + p.state)))
        if p.state == "paid":
            rows.append([keyboards.button(t(lang, "btn_adm_refund", stars=p.stars, user=p.user_id,
                                            charge=short(p.charge_id)), REFUND + p.charge_id[:CHARGE_IN_DATA])])
    rows.append([keyboards.button(t(lang, "btn_adm_back"), ADMIN_MENU)])
    await bot.send_message(chat_id, "\n".join(lines), reply_markup=InlineKeyboardMarkup(inline_keyboard=rows))


async def refund(bot: Bot, services: Services, storage: BaseStorage, fence_epoch: int, admin_id: int,
                 charge_prefix: str, lang: str) -> str:
    """Refund one payment; what to tell the admin."""
    settings = services.settings
    found = await stars.find_payment(services.database, settings.bot_id, charge_prefix)
    if found is None:
        return t(lang, "adm_refund_missing")
    charge, amount = found.charge_id, money(lang, found.kopecks)
    facts = {"admin_id": admin_id, "charge": charge, "user_id": found.user_id, "kopecks": found.kopecks}
    try:
        intent = await stars.begin_refund(services.database, services.lock_name, fence_epoch, settings.bot_id,
                                          charge, admin_id)
    except stars.Spent:
        log.info("stars_refund_spent_refused", extra=facts)
        return t(lang, "adm_refund_spent", charge=short(charge), amount=amount)
    except stars.RefundRefused:
        return t(lang, "adm_refund_refused_before", charge=short(charge))
    if intent is None:
        return t(lang, "adm_refund_missing")
    try:
        await bot.refund_star_payment(found.user_id, charge)
    except (TelegramBadRequest, TelegramForbiddenError) as exc:
        if "CHARGE_ALREADY_REFUNDED" in str(exc):
            log.info("stars_refund_already", extra=facts)
            return t(lang, "adm_refund_already", charge=short(charge))
        reason = exc.message[:200]  # refused for good: the money goes back to the user, once
        log.error("stars_refund_refused", extra={**facts, "error_text": reason})
        back = await stars.restore(services.database, services.lock_name, fence_epoch, settings.bot_id, charge,
                                   admin_id, reason)
        if back is not None and back.fresh:
            await after_credit(bot, services, storage, back)
        return t(lang, "adm_refund_refused", charge=short(charge), reason=reason)
    except Exception as exc:  # no answer (network, 5xx, 429): the intent stands, a press again retries
        log.warning("stars_refund_unanswered", extra={**facts, "error_text": str(exc)[:200]})
        return t(lang, "adm_refund_retry", reason=type(exc).__name__)
    log.info("stars_refund_done", extra={**facts, "fresh": intent.reversal is not None and intent.reversal.fresh})
    their = await language(services, found.user_id)
    try:  # Telegram said yes once per charge (CHARGE_ALREADY_REFUNDED after): the user is told once
        await bot.send_message(found.user_id, t(their, "stars_refunded_user", charge=charge,
                                                amount=money(their, found.kopecks)),
                               reply_markup=keyboards.menu_button(their))
    except Exception as exc:
        log.info("stars_refund_notice_failed", extra={**facts, "error_text": str(exc)[:200]})
    return t(lang, "adm_refund_done", charge=short(charge), stars=found.stars, user=found.user_id, amount=amount)


async def send_rate(bot: Bot, services: Services, chat_id: int, lang: str) -> None:
    settings = services.settings
    rate = await stars.current_rate(services.database, settings.bot_id, settings.stars_rate)
    lines = [t(lang, "adm_rate_header", rate=money(lang, rate))]
    history = await stars.rates(services.database, settings.bot_id)
    if history:
        lines.append(t(lang, "adm_rate_history"))
        for r in history:
            lines.append(t(lang, "adm_rate_line", day=r.set_at.astimezone(settings.zone).strftime("%d.%m.%Y %H:%M"),
                           rate=money(lang, r.kopecks), admin=r.set_by))
    else:
        lines.append(t(lang, "adm_rate_default"))
    markup = InlineKeyboardMarkup(inline_keyboard=[[keyboards.button(t(lang, "btn_adm_rate_set"), RATE_SET)],
                                                   [keyboards.button(t(lang, "btn_adm_back"), ADMIN_MENU)]])
    await bot.send_message(chat_id, "\n".join(lines), reply_markup=markup)


def router() -> Router:
    router = Router(name="admin_refunds")
    router.callback_query.filter(IsAdmin())
    router.message.filter(IsAdmin())

    @router.callback_query(F.data == REFUNDS)
    async def refunds(query: CallbackQuery, bot: Bot, services: Services) -> None:
        await send_refunds(bot, services, query.from_user.id, lang_of(query.from_user))

    @router.callback_query(F.data.startswith(REFUND))
    async def refund_pressed(query: CallbackQuery, bot: Bot, services: Services, fence_epoch: int,
                             fsm_storage: BaseStorage) -> None:
        lang = lang_of(query.from_user)
        said = await refund(bot, services, fsm_storage, fence_epoch, query.from_user.id,
                            (query.data or "")[len(REFUND):], lang)
        await bot.send_message(query.from_user.id, said)
        await send_refunds(bot, services, query.from_user.id, lang)

    @router.callback_query(F.data == RATE)
    async def rate(query: CallbackQuery, bot: Bot, services: Services) -> None:
        await send_rate(bot, services, query.from_user.id, lang_of(query.from_user))

    @router.callback_query(F.data == RATE_SET)
    async def rate_set(query: CallbackQuery, bot: Bot, state: FSMContext) -> None:
        await ask_input(state, RateInput.kopecks)
        await bot.send_message(query.from_user.id, t(lang_of(query.from_user), "adm_rate_ask"))

    @router.message(StateFilter(RateInput.kopecks), F.text, ~F.text.startswith("/"))
    async def rate_typed(message: Message, bot: Bot, state: FSMContext, services: Services,
                         fence_epoch: int) -> None:
        lang, admin = lang_of(message.from_user), message.from_user
        assert admin is not None
        text = (message.text or "").strip()
        value = int(text) if text.isdigit() and len(text) <= 6 else 0
        if not 1 <= value <= RATE_MAX:
            await bot.send_message(message.chat.id, t(lang, "adm_rate_bad"))
            return
        settings = services.settings
        async with fenced(services.database, services.lock_name, fence_epoch) as conn:
            before = await stars.set_rate(conn, settings.bot_id, value, admin.id, settings.stars_rate)
        await end_input(state)
        log.info("stars_rate_set", extra={"admin_id": admin.id, "before": before, "after": value})
        await bot.send_message(message.chat.id, t(lang, "adm_rate_set", before=money(lang, before),
                                                  after=money(lang, value)))
        await send_rate(bot, services, message.chat.id, lang)

    return router
