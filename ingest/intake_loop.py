"""A second event loop in a thread of this process, where the webhook's acks are made.

Telegram sends a chat's next update only after the previous one's ack, so an ack that waits
behind the dispatcher's work (aiogram, the Bot API calls, the claims) slows every chat down,
and under load the one loop is always busy. On its own loop the HTTP server, the group commit
and its pool answer as soon as the commit is durable, whatever the main loop is doing; the GIL
is shared, but the main loop gives it up at every await on I/O and at least every switch
interval. The loop outlives ingress's restarts (it is the process's, like the mailboxes), and
the objects on it talk to the main loop only through thread-safe hand-offs (`call_in`).
"""

from __future__ import annotations

import asyncio
import sys
import threading
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

from telemetry import logs

log = logs.get("ingress")

T = TypeVar("T")
START_TIMEOUT = 5.0
# How long a thread waiting for the GIL waits before asking for it (CPython's default is 5 ms).
# Each ack takes the GIL a few times (read, commit, answer), so the default would let a busy main
# loop add tens of milliseconds to it. bench.ingress's open loop at the stock app's saturation
# rate, five interleaved pairs: the intake's commit p99 was 13.3-16.6 ms at 1 ms and 9.3-10.0 ms at
# 0.5 ms; /start end to end showed no difference beyond the machine's noise (466-581 against
# 493-568 updates/s).
SWITCH_INTERVAL = 0.0005


class IntakeLoop:
    """The thread and its loop; `run(coro)` awaits a coroutine there from the main loop."""

    def __init__(self, name: str = "intake") -> None:
        self.name = name
        self.loop: asyncio.AbstractEventLoop | None = None
        self.thread: threading.Thread | None = None
        self._ready = threading.Event()

    @property
    def alive(self) -> bool:
        return self.thread is not None and self.thread.is_alive() and self.loop is not None

    def start(self) -> None:
        """Start the thread (once; again only after it ended) and wait until its loop turns."""
        if self.alive:
            return
        self._ready.clear()
        self.thread = threading.Thread(target=self._main, name=self.name, daemon=True)
        self.thread.start()
        if not self._ready.wait(START_TIMEOUT):
            raise RuntimeError(f"the {self.name} loop did not start within {START_TIMEOUT:g} s")
        if sys.getswitchinterval() > SWITCH_INTERVAL:
            sys.setswitchinterval(SWITCH_INTERVAL)

    def _main(self) -> None:
        loop = new_event_loop()
        asyncio.set_event_loop(loop)
        self.loop = loop
        loop.call_soon(self._ready.set)
        try:
            loop.run_forever()
        finally:
            self.loop = None
            close_loop(loop)

    async def run(self, coro: Coroutine[Any, Any, T]) -> T:
        """Await `coro` run on this loop; cancelling the caller cancels it there too."""
        if self.loop is None or not self.alive:
            coro.close()
            raise RuntimeError(f"the {self.name} loop is not running")
        return await run_in(self.loop, coro)

    def stop(self) -> None:
        """Stop the loop (its tasks are cancelled) without waiting for the thread: it is a daemon."""
        loop = self.loop
        if loop is not None and not loop.is_closed():
            try:
                loop.call_soon_threadsafe(loop.stop)
            except RuntimeError:  # closed in between
                pass

    async def join(self, timeout: float) -> bool:
        """Stop, and wait (without blocking the caller's loop) until the thread has ended."""
        self.stop()
        thread = self.thread
        if thread is None:
            return True
        await asyncio.to_thread(thread.join, timeout)
        return not thread.is_alive()


def new_event_loop() -> asyncio.AbstractEventLoop:
    """uvloop where it is installed (not on Windows), for the intake loop and the main one: on the
    intake loop it made acks 1.9x faster at saturation (bench.ingress); on the main loop, end to end
    1.13x for first contacts and 1.03x for known users (bench.e2e --against, the mean of three
    balanced runs; one earlier single pair had read 0.82x), and 5% less CPU per /start."""
    try:
        import uvloop
    except ImportError:  # pragma: no cover - the platforms uvloop does not build on
        return asyncio.new_event_loop()
    return uvloop.new_event_loop()


def close_loop(loop: asyncio.AbstractEventLoop, timeout: float = 2.0) -> None:
    """Cancel what still runs on a stopped loop (a task ignoring cancellation gets `timeout`), then
    close it: neither the process nor the intake thread may be kept alive by a stuck task."""
    try:
        pending = [t for t in asyncio.all_tasks(loop) if not t.done()]
        for task in pending:
            task.cancel()
        if pending:
            loop.run_until_complete(asyncio.wait(pending, timeout=timeout))
        loop.run_until_complete(loop.shutdown_asyncgens())
    finally:
        loop.close()


def _running() -> asyncio.AbstractEventLoop | None:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None


def call_in(loop: asyncio.AbstractEventLoop | None, callback: Callable[..., object], *args: object) -> None:
    """Run `callback(*args)` on `loop`: directly when we are on it (or no loop is named), else
    through its thread-safe queue."""
    if loop is None or loop is _running():
        callback(*args)
    elif not loop.is_closed():
        loop.call_soon_threadsafe(callback, *args)


async def run_in(loop: asyncio.AbstractEventLoop | None, coro: Coroutine[Any, Any, T]) -> T:
    """Await `coro` run on `loop` (here when we are on it, or no loop is named); cancelling the
    caller cancels it there too."""
    if loop is None or loop is _running():
        return await coro
    return await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(coro, loop))
