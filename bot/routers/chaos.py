"""/chaos_raise and /chaos_hang: a handler that fails and one that never ends, for the chaos tests
of the dispatcher; /chaos_echo <token>: a reply carrying the token, so a soak can tell which
update each message answers. Included only when CHAOS_TOKEN is set (test and staging setups)."""

from __future__ import annotations

import asyncio

from aiogram import Router
from aiogram.filters import Command, CommandObject
from aiogram.types import Message


def router() -> Router:
    router = Router(name="chaos")

    @router.message(Command("chaos_raise"))
    async def chaos_raise(message: Message) -> None:
        raise RuntimeError("chaos: a handler failed on purpose")

    @router.message(Command("chaos_hang"))
    async def chaos_hang(message: Message) -> None:
        await asyncio.Event().wait()

    @router.message(Command("chaos_echo"))
    async def chaos_echo(message: Message, command: CommandObject) -> None:
        await message.answer(f"chaos_echo {command.args or ''}".rstrip())

    return router
