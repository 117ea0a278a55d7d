"""Synchronous filters run on the event loop, not in a thread.

aiogram calls every callable that is not a coroutine function through `asyncio.to_thread`:
each magic filter (`F.data == "menu:open"`) is a hop to the default executor (a handful of
threads) and back. A callback query for the confirmation passes some forty of them on its way
through the routers: about 5 ms of CPU and thread switches per update, and in a burst the checks
of every update queue for the same few threads. Our filters only read the update (no I/O), so
they are made awaitable where they are built, once, and aiogram then awaits them in place.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from aiogram import Router
from aiogram.dispatcher.event.handler import CallableObject, FilterObject


def _inline(callback: Callable[..., Any]) -> Callable[..., Any]:
    async def run(*args: Any, **kwargs: Any) -> Any:
        return callback(*args, **kwargs)
    return run


def _callables(router: Router) -> Iterator[CallableObject]:
    for observer in router.observers.values():
        root = observer._handler  # the observer's own filters (router.message.filter(...))
        yield from root.filters or ()
        for handler in observer.handlers:
            yield from handler.filters or ()
    for sub in router.sub_routers:
        yield from _callables(sub)


def run_filters_inline(router: Router) -> int:
    """Make every synchronous filter of `router` and its sub-routers awaitable in place; returns
    how many were changed. Handlers are left alone: ours are all coroutines, and a synchronous
    one would be a mistake better kept visible (it would still run in a thread)."""
    changed = 0
    for item in _callables(router):
        if isinstance(item, FilterObject) and not item.awaitable:
            item.callback = _inline(item.callback)  # the parameters aiogram passes were read already
            item.awaitable = True
            changed += 1
    return changed
