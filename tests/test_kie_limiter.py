"""The shared KIE limiter on an injected clock: windows hold, callers go in order, deadlines fail fast."""

from __future__ import annotations

import asyncio
import random

import pytest

from kie import CREATE, DEFAULT_RATES, RECORD, Limiter, Rate, Throttled

pytestmark = pytest.mark.timeout(30)


class Clock:
    """A clock that moves only when told; sleeping records the delay and returns at once."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)


def most_in_any_window(slots: list[float], per: float) -> int:
    return max((sum(1 for s in slots if start <= s < start + per) for start in slots), default=0)


def test_the_default_limits_are_kies_less_a_margin() -> None:
    assert (DEFAULT_RATES[CREATE].count, DEFAULT_RATES[CREATE].per) == (18, 10.0)
    assert (DEFAULT_RATES[RECORD].count, DEFAULT_RATES[RECORD].per) == (10, 1.0)
    assert DEFAULT_RATES[CREATE].margin > 0 and DEFAULT_RATES[RECORD].margin > 0
    with pytest.raises(ValueError):
        Rate(0, 1.0)
    with pytest.raises(ValueError):
        Rate(1, 0.0)


async def test_a_burst_of_40_creates_gets_18_per_10_seconds_in_order() -> None:
    clock = Clock()
    limiter = Limiter({CREATE: Rate(18, 10.0)}, clock=clock, sleep=clock.sleep)
    waits = [await limiter.acquire(CREATE) for _ in range(40)]
    slots = [clock.now + wait for wait in waits]
    assert slots == [1000.0] * 18 + [1010.0] * 18 + [1020.0] * 4
    assert most_in_any_window(slots, 10.0) == 18
    assert clock.sleeps == [10.0] * 18 + [20.0] * 4, "one sleep per waiting caller, none for the others"
    assert limiter.pending(CREATE) == 22


async def test_concurrent_callers_are_served_in_the_order_they_asked() -> None:
    clock = Clock()
    limiter = Limiter({RECORD: Rate(3, 1.0)}, clock=clock, sleep=clock.sleep)
    order: list[tuple[int, float]] = []

    async def one(index: int) -> None:
        order.append((index, await limiter.acquire(RECORD)))

    await asyncio.gather(*(one(i) for i in range(9)))
    assert [wait for _, wait in sorted(order)] == [0, 0, 0, 1, 1, 1, 2, 2, 2]


async def test_the_margin_lengthens_the_window() -> None:
    clock = Clock()
    limiter = Limiter({CREATE: Rate(2, 1.0, margin=0.25)}, clock=clock, sleep=clock.sleep)
    assert [await limiter.acquire(CREATE) for _ in range(3)] == [0.0, 0.0, 1.25]


async def test_a_slot_beyond_the_deadline_is_refused_at_once_and_not_taken() -> None:
    clock = Clock()
    limiter = Limiter({CREATE: Rate(2, 10.0)}, clock=clock, sleep=clock.sleep)
    await limiter.acquire(CREATE, timeout=1)
    await limiter.acquire(CREATE, timeout=1)
    with pytest.raises(Throttled) as caught:
        await limiter.acquire(CREATE, timeout=5)
    assert caught.value.retry_after == 10.0 and not caught.value.ambiguous
    assert clock.sleeps == []
    assert await limiter.acquire(CREATE, timeout=10) == 10.0, "the refused caller left no slot behind"


async def test_a_cancelled_waiter_gives_its_slot_back() -> None:
    clock = Clock()
    forever = asyncio.Event()

    async def blocking_sleep(seconds: float) -> None:
        await forever.wait()

    limiter = Limiter({CREATE: Rate(1, 10.0)}, clock=clock, sleep=blocking_sleep)
    await limiter.acquire(CREATE)
    waiter = asyncio.ensure_future(limiter.acquire(CREATE))
    await asyncio.sleep(0)
    assert limiter.pending(CREATE) == 1
    waiter.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiter
    assert limiter.pending(CREATE) == 0
    clock.now += 10
    assert await limiter.acquire(CREATE) == 0.0


async def test_pause_holds_every_caller() -> None:
    clock = Clock()
    limiter = Limiter({CREATE: Rate(18, 10.0)}, clock=clock, sleep=clock.sleep)
    limiter.pause(CREATE, 3.0)
    assert await limiter.acquire(CREATE) == 3.0
    assert await limiter.acquire("credit") == 0.0, "a class without a rate is not limited"
    limiter.pause("credit", 3.0)
    assert await limiter.acquire("credit") == 0.0


async def test_windows_hold_under_random_arrivals_and_cancellations() -> None:
    rng = random.Random(7)
    clock = Clock()
    limiter = Limiter({CREATE: Rate(5, 2.0)}, clock=clock, sleep=clock.sleep)
    granted: list[float] = []
    for _ in range(500):
        clock.now += rng.choice((0.0, 0.0, 0.05, 0.3, 1.0))
        try:
            wait = await limiter.acquire(CREATE, timeout=rng.choice((None, 0.5, 3.0)))
        except Throttled:
            continue
        slot = clock.now + wait
        if rng.random() < 0.1:  # as if cancelled while waiting
            limiter._windows[CREATE].release(slot)
            continue
        granted.append(slot)
    assert granted == sorted(granted), "first come, first served"
    assert most_in_any_window(granted, 2.0) <= 5
    assert len(granted) > 100


async def test_a_slot_is_reserved_only_while_one_is_free_now_and_a_reserved_slot_counts() -> None:
    clock = Clock()
    limiter = Limiter({CREATE: Rate(2, 10.0)}, clock=clock, sleep=clock.sleep)
    assert limiter.reserve(CREATE) == clock.now and limiter.taken(CREATE) == 1
    clock.now += 1.0
    assert limiter.reserve(CREATE) == clock.now
    assert limiter.reserve(CREATE) is None, "the window is full: a reservation never waits"
    assert limiter.taken(CREATE) == 2
    assert await limiter.acquire(CREATE) == 9.0, "reserved slots count like any other"
    assert limiter.reserve(RECORD) is None, "a class without a rate has no slots to hold"


async def test_a_slot_given_back_is_free_again_and_giving_back_twice_frees_nothing_more() -> None:
    clock = Clock()
    limiter = Limiter({CREATE: Rate(1, 10.0)}, clock=clock, sleep=clock.sleep)
    slot = limiter.reserve(CREATE)
    assert slot is not None and limiter.reserve(CREATE) is None
    limiter.give_back(CREATE, slot)
    limiter.give_back(CREATE, slot)
    assert limiter.taken(CREATE) == 0
    again = limiter.reserve(CREATE)
    assert again is not None
    assert await limiter.acquire(CREATE) == 10.0, "one slot given back frees one"
