"""/language: the user picks the bot's language over Telegram's. Placeholder: filled by issue 19."""

from __future__ import annotations

from aiogram import Router


def router() -> Router:
    return Router(name="language")
