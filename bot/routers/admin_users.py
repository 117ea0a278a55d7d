"""Finding a user and changing them (ADMIN_IDS only): the card (balance, held, the ledger's tail,
generations, Stars payments, referrals, the blocked and banned flags), Adjust balance and Ban /
Unban. Every change is one fenced transaction with its audit row (store/admin_ops.py).

An adjustment is keyed by a nonce written into the admin's FSM data when they press Adjust, not
by the message: a replay of the update, or the admin sending the amount again after a crash
before the answer, finds the entry and moves nothing. The state ends only after the user was
told, so a crash in between tells them on the replay (at worst twice, never not at all).

Callback data: adm:user (find) | adm:user:show:<id> | adm:user:adj:<id> | adm:user:ban:<id> |
adm:user:unban:<id>.
"""

from __future__ import annotations

import re
import secrets
from decimal import Decimal

from aiogram import Bot, F, Router
from aiogram.filters import StateFilter
from aiogram.fsm.context import FSMContext
from aiogram.fsm.state import State, StatesGroup
from aiogram.fsm.storage.base import BaseStorage
from aiogram.types import CallbackQuery, InlineKeyboardMarkup, Message

from bot.admin_kit import back, counts, fit, when, word
from bot.admins import IsAdmin, is_admin
from bot.flow import Ctx
from bot.fsm_storage import forget
from bot.keyboards import button
from bot.money_in import after_credit
from bot.routers.balance import entry_amount
from bot.services import Services
from bot.texts import signed
from store import accounts, admin_ops, stats
from store.accounts import KeyReused, Overdraft, UnknownUser
from telemetry import logs

log = logs.get("bot")

FIND = "adm:user"
SHOW = "adm:user:show:"
ADJUST = "adm:user:adj:"
BAN = "adm:user:ban:"
UNBAN = "adm:user:unban:"
TAIL = 5
MAX_ADJUST = 100_000_000  # kopecks either way (1,000,000 ₽): a slip of the finger, not a policy
REASON_MAX = 300
# "+150 reason", "-50,5 reason", "150.25 ₽ reason", "−10 reason" (a typographic minus)
AMOUNT = re.compile(r"^\s*([+\-−]?)\s*(\d{1,12})(?:[.,](\d{1,2}))?\s*(?:₽|руб\.?|р\.|rub\b)?\s+(\S.*)$",
                    re.DOTALL | re.IGNORECASE)
TEXT = F.text & ~F.text.startswith("/")  # a command (/cancel, /start, /admin) is never taken as input


class AdminInput(StatesGroup):
    find = State()
    adjust = State()


INPUTS = (AdminInput.find.state, AdminInput.adjust.state)


def parse_adjustment(text: str) -> tuple[int, str] | None:
    """(kopecks, reason) from "<signed rubles> <reason>", or None."""
    match = AMOUNT.match(text)
    if match is None:
        return None
    sign, whole, part, reason = match.groups()
    kopecks = int(Decimal(f"{whole}.{part or '0'}") * 100)
    if sign in ("-", "−"):
        kopecks = -kopecks
    reason = " ".join(reason.split())[:REASON_MAX]
    if kopecks == 0 or abs(kopecks) > MAX_ADJUST or not reason:
        return None
    return kopecks, reason


def user_id_of(data: str | None, prefix: str) -> int | None:
    rest = (data or "").removeprefix(prefix)
    return int(rest) if rest.isdigit() else None


# --- the card ------------------------------------------------------------------------------------


async def card_text(ctx: Ctx, user: accounts.User) -> str:
    db, bot_id = ctx.services.database, ctx.services.settings.bot_id
    money = await accounts.balance(db, bot_id, user.user_id)
    card = await stats.card(db, bot_id, user.user_id, TAIL)
    username = f" @{user.username}" if user.username else ""
    lines = [ctx.t("adm_card_header", id=user.user_id, username=username, language=user.language or "—"),
             ctx.t("adm_card_seen", first=when(ctx, user.first_seen), last=when(ctx, user.last_seen)),
             ctx.t("adm_card_balance", balance=ctx.money(money.balance), held=ctx.money(money.held),
                   available=ctx.money(money.available))]
    if user.banned:
        lines.append(ctx.t("adm_card_banned"))
    if user.blocked:
        lines.append(ctx.t("adm_card_blocked"))
    lines.append("")
    lines.append(ctx.t("adm_card_jobs", states=counts(ctx, card.jobs_by_state, named="adm_state_")))
    for job in card.jobs:
        failure = f" ({job.failure})" if job.failure else ""
        lines.append(f"• j{job.id} {when(ctx, job.created_at)} {job.model} · {word(ctx, 'adm_state_', job.state)}"
                     f"{failure} · {ctx.money(job.price)} {word(ctx, 'adm_paid_', job.paid_with)}")
    lines.append(ctx.t("adm_card_payments", count=card.payments_count, stars=card.payments_stars,
                       money=ctx.money(card.payments_kopecks)))
    for payment in card.payments:
        refunded = f" · {ctx.t('adm_card_refunded')} {when(ctx, payment.refunded_at)}" if payment.refunded_at else ""
        recurring = " ↻" if payment.recurring else ""
        lines.append(f"• {when(ctx, payment.paid_at)} {payment.stars} ⭐ → {ctx.money(payment.kopecks)}{recurring}"
                     f"{refunded} · {payment.charge_id[:24]}")
    lines.append(ctx.t("adm_card_referrals", count=card.referred, paid=card.referred_paid,
                       referrer=card.referrer if card.referrer is not None else "—"))
    entries = await accounts.recent_entries(db, bot_id, user.user_id, TAIL)
    if entries:
        lines.append("")
        lines.append(ctx.t("adm_card_ledger"))
        for entry in entries:
            note = f" — {entry.note}" if entry.note else ""
            ref = f" j{entry.job_id}" if entry.job_id else ""
            lines.append(f"• #{entry.id} {when(ctx, entry.created_at)} {ctx.t('ledger_' + entry.kind)}{ref}: "
                         f"{signed(ctx.lang, entry_amount(entry))}{note}")
    return "\n".join(lines)


def card_buttons(ctx: Ctx, user: accounts.User) -> InlineKeyboardMarkup:
    uid = user.user_id
    ban = button(ctx.t("adm_btn_unban"), f"{UNBAN}{uid}") if user.banned else \
        button(ctx.t("adm_btn_ban"), f"{BAN}{uid}")
    return back(ctx, [button(ctx.t("adm_btn_adjust"), f"{ADJUST}{uid}"), ban],
                [button(ctx.t("adm_btn_refresh"), f"{SHOW}{uid}")])


async def send_card(ctx: Ctx, user: accounts.User) -> None:
    text, _ = fit(await card_text(ctx, user))
    await ctx.bot.send_message(ctx.chat_id, text, reply_markup=card_buttons(ctx, user))


async def ask_find(ctx: Ctx) -> None:
    await forget(ctx.state)
    await ctx.state.set_state(AdminInput.find)
    await ctx.bot.send_message(ctx.chat_id, ctx.t("adm_find_ask"), reply_markup=back(ctx))


async def show_found(ctx: Ctx, query: str) -> bool:
    """The card of the user `query` names (an id or @username), or "not found"; True if found."""
    user = await accounts.find_user(ctx.services.database, ctx.services.settings.bot_id, query)
    if user is None:
        await ctx.bot.send_message(ctx.chat_id, ctx.t("adm_not_found", query=query.strip()[:64]),
                                   reply_markup=back(ctx))
        return False
    await send_card(ctx, user)
    return True


async def show_id(ctx: Ctx, user_id: int | None) -> accounts.User | None:
    user = None if user_id is None else await accounts.get_user(ctx.services.database,
                                                                 ctx.services.settings.bot_id, user_id)
    if user is None:
        await ctx.bot.send_message(ctx.chat_id, ctx.t("adm_not_found", query=str(user_id)), reply_markup=back(ctx))
    return user


# --- changes -------------------------------------------------------------------------------------


async def ask_adjust(ctx: Ctx, user_id: int | None) -> None:
    user = await show_id(ctx, user_id)
    if user is None:
        return
    money = await accounts.balance(ctx.services.database, ctx.services.settings.bot_id, user.user_id)
    await forget(ctx.state)
    await ctx.state.set_state(AdminInput.adjust)
    await ctx.state.set_data({"adm_target": user.user_id, "adm_nonce": secrets.token_hex(8)})
    await ctx.bot.send_message(ctx.chat_id, ctx.t("adm_adjust_ask", id=user.user_id,
                                                  available=ctx.money(money.available)), reply_markup=back(ctx))


async def adjust(ctx: Ctx, text: str, epoch: int, storage: BaseStorage) -> None:
    """The admin typed "<amount> <reason>" for the user their Adjust named."""
    data = await ctx.state.get_data()
    target, nonce = data.get("adm_target"), data.get("adm_nonce")
    if not isinstance(target, int) or not isinstance(nonce, str):
        await forget(ctx.state)
        return
    parsed = parse_adjustment(text)
    if parsed is None:
        await ctx.bot.send_message(ctx.chat_id, ctx.t("adm_adjust_bad", limit=ctx.money(MAX_ADJUST)))
        return
    amount, reason = parsed
    services = ctx.services
    try:
        credited = await admin_ops.adjust(services.database, services.lock_name, epoch, services.settings.bot_id,
                                          ctx.user_id, target, amount, key=f"admin:{nonce}", reason=reason)
    except Overdraft:
        money = await accounts.balance(services.database, services.settings.bot_id, target)
        await ctx.bot.send_message(ctx.chat_id, ctx.t("adm_adjust_overdraw", amount=ctx.money(-amount),
                                                      available=ctx.money(money.available)))
        return  # the request stays open: the admin may send a smaller amount
    except KeyReused:
        await forget(ctx.state)
        await ctx.bot.send_message(ctx.chat_id, ctx.t("adm_adjust_reused"), reply_markup=back(ctx))
        return
    except UnknownUser:
        await forget(ctx.state)
        await ctx.bot.send_message(ctx.chat_id, ctx.t("adm_adjust_unknown", id=target), reply_markup=back(ctx))
        return
    log.info("admin_adjusted", extra={"user_id": target, "admin_id": ctx.user_id, "amount": amount,
                                      "fresh": credited.fresh, "entry": credited.entry.id})
    # told on a replay too: the state ends after telling, so a replay means they may not have been
    await after_credit(ctx.bot, services, storage, credited, reason=reason)
    key = "adm_adjust_done" if credited.fresh else "adm_adjust_again"
    await ctx.bot.send_message(ctx.chat_id, ctx.t(key, amount=signed(ctx.lang, credited.amount), id=target,
                                                  entry=credited.entry.id,
                                                  balance=ctx.money(credited.balance.available)),
                               reply_markup=back(ctx, [button(ctx.t("adm_btn_refresh"), f"{SHOW}{target}")]))
    await forget(ctx.state)


async def ban(ctx: Ctx, user_id: int | None, banned: bool, epoch: int) -> None:
    user = await show_id(ctx, user_id)
    if user is None:
        return
    if banned and is_admin(ctx.services, user.user_id):
        await ctx.bot.send_message(ctx.chat_id, ctx.t("adm_ban_admin"), reply_markup=back(ctx))
        return
    services = ctx.services
    before = await admin_ops.set_ban(services.database, services.lock_name, epoch, services.settings.bot_id,
                                     ctx.user_id, user.user_id, banned)
    log.info("admin_ban", extra={"user_id": user.user_id, "admin_id": ctx.user_id, "banned": banned,
                                 "changed": before is not None and before != banned})
    if before == banned:
        state = ctx.t("adm_state_banned" if banned else "adm_state_unbanned")
        await ctx.bot.send_message(ctx.chat_id, ctx.t("adm_ban_same", id=user.user_id, state=state))
    else:
        await ctx.bot.send_message(ctx.chat_id, ctx.t("adm_ban_done" if banned else "adm_unban_done",
                                                      id=user.user_id))
    fresh = await accounts.get_user(services.database, services.settings.bot_id, user.user_id)
    if fresh is not None:
        await send_card(ctx, fresh)


def router() -> Router:
    router = Router(name="admin_users")
    router.message.filter(IsAdmin())
    router.callback_query.filter(IsAdmin())

    @router.callback_query(F.data == FIND)
    async def find_button(query: CallbackQuery, bot: Bot, state: FSMContext, services: Services) -> None:
        await ask_find(Ctx.of(query, bot, services, state))

    @router.message(StateFilter(AdminInput.find), TEXT)
    async def find_typed(message: Message, bot: Bot, state: FSMContext, services: Services) -> None:
        ctx = Ctx.of(message, bot, services, state)
        if await show_found(ctx, message.text or ""):
            await forget(state)

    @router.callback_query(F.data.startswith(SHOW))
    async def show_button(query: CallbackQuery, bot: Bot, state: FSMContext, services: Services) -> None:
        ctx = Ctx.of(query, bot, services, state)
        user = await show_id(ctx, user_id_of(query.data, SHOW))
        if user is not None:
            await send_card(ctx, user)

    @router.callback_query(F.data.startswith(ADJUST))
    async def adjust_button(query: CallbackQuery, bot: Bot, state: FSMContext, services: Services) -> None:
        await ask_adjust(Ctx.of(query, bot, services, state), user_id_of(query.data, ADJUST))

    @router.message(StateFilter(AdminInput.adjust), TEXT)
    async def adjust_typed(message: Message, bot: Bot, state: FSMContext, services: Services, fence_epoch: int,
                           fsm_storage: BaseStorage) -> None:
        await adjust(Ctx.of(message, bot, services, state), message.text or "", fence_epoch, fsm_storage)

    @router.callback_query(F.data.startswith(BAN))
    async def ban_button(query: CallbackQuery, bot: Bot, state: FSMContext, services: Services,
                         fence_epoch: int) -> None:
        await ban(Ctx.of(query, bot, services, state), user_id_of(query.data, BAN), True, fence_epoch)

    @router.callback_query(F.data.startswith(UNBAN))
    async def unban_button(query: CallbackQuery, bot: Bot, state: FSMContext, services: Services,
                           fence_epoch: int) -> None:
        await ban(Ctx.of(query, bot, services, state), user_id_of(query.data, UNBAN), False, fence_epoch)

    return router
