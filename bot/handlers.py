"""The bot's conversation: /start with the main menu, /help, /cancel, menu buttons and a fallback.

Every handler may run again for the same update after a crash (delivery into handlers is
at-least-once, see README "Replays"): these only send messages and clear state, which is safe to
repeat; handlers that move money or start generations use idempotency keys derived from the
update. Product issues add routers for the sections the menu opens.
"""

from __future__ import annotations

import asyncio

from aiogram import Dispatcher, F, Router
from aiogram.filters import Command, CommandStart
from aiogram.fsm.context import FSMContext
from aiogram.fsm.storage.base import BaseStorage
from aiogram.fsm.storage.memory import MemoryStorage
from aiogram.types import CallbackQuery, ChatMemberUpdated, Message, User

import logs
from bot import keyboards
from bot.middlewares import AnswerCallbackFirst
from bot.texts import lang_of, t
from store.fsm import PostgresStorage

log = logs.get("bot")

SECTIONS = (keyboards.MENU_IMAGE, keyboards.MENU_VIDEO, keyboards.MENU_BALANCE, keyboards.MENU_HISTORY)


def _name(user: User | None, lang: str) -> str:
    return (user.first_name if user and user.first_name else t(lang, "friend"))[:64]


async def send_menu(message: Message, lang: str, text_key: str = "menu") -> None:
    await message.answer(t(lang, text_key), reply_markup=keyboards.main_menu(lang))


async def forget(state: FSMContext) -> str | None:
    """Ends any wizard: state and data cleared, the state it was in returned. One statement on
    PostgresStorage; aiogram's FSMContext.clear is two writes."""
    if isinstance(state.storage, PostgresStorage):
        return await state.storage.clear(state.key)
    previous = await state.get_state()
    await state.clear()
    return previous


def core_router() -> Router:
    router = Router(name="core")

    @router.message(CommandStart())
    async def start(message: Message, state: FSMContext) -> None:
        lang = lang_of(message.from_user)
        await forget(state)
        await message.answer(t(lang, "welcome", name=_name(message.from_user, lang)),
                             reply_markup=keyboards.main_menu(lang))

    @router.message(Command("help"))
    async def help_(message: Message) -> None:
        lang = lang_of(message.from_user)
        await message.answer(t(lang, "help"), reply_markup=keyboards.menu_button(lang))

    @router.message(Command("cancel"))
    async def cancel(message: Message, state: FSMContext) -> None:
        lang = lang_of(message.from_user)
        had = await forget(state) is not None
        await send_menu(message, lang, "cancelled" if had else "nothing_to_cancel")

    @router.callback_query(F.data == keyboards.MENU_OPEN)
    async def open_menu(query: CallbackQuery, state: FSMContext) -> None:
        lang = lang_of(query.from_user)
        await forget(state)
        await query.bot.send_message(_chat_of(query), t(lang, "menu"), reply_markup=keyboards.main_menu(lang))

    @router.callback_query(F.data == keyboards.MENU_HELP)
    async def help_button(query: CallbackQuery) -> None:
        lang = lang_of(query.from_user)
        await query.bot.send_message(_chat_of(query), t(lang, "help"), reply_markup=keyboards.menu_button(lang))

    @router.callback_query(F.data.in_(SECTIONS))
    async def section(query: CallbackQuery) -> None:  # the product issues replace these one by one
        lang = lang_of(query.from_user)
        await query.bot.send_message(_chat_of(query), t(lang, "coming_soon"), reply_markup=keyboards.main_menu(lang))

    return router


def quiet_router() -> Router:
    """Update types that need no answer: they are handled (marked ok), not left to the fallback."""
    router = Router(name="quiet")

    @router.edited_message()
    async def edited(message: Message) -> None:
        return None

    @router.my_chat_member()
    async def membership(event: ChatMemberUpdated) -> None:
        log.info("chat_member", extra={"chat_id": event.chat.id, "status": event.new_chat_member.status})

    return router


def fallback_router() -> Router:
    """Anything no other router took: the user always gets the menu back, never silence."""
    router = Router(name="fallback")

    @router.message()
    async def unknown_message(message: Message) -> None:
        await send_menu(message, lang_of(message.from_user), "fallback")

    @router.callback_query()
    async def unknown_button(query: CallbackQuery) -> None:
        lang = lang_of(query.from_user)
        await query.bot.send_message(_chat_of(query), t(lang, "fallback"), reply_markup=keyboards.main_menu(lang))

    return router


def chaos_router() -> Router:
    """/chaos_raise and /chaos_hang: a handler that fails and one that never ends, for the chaos
    tests of the dispatcher. Present only when CHAOS_TOKEN is set (test and staging setups)."""
    router = Router(name="chaos")

    @router.message(Command("chaos_raise"))
    async def chaos_raise(message: Message) -> None:
        raise RuntimeError("chaos: a handler failed on purpose")

    @router.message(Command("chaos_hang"))
    async def chaos_hang(message: Message) -> None:
        await asyncio.Event().wait()

    return router


def _chat_of(query: CallbackQuery) -> int:
    return query.message.chat.id if query.message is not None else query.from_user.id


def build_dispatcher(storage: BaseStorage | None = None, *, chaos: bool = False) -> Dispatcher:
    """aiogram's Dispatcher with every router in order; the fallback comes last."""
    dp = Dispatcher(storage=storage or MemoryStorage())
    dp.callback_query.outer_middleware(AnswerCallbackFirst())
    if chaos:
        dp.include_router(chaos_router())
    dp.include_routers(core_router(), quiet_router(), fallback_router())
    return dp
