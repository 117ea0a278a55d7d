"""Turns on the CPU for the dispatcher's handlers (ingest/turns.py): a burst is handled in order
of arrival, a Bot API call gives the turn away, and no turn is ever lost or waited for long."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from aiogram import Bot

from bot.middlewares import Met
from fakes.telegram_api import FakeTelegram
from ingest.bot_api import make_bot
from ingest.send_limiter import SendLimiter
from ingest.turns import Turns, away
from store import accounts, user_cache
from tests.actors_kit import until
from tests.conftest import Money
from tests.procs import FAKE_TOKEN
from tests.wizard_kit import Chat

pytestmark = pytest.mark.timeout(30)


@pytest.fixture
async def bot(fake: FakeTelegram) -> AsyncIterator[Bot]:
    bot = make_bot(FAKE_TOKEN, fake.base_url, timeout=10, limiter=SendLimiter(0, 0, max_retries=2))
    yield bot
    await bot.session.close()


def free(turns: Turns) -> int:
    """Turns nobody holds, once nobody waits for one."""
    assert not turns.waiting
    return turns.size - turns.holding


async def test_a_burst_runs_in_order_of_arrival_with_no_more_than_the_turns_at_once() -> None:
    turns = Turns(2, patience=30)
    running: list[int] = []
    most = 0
    order: list[int] = []

    async def handler(n: int) -> None:
        nonlocal most
        async with turns.turn():
            running.append(n)
            most = max(most, len(running))
            for _ in range(5):  # work that yields to the loop, as a handler's round trips do
                await asyncio.sleep(0)
            running.remove(n)
            order.append(n)

    await asyncio.gather(*(handler(n) for n in range(10)))
    assert most == 2
    assert order == list(range(10))
    assert free(turns) == 2 and turns.holding == 0 and turns.overflowed == 0


async def test_a_handler_waiting_on_the_outside_gives_its_turn_to_the_next() -> None:
    turns = Turns(1, patience=30)
    outside = asyncio.Event()
    events: list[str] = []

    async def first() -> None:
        async with turns.turn():
            async with away():
                events.append("first away")
                await outside.wait()
            events.append("first back")

    async def second() -> None:
        await until(lambda: "first away" in events)
        async with turns.turn():
            events.append("second ran")
            outside.set()
            await asyncio.sleep(0)
            events.append("second done")

    await asyncio.gather(first(), second())
    assert events == ["first away", "second ran", "second done", "first back"]  # back only once it is free
    assert free(turns) == 1 and turns.holding == 0


async def test_a_turn_held_too_long_delays_the_next_by_the_patience_only_and_is_counted() -> None:
    turns = Turns(1, patience=0.05)
    hung = asyncio.Event()
    release = asyncio.Event()

    async def hanging() -> None:
        async with turns.turn():
            hung.set()
            await release.wait()

    task = asyncio.create_task(hanging())
    await hung.wait()
    async with turns.turn():  # runs without a turn once the patience is spent
        assert turns.overflowed == 1
    release.set()
    await task
    assert free(turns) == 1 and turns.holding == 0


async def test_a_cancelled_handler_unwinds_without_waiting_for_a_turn_and_loses_none() -> None:
    turns = Turns(1, patience=30)
    away_now = asyncio.Event()
    other_in = asyncio.Event()
    release = asyncio.Event()

    async def cancelled() -> None:
        async with turns.turn(), away():
            away_now.set()
            await asyncio.Event().wait()  # a Bot API call that never answers

    async def other() -> None:
        async with turns.turn():
            other_in.set()
            await release.wait()

    victim = asyncio.create_task(cancelled())
    await away_now.wait()
    holder = asyncio.create_task(other())
    await other_in.wait()
    victim.cancel()  # its deadline: the only turn is held by the other handler
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(victim, 5)  # ends at once, not after the other gives its turn
    release.set()
    await holder
    assert free(turns) == 1 and turns.holding == 0 and turns.overflowed == 0


async def test_a_task_the_handler_started_does_not_give_the_handlers_turn_away() -> None:
    """A callback query's late answer runs in a task that copies the handler's context."""
    turns = Turns(1, patience=30)
    async with turns.turn():
        async def late_answer() -> None:
            async with away():
                assert turns.holding == 1  # still the handler's
        await asyncio.create_task(late_answer())
        assert turns.holding == 1
    assert free(turns) == 1 and turns.holding == 0


async def test_a_bot_api_call_through_the_bots_session_is_waited_for_without_the_turn(
        fake: FakeTelegram, bot: Bot) -> None:
    turns = Turns(1, patience=30)
    fake.inject("sendMessage", delay=0.5)
    sent = asyncio.Event()

    async def sending() -> None:
        async with turns.turn():
            await bot.send_message(5, "hello")
            sent.set()

    task = asyncio.create_task(sending())
    await until(lambda: fake.calls("sendMessage"))  # the request is at Telegram, answered in 0.5 s
    async with turns.turn():  # taken while the call waits: the sender gave its turn away
        assert turns.overflowed == 0
        assert not sent.is_set()
    await task
    assert free(turns) == 1 and turns.holding == 0


async def test_a_handler_back_from_telegram_queues_behind_those_already_waiting() -> None:
    """New presses reach their commit before answered ones do their bookkeeping."""
    turns = Turns(1, patience=30)
    back = asyncio.Event()
    events: list[str] = []

    async def answered() -> None:
        async with turns.turn():
            async with away():
                events.append("answered away")
                await back.wait()
            events.append("answered ran")

    async def running() -> None:
        await until(lambda: "answered away" in events)
        async with turns.turn():
            events.append("running ran")
            await until(lambda: turns.waiting)  # a new press asks first
            back.set()  # the answered one is back from Telegram and asks second
            await until(lambda: turns.waiting == 2)

    async def new_press() -> None:
        await until(lambda: "running ran" in events)
        async with turns.turn():
            events.append("new press ran")

    await asyncio.gather(answered(), running(), new_press())
    assert events.index("new press ran") < events.index("answered ran")
    assert free(turns) == 1


async def test_a_users_first_account_read_waits_without_the_turn_a_known_users_with_it_and_a_kept_ones_not_at_all(
        money: Money, fake: FakeTelegram, bot: Bot) -> None:
    """A first contact's commit waits on a WAL flush, so its handler gives the turn away; a user
    this process has met is only read, and keeps it (a burst of their presses stays in order).
    The users table is locked meanwhile, so each update's account read waits where we can look."""
    chat = Chat(money, fake, bot, user=7801)
    for met, turn_held in ((False, 0), (True, 1), ("a new process", 0)):
        if met == "a new process":
            chat.restart()  # the user is known to the database, not yet met by this process
        # the leader's copy of the row gone (a write forgot it, or it aged out): the row is read
        user_cache.of(money.db).forget(money.bot_id, 7801)
        turns = Turns(1, patience=30)

        async def in_turn(turns: Turns = turns) -> None:
            async with turns.turn():
                await chat.say("/start")

        async with money.db.require().acquire() as locker, locker.transaction():
            await locker.execute("LOCK TABLE users IN ACCESS EXCLUSIVE MODE")
            handling = asyncio.create_task(in_turn())
            await money.until_one_waits_on_a_lock()
            assert turns.holding == turn_held, f"met: {met}"
        await asyncio.wait_for(handling, 30)
    assert await accounts.get_user(money.db, money.bot_id, 7801) is not None
    async with money.db.require().acquire() as locker, locker.transaction():  # kept: nothing is read at all
        await locker.execute("LOCK TABLE users IN ACCESS EXCLUSIVE MODE")
        before = len(chat.screens)
        await asyncio.wait_for(chat.say("/start"), 30)
        assert len(chat.screens) == before + 1


async def test_a_known_users_start_reads_their_balance_for_the_greeting_without_the_turn(
        money: Money, fake: FakeTelegram, bot: Bot) -> None:
    """The greeting's read comes right before the answer's send, which gives the turn away
    anyway: at 4 turns, known users' /start held them through that round trip. The jobs table is
    locked meanwhile, so the read waits where we can look."""
    chat = Chat(money, fake, bot, user=7802)
    await chat.say("/start")  # the first contact: its greeting names the bonus, reads nothing
    turns = Turns(1, patience=30)

    async def in_turn() -> None:
        async with turns.turn():
            await chat.say("/start")

    before = len(chat.screens)
    async with money.db.require().acquire() as locker, locker.transaction():
        await locker.execute("LOCK TABLE jobs IN ACCESS EXCLUSIVE MODE")
        handling = asyncio.create_task(in_turn())
        await money.until_one_waits_on_a_lock()
        assert turns.holding == 0
    await asyncio.wait_for(handling, 30)
    assert len(chat.screens) == before + 1 and free(turns) == 1


def test_the_users_met_are_bounded_and_the_oldest_half_forgotten_first() -> None:
    met = Met(size=4)
    for user_id in (1, 2, 3, 4):
        met.add(user_id)
    met.add(2)  # met again: nothing forgotten
    assert all(n in met for n in (1, 2, 3, 4))
    met.add(5)
    assert [n for n in (1, 2, 3, 4, 5) if n in met] == [3, 4, 5]
