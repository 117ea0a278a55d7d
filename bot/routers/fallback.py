"""Anything no other router took: the user always gets the menu back, never silence. Included last."""

from __future__ import annotations

from aiogram import Bot, Router
from aiogram.types import CallbackQuery, Message

from bot import keyboards
from bot.replies import chat_of, send_menu
from bot.routers.menu import families
from bot.services import Services
from bot.texts import lang_of, t


def router() -> Router:
    router = Router(name="fallback")

    @router.message()
    async def unknown_message(message: Message, services: Services | None = None) -> None:
        await send_menu(message, lang_of(message.from_user), "fallback", families(services))

    @router.callback_query()
    async def unknown_button(query: CallbackQuery, bot: Bot, services: Services | None = None) -> None:
        lang = lang_of(query.from_user)
        await bot.send_message(chat_of(query), t(lang, "fallback"),
                               reply_markup=keyboards.main_menu(lang, families(services)))

    return router
