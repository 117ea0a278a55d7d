"""Wizard buttons of a screen that is no longer the current one (the wizard moved on, ended, or
another began): a toast "this menu is outdated", and the old message loses its buttons — it
becomes a short note with one button that brings the current step down to the bottom of the chat
(or the menu outside a wizard). Never the current screen's buttons over an old message: an old
Confirm of one model is never answered with the Confirm of another under the thumb.
Confirm of a confirmation that already made its job (a double click, a replay after the wizard
ended) says so in a toast and makes sure its status message exists. Registered after the current
screen's buttons (bot/routers/steps.py): every wizard button they do not take ends here.
"""

from __future__ import annotations

from aiogram import Bot, F, Router
from aiogram.fsm.context import FSMContext
from aiogram.types import CallbackQuery, InlineKeyboardMarkup, Message

from bot import keyboards, screens
from bot.flow import Ctx, Press, Toast, Wiz, announce, confirmed_job, settle, show
from bot.services import Services

CONTINUE = keyboards.step_data("now", "go")  # no nonce is 3 characters long: never a screen's button


def presses(router: Router) -> None:
    """On the router of every wizard button (bot/routers/steps.py), after the current screen's."""

    @router.callback_query(F.data == CONTINUE)
    async def resume(query: CallbackQuery, bot: Bot, state: FSMContext, services: Services,
                     wiz: Wiz | None = None) -> None:
        """The current step again, as a new message at the bottom; the older ones lose their buttons."""
        ctx = Ctx.of(query, bot, services, state)
        if wiz is None:  # the wizard ended meanwhile: the menu
            await screens.put(bot, ctx.chat_id, ctx.t("outdated"),
                              keyboards.main_menu(ctx.lang, services.catalog.families()), over=ctx.over)
            return
        await screens.retire(bot, ctx.chat_id, ctx.over)
        ctx.over = None
        await show(ctx, wiz, fresh=False, save=False)

    @router.callback_query(F.data.startswith(keyboards.STEP))
    async def outdated(query: CallbackQuery, bot: Bot, state: FSMContext, services: Services, fence_epoch: int,
                       wiz: Wiz | None = None, toast: Toast | None = None, pre_answered: bool = False) -> None:
        ctx = Ctx.of(query, bot, services, state, toast=toast)
        press = Press.parse(query.data)
        if press is not None and press.action == "ok":
            job = await confirmed_job(ctx, press.nonce)
            if job is not None:
                told = job.status_message_id is not None
                notice = ctx.t("already_confirmed", id=job.user_number)
                toasted = told and await ctx.tell(notice)
                if _still_shows(query):  # a confirmation left with its buttons (a crash before its summary)
                    await settle(ctx, job, notice=notice if told and not toasted else None)
                await announce(ctx, job, fence_epoch)
                return
        await ctx.tell(ctx.t("outdated"))
        if pre_answered or not _still_shows(query) or (wiz is not None and ctx.over == wiz.shown):
            return  # a twin press that waited behind the first: the message shows what it led to already
        if ctx.over is None:  # not a text message we can turn into the note
            return
        if wiz is None:
            markup = keyboards.main_menu(ctx.lang, services.catalog.families())
        else:
            title = services.catalog.model(wiz.model).title.get(ctx.lang)
            markup = InlineKeyboardMarkup(inline_keyboard=[[keyboards.button(
                ctx.t("living_continue", model=title), CONTINUE)]])
        await screens.put(bot, ctx.chat_id, ctx.t("outdated"), markup, over=ctx.over)


def _still_shows(query: CallbackQuery) -> bool:
    """The pressed message still had the pressed button when the query was made (not edited since
    into what the first of two quick presses led to)."""
    message = query.message
    if not isinstance(message, Message) or message.reply_markup is None:
        return False
    return any(b.callback_data == query.data for row in message.reply_markup.inline_keyboard for b in row)
