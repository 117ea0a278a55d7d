"""What every admin screen shares (bot/routers/admin*.py): the Panel button under it, dates in
BOT_TIMEZONE, and a text cut to fit one Telegram message."""

from __future__ import annotations

from datetime import datetime

from aiogram.types import InlineKeyboardMarkup

from bot.flow import Ctx
from bot.keyboards import Row, button

PANEL = "adm:menu"
LIMIT = 4000  # Telegram takes 4096 characters (UTF-16 units) a message; a margin for a notice


def back(ctx: Ctx, *first: Row) -> InlineKeyboardMarkup:
    """`first` rows, then "Panel": under every admin screen."""
    return InlineKeyboardMarkup(inline_keyboard=[*first, [button(ctx.t("adm_btn_panel"), PANEL)]])


def units(text: str) -> int:
    """The text's length as Telegram counts it (UTF-16 code units)."""
    return len(text.encode("utf-16-le")) // 2


def fit(text: str, limit: int = LIMIT) -> tuple[str, bool]:
    """The text cut at a line to fit one message; True when it was cut."""
    if units(text) <= limit:
        return text, False
    kept: list[str] = []
    used = 0
    for line in text.split("\n"):
        size = units(line) + 1
        if used + size > limit:
            break
        kept.append(line)
        used += size
    return "\n".join(kept) if kept else text[: limit // 2], True


def when(ctx: Ctx, at: datetime | None) -> str:
    """A moment in BOT_TIMEZONE, or a dash for never."""
    if at is None:
        return ctx.t("adm_unknown_time")
    return at.astimezone(ctx.services.settings.zone).strftime("%d.%m.%Y %H:%M")


def counts(ctx: Ctx, items: list[tuple[str, int]] | dict[str, int], *, named: str | None = None) -> str:
    """"name n, name n" or "none"; `named`: the names are keys of texts `<named><name>` (a job's
    state in the admin's language rather than the database's word)."""
    pairs = list(items.items()) if isinstance(items, dict) else items
    if not pairs:
        return ctx.t("adm_none")
    return ", ".join(f"{word(ctx, named, name) if named else name} {n}" for name, n in pairs)


def word(ctx: Ctx, prefix: str, name: str) -> str:
    """The text `<prefix><name>`, or the name itself when there is none (a state added later)."""
    text = ctx.t(prefix + name)
    return name if text == prefix + name else text
