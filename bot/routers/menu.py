"""The main menu: /start, /help, /cancel, the Menu and Help buttons. /start greets with what the
user has and what things cost (bot/first_screen.py); the menu offers an idea to try, the families
to create with (the catalog's, when the product is on), then top up, balance, history and help.

These only send messages and clear state, which is safe to repeat when an update runs again
after a crash (README "Replays"). /start, /cancel and Menu leave any wizard step.
"""

from __future__ import annotations

from collections.abc import Sequence

from aiogram import Bot, F, Router
from aiogram.filters import Command, CommandStart
from aiogram.fsm.context import FSMContext
from aiogram.types import CallbackQuery, Message

from bot import keyboards, screens
from bot.first_screen import greeting, help_text
from bot.flow import Wiz
from bot.fsm_storage import forget
from bot.replies import chat_of, send_menu
from bot.services import Services
from bot.texts import lang_of, t
from catalog.families import FAMILIES, Family

# sections that answer "coming soon" while the product's routers are not included (no services)
PLACEHOLDERS = (keyboards.MENU_IMAGE, keyboards.MENU_VIDEO, keyboards.MENU_BALANCE, keyboards.MENU_HISTORY,
                keyboards.IDEA, keyboards.TOP_UP)


def families(services: Services | None) -> Sequence[Family]:
    return services.catalog.families() if services is not None else FAMILIES


async def leave_any(bot: Bot | None, chat_id: int, state: FSMContext, wiz: Wiz | None) -> bool:
    """Any wizard ends, and its screen loses its buttons (no Confirm left live above the menu).
    True when there was one."""
    had = await forget(state) is not None
    if wiz is not None and wiz.shown is not None and bot is not None:
        await screens.retire(bot, chat_id, wiz.shown)
    return had


async def welcome(message: Message, state: FSMContext, services: Services | None = None, *,
                  first_contact: bool = False, wiz: Wiz | None = None) -> None:
    """/start's answer: any wizard left, the greeting (what the user has, what things cost, how to
    start: bot/first_screen.py) and the main menu (also after a deep link's own work, e.g.
    bot/routers/referral.py linking a new user). `first_contact`: this update opened the account."""
    lang = lang_of(message.from_user)
    await leave_any(message.bot, message.chat.id, state, wiz)
    text = await greeting(services, message.from_user, lang, first_contact=first_contact)
    await message.answer(text, reply_markup=keyboards.main_menu(lang, families(services)))


def router(*, product: bool = False) -> Router:
    router = Router(name="menu")

    @router.message(CommandStart())
    async def start(message: Message, state: FSMContext, services: Services | None = None,
                    first_contact: bool = False, wiz: Wiz | None = None) -> None:
        await welcome(message, state, services, first_contact=first_contact, wiz=wiz)

    @router.message(Command("help"))
    async def help_(message: Message, services: Services | None = None) -> None:
        lang = lang_of(message.from_user)
        user_id = message.from_user.id if message.from_user else None
        await message.answer(await help_text(services, user_id, lang), reply_markup=keyboards.menu_button(lang))

    @router.message(Command("cancel"))
    async def cancel(message: Message, state: FSMContext, services: Services | None = None,
                     wiz: Wiz | None = None) -> None:
        lang = lang_of(message.from_user)
        had = await leave_any(message.bot, message.chat.id, state, wiz)
        await send_menu(message, lang, "cancelled" if had else "nothing_to_cancel", families(services))

    @router.callback_query(F.data == keyboards.MENU_OPEN)
    async def open_menu(query: CallbackQuery, bot: Bot, state: FSMContext, services: Services | None = None,
                        wiz: Wiz | None = None) -> None:
        """The menu over the pressed message (one living message), and any wizard ends."""
        lang = lang_of(query.from_user)
        over = screens.pressed_on(query)
        if wiz is not None and wiz.shown == over:
            wiz.shown = None  # that very screen becomes the menu: nothing to retire
        await leave_any(bot, chat_of(query), state, wiz)
        await screens.put(bot, chat_of(query), t(lang, "menu"), keyboards.main_menu(lang, families(services)),
                          over=over)

    @router.callback_query(F.data == keyboards.MENU_HELP)
    async def help_button(query: CallbackQuery, bot: Bot, services: Services | None = None) -> None:
        lang = lang_of(query.from_user)
        await bot.send_message(chat_of(query), await help_text(services, query.from_user.id, lang),
                               reply_markup=keyboards.menu_button(lang))

    if product:
        @router.callback_query(F.data.in_((keyboards.MENU_IMAGE, keyboards.MENU_VIDEO)))
        async def old_sections(query: CallbackQuery, bot: Bot, services: Services) -> None:
            """The first menu's "image" and "video" buttons, in old messages: the families now."""
            lang = lang_of(query.from_user)
            await bot.send_message(chat_of(query), t(lang, "menu"),
                                   reply_markup=keyboards.main_menu(lang, families(services)))
    else:
        @router.callback_query(F.data.in_(PLACEHOLDERS) | F.data.startswith(keyboards.FAMILY))
        async def section(query: CallbackQuery, bot: Bot) -> None:
            lang = lang_of(query.from_user)
            await bot.send_message(chat_of(query), t(lang, "coming_soon"), reply_markup=keyboards.main_menu(lang))

    return router
