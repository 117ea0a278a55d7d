"""A human behind /paysupport: the user writes one message (a text, a screenshot) to support,
every admin gets it with a Reply button, and the admin's answer reaches the user in the bot.

Telegram's terms want payment questions answered in the bot; "write here" must mean someone
reads it. Both sides are typed inputs that keep what they interrupt (bot/typed_input.py), so a
confirmation kept while the user asks is still there afterwards. Commands are never taken as the
message: /start or /cancel leave the input as anywhere else.
"""

from __future__ import annotations

from aiogram import Bot, F, Router
from aiogram.exceptions import TelegramAPIError, TelegramNetworkError
from aiogram.filters import StateFilter
from aiogram.fsm.context import FSMContext
from aiogram.fsm.state import State, StatesGroup
from aiogram.types import CallbackQuery, InlineKeyboardButton, InlineKeyboardMarkup, Message

from bot import keyboards
from bot.admins import IsAdmin
from bot.flow import Ctx
from bot.money_in import language
from bot.services import Services
from bot.texts import t
from bot.typed_input import ask_input, end_input
from store import audit
from telemetry import logs

log = logs.get("bot")

WRITE = keyboards.SUPPORT_WRITE
CANCEL = "sup:cancel"
REPLY = "sup:reply:"
TO = "sup_to"  # the admin's FSM data: whom the reply goes to
NOT_A_COMMAND = ~F.text.startswith("/")


class SupportInput(StatesGroup):
    message = State()  # the user writes to support
    reply = State()  # an admin writes the answer


def _cancel(lang: str) -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup(inline_keyboard=[[InlineKeyboardButton(text=t(lang, "btn_cancel"),
                                                                       callback_data=CANCEL)]])


def _reply(lang: str, user_id: int) -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup(inline_keyboard=[[InlineKeyboardButton(text=t(lang, "btn_support_reply"),
                                                                       callback_data=f"{REPLY}{user_id}")]])


async def _after(ctx: Ctx, text: str) -> None:
    """The input is over: the kept confirmation's way back, or the menu."""
    wiz = await end_input(ctx.state)
    markup = keyboards.top_up(ctx.lang, keyboards.step_data(wiz.nonce, "show")) if wiz else keyboards.menu_button(
        ctx.lang)
    await ctx.bot.send_message(ctx.chat_id, text, reply_markup=markup)


def router() -> Router:
    router = Router(name="support")

    @router.callback_query(F.data == WRITE)
    async def write(query: CallbackQuery, bot: Bot, state: FSMContext, services: Services) -> None:
        ctx = Ctx.of(query, bot, services, state)
        if not services.settings.admin_ids:
            await bot.send_message(ctx.chat_id, ctx.t("support_nobody"), reply_markup=keyboards.menu_button(ctx.lang))
            return
        await ask_input(state, SupportInput.message)
        await bot.send_message(ctx.chat_id, ctx.t("support_ask"), reply_markup=_cancel(ctx.lang))

    @router.callback_query(F.data == CANCEL, StateFilter(SupportInput.message, SupportInput.reply))
    async def cancel(query: CallbackQuery, bot: Bot, state: FSMContext, services: Services) -> None:
        ctx = Ctx.of(query, bot, services, state)
        await _after(ctx, ctx.t("cancelled"))

    @router.message(StateFilter(SupportInput.message), NOT_A_COMMAND)
    async def to_support(message: Message, bot: Bot, state: FSMContext, services: Services) -> None:
        """Every admin gets who wrote and a copy of the message (media kept) under a Reply button."""
        ctx = Ctx.of(message, bot, services, state)
        user = message.from_user
        assert user is not None
        reached = 0
        for admin in sorted(services.settings.admin_ids):
            lang = await language(services, admin)
            who = t(lang, "support_from", name=user.full_name, id=user.id,
                    username=f"@{user.username}" if user.username else "—", language=ctx.lang)
            try:
                await bot.send_message(admin, who, reply_markup=_reply(lang, user.id))
                await bot.copy_message(admin, message.chat.id, message.message_id)
                reached += 1
            except (TelegramAPIError, TelegramNetworkError) as exc:  # another admin may still get it
                log.warning("support_forward_failed", extra={"admin": admin, "error_text": str(exc)[:200]})
        log.info("support_message", extra={"user_id": user.id, "admins_reached": reached})
        if not reached:  # keep the input: the user may send it again
            await bot.send_message(ctx.chat_id, ctx.t("support_failed"), reply_markup=_cancel(ctx.lang))
            return
        await _after(ctx, ctx.t("support_sent"))

    @router.callback_query(F.data.startswith(REPLY), IsAdmin())
    async def reply(query: CallbackQuery, bot: Bot, state: FSMContext, services: Services) -> None:
        ctx = Ctx.of(query, bot, services, state)
        text = (query.data or "")[len(REPLY):]
        if not text.isdigit():
            return
        await ask_input(state, SupportInput.reply)
        await state.update_data({TO: int(text)})
        await bot.send_message(ctx.chat_id, ctx.t("support_reply_ask", id=text), reply_markup=_cancel(ctx.lang))

    @router.message(StateFilter(SupportInput.reply), NOT_A_COMMAND, IsAdmin())
    async def answer(message: Message, bot: Bot, state: FSMContext, services: Services) -> None:
        """The admin's answer to the user: a header in the user's language, then the message as
        written (media kept); audited like every admin action."""
        ctx = Ctx.of(message, bot, services, state)
        target = (await state.get_data()).get(TO)
        if not isinstance(target, int):
            await _after(ctx, ctx.t("cancelled"))
            return
        lang = await language(services, target)
        try:
            await bot.send_message(target, t(lang, "support_answer"))
            await bot.copy_message(target, message.chat.id, message.message_id,
                                   reply_markup=keyboards.menu_button(lang))
        except (TelegramAPIError, TelegramNetworkError) as exc:
            log.warning("support_answer_failed", extra={"user_id": target, "error_text": str(exc)[:200]})
            await bot.send_message(ctx.chat_id, ctx.t("support_answer_failed", id=target),
                                   reply_markup=_cancel(ctx.lang))
            return
        await audit.record(services.database.require(), services.settings.bot_id, ctx.user_id, "support_reply",
                           target=str(target), after={"text": (message.text or message.caption or "")[:500]})
        await _after(ctx, ctx.t("support_answer_sent", id=target))

    return router

