"""Small actors for the supervision and mailbox tests: they record what happens to them."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, ClassVar, TypeVar

from actors.base import Actor, ExitKind, Mailbox, handles

T = TypeVar("T")


@dataclass(frozen=True)
class Ping:
    n: int = 0


@dataclass(frozen=True)
class Crash:
    pass


@dataclass(frozen=True)
class Leave:
    kind: ExitKind = ExitKind.NORMAL


@dataclass(frozen=True)
class Slow:
    seconds: float


@dataclass(frozen=True)
class Stubborn:
    """A handler that swallows cancellation until it is let go."""


class Worker(Actor):
    default_deadline: ClassVar[float] = 2.0
    watchdog_grace: ClassVar[float] = 0.2

    def __init__(self, mailbox: Mailbox, journal: list[tuple[str, str]],
                 fail_start: Callable[[], bool] | None = None) -> None:
        super().__init__(mailbox)
        self.journal = journal
        self.fail_start = fail_start

    async def on_start(self) -> None:
        if self.fail_start is not None and self.fail_start():
            raise RuntimeError(f"{self.name} cannot start")
        self.journal.append(("start", self.name))

    async def on_stop(self) -> None:
        self.journal.append(("stop", self.name))

    @handles(Ping, deadline=1.0)
    async def ping(self, msg: Ping) -> tuple[int, int]:
        return id(self), msg.n

    @handles(Crash)
    async def crash(self, msg: Crash) -> None:
        raise RuntimeError("boom")

    @handles(Leave)
    async def leave_now(self, msg: Leave) -> None:
        self.leave(msg.kind)

    @handles(Slow, deadline=0.3)
    async def slow(self, msg: Slow) -> None:
        await asyncio.sleep(msg.seconds)

    @handles(Stubborn, deadline=30.0)
    async def stubborn(self, msg: Stubborn) -> None:
        while True:
            try:
                await asyncio.Event().wait()
            except asyncio.CancelledError:
                if self._abandoned:
                    raise


async def until(probe: Callable[[], T | Awaitable[T]], timeout: float = 5.0, what: str = "condition") -> T:
    """Wait for `probe` to become truthy (polling the event loop), failing after `timeout`."""
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if asyncio.iscoroutine(value):
            value = await value
        if value:
            return value  # type: ignore[return-value]
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        await asyncio.sleep(0.005)


def ident(result: Any) -> int:
    return int(result[0])
