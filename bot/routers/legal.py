"""/paysupport, /terms and /privacy, which Telegram's terms require every bot that sells to
answer, in any state: this router comes first and leaves the state alone (a kept confirmation
survives). Texts from PAYSUPPORT_TEXT / TERMS_TEXT / PRIVACY_TEXT, else the defaults."""

from __future__ import annotations

from aiogram import Bot, Router
from aiogram.filters import Command
from aiogram.types import Message

from bot import keyboards
from bot.services import Services
from bot.texts import lang_of, money, t
from store import stars

PAYMENTS = 5


async def paysupport_text(services: Services, user_id: int, lang: str) -> str:
    """How to get help, and the user's recent payments with their charge ids (what Telegram's
    dispute form and our support ask for)."""
    settings = services.settings
    lines = [settings.paysupport_text or t(lang, "paysupport_default"), ""]
    payments = await stars.recent_payments(services.database, settings.bot_id, user_id=user_id, limit=PAYMENTS)
    if not payments:
        lines.append(t(lang, "paysupport_none"))
    else:
        lines.append(t(lang, "paysupport_header"))
        for p in payments:
            day = p.paid_at.astimezone(settings.zone).strftime("%d.%m.%Y %H:%M")
            state = t(lang, "paysupport_refunded") if p.state == "refunded" else ""
            lines.append(t(lang, "paysupport_line", day=day, stars=p.stars, amount=money(lang, p.kopecks),
                           charge=p.charge_id, state=state))
    return "\n".join(lines)


def router() -> Router:
    router = Router(name="legal")

    @router.message(Command("paysupport"))
    async def paysupport(message: Message, bot: Bot, services: Services) -> None:
        lang, user = lang_of(message.from_user), message.from_user
        assert user is not None
        await bot.send_message(message.chat.id, await paysupport_text(services, user.id, lang),
                               reply_markup=keyboards.support(lang))

    @router.message(Command("terms"))
    async def terms(message: Message, bot: Bot, services: Services) -> None:
        lang = lang_of(message.from_user)
        await bot.send_message(message.chat.id, services.settings.terms_text or t(lang, "terms_default"),
                               reply_markup=keyboards.menu_button(lang))

    @router.message(Command("privacy"))
    async def privacy(message: Message, bot: Bot, services: Services) -> None:
        lang = lang_of(message.from_user)
        await bot.send_message(message.chat.id, services.settings.privacy_text or t(lang, "privacy_default"),
                               reply_markup=keyboards.menu_button(lang))

    return router
