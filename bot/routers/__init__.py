"""One router per screen, in the order aiogram tries them: commands and stateless screens first
(so /start, /cancel, /balance... leave or interrupt any wizard step), then the wizard's steps,
then outdated wizard buttons, and the fallback last."""

from __future__ import annotations

from aiogram import Router

from bot.routers import balance, chaos, confirm, fallback, history, menu, models, quiet, stale, wizard


def routers(*, chaos_on: bool = False, product: bool = False) -> list[Router]:
    """Fresh routers in order (a router can belong to one dispatcher only). `product`: the
    catalog, wizard, history and balance screens, which need the services (bot/services.py)."""
    ordered = [chaos.router()] if chaos_on else []
    ordered.append(menu.router(product=product))
    if product:
        ordered += [models.router(), balance.router(), history.router(), wizard.router(), confirm.router(),
                    stale.router()]
    return [*ordered, quiet.router(), fallback.router()]
