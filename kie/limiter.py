"""One limiter shared by every KIE call of an account: createTask ≤ 18 per 10 s, recordInfo ≤ 10 per s.

Why it exists: KIE drops (never queues) requests over its limits — 20 createTask per 10 s per
account, 10 recordInfo per s per key — and a burst of users pressing Confirm together must not
turn into 429s and retries. Each endpoint class has a sliding window; a caller reserves the
earliest slot that keeps every window within its count, in the order callers asked (fair), and
sleeps once until it (no polling loop). A slot later than the caller's deadline is refused at
once with :class:`~kie.errors.Throttled`, before anything is sent, so a queue longer than the
deadline fails fast instead of sleeping into a timeout.

KIE counts requests when they arrive and we count them when they leave: a request that travels
slower than a later one would let the server see more in one window than we granted. Each
window is therefore longer than KIE's by a ``margin`` that absorbs that difference in latency.

One :class:`Limiter` per account and process: give the same instance to every client.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass

from kie.errors import Throttled

__all__ = ["CREATE", "DEFAULT_RATES", "RECORD", "Limiter", "Rate"]

CREATE = "create"  # createTask and every family's "start a generation" call
RECORD = "record"  # recordInfo and every family's status call


@dataclass(frozen=True)
class Rate:
    """At most ``count`` calls in any ``per`` seconds, counted over ``per + margin``."""

    count: int
    per: float
    margin: float = 0.0

    def __post_init__(self) -> None:
        if self.count < 1 or self.per <= 0 or self.margin < 0:
            raise ValueError(f"a rate needs count >= 1, per > 0 and margin >= 0, got {self}")

    @property
    def window(self) -> float:
        return self.per + self.margin


DEFAULT_RATES: Mapping[str, Rate] = {
    CREATE: Rate(18, 10.0, margin=0.5),  # KIE allows 20 per 10 s; API.md says keep under ~18
    RECORD: Rate(10, 1.0, margin=0.1),
}


class _Window:
    """The reserved slots of one endpoint class, sorted (slots are handed out in order)."""

    def __init__(self, rate: Rate) -> None:
        self.rate = rate
        self.slots: deque[float] = deque()
        self.paused_until = float("-inf")

    def next_slot(self, now: float) -> float:
        """The earliest time ≥ now and ≥ every slot given, with fewer than ``count`` slots in the window before it."""
        window = self.rate.window
        while self.slots and self.slots[0] <= now - window:
            self.slots.popleft()  # no later slot can share a window with it
        slot = max(now, self.paused_until)
        if self.slots:
            slot = max(slot, self.slots[-1])
        if len(self.slots) >= self.rate.count:
            slot = max(slot, self.slots[-self.rate.count] + window)
        return slot

    def release(self, slot: float) -> None:
        """Give back a slot its caller will not use; fewer slots never break a window."""
        try:
            self.slots.remove(slot)
        except ValueError:
            pass


class Limiter:
    """Sliding-window limits per endpoint class; classes without a :class:`Rate` are not limited.

    ``clock`` and ``sleep`` are injectable so tests can run it on a fake clock.
    """

    def __init__(
        self,
        rates: Mapping[str, Rate] = DEFAULT_RATES,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self._windows = {name: _Window(rate) for name, rate in rates.items()}
        self._clock = clock
        self._sleep = sleep

    def rate(self, name: str) -> Rate | None:
        window = self._windows.get(name)
        return None if window is None else window.rate

    async def acquire(self, name: str, timeout: float | None = None) -> float:
        """Wait for a slot of class ``name``; return the seconds waited.

        Raises Throttled at once, without waiting, when the slot lies beyond ``timeout`` seconds.
        A caller cancelled while waiting gives its slot back.
        """
        window = self._windows.get(name)
        if window is None:
            return 0.0
        now = self._clock()
        slot = window.next_slot(now)
        delay = slot - now
        if timeout is not None and delay > timeout:
            raise Throttled(
                f"no {name} slot within {timeout:.3g}s (next in {delay:.3g}s; "
                f"{window.rate.count} per {window.rate.per:g}s)",
                retry_after=delay,
            )
        window.slots.append(slot)
        if delay > 0:
            try:
                await self._sleep(delay)
            except BaseException:
                window.release(slot)
                raise
        return delay

    def reserve(self, name: str) -> float | None:
        """A slot of ``name`` that is free now, taken (the caller sends with it, or gives it back);
        None when the caller would have to wait (or ``name`` has no rate). For a caller that commits
        its intent only when nothing stands between that commit and the request (sql/025)."""
        window = self._windows.get(name)
        if window is None:
            return None
        now = self._clock()
        slot = window.next_slot(now)
        if slot > now:
            return None
        window.slots.append(slot)
        return slot

    def give_back(self, name: str, slot: float) -> None:
        """A reserved slot its caller will not send with."""
        window = self._windows.get(name)
        if window is not None:
            window.release(slot)

    def pause(self, name: str, seconds: float) -> None:
        """Hand out no slot of ``name`` for ``seconds`` (KIE said 429: every caller backs off, not only one)."""
        window = self._windows.get(name)
        if window is not None and seconds > 0:
            window.paused_until = max(window.paused_until, self._clock() + seconds)

    def taken(self, name: str) -> int:
        """Slots of ``name`` given out within the window that ends now (sent with, or waited for)."""
        window = self._windows.get(name)
        if window is None:
            return 0
        now = self._clock()
        return sum(1 for slot in window.slots if slot > now - window.rate.window)

    def pending(self, name: str) -> int:
        """Callers holding a slot that has not come yet (waiting in line)."""
        window = self._windows.get(name)
        if window is None:
            return 0
        now = self._clock()
        return sum(1 for slot in window.slots if slot > now)
