"""Promo codes: a user redeems one with /promo CODE, or the Promo code button (pr:enter) and then
the code as a message; admins create, list and disable codes (adm:promo..., IsAdmin).

Redemption is store/promo.py's (once per user per code, never past max uses); an amount code's
credit is told by bot/money_in.after_credit like any other money in, and the redemption is marked
told only after that, so an update run again after a crash tells the user instead of "already
used". The button asks for the code with a state of its own, except inside the wizard: there it
says to send /promo CODE, which works in any state and keeps the confirmation the user is on.

Admin screens: adm:promo (the newest codes with their uses and a Disable button each, New),
adm:promo:new (the next message is "CODE rub|gen VALUE USES DAYS"), adm:promo:off:<id>. Each
action writes its audit row in its own fenced transaction. Anyone else's adm:promo falls through
(IsAdmin) to the outdated-button answer, as if no admin screen existed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation

from aiogram import Bot, F, Router
from aiogram.filters import Command, CommandObject
from aiogram.fsm.context import FSMContext
from aiogram.fsm.state import State, StatesGroup
from aiogram.fsm.storage.base import BaseStorage
from aiogram.types import CallbackQuery, InlineKeyboardMarkup, Message

from bot import keyboards
from bot.admins import IsAdmin
from bot.flow import Ctx, Wizard
from bot.fsm_storage import forget
from bot.money_in import after_credit
from bot.services import Services
from store import audit, promo
from store.fence import fenced
from telemetry import logs

log = logs.get("bot")

ADMIN = "adm:promo"
ADMIN_NEW = "adm:promo:new"
ADMIN_OFF = "adm:promo:off:"
ADMIN_MENU = "adm:menu"  # H4's admin main menu (bot/routers/admin.py)
LISTED = 20
MAX_KOPECKS = 100_000_000  # 1,000,000 ₽ per code
MAX_GENERATIONS = 1000
MAX_USES = 1_000_000
MAX_DAYS = 3650
AMOUNT_KINDS = ("rub", "₽", "руб", "amount")
GENERATION_KINDS = ("gen", "gens", "ген", "generations")


class PromoEntry(StatesGroup):
    code = State()  # the user pressed Promo code: their next message is the code


class PromoAdmin(StatesGroup):
    create = State()  # an admin pressed New: their next message is the code's line


@dataclass(frozen=True, slots=True)
class NewCode:
    code: str
    kind: promo.Kind
    value: int
    max_uses: int
    days: int


def parse_new(line: str) -> NewCode | str:
    """An admin's "CODE rub|gen VALUE USES DAYS", or the text key of what is wrong with it."""
    parts = line.split()
    if len(parts) != 5:
        return "promo_admin_bad_number" if len(parts) > 1 else "promo_admin_bad_code"
    code, kind, value, uses, days = parts
    code = promo.normalize(code)
    if not promo.CODE.fullmatch(code):
        return "promo_admin_bad_code"
    if not (uses.isdigit() and days.isdigit() and 0 < int(uses) <= MAX_USES and 0 < int(days) <= MAX_DAYS):
        return "promo_admin_bad_number"
    if kind.lower() in AMOUNT_KINDS:
        try:
            kopecks = Decimal(value.replace(",", ".")) * 100
        except InvalidOperation:
            return "promo_admin_bad_number"
        if not kopecks.is_finite() or kopecks != kopecks.to_integral_value() or not 0 < kopecks <= MAX_KOPECKS:
            return "promo_admin_bad_number"
        return NewCode(code, "amount", int(kopecks), int(uses), int(days))
    if kind.lower() in GENERATION_KINDS:
        if not (value.isdigit() and 0 < int(value) <= MAX_GENERATIONS):
            return "promo_admin_bad_number"
        return NewCode(code, "generations", int(value), int(uses), int(days))
    return "promo_admin_bad_kind"


def shown(text: str) -> str:
    """A typed code as it may be shown back: normalized and short."""
    return promo.normalize(text)[:32]


def value_text(ctx: Ctx, code: promo.Code) -> str:
    return ctx.money(code.value) if code.kind == "amount" else ctx.t("promo_admin_gens", count=code.value)


def until_text(ctx: Ctx, when: datetime) -> str:
    return when.astimezone(ctx.services.settings.zone).strftime("%d.%m.%Y")


async def redeem(ctx: Ctx, text: str, storage: BaseStorage, epoch: int) -> None:
    settings, db = ctx.services.settings, ctx.services.database
    try:
        done = await promo.redeem(db, ctx.services.lock_name, epoch, settings.bot_id, ctx.user_id, text)
    except promo.Refused as exc:
        log.info("promo_refused", extra={"user_id": ctx.user_id, "reason": exc.reason})
        await ctx.bot.send_message(ctx.chat_id, ctx.t("promo_" + exc.reason, code=shown(text)),
                                   reply_markup=keyboards.menu_button(ctx.lang))
        return
    log.info("promo_redeemed", extra={"user_id": ctx.user_id, "code_id": done.code.id, "fresh": done.fresh})
    if done.credited is not None:
        await after_credit(ctx.bot, ctx.services, storage, done.credited, lang=ctx.lang)
    else:
        await ctx.bot.send_message(ctx.chat_id, ctx.t("promo_generations", code=done.code.code,
                                                      count=done.generations),
                                   reply_markup=keyboards.menu_button(ctx.lang))
    await promo.told(db, settings.bot_id, done.code.id, ctx.user_id)


async def ask(ctx: Ctx, raw_state: str | None) -> None:
    if raw_state == Wizard.step.state:  # keep the wizard (and a kept confirmation): /promo CODE works there
        await ctx.bot.send_message(ctx.chat_id, ctx.t("promo_ask_in_wizard"))
        return
    await ctx.state.set_state(PromoEntry.code)
    await ctx.bot.send_message(ctx.chat_id, ctx.t("promo_ask"), reply_markup=keyboards.menu_button(ctx.lang))


# --- the admin's screens ----------------------------------------------------------------------

def admin_markup(ctx: Ctx, codes: list[promo.Code]) -> InlineKeyboardMarkup:
    now = datetime.now(UTC)
    rows = [[keyboards.button(ctx.t("btn_promo_new"), ADMIN_NEW)]]
    rows += [[keyboards.button(ctx.t("promo_admin_off", code=c.code), f"{ADMIN_OFF}{c.id}")]
             for c in codes if c.status(now) == "active"]
    rows.append([keyboards.button(ctx.t("btn_promo_admin_back"), ADMIN_MENU),
                 keyboards.button(ctx.t("btn_menu"), keyboards.MENU_OPEN)])
    return InlineKeyboardMarkup(inline_keyboard=rows)


async def send_admin(ctx: Ctx, notice: str | None = None) -> None:
    codes = await promo.codes(ctx.services.database, ctx.services.settings.bot_id, LISTED)
    now = datetime.now(UTC)
    lines = [notice, ""] if notice else []
    lines.append(ctx.t("promo_admin_title"))
    lines += [ctx.t("promo_admin_line", code=c.code, value=value_text(ctx, c), uses=c.uses, max_uses=c.max_uses,
                    until=until_text(ctx, c.expires_at), status=ctx.t("promo_status_" + c.status(now)))
              for c in codes] or [ctx.t("promo_admin_none")]
    await ctx.bot.send_message(ctx.chat_id, "\n".join(lines), reply_markup=admin_markup(ctx, codes))


async def create(services: Services, epoch: int, admin_id: int, new: NewCode) -> promo.Code:
    """The code and its audit row in one fenced transaction; raises promo.CodeTaken."""
    bot_id = services.settings.bot_id
    async with fenced(services.database, services.lock_name, epoch) as conn:
        code = await promo.create(conn, bot_id, admin_id, new.code, new.kind, new.value, new.max_uses,
                                  datetime.now(UTC) + timedelta(days=new.days))
        await audit.record(conn, bot_id, admin_id, "promo_create", target=f"promo:{code.id}", after=code.audit())
    return code


async def disable(services: Services, epoch: int, admin_id: int, code_id: int) -> promo.Code | None:
    bot_id = services.settings.bot_id
    async with fenced(services.database, services.lock_name, epoch) as conn:
        changed = await promo.disable(conn, bot_id, code_id, admin_id)
        if changed is None:
            return None
        before, after = changed
        await audit.record(conn, bot_id, admin_id, "promo_disable", target=f"promo:{code_id}",
                           before=before.audit(), after=after.audit())
    return after


def router() -> Router:
    router = Router(name="promo")

    @router.callback_query(F.data == ADMIN, IsAdmin())
    async def admin_list(query: CallbackQuery, bot: Bot, state: FSMContext, services: Services) -> None:
        await send_admin(Ctx.of(query, bot, services, state))

    @router.callback_query(F.data == ADMIN_NEW, IsAdmin())
    async def admin_new(query: CallbackQuery, bot: Bot, state: FSMContext, services: Services) -> None:
        ctx = Ctx.of(query, bot, services, state)
        await forget(state)
        await state.set_state(PromoAdmin.create)
        await bot.send_message(ctx.chat_id, ctx.t("promo_admin_ask"))

    @router.message(PromoAdmin.create, F.text, ~F.text.startswith("/"), IsAdmin())
    async def admin_line(message: Message, bot: Bot, state: FSMContext, services: Services,
                         fence_epoch: int) -> None:
        ctx = Ctx.of(message, bot, services, state)
        new = parse_new(message.text or "")
        if isinstance(new, str):
            await bot.send_message(ctx.chat_id, ctx.t("promo_admin_bad", why=ctx.t(new)))
            return
        try:
            code = await create(services, fence_epoch, ctx.user_id, new)
        except promo.CodeTaken:
            await bot.send_message(ctx.chat_id, ctx.t("promo_admin_taken", code=new.code))
            return
        await forget(state)
        log.info("promo_created", extra={"admin_id": ctx.user_id, "code_id": code.id})
        await send_admin(ctx, ctx.t("promo_admin_created", code=code.code, value=value_text(ctx, code),
                                    max_uses=code.max_uses, until=until_text(ctx, code.expires_at)))

    @router.callback_query(F.data.regexp(re.compile(rf"^{ADMIN_OFF}\d{{1,18}}$")), IsAdmin())
    async def admin_off(query: CallbackQuery, bot: Bot, state: FSMContext, services: Services,
                        fence_epoch: int) -> None:
        ctx = Ctx.of(query, bot, services, state)
        code = await disable(services, fence_epoch, ctx.user_id, int((query.data or "").removeprefix(ADMIN_OFF)))
        if code is None:
            await send_admin(ctx, ctx.t("promo_admin_unknown"))
            return
        log.info("promo_disabled", extra={"admin_id": ctx.user_id, "code_id": code.id})
        await send_admin(ctx, ctx.t("promo_admin_disabled", code=code.code))

    # --- users ---------------------------------------------------------------------------------

    @router.message(Command("promo"))
    async def promo_command(message: Message, command: CommandObject, bot: Bot, state: FSMContext,
                            services: Services, fsm_storage: BaseStorage, fence_epoch: int,
                            raw_state: str | None = None) -> None:
        ctx = Ctx.of(message, bot, services, state)
        if command.args and command.args.strip():
            await redeem(ctx, command.args, fsm_storage, fence_epoch)
        else:
            await ask(ctx, raw_state)

    @router.callback_query(F.data == keyboards.PROMO)
    async def promo_button(query: CallbackQuery, bot: Bot, state: FSMContext, services: Services,
                           raw_state: str | None = None) -> None:
        await ask(Ctx.of(query, bot, services, state), raw_state)

    @router.message(PromoEntry.code, F.text, ~F.text.startswith("/"))
    async def promo_typed(message: Message, bot: Bot, state: FSMContext, services: Services,
                          fsm_storage: BaseStorage, fence_epoch: int) -> None:
        await redeem(Ctx.of(message, bot, services, state), message.text or "", fsm_storage, fence_epoch)
        await forget(state)  # after: an update run again after a crash still finds the state

    return router
