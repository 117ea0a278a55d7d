"""Whatever a user sends with no flow open (a prompt, a photo, a video, an audio): the bot offers
what it can do with it instead of "I did not understand". Placeholder: filled by issue 19."""

from __future__ import annotations

from aiogram import Router


def router() -> Router:
    return Router(name="intake")
