"""Typed bounded mailboxes and the actor loop: type checks, overflow policies, ask, dead letters,
handling and start deadlines, and the watchdog, in process."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar

import pytest

from actors.actor import Actor, DeadlineExceeded, ExitKind, handles
from actors.backoff import Backoff
from actors.mailbox import AskTimeout, Mailbox, MailboxClosed, MailboxFull, Overflow, WrongMessageType, dead_letters
from messages.control import ChaosFault, Control, Tick
from supervisor import ChildSpec, StartFailed, State, Supervisor
from tests.actors_kit import until

pytestmark = pytest.mark.timeout(30)

FAST = Backoff(min=0, max=0)
_names = itertools.count()


def unique(prefix: str) -> str:
    """A fresh actor name per test: dead letters and metrics are process-wide."""
    return f"{prefix}-{next(_names)}"


def letters(actor: str, reason: str | None = None) -> list:
    return [d for d in dead_letters.recent if d.actor == actor and (reason is None or d.reason == reason)]


# -- messages and a test actor ---------------------------------------------------------------------


@dataclass(frozen=True)
class Ping:
    n: int = 0


@dataclass(frozen=True)
class LoudPing(Ping):
    """A subclass of an accepted type: accepted at send, so it must be handled too."""


@dataclass(frozen=True)
class Poison:
    pass


@dataclass(frozen=True)
class Fail:
    text: str


@dataclass(frozen=True)
class Gate:
    """The handler waits for `release` (a way to keep the actor busy while messages queue)."""

    release: asyncio.Event = field(default_factory=asyncio.Event, compare=False)


@dataclass(frozen=True)
class Stall:
    """Slower than its 0.05 s handling deadline."""


@dataclass(frozen=True)
class Other:
    pass


@dataclass
class World:
    journal: list[tuple[str, Any]] = field(default_factory=list)
    incarnations: int = 0
    poisoned: int = 0


class Probe(Actor):
    default_deadline: ClassVar[float] = 5.0

    def __init__(self, mailbox: Mailbox, world: World) -> None:
        super().__init__(mailbox)
        self.world = world
        world.incarnations += 1
        self.incarnation = world.incarnations

    async def on_start(self) -> None:
        self.world.journal.append(("start", self.incarnation))

    async def on_stop(self) -> None:
        self.world.journal.append(("stop", self.incarnation))

    @handles(Ping)
    async def ping(self, msg: Ping) -> tuple[int, int]:
        self.world.journal.append(("ping", msg.n))
        return self.incarnation, msg.n

    @handles(Poison)
    async def poison(self, msg: Poison) -> None:
        self.world.poisoned += 1
        raise RuntimeError("poisoned")

    @handles(Fail)
    async def fail(self, msg: Fail) -> None:
        raise ValueError(msg.text)

    @handles(Gate, deadline=30.0)
    async def gate(self, msg: Gate) -> str:
        await msg.release.wait()
        return "released"

    @handles(Stall, deadline=0.05)
    async def stall(self, msg: Stall) -> None:
        await asyncio.Event().wait()


async def supervised(prefix: str = "probe", capacity: int | None = None, overflow: Overflow | None = None,
                     actor: type[Probe] = Probe) -> tuple[Supervisor, Mailbox, World]:
    world = World()
    box = actor.new_mailbox(unique(prefix), capacity, overflow)
    sup = Supervisor("sup", [ChildSpec.actor(actor, box, world, shutdown=1.0)], intensity=10, period=30,
                     backoff=FAST)
    await sup.start()
    return sup, box, world


def running_again(sup: Supervisor, name: str, restarts: int) -> Callable[[], bool]:
    def check() -> bool:
        item = sup.snapshot()[name]
        return item["restarts"] == restarts and item["state"] == State.RUNNING.value

    return check


def bare(capacity: int = 2, overflow: Overflow = Overflow.BLOCK, block_timeout: float = 0.05) -> Mailbox:
    return Mailbox(unique("bare"), (Ping,), capacity, overflow, block_timeout)


def queued(box: Mailbox) -> list[int]:
    return [env.msg.n for env in box._queue]


# -- construction and types ------------------------------------------------------------------------


def test_capacity_must_be_positive() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        Mailbox("x", (Ping,), capacity=0)


def test_actor_mailbox_accepts_its_handled_types_plus_control_messages() -> None:
    box = Probe.new_mailbox(unique("types"), capacity=7, overflow=Overflow.REJECT)
    assert set(box.accepts) == {Ping, Poison, Fail, Gate, Stall, ChaosFault, Tick}
    assert box.capacity == 7 and box.overflow is Overflow.REJECT and box.block_timeout == Probe.block_timeout


async def test_wrong_type_is_rejected_at_send() -> None:
    box = Probe.new_mailbox(unique("types"))
    with pytest.raises(WrongMessageType, match="does not accept Other"):
        box.tell_nowait(Other())
    with pytest.raises(WrongMessageType, match="does not accept str"):
        await box.tell("hello")
    with pytest.raises(WrongMessageType, match="does not accept int"):
        await box.ask(42, timeout=1)
    assert box.depth == 0 and box.stats.sent == 0 and box.stats.dropped == 0
    assert isinstance(WrongMessageType("x"), TypeError)


# -- overflow policies -----------------------------------------------------------------------------


async def test_block_tell_nowait_raises_at_once_and_tell_times_out() -> None:
    box = bare(capacity=2, block_timeout=0.05)
    assert box.tell_nowait(Ping(0)) is True
    assert await box.tell(Ping(1)) is True
    with pytest.raises(MailboxFull):
        box.tell_nowait(Ping(2))
    with pytest.raises(MailboxFull, match="stayed full"):
        await box.tell(Ping(3))  # waits block_timeout, then gives up
    with pytest.raises(MailboxFull, match="stayed full"):
        await box.tell(Ping(4), timeout=0.01)  # an explicit timeout overrides block_timeout
    with pytest.raises(MailboxFull):
        await box.ask(Ping(5), timeout=0.01)
    assert queued(box) == [0, 1]
    assert box.stats.sent == 2 and box.stats.dropped == 4


async def test_block_sender_proceeds_when_room_frees() -> None:
    box = bare(capacity=1)
    await box.tell(Ping(0))
    sender = asyncio.create_task(box.tell(Ping(1), timeout=10))
    asker = asyncio.create_task(box.ask(Ping(2), timeout=10))
    await until(lambda: len(box._putters) == 2, what="both senders waiting")
    assert not sender.done() and not asker.done()

    first = await box.get()
    assert first.msg == Ping(0)
    assert await sender is True  # woken by the free slot, well before its timeout
    second = await box.get()
    assert second.msg == Ping(1)
    third = await box.get()  # the asker got the next free slot, in order
    assert third.msg == Ping(2)
    third.reply.set_result("answer")
    assert await asker == "answer"
    assert box.stats.dropped == 0 and box.depth == 0


async def test_block_wake_up_is_passed_on_when_the_woken_sender_gives_up() -> None:
    box = bare(capacity=1, block_timeout=10)
    await box.tell(Ping(0))
    first = asyncio.create_task(box.tell(Ping(1)))
    second = asyncio.create_task(box.tell(Ping(2)))
    await until(lambda: len(box._putters) == 2, what="both senders waiting")
    await box.get()  # frees the slot and wakes `first` ...
    first.cancel()  # ... which is cancelled before it could use it
    assert await asyncio.wait_for(second, 5) is True  # the slot goes to the next sender, not lost
    assert queued(box) == [2]
    with pytest.raises(asyncio.CancelledError):
        await first


async def test_closing_releases_blocked_senders_as_dead_letters() -> None:
    box = bare(capacity=1, block_timeout=10)
    await box.tell(Ping(0))
    sender = asyncio.create_task(box.tell(Ping(1)))
    asker = asyncio.create_task(box.ask(Ping(2), timeout=10))
    await until(lambda: len(box._putters) == 2, what="both senders waiting")
    before = dead_letters.counts[(box.name, "stopped")]
    box.close()
    assert await asyncio.wait_for(sender, 5) is False
    with pytest.raises(MailboxClosed):
        await asyncio.wait_for(asker, 5)
    assert dead_letters.counts[(box.name, "stopped")] == before + 3  # the queued one and both waiting


async def test_drop_newest() -> None:
    box = bare(capacity=2, overflow=Overflow.DROP_NEWEST)
    assert [box.tell_nowait(Ping(n)) for n in range(4)] == [True, True, False, False]
    assert await box.tell(Ping(4)) is False  # never waits
    with pytest.raises(MailboxFull):
        await box.ask(Ping(5), timeout=1)
    assert queued(box) == [0, 1]
    assert box.stats.dropped == 4 and box.stats.sent == 2
    assert dead_letters.counts[(box.name, "dropped_newest")] == 4
    assert [d.message for d in letters(box.name)] == ["Ping"] * 4


async def test_drop_oldest_and_the_oldest_ask_gets_mailbox_full() -> None:
    box = bare(capacity=2, overflow=Overflow.DROP_OLDEST)
    oldest = asyncio.create_task(box.ask(Ping(0), timeout=10))
    await until(lambda: box.depth == 1, what="ask queued")
    box.tell_nowait(Ping(1))
    assert box.tell_nowait(Ping(2)) is True  # pushes out Ping(0)
    assert await box.tell(Ping(3)) is True  # pushes out Ping(1)
    with pytest.raises(MailboxFull, match="dropped"):
        await asyncio.wait_for(oldest, 5)
    assert queued(box) == [2, 3]
    assert box.stats.dropped == 2 and box.stats.sent == 4
    assert dead_letters.counts[(box.name, "dropped_oldest")] == 2


async def test_reject() -> None:
    box = bare(capacity=1, overflow=Overflow.REJECT, block_timeout=10)
    box.tell_nowait(Ping(0))
    with pytest.raises(MailboxFull):
        box.tell_nowait(Ping(1))
    with pytest.raises(MailboxFull):
        await asyncio.wait_for(box.tell(Ping(2)), 5)  # at once, not after block_timeout
    with pytest.raises(MailboxFull):
        await asyncio.wait_for(box.ask(Ping(3), timeout=10), 5)
    assert queued(box) == [0] and box.stats.dropped == 3


# -- ask, order, dispatch --------------------------------------------------------------------------


async def test_ask_returns_the_handlers_value_in_order() -> None:
    sup, box, world = await supervised()
    assert await box.ask(Ping(7)) == (1, 7)
    answers = await asyncio.gather(*(box.ask(Ping(n)) for n in range(5)))
    assert answers == [(1, n) for n in range(5)]
    assert [n for kind, n in world.journal if kind == "ping"] == [7, 0, 1, 2, 3, 4]
    assert box.stats.handled == 6
    await box.tell(Tick())  # every actor accepts Tick; the default handler does nothing
    assert await box.ask(Ping(8)) == (1, 8)
    await sup.stop()


async def test_ask_gets_the_handlers_exception() -> None:
    sup, box, _ = await supervised()
    with pytest.raises(ValueError, match="bad input"):
        await box.ask(Fail("bad input"))
    await until(running_again(sup, box.name, 1), what="restart after the failure")
    assert await box.ask(Ping(1)) == (2, 1)
    await sup.stop()


async def test_a_subclass_of_a_handled_type_is_handled() -> None:
    sup, box, _ = await supervised()
    assert await box.ask(LoudPing(3), timeout=5) == (1, 3)  # accepted at send, so it must be dispatched
    assert sup.snapshot()[box.name]["restarts"] == 0
    await sup.stop()


async def test_ask_timeout() -> None:
    sup, box, _ = await supervised()
    gate = Gate()
    await box.tell(gate)  # the actor is busy until the gate opens
    with pytest.raises(AskTimeout, match="did not answer Ping within"):
        await box.ask(Ping(1), timeout=0.05)
    assert isinstance(AskTimeout("x"), TimeoutError)
    gate.release.set()
    assert await box.ask(Ping(2)) == (1, 2)  # the actor is fine; the late answer was discarded
    await sup.stop()


# -- dead letters ----------------------------------------------------------------------------------


async def test_poison_message_is_dead_lettered_not_redelivered_and_the_mailbox_survives_restart() -> None:
    sup, box, world = await supervised("poison")
    first = sup.child(box.name)
    gate = Gate()
    await box.tell(gate)  # hold the actor so that everything below queues behind the poison
    await box.tell(Poison())
    asks = [asyncio.create_task(box.ask(Ping(n), timeout=10)) for n in range(3)]
    await until(lambda: first._busy_msg is gate and box.depth == 4, what="messages queued behind the gate")
    gate.release.set()

    answers = await asyncio.gather(*asks)
    assert answers == [(2, 0), (2, 1), (2, 2)]  # all served, in order, by the next incarnation
    assert sup.child(box.name) is not first
    assert world.poisoned == 1  # not redelivered
    assert sup.snapshot()[box.name]["restarts"] == 1
    crashed = letters(box.name, "crashed")
    assert len(crashed) == 1 and crashed[0].message == "Poison"
    assert crashed[0].error == "RuntimeError: poisoned"
    assert dead_letters.counts[(box.name, "crashed")] == 1
    await sup.stop()


async def test_a_stopped_actors_mailbox_dead_letters_and_fails_asks() -> None:
    sup, box, _ = await supervised("stopped")
    gate = Gate()
    await box.tell(gate)
    pending = asyncio.create_task(box.ask(Ping(1), timeout=10))
    actor = sup.child(box.name)
    await until(lambda: actor._busy_msg is gate and box.depth == 1, what="ask queued behind the busy handler")
    stopping = asyncio.create_task(sup.stop())
    await until(lambda: sup.child(box.name) is None or sup.child(box.name)._stopping, what="stop begun")
    gate.release.set()  # the current message is finished gracefully ...
    await asyncio.wait_for(stopping, 5)
    with pytest.raises(MailboxClosed):  # ... what was still queued is failed, not left hanging
        await asyncio.wait_for(pending, 5)

    assert box.closed
    assert await box.tell(Ping(2)) is False
    assert box.tell_nowait(Ping(3)) is False
    with pytest.raises(MailboxClosed):
        await box.ask(Ping(4), timeout=1)
    assert dead_letters.counts[(box.name, "stopped")] == 4
    assert box.depth == 0


# -- deadlines and the watchdog --------------------------------------------------------------------


async def test_handling_deadline_trips_counts_and_restarts() -> None:
    sup, box, world = await supervised("deadline")
    first = sup.child(box.name)
    with pytest.raises(DeadlineExceeded, match=r"Stall took longer than 0\.05s"):
        await box.ask(Stall(), timeout=5)
    exit = await asyncio.wait_for(first.done, 5)
    assert exit.kind is ExitKind.ABNORMAL and isinstance(exit.error, DeadlineExceeded)
    await until(running_again(sup, box.name, 1), what="restart after the deadline")
    assert box.stats.deadline_misses == 1
    assert sup.snapshot()[box.name]["deadline_misses"] == 1
    assert letters(box.name, "crashed")[-1].message == "Stall"
    assert await box.ask(Ping(1)) == (2, 1)
    assert world.journal.count(("stop", 1)) == 1
    await sup.stop()


async def test_chaos_hang_trips_its_own_deadline() -> None:
    sup, box, _ = await supervised("hang")
    with pytest.raises(DeadlineExceeded, match=r"ChaosFault took longer than 0\.05s"):
        await box.ask(ChaosFault("hang", deadline=0.05), timeout=5)
    await until(running_again(sup, box.name, 1), what="restart after the hang")
    assert box.stats.deadline_misses == 1
    await sup.stop()


@dataclass(frozen=True)
class Spawn:
    fail: bool


class Owner(Probe):
    """Runs background tasks through Actor.spawn: one that fails, one that would run forever."""

    @handles(Spawn)
    async def spawn_task(self, msg: Spawn) -> None:
        async def body() -> None:
            if msg.fail:
                raise ValueError("background task broke")
            await asyncio.Event().wait()
        self.world.journal.append(("spawned", self.incarnation))
        self.background = self.spawn(body(), "background")


async def test_a_failing_owned_task_fails_the_actor_and_a_stop_cancels_the_rest() -> None:
    sup, box, world = await supervised("owner", actor=Owner)
    first = sup.child(box.name)
    await box.tell(Spawn(fail=True))
    exit = await asyncio.wait_for(first.done, 5)
    assert exit.kind is ExitKind.ABNORMAL and isinstance(exit.error, ValueError)
    await until(running_again(sup, box.name, 1), what="restart after the owned task failed")
    assert ("stop", 1) in world.journal, "on_stop ran for the failed incarnation"

    await box.ask(Spawn(fail=False))
    second = sup.child(box.name)
    forever = second.background
    await sup.stop()
    await asyncio.wait_for(asyncio.gather(forever, return_exceptions=True), 5)
    assert forever.cancelled(), "a task still running when its actor stopped is cancelled"
    assert (await asyncio.wait_for(second.done, 5)).kind is ExitKind.SHUTDOWN


class SlowStarter(Probe):
    start_deadline: float = 0.05

    async def on_start(self) -> None:
        await super().on_start()
        await asyncio.Event().wait()


async def test_start_deadline_fails_the_start() -> None:
    world = World()
    box = SlowStarter.new_mailbox(unique("slowstart"))
    actor = SlowStarter(box, world)
    with pytest.raises(DeadlineExceeded, match=r"did not start within 0\.05s"):
        await asyncio.wait_for(actor.start(), 5)
    exit = await asyncio.wait_for(actor.done, 5)
    assert exit.kind is ExitKind.ABNORMAL
    assert box.stats.deadline_misses == 1
    assert world.journal == [("start", 1), ("stop", 1)]  # on_stop still releases what on_start took

    sup = Supervisor("sup", [ChildSpec.actor(SlowStarter, box, world)], backoff=FAST)
    with pytest.raises(StartFailed, match="did not start within") as caught:
        await asyncio.wait_for(sup.start(), 5)
    assert isinstance(caught.value.__cause__, DeadlineExceeded)


async def test_direct_start_and_graceful_stop() -> None:
    world = World()
    box = Probe.new_mailbox(unique("direct"))
    actor = Probe(box, world)
    await actor.start()
    assert await box.ask(Ping(1)) == (1, 1)
    await actor.stop(1.0)
    assert (await asyncio.wait_for(actor.done, 5)).kind is ExitKind.SHUTDOWN
    assert world.journal == [("start", 1), ("ping", 1), ("stop", 1)]


class Hasty(Probe):
    """Handles each message within 0.05 s by default; its watchdog lets go 0.05 s after that."""

    default_deadline: ClassVar[float] = 0.05
    watchdog_grace: ClassVar[float] = 0.05


async def test_watchdog_ends_a_handler_that_ignores_cancellation() -> None:
    sup, box, world = await supervised("watchdog", actor=Hasty)
    first = sup.child(box.name)
    await box.tell(ChaosFault("hang", ignore_cancel=True))  # swallows the deadline's cancellation
    follow_up = asyncio.create_task(box.ask(Ping(5), timeout=10))

    exit = await asyncio.wait_for(first.done, 10)
    assert exit.kind is ExitKind.ABNORMAL and isinstance(exit.error, DeadlineExceeded)
    assert "ignored its 0.05s deadline; actor abandoned" in str(exit.error)
    assert await follow_up == (2, 5)  # the message behind the hang survives, served by the new incarnation
    assert box.stats.deadline_misses == 1
    hung = letters(box.name, "hung")
    assert len(hung) == 1 and hung[0].message == "ChaosFault"
    await until(lambda: ("stop", 1) in world.journal, what="the abandoned incarnation to end")
    assert sup.snapshot()[box.name]["restarts"] == 1
    assert "abandoned" in sup.snapshot()[box.name]["last_error"]
    await asyncio.wait_for(sup.stop(), 5)


class SlowStopper(Owner):
    """on_stop outlasts the stop timeout, so stop() cancels the actor a second time inside it."""

    stop_deadline: ClassVar[float] = 30.0

    async def on_stop(self) -> None:
        await super().on_stop()
        await asyncio.Event().wait()


async def test_a_second_cancellation_during_on_stop_still_cancels_the_owned_tasks() -> None:
    """Otherwise an old worker keeps running beside the next incarnation (one update twice at once)."""
    world = World()
    box = SlowStopper.new_mailbox(unique("slowstop"))
    actor = SlowStopper(box, world)
    await actor.start()
    await box.ask(Spawn(fail=False))
    background = actor.background
    await actor.stop(0.2)
    await asyncio.wait_for(asyncio.gather(background, return_exceptions=True), 5)
    assert background.cancelled()


@dataclass(frozen=True, slots=True)
class Level(Control):
    n: int


@dataclass(frozen=True, slots=True)
class Order(Control):
    n: int


def control_box(capacity: int = 2, overflow: Overflow = Overflow.DROP_NEWEST) -> Mailbox:
    return Mailbox(unique("control"), (Ping, Level, Order), capacity, overflow, 0.05)


async def test_a_control_message_is_never_dropped_by_a_full_drop_newest_mailbox_and_goes_first() -> None:
    box = control_box()
    assert box.tell_nowait(Ping(1)) and box.tell_nowait(Ping(2))
    assert not box.tell_nowait(Ping(3)), "data is still dropped when full"
    assert box.tell_nowait(Level(1))
    assert [(await box.get()).msg for _ in range(3)] == [Level(1), Ping(1), Ping(2)]


@pytest.mark.parametrize("overflow", [Overflow.BLOCK, Overflow.REJECT, Overflow.DROP_OLDEST])
async def test_a_control_message_passes_every_overflow_policy_without_displacing_data(overflow: Overflow) -> None:
    box = control_box(overflow=overflow)
    box.tell_nowait(Ping(1))
    box.tell_nowait(Ping(2))
    assert await box.tell(Level(7), timeout=0.01)
    assert [(await box.get()).msg for _ in range(3)] == [Level(7), Ping(1), Ping(2)]


async def test_a_newer_control_state_replaces_the_queued_one_of_its_type_and_keeps_the_others() -> None:
    box = control_box()
    for n in range(5):
        box.tell_nowait(Level(n))
    box.tell_nowait(Order(1))
    assert box.control_depth == 2
    assert [(await box.get()).msg for _ in range(2)] == [Level(4), Order(1)]


async def test_control_state_told_while_the_actor_restarts_waits_for_the_next_incarnation() -> None:
    box = control_box()
    box.close()
    box.tell_nowait(Ping(1))  # data to a stopped actor is a dead letter, as before
    box.tell_nowait(Level(3))
    box.reopen()
    assert box.depth == 0
    assert (await asyncio.wait_for(box.get(), 1)).msg == Level(3)


async def test_a_control_ask_to_a_stopped_actor_fails_at_once() -> None:
    box = control_box()
    box.close()
    with pytest.raises(MailboxClosed):
        await box.ask(Order(1), timeout=1)


async def test_a_control_ask_to_a_mailbox_no_actor_runs_on_fails_at_once() -> None:
    """lock_keeper asks every subscriber to stop acting before it lets the lock go: one that never
    started (or has ended) acts on nothing, and waiting for its answer would only delay failover."""
    box = control_box()
    with pytest.raises(MailboxClosed):
        await box.ask(Order(1), timeout=5)


class Obeys(Probe):
    @handles(Order)
    async def order(self, msg: Order) -> int:
        self.world.journal.append(("order", msg.n))
        return msg.n


async def test_a_running_actor_answers_a_control_ask_ahead_of_its_queued_data() -> None:
    world = World()
    box = Obeys.new_mailbox(unique("obeys"))
    actor = Obeys(box, world)
    await actor.start()
    release = asyncio.Event()
    box.tell_nowait(Gate(release))
    box.tell_nowait(Ping(1))
    answer = asyncio.ensure_future(box.ask(Order(5), timeout=5))
    await until(lambda: box.control_depth == 1, what="the order queued")
    release.set()
    assert await answer == 5
    await box.ask(Ping(2), timeout=5)
    assert world.journal[1:] == [("order", 5), ("ping", 1), ("ping", 2)], "the order went before the queued ping"
    await actor.stop(1.0)
