"""One router per screen, in the order aiogram tries them: the commands Telegram's terms require
(/paysupport, /terms, /privacy) and payments first (they must work in any state), then the
admin's screens (ADMIN_IDS only: anyone else falls through), then commands and stateless screens
(so /start, /cancel, /balance... leave or interrupt any wizard step), then the wizard's steps,
then outdated wizard buttons, and the fallback last."""

from __future__ import annotations

from aiogram import Router

from bot.routers import (
    admin,
    admin_broadcast,
    admin_refunds,
    admin_transfers,
    admin_users,
    balance,
    chaos,
    confirm,
    fallback,
    history,
    legal,
    menu,
    models,
    promo,
    quiet,
    referral,
    stale,
    stars,
    subscription,
    support,
    transfer,
    wizard,
)


def routers(*, chaos_on: bool = False, product: bool = False) -> list[Router]:
    """Fresh routers in order (a router can belong to one dispatcher only). `product`: the
    catalog, wizard, history, balance, payments and admin screens, which need the services
    (bot/services.py)."""
    ordered = [chaos.router()] if chaos_on else []
    if product:
        ordered += [legal.router(), support.router(), subscription.router(), stars.router(), admin.router(),
                    admin_users.router(), admin_transfers.router(), admin_refunds.router(), admin_broadcast.router(),
                    referral.router()]
    ordered.append(menu.router(product=product))
    if product:
        ordered += [models.router(), balance.router(), transfer.router(), promo.router(), history.router(),
                    wizard.router(), confirm.router(), stale.router()]
    return [*ordered, quiet.router(), fallback.router()]
