"""Every wizard button (callback data "w:..."), on one router tried before all the others: a
field step's, the confirmation's, then an outdated screen's, which takes every one they do not.

Why: aiogram tries each router's filters in turn, and a Confirm pressed went through some twenty
routers and fifty filters (the menu's, the admin's, the payments'...) that can never take a "w:"
button, about a fifth of the CPU a burst of presses spends before KIE hears of its jobs
(issue 21). With the prefix checked once here, a wizard button reaches its handler at once and any
other callback pays one check. No other router handles a "w:" button (their data have prefixes of
their own: keyboards.py and each screen's module), so trying these first changes no answer. What
is typed during a step is a message and stays in order after the screens that must see it first
(bot/routers/__init__.py).
"""

from __future__ import annotations

from aiogram import F, Router

from bot import keyboards
from bot.routers import confirm, stale, wizard


def router() -> Router:
    router = Router(name="steps")
    router.callback_query.filter(F.data.startswith(keyboards.STEP))
    wizard.presses(router)
    confirm.presses(router)
    stale.presses(router)
    return router
