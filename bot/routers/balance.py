"""Balance: the money, what running generations hold, the free generations left today, the last
history lines (a generation is one), and Top up. Neither screen ends a wizard: a confirmation
kept while the user tops up is one button away ("Back to the confirmation")."""

from __future__ import annotations

from aiogram import Bot, F, Router
from aiogram.filters import Command
from aiogram.fsm.context import FSMContext
from aiogram.types import CallbackQuery, Message

from bot import keyboards
from bot.flow import CONFIRM, Ctx, Wiz
from bot.routers import stars
from bot.services import Services
from bot.texts import signed
from store import accounts, jobs

ENTRIES = 5


def back_to(wiz: Wiz | None) -> str | None:
    """The kept confirmation's Show button, when the wizard is at a confirmation."""
    return keyboards.step_data(wiz.nonce, "show") if wiz is not None and wiz.at == CONFIRM else None


def entry_amount(entry: accounts.Entry) -> int:
    """What the entry did to the user's money as they see it: a hold takes from what is available,
    a release gives it back, the rest move the balance."""
    return entry.balance_delta if entry.balance_delta else -entry.held_delta


def history_line(ctx: Ctx, line: accounts.HistoryLine) -> str:
    """A history line as people count money: a generation is one line by the user's own number
    (reserved while it runs, then paid or returned), never a hold and a capture as two debits."""
    settings = ctx.services.settings
    day = line.created_at.astimezone(settings.zone).strftime("%d.%m %H:%M")
    if line.kind == "job" and line.state is not None:
        catalog = ctx.services.catalog
        model = line.model or ""
        title = catalog.model(model).title.get(ctx.lang) if model in catalog else model
        text = ctx.t(f"gen_line_{line.state}", n=line.user_number, model=title, amount=signed(ctx.lang, line.amount),
                     zero=ctx.money(0))
    else:
        text = f"{ctx.t('ledger_' + line.kind)}: {signed(ctx.lang, line.amount)}"
    return f"• {day} {text}"


async def send_balance(ctx: Ctx, wiz: Wiz | None) -> None:
    settings, db = ctx.services.settings, ctx.services.database
    money = await accounts.balance(db, settings.bot_id, ctx.user_id)
    used = await jobs.free_used(db, settings.bot_id, ctx.user_id, jobs.local_day(settings.zone))
    lines = [ctx.t("balance_header", balance=ctx.money(money.balance))]
    if money.held:
        lines.append(ctx.t("balance_held", held=ctx.money(money.held), available=ctx.money(money.available)))
    if ctx.user_id in settings.admin_ids:
        lines.append(ctx.t("balance_admin"))
    lines.append(ctx.t("balance_free_left", left=max(0, settings.free_daily_limit - used),
                       limit=settings.free_daily_limit))
    recent = await accounts.history(db, settings.bot_id, ctx.user_id, ENTRIES)
    if recent:
        lines.append("")
        lines.append(ctx.t("balance_recent"))
        lines += [history_line(ctx, line) for line in recent]
    transfer = bool((settings.payment_transfer_details or "").strip())  # bot/routers/transfer.py, when on
    await ctx.bot.send_message(ctx.chat_id, "\n".join(lines),
                               reply_markup=keyboards.balance(ctx.lang, back_to(wiz), transfer=transfer))


def router() -> Router:
    router = Router(name="balance")

    @router.message(Command("balance"))
    async def balance(message: Message, bot: Bot, state: FSMContext, services: Services,
                      wiz: Wiz | None = None) -> None:
        await send_balance(Ctx.of(message, bot, services, state), wiz)

    @router.callback_query(F.data == keyboards.MENU_BALANCE)
    async def balance_button(query: CallbackQuery, bot: Bot, state: FSMContext, services: Services,
                             wiz: Wiz | None = None) -> None:
        await send_balance(Ctx.of(query, bot, services, state), wiz)

    @router.callback_query(F.data == keyboards.TOP_UP)
    async def top_up(query: CallbackQuery, bot: Bot, state: FSMContext, services: Services,
                     wiz: Wiz | None = None) -> None:
        """The Stars packs (bot/routers/stars.py), with the way back to a kept confirmation."""
        await stars.send_screen(Ctx.of(query, bot, services, state), back_to(wiz))

    return router
