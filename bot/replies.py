"""Small pieces every screen uses: where a button's answer goes, the user's name, the main menu."""

from __future__ import annotations

from collections.abc import Sequence

from aiogram.types import CallbackQuery, Message, User

from bot import keyboards
from bot.texts import t
from catalog.families import FAMILIES, Family


def chat_of(query: CallbackQuery) -> int:
    """The chat a button was pressed in (the user's private chat when the message is gone)."""
    return query.message.chat.id if query.message is not None else query.from_user.id


def name_of(user: User | None, lang: str) -> str:
    return (user.first_name if user and user.first_name else t(lang, "friend"))[:64]


async def send_menu(message: Message, lang: str, text_key: str = "menu",
                    families: Sequence[Family] = FAMILIES) -> None:
    await message.answer(t(lang, text_key), reply_markup=keyboards.main_menu(lang, families))
