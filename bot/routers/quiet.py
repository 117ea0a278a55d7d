"""Update types that need no answer: handled (marked ok), not left to the fallback."""

from __future__ import annotations

from aiogram import Router
from aiogram.types import ChatMemberUpdated, Message

from telemetry import logs

log = logs.get("bot")


def router() -> Router:
    router = Router(name="quiet")

    @router.edited_message()
    async def edited(message: Message) -> None:
        return None

    @router.my_chat_member()
    async def membership(event: ChatMemberUpdated) -> None:
        log.info("chat_member", extra={"chat_id": event.chat.id, "status": event.new_chat_member.status})

    return router
