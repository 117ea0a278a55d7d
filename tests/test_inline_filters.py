"""Synchronous filters are awaited on the loop: no update's routing waits for a thread."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import pytest
from aiogram import Bot, Dispatcher, F, Router
from aiogram.dispatcher.event.handler import FilterObject
from aiogram.filters import Filter
from aiogram.types import CallbackQuery, Update, User

from bot.conversation import build_dispatcher
from bot.inline_filters import run_filters_inline
from bot.routers import routers
from fakes.telegram_api import callback_update
from tests.procs import FAKE_TOKEN

pytestmark = pytest.mark.timeout(30)


class CountingExecutor(ThreadPoolExecutor):
    """The loop's default executor, counting what is sent to it (asyncio.to_thread uses it)."""

    def __init__(self) -> None:
        super().__init__(max_workers=2)
        self.submitted = 0

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]:
        self.submitted += 1
        return super().submit(fn, *args, **kwargs)


class FromOwner(Filter):
    async def __call__(self, query: CallbackQuery) -> bool:
        return query.from_user.id == 7


def filters(dp: Dispatcher) -> Iterator[FilterObject]:
    def walk(router: Router) -> Iterator[FilterObject]:
        for observer in router.observers.values():
            yield from observer._handler.filters or ()
            for handler in observer.handlers:
                yield from handler.filters or ()
        for sub in router.sub_routers:
            yield from walk(sub)
    return walk(dp)


def a_router(seen: list[tuple[str, Any]]) -> Router:
    router = Router(name="sample")
    router.callback_query.filter(F.data.startswith("s:"))  # a router's own magic filter

    @router.callback_query(F.data == "s:exact")
    async def exact(query: CallbackQuery) -> None:
        seen.append(("exact", query.data))

    @router.callback_query(F.data.startswith("s:n:").as_("raw"), lambda query: query.data.count(":") == 2)
    async def named(query: CallbackQuery, raw: bool) -> None:  # .as_ hands its value to the handler
        seen.append(("named", raw))

    @router.callback_query(F.data.startswith("s:"), FromOwner())
    async def owner(query: CallbackQuery) -> None:
        seen.append(("owner", query.data))
    return router


async def feed(dp: Dispatcher, bot: Bot, data: str, user: int = 7) -> Any:
    update = callback_update(1, 99, data, user_id=user)
    return await dp.feed_update(bot, Update.model_validate(update, context={"bot": bot}))


async def test_magic_and_plain_filters_route_as_before_without_a_thread() -> None:
    executor = CountingExecutor()
    asyncio.get_running_loop().set_default_executor(executor)
    seen: list[tuple[str, Any]] = []
    dp = Dispatcher()
    dp.include_router(a_router(seen))
    assert run_filters_inline(dp) == 5  # four magic filters and the lambda; FromOwner was awaitable already
    bot = Bot(FAKE_TOKEN)
    try:
        await feed(dp, bot, "s:exact")
        await feed(dp, bot, "s:n:5")
        await feed(dp, bot, "s:n:5:6")  # the lambda says no: the owner's handler takes it
        await feed(dp, bot, "s:other", user=8)  # nobody's
        await feed(dp, bot, "elsewhere")  # the router's own filter says no
    finally:
        await bot.session.close()
    assert seen == [("exact", "s:exact"), ("named", True), ("owner", "s:n:5:6")]
    assert executor.submitted == 0
    executor.shutdown()


async def test_without_the_change_aiogram_sends_each_magic_filter_to_a_thread() -> None:
    """The cost this module removes, shown on aiogram itself: if aiogram stops doing it, this fails
    and the module can go."""
    executor = CountingExecutor()
    asyncio.get_running_loop().set_default_executor(executor)
    seen: list[tuple[str, Any]] = []
    dp = Dispatcher()
    dp.include_router(a_router(seen))
    bot = Bot(FAKE_TOKEN)
    try:
        await feed(dp, bot, "s:exact")
    finally:
        await bot.session.close()
    assert seen == [("exact", "s:exact")]
    assert executor.submitted >= 2
    executor.shutdown()


def test_every_filter_of_the_product_conversation_is_awaited_in_place() -> None:
    dp = Dispatcher()
    dp.include_routers(*routers(chaos_on=True, product=True))
    assert any(not f.awaitable for f in filters(dp))  # the product has magic filters to change
    assert run_filters_inline(dp) > 0
    assert all(f.awaitable for f in filters(dp))


def test_the_conversation_is_built_with_its_filters_inline() -> None:
    assert all(f.awaitable for f in filters(build_dispatcher(chaos=True)))


@pytest.mark.parametrize("data", ["w:k3j9x2:ok", "w:now:go", "w:k3j9x2:e:3", "w:k3j9x2:o:1"])
def test_no_router_but_the_first_takes_a_wizard_button(data: str) -> None:
    """bot/routers/steps.py is tried before every other router, which changes no answer only if
    none of them would take a wizard button ("w:..."): each of their callback handlers has a filter
    of the data that refuses one (the fallback, last, takes anything by design)."""
    query = CallbackQuery(id="1", from_user=User(id=7, is_bot=False, first_name="T"), chat_instance="c", data=data)
    takers = []
    for router in routers(chaos_on=True, product=True):
        root = router.callback_query._handler.filters or ()
        if router.name == "steps":
            assert all(f.magic is not None and f.magic.resolve(query) for f in root)
            continue
        for handler in router.callback_query.handlers if router.name != "fallback" else ():
            magic = [f.magic for f in (*root, *(handler.filters or ())) if f.magic is not None]
            if all(m.resolve(query) for m in magic):  # no data filter, or none refuses it
                takers.append(f"{router.name}.{handler.callback.__name__}")
    assert takers == []
