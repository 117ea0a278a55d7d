"""The aiogram Bot pointed at TELEGRAM_API_BASE (Telegram, a local Bot API server, or the fake)."""

from __future__ import annotations

from aiogram import Bot
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer

from bot.limiter import SendLimiter

# the update types the bot handles: what setWebhook / getUpdates ask Telegram for
ALLOWED_UPDATES = ["message", "edited_message", "callback_query", "pre_checkout_query", "my_chat_member"]


def make_bot(token: str, api_base: str, timeout: float = 10.0, *, limiter: SendLimiter | None = None) -> Bot:
    """A Bot whose requests time out after `timeout` seconds; with a limiter (the dispatcher's bot)
    they are paced and wait out 429s, without one a 429 reaches the caller (webhook_setter)."""
    session = AiohttpSession(api=TelegramAPIServer.from_base(api_base), timeout=timeout)
    if limiter is not None:
        session.middleware(limiter)
    return Bot(token, session=session)
