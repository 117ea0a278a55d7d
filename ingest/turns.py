"""Turns on the CPU for the dispatcher's handlers: a burst is handled about in order of arrival.

DISPATCH_CONCURRENCY workers (32) keep that many updates in flight, as they must while most of
them wait on Telegram or the database. But asyncio runs every ready task in turn, so a burst of
updates that each need some milliseconds of CPU (fifty Confirm presses: a fenced transaction
and a dozen reads each) all progress together and all finish late: the first Confirm's
createTask waited for the other forty-nine handlers' work (bench.generation, issue 21).

So a handler runs while it holds one of DISPATCH_TURNS turns. It gives its turn away while it
waits on Telegram (`away`, the bot session's outermost middleware: its pacing, the network) and
takes one again after, queueing behind the handlers already waiting: a free turn goes to the
one that has waited longest, so Confirms pressed first reach KIE first. Measured and not done:
- a handler back from Telegram served first (to finish it sooner): new presses then waited
  behind the bookkeeping of answered ones;
- the turn handed over during every database round trip: the order was lost, since PostgreSQL
  then runs every handler's queries at once and knows nothing of which came first;
- 8 turns, the default until issue 21's ninth session: fifty Confirms at once reach KIE later
  than with 4 (the first 18 createTasks' p99 130 -> 116 ms, p50 98 -> 73 ms, over 8 interleaved
  pairs; 6 turns about as 4). 4 turns once seemed to cost /start a fifth of its throughput, but
  that was the pool, which followed the turns down to 12 connections: first contacts commit
  without a turn, a dozen at once. With the pool kept at 16 (config.POOL_HEADROOM), /start at 4
  turns is 0.97x and known users' 0.96x what it was at 8 (bench.e2e, the mean of 8 pairs each,
  single pairs 0.74x-1.26x), with the two reads below waited for without a turn;
- a gate of 4 around the Confirm's terms read and commit alone, with 8 turns: no gain (p99 120
  against 114 ms over 3 pairs), so what 4 turns win is the order of the handlers' CPU, not
  fewer queries in PostgreSQL at once;
- at 8 turns, the two reads below that come before or right after a /start's work, waited for
  without a turn: /start 1.01x, known users 0.99x (at 4 turns they are);
- 2 turns (issue 21's eighteenth session). Runs each in a process of its own, on a fresh
  PostgreSQL cluster, interleaved: the first 18 createTasks' p99 101 ms over 13 runs at 2 turns
  (pool 14 or 16, the same), 139 ms over 7 at 4. But bench.generation --against (one cluster
  warmed by the runs before, as a live server is): p99 147 against 134 ms, p50 101 against 99,
  over 8 balanced pairs. A guess, not measured: fewer turns help while PostgreSQL is cold
  (every run of the first kind began with a new cluster), not once it is warm, as a live one is;
- at 4 turns, the Confirm's terms read waited for without a turn (`away`): p99 124 against
  133 ms, p50 107 against 98, over 8 balanced pairs (the first 4 read 123 against 156, the next
  4 124 against 111). The first createTask left later: every handler's work before its read
  came first, 1.1 ms each, and taking the turn back ahead of the handlers still waiting for
  their first changed nothing in one run (no read had come back before all 32 had sent theirs).
Three round trips are waited for without a turn. The account middleware's, for a user this
process has not met yet (bot/middlewares.py): a first contact's commit waits on a WAL flush, and
holding turns through those left PostgreSQL fewer commits to flush together (16% more flushes
per /start at 8 turns than at 32, and 8% fewer updates/s). A user met before is only read, with
the turn: fifty presses of known users then no longer read their accounts all at once. A
chat's first read of its wizard (bot/fsm_cache.py), before any work of the update's own (every
first contact has one; a Confirm's wizard is kept by then). And a known user's /start greeting
read (bot/first_screen.py), right before the answer's send.

A turn is waited for at most `patience` seconds: a handler that keeps its turn long (a hung
one, until its deadline) delays the others by that much at most, never stalls them; such runs
without a turn are counted (`overflowed`, in /health).
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
        self._free = asyncio.Semaphore(size)  # first come, first served; safe against cancellation
        self.holding = 0
        self.waiting = 0
        self.overflowed = 0  # takes that went on without a turn after waiting `patience`

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
        self.waiting += 1
        try:
            async with asyncio.timeout(self.patience):
                await self._free.acquire()
        except TimeoutError:  # a turn given just then is passed on by the semaphore itself
            self.overflowed += 1
            return False
        finally:
            self.waiting -= 1
        self.holding += 1
        return True

    def _give(self) -> None:
        """A turn is free: the longest waiting handler's, else nobody's."""
        self.holding -= 1
        self._free.release()

    def stats(self) -> dict[str, int]:
        return {"turns": self.size, "turns_held": self.holding, "turns_waited_for": self.waiting,
                "turns_overflowed": self.overflowed}


@asynccontextmanager
async def away() -> AsyncIterator[None]:
    """The block waits on the outside (a Bot API call): the turn goes to
    the longest waiting handler meanwhile and is taken again after, behind those waiting. Only the task that took the
    turn gives it (a task it started, such as a callback query's late answer, copies the context
    but not the turn)."""
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
            held.holding = await held.turns._take()  # cancelled while waiting: none is held


class AwayWhileCalling(BaseRequestMiddleware):
    """The bot's outermost request middleware: a Bot API call (the limiter's pacing included) is
    waited for without a turn."""

    async def __call__(self, make_request: NextRequestMiddlewareType[TelegramType], bot: Bot,
                       method: TelegramMethod[TelegramType]) -> Response[TelegramType]:
        async with away():
            return await make_request(bot, method)
