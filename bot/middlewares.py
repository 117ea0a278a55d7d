"""Update middlewares that hold for every handler, so no handler can forget them."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from aiogram import BaseMiddleware
from aiogram.exceptions import TelegramAPIError, TelegramNetworkError
from aiogram.types import CallbackQuery, TelegramObject

from telemetry import logs

log = logs.get("bot")


class AnswerCallbackFirst(BaseMiddleware):
    """Answers a callback query before any business logic: the button's spinner stops at once,
    and a handler that fails or runs long cannot leave it spinning.

    The dispatcher answers a query that had to wait behind its chat early and says so with
    `pre_answered`; answering twice would only earn an error from Telegram.
    """

    async def __call__(self, handler: Callable[[TelegramObject, dict[str, Any]], Awaitable[Any]],
                       event: TelegramObject, data: dict[str, Any]) -> Any:
        if isinstance(event, CallbackQuery) and not data.get("pre_answered"):
            try:
                await event.answer()
            except (TelegramAPIError, TelegramNetworkError) as exc:  # too old, or Telegram hiccup
                log.info("callback_answer_failed", extra={"error_text": str(exc)[:200]})
        return await handler(event, data)
