"""One living message per flow: a screen replaces the message whose button asked for it (a page
turn, a choice, Back, an error) instead of stacking a new message under it, and a screen the user
has moved past loses its buttons, so an old keyboard is never one tap from the wrong action.

Editing can fail for reasons that are not ours (the message is too old, it is a photo, the user
deleted it): the screen is then sent as a new message, never lost.
"""

from __future__ import annotations

from aiogram import Bot
from aiogram.exceptions import TelegramAPIError, TelegramBadRequest
from aiogram.types import CallbackQuery, InlineKeyboardMarkup, Message

from telemetry import logs

log = logs.get("bot")


def pressed_on(query: CallbackQuery) -> int | None:
    """The text message a button was pressed on, when it can be edited into the next screen."""
    message = query.message
    if not isinstance(message, Message) or message.text is None:
        return None  # gone (InaccessibleMessage), or a photo/document whose caption is not a screen
    return message.message_id


async def put(bot: Bot, chat_id: int, text: str, markup: InlineKeyboardMarkup | None = None, *,
              over: int | None = None) -> int:
    """The screen in the chat: the message `over` edited into it, or a new message when there is
    none or it cannot be edited. Returns the id of the message that shows it."""
    if over is not None:
        try:
            await bot.edit_message_text(text=text, chat_id=chat_id, message_id=over, reply_markup=markup)
            return over
        except TelegramBadRequest as exc:
            if "not modified" in exc.message:
                return over
            log.info("screen_edit_refused", extra={"error_text": exc.message[:200]})
    sent = await bot.send_message(chat_id, text, reply_markup=markup)
    return sent.message_id


async def retire(bot: Bot, chat_id: int, message_id: int | None) -> None:
    """Best effort: the buttons of a screen the user has moved past are taken away."""
    if message_id is None:
        return
    try:
        await bot.edit_message_reply_markup(chat_id=chat_id, message_id=message_id, reply_markup=None)
    except TelegramAPIError as exc:  # not modified, too old, deleted: nothing to take away
        log.debug("screen_retire_skipped", extra={"error_text": str(exc)[:200]})
