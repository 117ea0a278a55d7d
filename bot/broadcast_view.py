"""What a broadcast looks like in Telegram, shared by the admin's screens (bot/routers/
admin_broadcast.py) and the broadcaster actor, so the preview is exactly what users get and the
progress message reads the same whoever edits it.

Callback data (≤ 64 bytes):

    adm:broadcast                          open the composer (the /admin menu's button)
    adm:broadcast:ok:<nonce>               confirm the preview keyed by <nonce>
    adm:broadcast:no[:<nonce>]             drop the composer or the preview
    adm:broadcast:<pause|resume|cancel>:<id>   the progress message's buttons
"""

from __future__ import annotations

from typing import Any

from aiogram import Bot
from aiogram.types import InlineKeyboardButton, InlineKeyboardMarkup, Message, MessageEntity

from bot.texts import t
from store.broadcasts import Broadcast, Content

PREFIX = "adm:broadcast"
CONFIRM = "ok"
DROP = "no"
CONTROLS = ("pause", "resume", "cancel")


def data(action: str, arg: str | int | None = None) -> str:
    return f"{PREFIX}:{action}" if arg is None else f"{PREFIX}:{action}:{arg}"


def content_of(message: Message) -> Content | None:
    """The admin's message as a broadcast: a text with its entities, or the largest size of a photo
    with its caption and the caption's entities; None for anything else."""
    if message.photo:
        return Content("photo", message.caption or "", _entities(message.caption_entities),
                       message.photo[-1].file_id)
    if message.text:
        return Content("text", message.text, _entities(message.entities))
    return None


def _entities(entities: list[MessageEntity] | None) -> list[dict[str, Any]]:
    return [e.model_dump(mode="json", exclude_none=True) for e in entities or []]


async def send_content(bot: Bot, chat_id: int, content: Content) -> Message:
    """The broadcast's message to one chat, as users get it (the preview uses it too). No parse
    mode: the entities carry the formatting exactly."""
    entities = [MessageEntity.model_validate(e) for e in content.entities] or None
    if content.kind == "photo" and content.photo:
        return await bot.send_photo(chat_id, content.photo, caption=content.text or None, caption_entities=entities,
                                    parse_mode=None)
    return await bot.send_message(chat_id, content.text, entities=entities, parse_mode=None)


def preview_keyboard(lang: str, nonce: str) -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup(inline_keyboard=[[
        InlineKeyboardButton(text=t(lang, "bc_confirm"), callback_data=data(CONFIRM, nonce)),
        InlineKeyboardButton(text=t(lang, "bc_cancel"), callback_data=data(DROP, nonce))]])


def drop_keyboard(lang: str) -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup(inline_keyboard=[[
        InlineKeyboardButton(text=t(lang, "bc_cancel"), callback_data=data(DROP))]])


def state_word(lang: str, state: str) -> str:
    return t(lang, f"bc_state_{state}")


def progress_text(lang: str, b: Broadcast) -> str:
    return t(lang, "bc_progress", id=b.id, state=state_word(lang, b.state), sent=b.sent, total=b.total,
             blocked=b.blocked, failed=b.failed, left=b.left)


def progress_keyboard(lang: str, b: Broadcast) -> InlineKeyboardMarkup | None:
    """Pause or Resume, and Cancel, while the broadcast can still change; none once it ended."""
    if b.finished:
        return None
    first = ("pause", "bc_pause") if b.state == "running" else ("resume", "bc_resume")
    return InlineKeyboardMarkup(inline_keyboard=[[
        InlineKeyboardButton(text=t(lang, first[1]), callback_data=data(first[0], b.id)),
        InlineKeyboardButton(text=t(lang, "bc_stop"), callback_data=data("cancel", b.id))]])


def final_text(lang: str, b: Broadcast) -> str:
    text = t(lang, "bc_final", id=b.id, state=state_word(lang, b.state), sent=b.sent, total=b.total,
             blocked=b.blocked, failed=b.failed)
    if b.left:
        text += t(lang, "bc_final_rest", left=b.left)
    return text
