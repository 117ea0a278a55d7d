"""One router per screen, in the order aiogram tries them: the fallback comes last."""

from __future__ import annotations

from aiogram import Router

from bot.routers import chaos, fallback, menu, quiet


def routers(*, chaos_on: bool = False) -> list[Router]:
    """Fresh routers in order (a router can belong to one dispatcher only)."""
    ordered = [chaos.router()] if chaos_on else []
    return [*ordered, menu.router(), quiet.router(), fallback.router()]
