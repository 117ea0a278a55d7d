"""The last check before a request to Telegram leaves: is this instance still allowed to act?

A Telegram call cannot be fenced by the epoch, so the dispatcher's bot asks its lease right
before every request, after the send limiter's waits: a leader that lost its lease (a frozen
process woken up, a lock_keeper that stopped answering) sends nothing, and the update runs again
under whoever leads.
"""

from __future__ import annotations

from collections.abc import Callable

from aiogram import Bot
from aiogram.client.session.middlewares.base import BaseRequestMiddleware, NextRequestMiddlewareType
from aiogram.methods import TelegramMethod
from aiogram.methods.base import Response, TelegramType


class ActingRefused(Exception):
    """Nothing was sent: this instance is not ACTIVE within a valid lease right now."""


class SendGate(BaseRequestMiddleware):
    def __init__(self, may_act: Callable[[], bool]) -> None:
        self.may_act = may_act

    async def __call__(self, make_request: NextRequestMiddlewareType[TelegramType], bot: Bot,
                       method: TelegramMethod[TelegramType]) -> Response[TelegramType]:
        if not self.may_act():
            raise ActingRefused(f"{type(method).__api_method__} not sent: this instance may not act now")
        return await make_request(bot, method)
