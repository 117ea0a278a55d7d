"""The main menu: /start, /help, /cancel, the Menu and Help buttons, and the menu's sections.

These only send messages and clear state, which is safe to repeat when an update runs again
after a crash (README "Replays").
"""

from __future__ import annotations

from aiogram import Bot, F, Router
from aiogram.filters import Command, CommandStart
from aiogram.fsm.context import FSMContext
from aiogram.types import CallbackQuery, Message

from bot import keyboards
from bot.fsm_storage import forget
from bot.replies import chat_of, name_of, send_menu
from bot.texts import lang_of, t

SECTIONS = (keyboards.MENU_IMAGE, keyboards.MENU_VIDEO, keyboards.MENU_BALANCE, keyboards.MENU_HISTORY)


def router() -> Router:
    router = Router(name="menu")

    @router.message(CommandStart())
    async def start(message: Message, state: FSMContext) -> None:
        lang = lang_of(message.from_user)
        await forget(state)
        await message.answer(t(lang, "welcome", name=name_of(message.from_user, lang)),
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
    async def open_menu(query: CallbackQuery, bot: Bot, state: FSMContext) -> None:
        lang = lang_of(query.from_user)
        await forget(state)
        await bot.send_message(chat_of(query), t(lang, "menu"), reply_markup=keyboards.main_menu(lang))

    @router.callback_query(F.data == keyboards.MENU_HELP)
    async def help_button(query: CallbackQuery, bot: Bot) -> None:
        lang = lang_of(query.from_user)
        await bot.send_message(chat_of(query), t(lang, "help"), reply_markup=keyboards.menu_button(lang))

    @router.callback_query(F.data.in_(SECTIONS))
    async def section(query: CallbackQuery, bot: Bot) -> None:  # the product's routers replace these one by one
        lang = lang_of(query.from_user)
        await bot.send_message(chat_of(query), t(lang, "coming_soon"), reply_markup=keyboards.main_menu(lang))

    return router
