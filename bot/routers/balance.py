"""Balance: the money, what running generations hold, the free generations left today, the last
ledger entries, and Top up. Neither screen ends a wizard: a confirmation kept while the user
tops up is one button away ("Back to the confirmation")."""

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


def shown_entries(entries: list[accounts.Entry]) -> list[accounts.Entry]:
    """The newest ENTRIES as a user reads them: a finished generation is one line (its capture),
    not a hold and then a capture that look like two charges; a failed one none (its hold and
    release cancel out). A running generation's hold stays: that money is reserved now."""
    settled = {e.job_id for e in entries if e.kind in ("capture", "release")}
    return [e for e in entries if not (e.job_id in settled and e.kind in ("hold", "release"))][:ENTRIES]


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
    entries = shown_entries(await accounts.recent_entries(db, settings.bot_id, ctx.user_id, ENTRIES * 4))
    if entries:
        lines.append("")
        lines.append(ctx.t("balance_recent"))
        for entry in entries:
            day = entry.created_at.astimezone(settings.zone).strftime("%d.%m %H:%M")
            job = f" #{entry.job_id}" if entry.job_id else ""
            lines.append(f"• {day} {ctx.t('ledger_' + entry.kind)}{job}: {signed(ctx.lang, entry_amount(entry))}")
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
