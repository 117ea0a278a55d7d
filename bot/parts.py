"""A long text Telegram split: clients cut a message at 4096 characters and send the rest as
the next message, so a 5,000-character prompt arrives as 4,096 + 904. Taking the first part
alone refuses a prompt the user never sent, taking the second is a fragment starting
mid-sentence: a text this long is held instead (in the FSM data, next to the wizard's), the user
is told so ("send the rest, or Use as is"), and the next text is joined to it. Nothing waits or
sleeps: a part is held until the next text or the button, whichever comes first.
"""

from __future__ import annotations

from typing import Any

from aiogram.types import InlineKeyboardMarkup

from bot import keyboards, screens
from bot.flow import Ctx
from bot.texts import t

LONG = 3_900  # characters: a message this long is likely a part (Telegram cuts at 4096, at a space or newline)
KEY = "part"  # the FSM data's key of the held text: {"t": text, "n": the note's message id}
USE_AS_IS = "in:use"  # the note's button (handled by bot/routers/intake.py in any state)


def use_as_is(lang: str) -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup(inline_keyboard=[[keyboards.button(t(lang, "btn_use_as_is"), USE_AS_IS)]])


async def _held(ctx: Ctx) -> tuple[dict[str, Any], dict[str, Any] | None]:
    data = await ctx.state.get_data()
    part = data.get(KEY)
    return data, part if isinstance(part, dict) and isinstance(part.get("t"), str) else None


async def receive(ctx: Ctx, text: str) -> str | None:
    """A typed text as the prompt it belongs to: joined to a held part, or None while it is held
    (the user was told; the next text or Use as is brings it back)."""
    data, part = await _held(ctx)
    whole = part["t"] + text if part is not None else text
    note = part.get("n") if part is not None else None
    if len(text) >= LONG:  # (another) part: more may follow
        notice = ctx.t("part_held", count=len(whole))
        note = await screens.put(ctx.bot, ctx.chat_id, notice, use_as_is(ctx.lang),
                                 over=note if isinstance(note, int) else None)
        await ctx.state.set_data({**data, KEY: {"t": whole, "n": note}})
        return None
    if part is not None:
        await _release(ctx, data, note, ctx.t("part_joined", count=len(whole)))
    return whole


async def take(ctx: Ctx) -> str | None:
    """The held text as it is (Use as is), or None when nothing is held (the button is old)."""
    data, part = await _held(ctx)
    if part is None:
        return None
    text: str = part["t"]
    await _release(ctx, data, part.get("n"), ctx.t("part_taken", count=len(text)))
    return text


async def _release(ctx: Ctx, data: dict[str, Any], note: object, said: str) -> None:
    """The held part is gone from the data, and its note says what became of it (no button)."""
    await ctx.state.set_data({k: v for k, v in data.items() if k != KEY})
    if isinstance(note, int) and note != ctx.over:  # the note pressed becomes the next screen itself
        await screens.put(ctx.bot, ctx.chat_id, said, None, over=note)
