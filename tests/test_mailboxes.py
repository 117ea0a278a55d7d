"""Typed bounded mailboxes: type checks, overflow policies, ask, dead letters, deadlines, watchdog."""

from __future__ import annotations

import asyncio

import pytest

from actors.base import (
    AskTimeout,
    DeadlineExceeded,
    Mailbox,
    MailboxClosed,
    MailboxFull,
    Overflow,
    WrongMessageType,
    dead_letters,
)
from messages.control import ChaosFault
from supervisor import Backoff, ChildSpec, Supervisor
from tests.actors_kit import Crash, Ping, Slow, Worker, ident, until

pytestmark = pytest.mark.timeout(30)


def box(capacity: int = 2, overflow: Overflow = Overflow.BLOCK, timeout: float = 0.2) -> Mailbox:
    return Mailbox("box", (Ping,), capacity, overflow, timeout)


async def test_wrong_type_is_rejected_at_send() -> None:
    mb = box()
    with pytest.raises(WrongMessageType, match="does not accept Crash"):
        mb.tell_nowait(Crash())
    with pytest.raises(WrongMessageType):
        await mb.tell(Crash())
    with pytest.raises(WrongMessageType):
        await mb.ask("text")
    assert mb.depth == 0


async def test_block_waits_for_room_then_times_out() -> None:
    mb = box(capacity=1)
    await mb.tell(Ping(1))
    with pytest.raises(MailboxFull, match="stayed full"):
        await mb.tell(Ping(2))
    waiting = asyncio.create_task(mb.tell(Ping(3), timeout=5))
    await until(lambda: mb._putters, what="sender waiting")
    assert (await mb.get()).msg == Ping(1)
    assert await waiting is True
    assert (await mb.get()).msg == Ping(3)
    assert mb.stats.dropped == 1


async def test_drop_newest_drop_oldest_and_reject() -> None:
    newest = box(overflow=Overflow.DROP_NEWEST)
    for n in range(4):
        newest.tell_nowait(Ping(n))
    assert [e.msg.n for e in newest._queue] == [0, 1] and newest.stats.dropped == 2

    oldest = box(overflow=Overflow.DROP_OLDEST)
    first = asyncio.create_task(oldest.ask(Ping(0), timeout=5))
    await until(lambda: oldest.depth == 1, what="ask queued")
    for n in range(1, 4):
        oldest.tell_nowait(Ping(n))
    assert [e.msg.n for e in oldest._queue] == [2, 3] and oldest.stats.dropped == 2
    with pytest.raises(MailboxFull):
        await first

    reject = box(overflow=Overflow.REJECT)
    reject.tell_nowait(Ping(0))
    reject.tell_nowait(Ping(1))
    with pytest.raises(MailboxFull):
        reject.tell_nowait(Ping(2))
    with pytest.raises(MailboxFull):
        await reject.tell(Ping(3))


async def supervised() -> tuple[Supervisor, Mailbox, list]:
    journal: list = []
    mb = Worker.mailbox("w")
    sup = Supervisor("sup", [ChildSpec.actor(Worker, mb, journal)], intensity=10, period=10,
                     backoff=Backoff(min=0, max=0))
    await sup.start()
    return sup, mb, journal


async def test_ask_answers_and_times_out() -> None:
    sup, mb, _ = await supervised()
    assert (await mb.ask(Ping(5)))[1] == 5
    await mb.tell(Slow(0.25))
    with pytest.raises(AskTimeout):
        await mb.ask(Ping(6), timeout=0.05)
    await sup.stop()


async def test_poison_message_goes_to_dead_letters_and_the_rest_survive_restart() -> None:
    sup, mb, _ = await supervised()
    before = ident(await mb.ask(Ping()))
    crashed_before = dead_letters.counts[("w", "crashed")]
    await mb.tell(Crash())
    pending = [asyncio.create_task(mb.ask(Ping(n), timeout=5)) for n in range(5)]
    answers = await asyncio.gather(*pending)
    assert [a[1] for a in answers] == list(range(5))  # queued behind the poison, not lost
    assert ident(answers[0]) != before  # served by the restarted incarnation
    assert dead_letters.counts[("w", "crashed")] == crashed_before + 1
    letter = [d for d in dead_letters.recent if d.actor == "w" and d.reason == "crashed"][-1]
    assert letter.message == "Crash" and "boom" in letter.error
    assert sup.snapshot()["w"]["restarts"] == 1  # not redelivered: no second crash
    await sup.stop()


async def test_messages_to_a_stopped_actor_are_dead_letters() -> None:
    sup, mb, _ = await supervised()
    await sup.stop()
    before = dead_letters.counts[("w", "stopped")]
    with pytest.raises(MailboxClosed):
        await mb.ask(Ping())
    assert await mb.tell(Ping()) is False
    assert dead_letters.counts[("w", "stopped")] == before + 2


async def test_handling_deadline_trips_and_counts() -> None:
    sup, mb, _ = await supervised()
    with pytest.raises(DeadlineExceeded, match=r"Slow took longer than 0\.3s"):
        await mb.ask(Slow(5))
    await until(lambda: sup.snapshot()["w"]["restarts"] == 1, what="restart after the deadline")
    assert mb.stats.deadline_misses == 1
    assert (await mb.ask(Ping(1)))[1] == 1
    await sup.stop()


async def test_start_deadline_fails_the_start() -> None:
    class SlowStarter(Worker):
        start_deadline = 0.1

        async def on_start(self) -> None:
            await asyncio.Event().wait()

    mb = SlowStarter.mailbox("slow")
    sup = Supervisor("sup", [ChildSpec.actor(SlowStarter, mb, [])], backoff=Backoff(min=0, max=0))
    with pytest.raises(Exception, match=r"did not start within 0\.1s"):
        await sup.start()


async def test_watchdog_ends_a_handler_that_ignores_cancellation() -> None:
    sup, mb, _ = await supervised()
    await mb.tell(ChaosFault("hang", ignore_cancel=True, deadline=0.1))
    await until(lambda: sup.snapshot()["w"]["restarts"] == 1 and sup.snapshot()["w"]["state"] == "running",
                what="watchdog restart")
    assert "abandoned" in sup.snapshot()["w"]["last_error"]
    assert (await mb.ask(Ping(2)))[1] == 2
    await asyncio.wait_for(sup.stop(), 5)
