"""What every fake server shares: a real aiohttp server on a local port, woken waiters, the command line.

Why it exists: the fake Telegram and the fake KIE are the same kind of thing — an aiohttp
application on 127.0.0.1 (port 0 picks a free one) that tests start, stop or use as an async
context manager, that keeps an HTTP client session for calling the bot back (webhooks,
callbacks), and whose tests wait on its state with :meth:`FakeServer.wait_for`, woken by
:meth:`FakeServer.notify` on every change instead of sleeping blindly. Each fake supplies its
routes (:meth:`FakeServer._build_app`) and what a timed-out wait should report
(:meth:`FakeServer._state_report`); :func:`run_until_signal` is their ``python -m`` mode.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import signal
from abc import ABC, abstractmethod
from collections.abc import Callable
from types import TracebackType
from typing import Any, ClassVar, Protocol, Self, TypeVar

import aiohttp
from aiohttp import web

__all__ = ["Countdown", "FakeServer", "cli_parser", "drop", "run_until_signal", "take_fault"]

T = TypeVar("T")


class Countdown(Protocol):
    """An injected fault that applies to the next ``remaining`` matching requests."""

    remaining: int

    def matches(self, target: str, /) -> bool:
        """Whether the fault applies to ``target`` (a method name or a path)."""


F = TypeVar("F", bound=Countdown)


def take_fault(faults: list[F], target: str) -> F | None:
    """The first fault in ``faults`` that applies to ``target``, counted down and dropped once used up."""
    for fault in faults:
        if fault.matches(target):
            fault.remaining -= 1
            if fault.remaining <= 0:
                faults.remove(fault)
            return fault
    return None


def drop(request: web.Request) -> web.StreamResponse:
    """Close the connection without an answer (the returned response is never written)."""
    if request.transport is not None:
        request.transport.close()
    return web.Response(status=499)


class FakeServer(ABC):
    """A fake service on a real local port: lifecycle, an HTTP client, and waiting on state changes."""

    _user_agent: ClassVar[str] = "FakeServer/1.0"  # of the client session that calls the bot back
    _handler_cancellation: ClassVar[bool] = False  # True: a client that gives up cancels its request's handler

    def __init__(self) -> None:
        self._changed = asyncio.Event()  # set (and replaced) on every change: wakes wait_for
        self._stopping = asyncio.Event()  # set by stop(): releases hung requests and waits
        self._runner: web.AppRunner | None = None
        self._session: aiohttp.ClientSession | None = None
        self._base_url: str | None = None

    @abstractmethod
    def _build_app(self) -> web.Application:
        """The aiohttp application with the fake's routes."""

    def _state_report(self) -> str:
        """What a timed-out :meth:`wait_for` adds to its message: the state that did not get there."""
        return ""

    async def _before_shutdown(self) -> None:
        """Called by :meth:`stop` once stopping, before the server closes: wakes the waiters.

        A fake that runs work in the background overrides it to cancel that work instead.
        """
        self._notify()

    def _listening_line(self) -> dict[str, Any]:
        """The JSON line the command line prints once the server listens."""
        return {"base_url": self.base_url, "pid": os.getpid()}

    # ------------------------------------------------------------------ lifecycle

    @property
    def base_url(self) -> str:
        if self._base_url is None:
            raise RuntimeError(f"{type(self).__name__} is not started")
        return self._base_url

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        """Listen on ``host:port`` (0 = a free port) and return the base URL."""
        if self._runner is not None:
            raise RuntimeError(f"{type(self).__name__} already started")
        self._stopping = asyncio.Event()
        self._changed = asyncio.Event()
        runner = web.AppRunner(
            self._build_app(), access_log=None, shutdown_timeout=2.0, handler_cancellation=self._handler_cancellation
        )
        await runner.setup()
        try:
            await web.TCPSite(runner, host, port).start()
        except BaseException:
            await runner.cleanup()
            raise
        bound_host, bound_port = runner.addresses[0][:2]
        self._runner = runner
        self._session = aiohttp.ClientSession(headers={"User-Agent": self._user_agent})
        if host in ("", "0.0.0.0", "::"):
            shown = "127.0.0.1"
        else:
            shown = bound_host if ":" not in bound_host else f"[{bound_host}]"
        self._base_url = f"http://{shown}:{bound_port}"
        return self._base_url

    async def stop(self) -> None:
        """Release hung requests and waits, stop background work, close the server and the client."""
        if self._runner is None:
            return
        self._stopping.set()
        await self._before_shutdown()
        await self._runner.cleanup()
        self._runner = None
        if self._session is not None:
            await self._session.close()
            self._session = None
        self._notify()

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()

    # ------------------------------------------------------------------ waiting on state

    def notify(self) -> None:
        """Wake :meth:`wait_for` waiters; call it when a predicate depends on state outside the fake."""
        self._notify()

    def _notify(self) -> None:
        self._changed.set()
        self._changed = asyncio.Event()

    async def wait_for(self, predicate: Callable[[], T | None], timeout: float = 5.0, what: str | None = None) -> T:
        """Return ``predicate()`` once truthy; it is re-checked whenever the fake's state changes.

        Raises TimeoutError naming ``what`` (default: the predicate) and the fake's state.
        """
        label = what or str(getattr(predicate, "__qualname__", repr(predicate)))
        return await self._wait_until(predicate, timeout, label)

    async def _wait_until(self, check: Callable[[], T | None], timeout: float, label: str) -> T:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            changed = self._changed
            result = check()
            if result:
                return result
            remaining = deadline - loop.time()
            if remaining <= 0:
                message = f"{type(self).__name__}.wait_for: {label} not reached within {timeout:g}s."
                report = self._state_report()
                raise TimeoutError(f"{message} {report}" if report else message)
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(remaining):
                    await changed.wait()

    async def _pause(self, seconds: float) -> None:
        """Wait ``seconds``, or less if the fake is stopping."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(seconds):
                await self._stopping.wait()


# ---------------------------------------------------------------------- command line


def cli_parser(prog: str, description: str) -> argparse.ArgumentParser:
    """The ``python -m fakes.<fake>`` parser with the options every fake has (``--host``, ``--port``)."""
    parser = argparse.ArgumentParser(prog=prog, description=description)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    return parser


def run_until_signal(build: Callable[[], FakeServer], host: str, port: int) -> None:
    """Serve the fake ``build()`` makes, print its listening line as JSON, stop on SIGINT or SIGTERM."""
    asyncio.run(_serve(build, host, port))


async def _serve(build: Callable[[], FakeServer], host: str, port: int) -> None:
    fake = build()
    await fake.start(host, port)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    print(json.dumps(fake._listening_line()), flush=True)
    try:
        await stop.wait()
    finally:
        await fake.stop()
