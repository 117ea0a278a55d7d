"""/language: the user picks the bot's language (Русский or English) over what Telegram says.

The choice is stored on the user (users.lang) and read by bot/middlewares.EnsureUser for every
update, so every lang_of(user) follows it; the jobs actor and the money follow-ups read it with
the user's row (store.accounts.User.speaks). Pressing a language turns the picker into the menu in
that language (one living message); a repeated press only says it again.
"""

from __future__ import annotations

from aiogram import Bot, F, Router
from aiogram.filters import Command
from aiogram.types import CallbackQuery, InlineKeyboardMarkup, Message

from bot import keyboards, screens
from bot.replies import chat_of
from bot.services import Services
from bot.texts import choose, lang_of, t
from store import accounts

CHOICE = "lang:"  # lang:ru | lang:en
LANGUAGES = ("ru", "en")


def picker() -> InlineKeyboardMarkup:
    """Each language named in itself, so a user who cannot read the current one still finds theirs."""
    return InlineKeyboardMarkup(inline_keyboard=[[keyboards.button(t(lang, f"btn_lang_{lang}"), f"{CHOICE}{lang}")
                                                  for lang in LANGUAGES]])


def router() -> Router:
    router = Router(name="language")

    @router.message(Command("language"))
    async def language(message: Message) -> None:
        await message.answer(t(lang_of(message.from_user), "language_pick"), reply_markup=picker())

    @router.callback_query(F.data.in_({f"{CHOICE}{lang}" for lang in LANGUAGES}))
    async def chosen(query: CallbackQuery, bot: Bot, services: Services) -> None:
        lang = (query.data or "").removeprefix(CHOICE)
        await accounts.choose_lang(services.database, services.settings.bot_id, query.from_user.id, lang)
        choose(query.from_user.id, lang)  # the rest of this update speaks it too
        text = "\n".join([t(lang, "language_set"), t(lang, "menu")])
        await screens.put(bot, chat_of(query), text, keyboards.main_menu(lang, services.catalog.families()),
                          over=screens.pressed_on(query))

    return router
