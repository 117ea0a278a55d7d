"""aiogram's Dispatcher for the whole conversation: every router in order, and the middlewares
that hold for every handler so no handler can forget them."""

from __future__ import annotations

from aiogram import Dispatcher
from aiogram.fsm.storage.base import BaseStorage
from aiogram.fsm.storage.memory import MemoryStorage

from bot.middlewares import AnswerCallbackFirst
from bot.routers import routers


def build_dispatcher(storage: BaseStorage | None = None, *, chaos: bool = False) -> Dispatcher:
    dp = Dispatcher(storage=storage or MemoryStorage())
    dp.callback_query.outer_middleware(AnswerCallbackFirst())
    dp.include_routers(*routers(chaos_on=chaos))
    return dp
