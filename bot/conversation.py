"""aiogram's Dispatcher for the whole conversation: every router in order, and the middlewares
that hold for every handler so no handler can forget them."""

from __future__ import annotations

from aiogram import Dispatcher
from aiogram.fsm.storage.base import BaseStorage
from aiogram.fsm.storage.memory import MemoryStorage

from bot.inline_filters import run_filters_inline
from bot.middlewares import AnswerCallbackFirst, EnsureUser, LoadWizard, Met
from bot.routers import routers
from bot.services import Services


def build_dispatcher(storage: BaseStorage | None = None, *, chaos: bool = False,
                     services: Services | None = None) -> Dispatcher:
    """With `services` (the tree's database, settings, catalog and jobs wake) the product's
    screens are included: they are in workflow data as `services`, every user gets an account at
    first contact, and the wizard's data is read once per update. Handlers then need `fence_epoch`
    from feed_update (the dispatcher actor passes it)."""
    # the FSM's middleware (its read of the chat's state) goes after the account's, which tells
    # the FSM cache when a first contact found their private chat clear: registered here, in order
    dp = Dispatcher(storage=storage or MemoryStorage(), disable_fsm=True)
    dp.update.outer_middleware(AnswerCallbackFirst())
    if services is not None:
        dp["services"] = services
        dp.update.outer_middleware(EnsureUser(Met(), dp.fsm))
    dp.update.outer_middleware(dp.fsm)
    if services is not None:
        for observer in (dp.message, dp.callback_query):
            observer.outer_middleware(LoadWizard())
    dp.include_routers(*routers(chaos_on=chaos, product=services is not None))
    run_filters_inline(dp)  # magic filters would each take a trip through a thread
    return dp
