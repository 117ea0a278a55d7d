"""The supervisor, in process, against the behaviours of Erlang/OTP's supervisor test suite:
strategies, restart intensity and escalation, failing restarts, start and stop order, the exit
reason by restart type matrix, shutdown timeouts, nesting, backoff, dynamic children, snapshots."""

from __future__ import annotations

import asyncio
import collections
import dataclasses
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar

import pytest

from actors.actor import SHUTDOWN, Actor, ExitKind, handles
from actors.backoff import Backoff
from actors.mailbox import Mailbox
from messages.control import ChaosFault
from supervisor import ChildSpec, Escalation, Restart, StartFailed, State, Strategy, Supervisor
from tests.actors_kit import until

pytestmark = pytest.mark.timeout(30)

FAST = Backoff(min=0, max=0)
RUNNING, STOPPED, FAILED = State.RUNNING, State.STOPPED, State.FAILED


# -- messages and a test actor that records what happens to it -------------------------------------


@dataclass(frozen=True)
class Ping:
    pass


@dataclass(frozen=True)
class Crash:
    pass


@dataclass(frozen=True)
class Leave:
    kind: ExitKind


@dataclass(frozen=True)
class Hold:
    """Keep the handler busy until `release` is set; a stubborn one swallows cancellation meanwhile."""

    release: asyncio.Event = field(compare=False)
    stubborn: bool = False


@dataclass
class World:
    """Shared by all the test actors of one test."""

    journal: list[tuple[str, str]] = field(default_factory=list)  # ("start" | "stop", name)
    starts: collections.Counter[str] = field(default_factory=collections.Counter)  # successful starts
    failures: collections.Counter[str] = field(default_factory=collections.Counter)  # failed starts
    fail: collections.Counter[str] = field(default_factory=collections.Counter)  # starts still to fail

    def stops(self) -> list[str]:
        return [name for kind, name in self.journal if kind == "stop"]


class Member(Actor):
    default_deadline: ClassVar[float] = 5.0

    def __init__(self, mailbox: Mailbox, world: World) -> None:
        super().__init__(mailbox)
        self.world = world
        self.incarnation = 0

    async def on_start(self) -> None:
        if self.world.fail[self.name] > 0:
            self.world.fail[self.name] -= 1
            self.world.failures[self.name] += 1
            raise RuntimeError(f"{self.name} cannot start")
        self.world.starts[self.name] += 1
        self.incarnation = self.world.starts[self.name]
        self.world.journal.append(("start", self.name))

    async def on_stop(self) -> None:
        if self.incarnation:
            self.world.journal.append(("stop", self.name))

    @handles(Ping)
    async def ping(self, msg: Ping) -> tuple[str, int]:
        return self.name, self.incarnation

    @handles(Crash)
    async def crash(self, msg: Crash) -> None:
        raise RuntimeError(f"{self.name} crashed")

    @handles(Leave)
    async def leave_now(self, msg: Leave) -> None:
        self.leave(msg.kind)

    @handles(Hold, deadline=30.0)
    async def hold(self, msg: Hold) -> None:
        while True:
            try:
                await msg.release.wait()
                return
            except asyncio.CancelledError:
                if not msg.stubborn:
                    raise


def member(name: str, world: World, restart: Restart = Restart.PERMANENT, shutdown: float = 1.0,
           capacity: int | None = None) -> ChildSpec:
    return ChildSpec.actor(Member, Member.new_mailbox(name, capacity), world, restart=restart, shutdown=shutdown)


def box_of(spec: ChildSpec) -> Mailbox:
    assert spec.mailbox is not None
    return spec.mailbox


def build(names: str, strategy: Strategy = Strategy.ONE_FOR_ONE, intensity: int = 3, period: float = 60.0,
          backoff: Backoff = FAST, world: World | None = None,
          kinds: dict[str, Restart] | None = None) -> tuple[Supervisor, World, dict[str, Mailbox]]:
    world = world or World()
    kinds = kinds or {}
    specs = [member(n, world, kinds.get(n, Restart.PERMANENT)) for n in names]
    sup = Supervisor("sup", specs, strategy, intensity, period, backoff)
    return sup, world, {s.name: box_of(s) for s in specs}


def states(sup: Supervisor) -> dict[str, State]:
    return dict(sup.children())


def all_running(sup: Supervisor) -> Callable[[], bool]:
    return lambda: all(state is RUNNING for _, state in sup.children())


def records(sup: Supervisor) -> dict[str, Any]:
    return {record.name: record for _, record in sup.walk()}


async def crash(box: Mailbox) -> None:
    await box.tell(Crash())


async def crash_and_recover(sup: Supervisor, world: World, box: Mailbox) -> None:
    """Crash one child and wait until it runs again (as a new incarnation)."""
    before = world.starts[box.name]
    await crash(box)
    await until(lambda: world.starts[box.name] > before and all_running(sup)(), what=f"{box.name} back")


# -- start and stop order --------------------------------------------------------------------------


async def test_children_start_in_spec_order_and_stop_in_reverse() -> None:
    sup, world, boxes = build("abcd")
    await sup.start()
    assert world.journal == [("start", n) for n in "abcd"]
    assert sup.children() == [(n, RUNNING) for n in "abcd"]
    assert [await boxes[n].ask(Ping()) for n in "abcd"] == [(n, 1) for n in "abcd"]

    world.journal.clear()
    await asyncio.wait_for(sup.stop(), 10)
    assert world.journal == [("stop", n) for n in "dcba"]
    assert sup.children() == [(n, STOPPED) for n in "abcd"]
    assert sup.done.result() is SHUTDOWN and not sup.failed
    assert all(box.closed for box in boxes.values())  # later sends become dead letters
    assert await boxes["a"].tell(Ping()) is False
    await sup.stop()  # stopping twice is harmless
    assert world.journal == [("stop", n) for n in "dcba"]


def test_duplicate_child_names_are_refused() -> None:
    world = World()
    with pytest.raises(ValueError, match="duplicate child names"):
        Supervisor("sup", [member("a", world), member("a", world)])


async def test_a_child_failing_at_supervisor_start_stops_the_started_ones_in_reverse() -> None:
    sup, world, _ = build("abcd")
    world.fail["c"] = 1
    with pytest.raises(StartFailed, match="child c failed to start: RuntimeError: c cannot start") as caught:
        await sup.start()
    assert isinstance(caught.value.__cause__, RuntimeError)
    assert world.journal == [("start", "a"), ("start", "b"), ("stop", "b"), ("stop", "a")]
    assert world.failures["c"] == 1 and world.starts["d"] == 0 and world.failures["d"] == 0
    assert states(sup) == {"a": STOPPED, "b": STOPPED, "c": FAILED, "d": STOPPED}


# -- strategies ------------------------------------------------------------------------------------


@pytest.mark.parametrize(("strategy", "crashed", "restarted", "journal"), [
    (Strategy.ONE_FOR_ONE, "b", "b", ["-b", "+b"]),
    (Strategy.ONE_FOR_ALL, "b", "abcd", ["-b", "-d", "-c", "-a", "+a", "+b", "+c", "+d"]),
    (Strategy.ONE_FOR_ALL, "d", "abcd", ["-d", "-c", "-b", "-a", "+a", "+b", "+c", "+d"]),
    (Strategy.REST_FOR_ONE, "b", "bcd", ["-b", "-d", "-c", "+b", "+c", "+d"]),
    (Strategy.REST_FOR_ONE, "a", "abcd", ["-a", "-d", "-c", "-b", "+a", "+b", "+c", "+d"]),
    (Strategy.REST_FOR_ONE, "d", "d", ["-d", "+d"]),
])
async def test_strategy_restarts_the_right_children(strategy, crashed, restarted, journal) -> None:
    sup, world, boxes = build("abcd", strategy)
    await sup.start()
    before = {n: sup.child(n) for n in "abcd"}
    world.journal.clear()

    await crash(boxes[crashed])
    await until(lambda: all(world.starts[n] == 2 for n in restarted) and all_running(sup)(),
                     what=f"{restarted} restarted")
    # the crashed child ended first, the rest of the group stopped in reverse, then all started in order
    assert [("+" if kind == "start" else "-") + n for kind, n in world.journal] == journal
    for n in "abcd":
        assert (sup.child(n) is not before[n]) == (n in restarted), n
        assert world.starts[n] == (2 if n in restarted else 1), n
        assert sup.snapshot()[n]["restarts"] == (1 if n in restarted else 0), n
        assert await boxes[n].ask(Ping()) == (n, world.starts[n])
    assert not sup.done.done()
    await sup.stop()


# -- intensity and escalation ----------------------------------------------------------------------


@pytest.mark.parametrize("strategy", list(Strategy))
@pytest.mark.parametrize("intensity", [1, 3])
async def test_intensity_allows_n_restarts_and_one_more_escalates(strategy, intensity) -> None:
    sup, world, boxes = build("abc", strategy, intensity=intensity, period=60)
    await sup.start()
    for n in range(intensity):
        await crash_and_recover(sup, world, boxes["b"])
        assert sup.snapshot()["b"]["restarts"] == n + 1
    assert not sup.done.done()

    world.journal.clear()
    await crash(boxes["b"])
    exit = await asyncio.wait_for(sup.done, 5)
    assert exit.kind is ExitKind.ABNORMAL and isinstance(exit.error, Escalation)
    assert f"more than {intensity} restarts in 60s" in str(exit.error) and "b crashed" in str(exit.error)
    assert sup.failed and sup.failed_reason == str(exit.error)
    assert world.journal == [("stop", "b"), ("stop", "c"), ("stop", "a")]  # the rest in reverse start order
    assert states(sup) == {"a": STOPPED, "b": FAILED, "c": STOPPED}
    assert world.starts["b"] == intensity + 1  # no restart after giving up
    await asyncio.wait_for(sup.stop(), 5)  # stopping an escalated supervisor is harmless


async def test_intensity_zero_escalates_on_the_first_exit() -> None:
    sup, world, boxes = build("ab", intensity=0)
    await sup.start()
    await crash(boxes["a"])
    exit = await asyncio.wait_for(sup.done, 5)
    assert isinstance(exit.error, Escalation)
    assert world.journal == [("start", "a"), ("start", "b"), ("stop", "a"), ("stop", "b")]


@pytest.mark.parametrize("strategy", [Strategy.ONE_FOR_ALL, Strategy.REST_FOR_ONE])
async def test_a_group_restart_counts_as_one_restart(strategy) -> None:
    sup, world, boxes = build("abc", strategy, intensity=1)
    await sup.start()
    await crash(boxes["a"])  # takes the whole group down: three children restarted, one restart counted
    await until(lambda: all(world.starts[n] == 2 for n in "abc") and all_running(sup)(), what="group restart")
    assert not sup.done.done()
    assert [sup.snapshot()[n]["restarts"] for n in "abc"] == [1, 1, 1]

    await crash(boxes["c"])  # the second restart within the period is one too many
    exit = await asyncio.wait_for(sup.done, 5)
    assert isinstance(exit.error, Escalation)


async def test_restarts_older_than_the_period_are_forgotten() -> None:
    sup, world, boxes = build("a", intensity=1, period=0.5)
    await sup.start()
    await crash_and_recover(sup, world, boxes["a"])
    recovered = time.monotonic()
    await until(lambda: time.monotonic() - recovered > 0.6, what="the period to pass")
    await crash_and_recover(sup, world, boxes["a"])  # the first restart has left the window
    assert not sup.done.done() and sup.snapshot()["a"]["restarts"] == 2
    await crash(boxes["a"])  # but two within the period is still too many
    assert isinstance((await asyncio.wait_for(sup.done, 5)).error, Escalation)


@pytest.mark.parametrize(("strategy", "journal", "starts"), [
    (Strategy.ONE_FOR_ONE, ["-b", "-c", "-a"], {"a": 1, "b": 1, "c": 1}),
    # each round stops the others, restarts a, then b fails and c is never reached
    (Strategy.ONE_FOR_ALL, ["-b", "-c", "-a", "+a", "-a", "+a", "-a", "+a", "-a"], {"a": 4, "b": 1, "c": 1}),
    (Strategy.REST_FOR_ONE, ["-b", "-c", "-a"], {"a": 1, "b": 1, "c": 1}),
])
async def test_a_child_failing_to_restart_counts_toward_intensity_and_escalates(strategy, journal, starts) -> None:
    sup, world, boxes = build("abc", strategy, intensity=3)
    await sup.start()
    world.journal.clear()
    world.fail["b"] = 1000  # from now on b cannot start

    await crash(boxes["b"])
    exit = await asyncio.wait_for(sup.done, 5)
    assert isinstance(exit.error, Escalation) and "b cannot start" in str(exit.error)
    # the crash and the first two failed starts used the three restarts allowed; the third failed start is one more
    assert world.failures["b"] == 3
    assert [("+" if kind == "start" else "-") + n for kind, n in world.journal] == journal
    assert dict(world.starts) == starts
    assert sup.snapshot()["b"]["restarts"] == 0  # only successful restarts are counted there
    assert states(sup)["b"] is FAILED


@pytest.mark.parametrize("strategy", list(Strategy))
async def test_a_child_failing_to_restart_recovers_when_a_later_start_succeeds(strategy) -> None:
    sup, world, boxes = build("abc", strategy, intensity=3)
    await sup.start()
    world.fail["b"] = 2  # the next two starts of b fail, the third works

    await crash(boxes["b"])
    await until(lambda: world.starts["b"] == 2 and all_running(sup)(), what="b recovered")
    assert not sup.done.done()
    assert world.failures["b"] == 2
    item = sup.snapshot()["b"]
    assert item["restarts"] == 1 and item["last_error"] == "RuntimeError: b cannot start"
    assert await boxes["b"].ask(Ping()) == ("b", 2)
    assert [await boxes[n].ask(Ping()) for n in "ac"] == [("a", world.starts["a"]), ("c", world.starts["c"])]

    await crash(boxes["b"])  # the three restarts are still within the period: a fourth escalates
    assert isinstance((await asyncio.wait_for(sup.done, 5)).error, Escalation)


# -- exit reason × restart type --------------------------------------------------------------------


MATRIX = [
    (restart, reason, restart is Restart.PERMANENT or (restart is Restart.TRANSIENT and reason is ExitKind.ABNORMAL))
    for restart in Restart
    for reason in ExitKind
]


@pytest.mark.parametrize(("restart", "reason", "restarted"), MATRIX,
                         ids=[f"{r.value}-{e.value}" for r, e, _ in MATRIX])
async def test_exit_reason_by_restart_type(restart, reason, restarted) -> None:
    sup, world, boxes = build("kx", kinds={"x": restart})
    await sup.start()
    first = sup.child("x")

    await boxes["x"].tell(Crash() if reason is ExitKind.ABNORMAL else Leave(reason))
    exit = await asyncio.wait_for(first.done, 5)
    assert exit.kind is reason

    if restarted:
        await until(lambda: world.starts["x"] == 2 and states(sup).get("x") is RUNNING, what="x restarted")
        assert sup.child("x") is not first and sup.snapshot()["x"]["restarts"] == 1
        assert await boxes["x"].ask(Ping()) == ("x", 2)
    elif restart is Restart.TEMPORARY:
        await until(lambda: "x" not in states(sup), what="temporary x forgotten")
    else:
        await until(lambda: states(sup)["x"] is STOPPED, what="transient x left down")
        assert sup.child("x") is None and sup.snapshot()["x"]["restarts"] == 0
    if not restarted:
        assert world.starts["x"] == 1
        assert boxes["x"].closed and await boxes["x"].tell(Ping()) is False
    if "x" in states(sup):
        last_error = sup.snapshot()["x"]["last_error"]
        assert (last_error == "RuntimeError: x crashed") if reason is ExitKind.ABNORMAL else last_error is None
    assert world.starts["k"] == 1 and sup.snapshot()["k"]["restarts"] == 0
    assert not sup.done.done()
    await sup.stop()


@pytest.mark.parametrize(("strategy", "names", "crashed"), [
    (Strategy.ONE_FOR_ALL, "abt", "a"),
    (Strategy.ONE_FOR_ALL, "tab", "b"),  # a bystander started before the failing child goes too
    (Strategy.REST_FOR_ONE, "abt", "b"),
])
async def test_a_temporary_bystander_is_not_restarted(strategy, names, crashed) -> None:
    sup, world, boxes = build(names, strategy, kinds={"t": Restart.TEMPORARY})
    await sup.start()
    await crash(boxes[crashed])
    await until(lambda: "t" not in states(sup) and all_running(sup)() and world.starts[crashed] == 2,
                     what="group restarted without t")
    assert [n for n, _ in sup.children()] == [n for n in names if n != "t"]
    assert world.starts["t"] == 1 and world.stops().count("t") == 1  # stopped once, never started again
    assert boxes["t"].closed and await boxes["t"].tell(Ping()) is False
    assert not sup.done.done()
    await sup.stop()


async def test_a_transient_bystander_is_restarted_with_its_group() -> None:
    sup, world, boxes = build("abt", Strategy.ONE_FOR_ALL, kinds={"t": Restart.TRANSIENT})
    await sup.start()
    await crash(boxes["a"])
    await until(lambda: all(world.starts[n] == 2 for n in "abt") and all_running(sup)(), what="group restart")
    assert await boxes["t"].ask(Ping()) == ("t", 2)
    await sup.stop()


# -- shutdown --------------------------------------------------------------------------------------


async def test_stop_is_bounded_when_a_child_ignores_shutdown() -> None:
    world = World()
    specs = [member("a", world), member("s", world, shutdown=0.2), member("b", world)]
    sup = Supervisor("sup", specs, backoff=FAST)
    await sup.start()
    hold = Hold(asyncio.Event(), stubborn=True)
    await box_of(specs[1]).tell(hold)
    stubborn = sup.child("s")
    await until(lambda: stubborn._busy_msg is hold, what="s busy")

    await asyncio.wait_for(sup.stop(timeout=10), 5)  # without the per-child timeout this would never return
    assert world.stops() == ["b", "a"]  # s is let go (it is still in its handler), the others stopped in order
    assert states(sup) == {"a": STOPPED, "s": STOPPED, "b": STOPPED}
    assert stubborn.done.result() is SHUTDOWN
    hold.release.set()
    await until(lambda: "s" in world.stops(), what="the abandoned handler to end")


async def test_stop_lets_go_of_a_chaos_hang_that_ignores_cancellation() -> None:
    world = World()
    specs = [member("a", world), member("s", world, shutdown=0.5), member("b", world)]
    sup = Supervisor("sup", specs, backoff=FAST)
    await sup.start()
    await box_of(specs[1]).tell(ChaosFault("hang", ignore_cancel=True, deadline=30))
    stubborn = sup.child("s")
    await until(lambda: isinstance(stubborn._busy_msg, ChaosFault), what="s hanging")

    await asyncio.wait_for(sup.stop(timeout=10), 5)
    await until(lambda: len(world.stops()) == 3, what="all three on_stop")
    stops = world.stops()
    assert stops.index("b") < stops.index("a") and set(stops) == {"a", "b", "s"}


async def test_a_pending_restart_backoff_does_not_hang_shutdown() -> None:
    sup, world, boxes = build("ab", backoff=Backoff(min=60, max=60, jitter=0))
    await sup.start()
    await crash(boxes["b"])
    await until(lambda: states(sup)["b"] is State.RESTARTING, what="b waiting out its backoff")
    assert records(sup)["b"].last_delay == 60

    await asyncio.wait_for(sup.stop(), 5)  # does not wait out the 60 s backoff
    assert sup.done.result() is SHUTDOWN
    assert states(sup) == {"a": STOPPED, "b": STOPPED}
    assert world.starts["b"] == 1 and world.stops() == ["b", "a"]


async def test_a_crash_loop_in_progress_does_not_hang_shutdown() -> None:
    sup, world, boxes = build("ab", intensity=1000, period=60, backoff=Backoff(min=0.01, max=0.05, jitter=0))
    await sup.start()
    world.fail["b"] = 10**6
    await crash(boxes["b"])
    await until(lambda: world.failures["b"] >= 3, what="b failing to restart again and again")

    await asyncio.wait_for(sup.stop(), 5)
    assert sup.done.result() is SHUTDOWN and not sup.failed
    assert states(sup)["a"] is STOPPED and states(sup)["b"] in (STOPPED, FAILED)
    assert world.starts["b"] == 1 and world.stops()[-1] == "a"


# -- nested supervisors ----------------------------------------------------------------------------


def nested(world: World, strategy: Strategy, intensity: int = 5) -> Supervisor:
    """outer(strategy): before, inner(one_for_one, intensity 1): leaf, after."""
    leaf = member("leaf", world)
    inner = ChildSpec("inner", lambda: Supervisor("inner", [leaf], Strategy.ONE_FOR_ONE, intensity=1, period=60,
                                                  backoff=FAST), shutdown=5.0)
    return Supervisor("outer", [member("before", world), inner, member("after", world)], strategy,
                      intensity=intensity, period=60, backoff=FAST)


@pytest.mark.parametrize(("strategy", "restarted"), [
    (Strategy.ONE_FOR_ONE, set()),
    (Strategy.ONE_FOR_ALL, {"before", "after"}),
    (Strategy.REST_FOR_ONE, {"after"}),
])
async def test_an_escalating_inner_supervisor_is_restarted_by_its_parent(strategy, restarted) -> None:
    world = World()
    outer = nested(world, strategy)
    await outer.start()
    assert world.journal == [("start", n) for n in ("before", "leaf", "after")]
    inner = outer.child("inner")
    leaf_box = box_of(records(outer)["leaf"].spec)

    await crash(leaf_box)  # the inner supervisor restarts the leaf once ...
    await until(lambda: world.starts["leaf"] == 2 and outer.snapshot()["leaf"]["state"] == "running",
                     what="leaf restarted by inner")
    await crash(leaf_box)  # ... and gives up on the second crash
    exit = await asyncio.wait_for(inner.done, 5)
    assert isinstance(exit.error, Escalation) and "inner: more than 1 restarts" in str(exit.error)

    await until(lambda: world.starts["leaf"] == 3 and all(world.starts[n] == 2 for n in restarted)
                     and all_running(outer)(), what="outer restarted inner")
    assert outer.child("inner") is not inner and not outer.done.done()
    snap = outer.snapshot()
    assert snap["inner"]["restarts"] == 1 and snap["inner"]["last_error"].startswith("Escalation: inner:")
    assert snap["leaf"]["parent"] == "inner" and snap["leaf"]["restarts"] == 0  # a fresh inner, fresh counters
    for name in ("before", "after"):
        assert world.starts[name] == (2 if name in restarted else 1), name
    assert await leaf_box.ask(Ping()) == ("leaf", 3)
    await outer.stop()
    assert world.stops()[-3:] == ["after", "leaf", "before"]


async def test_escalation_propagates_through_a_parent_that_gives_up_too() -> None:
    world = World()
    outer = nested(world, Strategy.ONE_FOR_ONE, intensity=0)
    await outer.start()
    leaf_box = box_of(records(outer)["leaf"].spec)
    await crash_and_recover(outer, world, leaf_box)
    world.journal.clear()
    await crash(leaf_box)
    exit = await asyncio.wait_for(outer.done, 5)
    assert exit.kind is ExitKind.ABNORMAL and isinstance(exit.error, Escalation)
    assert "outer: more than 0 restarts" in str(exit.error) and "Escalation: inner" in str(exit.error)
    assert world.journal == [("stop", "leaf"), ("stop", "after"), ("stop", "before")]
    assert outer.failed


# -- backoff ---------------------------------------------------------------------------------------


def test_backoff_grows_with_the_streak_and_is_capped() -> None:
    b = Backoff(min=0.1, max=1.0, factor=2, jitter=0)
    assert [b.delay(s) for s in range(7)] == pytest.approx([0, 0.1, 0.2, 0.4, 0.8, 1.0, 1.0])
    assert b.delay(-1) == 0
    assert b.delay(100_000) == 1.0  # a very long crash loop stays at the cap
    assert Backoff(min=0, max=5, jitter=0).delay(100_000) == 0
    assert Backoff(min=0.1, max=0).delay(3) == 0


def test_backoff_jitter_stays_within_its_bounds() -> None:
    b = Backoff(min=0.1, max=1.0, factor=2, jitter=0.25)
    for streak, base in [(1, 0.1), (2, 0.2), (3, 0.4), (4, 0.8), (5, 1.0), (9, 1.0)]:
        samples = [b.delay(streak) for _ in range(300)]
        assert all(base * 0.75 - 1e-12 <= d <= min(1.0, base * 1.25) + 1e-12 for d in samples), streak
        assert len(set(samples)) > 1, streak  # the jitter is applied


async def test_backoff_streak_grows_over_quick_restarts_and_resets_after_a_quiet_period() -> None:
    backoff = Backoff(min=0.001, max=1.0, factor=2, jitter=0, reset_after=60)
    sup, world, boxes = build("a", intensity=100, backoff=backoff)
    await sup.start()
    record = records(sup)["a"]
    for n in range(1, 4):
        await crash_and_recover(sup, world, boxes["a"])
        assert record.streak == n and record.last_delay == pytest.approx(0.001 * 2 ** (n - 1))

    sup.backoff = dataclasses.replace(backoff, reset_after=0.05)
    started = record.started_at
    await until(lambda: time.monotonic() - started > 0.1, what="a quiet period")
    await crash_and_recover(sup, world, boxes["a"])
    assert record.streak == 1 and record.last_delay == pytest.approx(0.001)
    await sup.stop()


async def test_backoff_streak_does_not_grow_when_every_incarnation_outlives_reset_after() -> None:
    sup, world, boxes = build("a", intensity=100, backoff=Backoff(min=0.001, max=1.0, jitter=0, reset_after=0))
    await sup.start()
    record = records(sup)["a"]
    for _ in range(3):
        await crash_and_recover(sup, world, boxes["a"])
        assert record.streak == 1 and record.last_delay == pytest.approx(0.001)
    assert record.restarts == 3
    await sup.stop()


# -- dynamic children and introspection ------------------------------------------------------------


async def test_start_child_and_terminate_child() -> None:
    world = World()
    sup = Supervisor("pool", [], backoff=FAST)
    await sup.start()
    w1 = member("w1", world)
    await sup.start_child(w1)
    assert sup.children() == [("w1", RUNNING)]
    assert await box_of(w1).ask(Ping()) == ("w1", 1)

    with pytest.raises(ValueError, match="already has a child named w1"):
        await sup.start_child(member("w1", world))
    world.fail["w2"] = 1
    with pytest.raises(RuntimeError, match="w2 cannot start"):
        await sup.start_child(member("w2", world))
    assert [n for n, _ in sup.children()] == ["w1"]

    await crash_and_recover(sup, world, box_of(w1))  # supervised like any other
    assert sup.snapshot()["w1"]["restarts"] == 1

    await sup.terminate_child("w1")
    assert sup.children() == [] and world.stops() == ["w1", "w1"]
    assert box_of(w1).closed
    with pytest.raises(KeyError, match="no child named w1"):
        await sup.terminate_child("w1")
    with pytest.raises(KeyError):
        await sup.terminate_child("nobody")

    await sup.start_child(w1)  # the name is free again; its mailbox opens again
    assert await box_of(w1).ask(Ping()) == ("w1", 3)
    await sup.stop()
    assert not sup.failed


async def test_snapshot_contents_are_json_serialisable() -> None:
    world = World()
    leaf = member("leaf", world, capacity=8)
    inner = ChildSpec("inner", lambda: Supervisor("inner", [leaf], Strategy.ONE_FOR_ALL, backoff=FAST))
    a = member("a", world, restart=Restart.TRANSIENT)
    sup = Supervisor("top", [a, inner], backoff=FAST)
    await sup.start()

    t0 = time.time()
    await crash_and_recover(sup, world, box_of(a))
    hold = Hold(asyncio.Event())
    await box_of(leaf).tell(hold)
    await box_of(leaf).tell(Ping())
    await box_of(leaf).tell(Ping())
    await until(lambda: sup.snapshot()["leaf"]["mailbox_depth"] == 2, what="two messages queued")

    snap = sup.snapshot()
    assert list(snap) == ["a", "inner", "leaf"]
    item = snap["a"]
    assert {k: item[k] for k in ("parent", "state", "restart", "restarts", "last_error")} == {
        "parent": "top", "state": "running", "restart": "transient", "restarts": 1,
        "last_error": "RuntimeError: a crashed"}
    assert isinstance(item["last_error_at"], float) and t0 <= item["last_error_at"] <= time.time()
    assert item["mailbox_depth"] == 0 and item["mailbox_capacity"] == Member.capacity
    assert item["deadline_misses"] == 0 and item["handled"] == 0
    assert isinstance(item["heartbeat_age_seconds"], float)
    assert snap["inner"] == {"parent": "top", "state": "running", "restart": "permanent", "restarts": 0,
                             "last_error": None, "last_error_at": None, "kind": "supervisor",
                             "strategy": "one_for_all", "children": ["leaf"]}
    assert snap["leaf"]["parent"] == "inner" and snap["leaf"]["last_error_at"] is None
    assert snap["leaf"]["mailbox_depth"] == 2 and snap["leaf"]["mailbox_capacity"] == 8
    assert json.loads(json.dumps(snap)) == snap

    hold.release.set()
    await until(lambda: sup.snapshot()["leaf"]["handled"] == 3, what="the queue served")
    await sup.stop()
    assert {item["state"] for item in sup.snapshot().values()} == {"stopped"}
    json.dumps(sup.snapshot())
