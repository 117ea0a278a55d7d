"""One router per screen, in the order aiogram tries them: every wizard button (bot/routers/steps.py:
one check of their prefix, and no other router takes one), the commands Telegram's terms require
(/paysupport, /terms, /privacy: they work in any state) and an invitation's /start, the menu
(/start, /cancel, /help leave any step), the admin's screens (ADMIN_IDS only: anyone else falls
through), support and payments (before the wizard, whose steps would take a payment's message
as an answer), the other stateless screens, what is typed at the wizard's steps, what a user
sends with no flow open (intake), and the fallback last."""

from __future__ import annotations

from aiogram import Router

from bot.routers import (
    actions,
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
    intake,
    language,
    legal,
    menu,
    models,
    promo,
    quiet,
    referral,
    stars,
    steps,
    subscription,
    support,
    transfer,
    wizard,
)


def routers(*, chaos_on: bool = False, product: bool = False) -> list[Router]:
    """Fresh routers in order (a router can belong to one dispatcher only). `product`: the
    catalog, wizard, history, balance, payments and admin screens, which need the services
    (bot/services.py). The menu comes as early as it may (right after the wizard's buttons, what
    must work in any state and the invitation's /start), so /start and the menu's buttons, most
    of the traffic, skip the routers after it; none of those handles a command the menu knows."""
    ordered = [chaos.router()] if chaos_on else []
    if product:
        ordered += [steps.router(), legal.router(), referral.router()]
    ordered.append(menu.router(product=product))
    if product:
        ordered += [language.router(), admin.router(), admin_users.router(), admin_transfers.router(),
                    admin_refunds.router(), admin_broadcast.router(), support.router(), subscription.router(),
                    stars.router(), models.router(), balance.router(), transfer.router(), promo.router(),
                    history.router(), actions.router(), wizard.router(), confirm.router(), intake.router()]
    return [*ordered, quiet.router(), fallback.router()]
