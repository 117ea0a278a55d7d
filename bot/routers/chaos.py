"""/chaos_raise and /chaos_hang: a handler that fails and one that never ends, for the chaos tests
of the dispatcher; /chaos_echo <token> [seconds]: a reply carrying the token (after working that
long), so a soak can tell which update each message answers. Included only when CHAOS_TOKEN is
set (test and staging setups)."""

from __future__ import annotations

import asyncio

from aiogram import Router
from aiogram.filters import Command, CommandObject
from aiogram.types import Message

from ingest.turns import away


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
        """`/chaos_echo <token> [seconds]`: answers "chaos_echo <token>", after working `seconds`
        (at most 10) the way a real handler does, so a soak's faults find updates mid-handler."""
        token, _, rest = (command.args or "").partition(" ")
        try:
            seconds = min(10.0, max(0.0, float(rest))) if rest.strip() else 0.0
        except ValueError:
            seconds = 0.0
        if seconds:
            async with away():  # work that waits on the outside, as a Bot API call does: no turn held
                await asyncio.sleep(seconds)
        await message.answer(f"chaos_echo {token}".rstrip())

    return router
