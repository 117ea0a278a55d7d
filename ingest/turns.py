"""Turns on the CPU for the dispatcher's handlers: a burst is handled about in order of arrival.

DISPATCH_CONCURRENCY workers (32) keep that many updates in flight, as they must while most of
them wait on Telegram (its pacing, the network). But asyncio runs every ready task in turn, so
a burst of updates that each need some milliseconds of CPU (fifty Confirm presses: a fenced
transaction and a dozen reads each) all progress together and all finish late: the first
Confirm's createTask waited for the other forty-nine handlers' work (bench.generation, issue
21). So a handler runs while it holds one of DISPATCH_TURNS turns, and gives its turn to the
next handler while it waits on the Bot API (`away`, in the bot's session).

A turn is waited for at most `patience` seconds: a handler that keeps its turn long (a slow
query, a hung handler until its deadline) delays the others by that much at most, never stalls
them; such runs without a turn are counted (`overflowed`, in /health).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

from aiogram import Bot
from aiogram.client.session.middlewares.base import BaseRequestMiddleware, NextRequestMiddlewareType
from aiogram.methods import TelegramMethod
from aiogram.methods.base import Response, TelegramType


@dataclass(eq=False)
class _Held:
    turns: Turns
    task: asyncio.Task[Any] | None
    holding: bool


_HELD: ContextVar[_Held | None] = ContextVar("dispatch_turn", default=None)


class Turns:
    def __init__(self, size: int, patience: float) -> None:
        self.size, self.patience = size, patience
        self._free = asyncio.Semaphore(size)
        self.holding = 0
        self.overflowed = 0  # runs that went on without a turn after waiting `patience`

    @asynccontextmanager
    async def turn(self) -> AsyncIterator[None]:
        """Run the block holding a turn (or without one, once `patience` is spent)."""
        held = _Held(self, asyncio.current_task(), await self._take())
        token = _HELD.set(held)
        try:
            yield
        finally:
            _HELD.reset(token)
            if held.holding:
                self._give()

    async def _take(self) -> bool:
        try:
            async with asyncio.timeout(self.patience):
                await self._free.acquire()
        except TimeoutError:
            self.overflowed += 1
            return False
        self.holding += 1
        return True

    def _give(self) -> None:
        self.holding -= 1
        self._free.release()

    def stats(self) -> dict[str, int]:
        return {"turns": self.size, "turns_held": self.holding, "turns_overflowed": self.overflowed}


@asynccontextmanager
async def away() -> AsyncIterator[None]:
    """The block waits on the outside (a Bot API call): the turn goes to the next handler meanwhile
    and is taken again after. Only the task that took the turn gives it (a task it started, such
    as a callback query's late answer, copies the context but not the turn)."""
    held = _HELD.get()
    if held is None or not held.holding or held.task is not asyncio.current_task():
        yield
        return
    held.holding = False
    held.turns._give()
    unwinding = False
    try:
        yield
    except asyncio.CancelledError:  # a deadline or a stop: the handler unwinds, it needs no turn for that
        unwinding = True
        raise
    finally:
        if not unwinding:
            held.holding = await held.turns._take()  # cancelled while waiting: none is held, none given back


class AwayWhileCalling(BaseRequestMiddleware):
    """The bot's outermost request middleware: a Bot API call (the limiter's pacing included) is
    waited for without a turn."""

    async def __call__(self, make_request: NextRequestMiddlewareType[TelegramType], bot: Bot,
                       method: TelegramMethod[TelegramType]) -> Response[TelegramType]:
        async with away():
            return await make_request(bot, method)
