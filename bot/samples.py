"""The family samples a model card offers (catalog/samples/<family>.mp4 or .png): uploaded the
first time, then sent by the file_id Telegram gave back, so a sample is uploaded once per process
(file ids belong to one bot; one Telegram refuses is forgotten and the file uploaded again).
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from aiogram import Bot
from aiogram.exceptions import TelegramBadRequest
from aiogram.types import BufferedInputFile, InlineKeyboardMarkup, Message

from telemetry import logs

log = logs.get("bot")

SAMPLES = Path(__file__).resolve().parent.parent / "catalog" / "samples"
KINDS = (("mp4", "video"), ("png", "photo"))  # a clip before a picture, when a family has both

_file_ids: dict[tuple[int, str], str] = {}  # (bot id, family) -> Telegram's file_id of the sample


def path(family: str) -> tuple[Path, str] | None:
    """The family's sample file and how it is sent (video, photo), or None when there is none."""
    for suffix, kind in KINDS:
        file = SAMPLES / f"{family}.{suffix}"
        if file.is_file():
            return file, kind
    return None


async def send(bot: Bot, chat_id: int, family: str, caption: str, markup: InlineKeyboardMarkup | None = None
               ) -> Message | None:
    """The family's sample in the chat, with `caption` and `markup`; None when it has none."""
    found = path(family)
    if found is None:
        return None
    file, kind = found
    key = (bot.id, family)
    known = _file_ids.get(key)
    if known is not None:
        try:
            return await _send(bot, kind, chat_id, known, caption, markup)
        except TelegramBadRequest as exc:  # an id of another bot or a lost file: upload again
            log.info("sample_file_id_refused", extra={"error_text": exc.message[:200]})
            _file_ids.pop(key, None)
    upload = BufferedInputFile(await asyncio.to_thread(file.read_bytes), filename=file.name)
    sent = await _send(bot, kind, chat_id, upload, caption, markup)
    file_id = _file_id(sent)
    if file_id is not None:
        _file_ids[key] = file_id
    return sent


async def _send(bot: Bot, kind: str, chat_id: int, media: str | BufferedInputFile, caption: str,
                markup: InlineKeyboardMarkup | None) -> Message:
    if kind == "video":
        return await bot.send_video(chat_id, media, caption=caption, reply_markup=markup)
    return await bot.send_photo(chat_id, media, caption=caption, reply_markup=markup)


def _file_id(message: Message) -> str | None:
    if message.video is not None:
        return message.video.file_id
    if message.photo:
        return message.photo[-1].file_id
    return None


def forget() -> None:
    """Every remembered file_id dropped (a test's fresh fake Telegram knows none of them)."""
    _file_ids.clear()
