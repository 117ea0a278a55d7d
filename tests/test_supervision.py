"""The supervisor against the behaviours of Erlang/OTP's supervisor test suite."""

from __future__ import annotations

import asyncio
import json

import pytest

from actors.base import ExitKind, Mailbox
from supervisor import Backoff, ChildSpec, Escalation, Restart, StartFailed, State, Strategy, Supervisor
from tests.actors_kit import Crash, Leave, Ping, Stubborn, Worker, ident, until

pytestmark = pytest.mark.timeout(30)
FAST = Backoff(min=0, max=0)


def spec(name: str, journal: list, restart: Restart = Restart.PERMANENT, shutdown: float = 1.0,
         fail_start=None) -> tuple[ChildSpec, Mailbox]:
    box = Worker.mailbox(name)
    return ChildSpec.actor(Worker, box, journal, fail_start, restart=restart, shutdown=shutdown), box


def tree(journal: list, names: str, strategy: Strategy, intensity: int = 3, period: float = 5.0,
         **kinds: Restart) -> tuple[Supervisor, dict[str, Mailbox]]:
    specs, boxes = [], {}
    for name in names:
        s, box = spec(name, journal, kinds.get(name, Restart.PERMANENT))
        specs.append(s)
        boxes[name] = box
    return Supervisor("sup", specs, strategy, intensity, period, FAST), boxes


async def ids(boxes: dict[str, Mailbox]) -> dict[str, int]:
    return {name: ident(await box.ask(Ping())) for name, box in boxes.items()}


async def restarted(sup: Supervisor, before: dict[str, int], boxes: dict[str, Mailbox]) -> set[str]:
    await until(lambda: all(state is State.RUNNING for _, state in sup.children()), what="all running")
    after = await ids(boxes)
    return {name for name in boxes if after[name] != before[name]}


@pytest.mark.parametrize(("strategy", "crashed", "expected"), [
    (Strategy.ONE_FOR_ONE, "b", {"b"}),
    (Strategy.ONE_FOR_ALL, "b", {"a", "b", "c"}),
    (Strategy.REST_FOR_ONE, "b", {"b", "c"}),
    (Strategy.REST_FOR_ONE, "a", {"a", "b", "c"}),
])
async def test_strategies_restart_the_right_children(strategy, crashed, expected) -> None:
    journal: list = []
    sup, boxes = tree(journal, "abc", strategy)
    await sup.start()
    before = await ids(boxes)
    await boxes[crashed].tell(Crash())
    await until(lambda: sum(r for name in "abc" for r in [sup.snapshot()[name]["restarts"]]) == len(expected),
                what="restarts counted")
    assert await restarted(sup, before, boxes) == expected
    stopped = [n for kind, n in journal if kind == "stop"]
    others = [n for n in "cba" if n in expected and n != crashed]
    assert stopped == [crashed, *others]  # the crashed one ended first, then the others in reverse order
    await sup.stop()


@pytest.mark.parametrize("strategy", list(Strategy))
async def test_intensity_allows_n_restarts_and_escalates_on_one_more(strategy) -> None:
    journal: list = []
    sup, boxes = tree(journal, "abc", strategy, intensity=3, period=30)
    await sup.start()
    for n in range(3):
        await boxes["b"].tell(Crash())
        await until(lambda n=n: sup.snapshot()["b"]["restarts"] == n + 1 and
                    sup.snapshot()["b"]["state"] == "running", what=f"restart {n + 1}")
    assert not sup.done.done()
    journal.clear()
    await boxes["b"].tell(Crash())
    exit = await asyncio.wait_for(sup.done, 5)
    assert exit.kind is ExitKind.ABNORMAL and isinstance(exit.error, Escalation)
    assert "more than 3 restarts" in str(exit.error)
    stops = [n for kind, n in journal if kind == "stop"]
    assert stops[0] == "b" and [n for n in stops[1:]] == [n for n in "ca" if n != "b"]  # reverse start order


@pytest.mark.parametrize("strategy", list(Strategy))
async def test_a_child_failing_to_restart_counts_and_escalates(strategy) -> None:
    journal: list = []
    broken = {"on": False}
    specs = []
    boxes = {}
    for name in "abc":
        s, box = spec(name, journal, fail_start=(lambda: broken["on"]) if name == "b" else None)
        specs.append(s)
        boxes[name] = box
    sup = Supervisor("sup", specs, strategy, intensity=2, period=30, backoff=FAST)
    await sup.start()
    broken["on"] = True
    await boxes["b"].tell(Crash())
    exit = await asyncio.wait_for(sup.done, 5)
    assert isinstance(exit.error, Escalation)
    assert all(state in (State.STOPPED, State.FAILED) for _, state in sup.children())


async def test_a_child_failing_to_restart_once_recovers() -> None:
    journal: list = []
    attempts = {"n": 0}

    def flaky() -> bool:
        attempts["n"] += 1
        return attempts["n"] == 2  # the first restart fails, the next works

    s, box = spec("a", journal, fail_start=flaky)
    sup = Supervisor("sup", [s], Strategy.ONE_FOR_ONE, intensity=3, period=30, backoff=FAST)
    await sup.start()
    await box.tell(Crash())
    await until(lambda: sup.snapshot()["a"]["state"] == "running" and attempts["n"] == 3, what="recovered")
    assert not sup.done.done()
    await sup.stop()


async def test_start_and_stop_order() -> None:
    journal: list = []
    sup, _ = tree(journal, "abcd", Strategy.ONE_FOR_ONE)
    await sup.start()
    assert journal == [("start", n) for n in "abcd"]
    journal.clear()
    await sup.stop()
    assert journal == [("stop", n) for n in "dcba"]
    assert [state for _, state in sup.children()] == [State.STOPPED] * 4


async def test_start_failure_stops_the_started_ones_in_reverse() -> None:
    journal: list = []
    specs = [spec("a", journal)[0], spec("b", journal)[0], spec("c", journal, fail_start=lambda: True)[0],
             spec("d", journal)[0]]
    sup = Supervisor("sup", specs, backoff=FAST)
    with pytest.raises(StartFailed, match="child c failed to start"):
        await sup.start()
    # c's on_stop runs too (it releases whatever on_start took), then b and a in reverse order
    assert journal == [("start", "a"), ("start", "b"), ("stop", "c"), ("stop", "b"), ("stop", "a")]


MATRIX = [
    (Restart.PERMANENT, ExitKind.NORMAL, True), (Restart.PERMANENT, ExitKind.SHUTDOWN, True),
    (Restart.PERMANENT, ExitKind.ABNORMAL, True),
    (Restart.TRANSIENT, ExitKind.NORMAL, False), (Restart.TRANSIENT, ExitKind.SHUTDOWN, False),
    (Restart.TRANSIENT, ExitKind.ABNORMAL, True),
    (Restart.TEMPORARY, ExitKind.NORMAL, False), (Restart.TEMPORARY, ExitKind.SHUTDOWN, False),
    (Restart.TEMPORARY, ExitKind.ABNORMAL, False),
]


@pytest.mark.parametrize(("restart", "reason", "restarts"), MATRIX)
async def test_exit_reason_by_restart_type(restart, reason, restarts) -> None:
    journal: list = []
    s, box = spec("x", journal, restart)
    keeper, _ = spec("keeper", journal)
    sup = Supervisor("sup", [keeper, s], Strategy.ONE_FOR_ONE, backoff=FAST)
    await sup.start()
    await box.tell(Crash() if reason is ExitKind.ABNORMAL else Leave(reason))
    await until(lambda: ("stop", "x") in journal, what="x ended")
    if restarts:
        await until(lambda: sup.snapshot()["x"]["restarts"] == 1 and sup.snapshot()["x"]["state"] == "running",
                    what="x restarted")
    elif restart is Restart.TEMPORARY:
        await until(lambda: "x" not in dict(sup.children()), what="temporary x forgotten")
    else:
        await until(lambda: dict(sup.children())["x"] in (State.STOPPED, State.FAILED), what="x stays down")
        assert sup.snapshot()["x"]["restarts"] == 0
    assert sup.snapshot()["keeper"]["restarts"] == 0
    await sup.stop()


@pytest.mark.parametrize("strategy", [Strategy.ONE_FOR_ALL, Strategy.REST_FOR_ONE])
async def test_temporary_bystander_is_not_restarted(strategy) -> None:
    journal: list = []
    sup, boxes = tree(journal, "abc", strategy, c=Restart.TEMPORARY)
    await sup.start()
    await boxes["a"].tell(Crash())
    await until(lambda: "c" not in dict(sup.children()), what="temporary c dropped")
    await until(lambda: all(s is State.RUNNING for _, s in sup.children()), what="a and b running")
    assert [n for n, _ in sup.children()] == ["a", "b"]
    assert journal.count(("start", "c")) == 1
    await sup.stop()


async def test_shutdown_with_a_child_ignoring_it_is_bounded() -> None:
    journal: list = []
    stubborn, box = spec("stubborn", journal, shutdown=0.3)
    sup = Supervisor("sup", [spec("a", journal)[0], stubborn], backoff=FAST)
    await sup.start()
    await box.tell(Stubborn())
    await until(lambda: sup.child("stubborn").heartbeat_age > 0, what="stubborn busy")
    await asyncio.wait_for(sup.stop(timeout=5), 4)  # would hang forever without the per-child timeout
    assert ("stop", "a") in journal


async def test_restart_loop_does_not_hang_shutdown() -> None:
    journal: list = []
    always = {"on": False}
    s, box = spec("a", journal, fail_start=lambda: always["on"])
    sup = Supervisor("sup", [s], Strategy.ONE_FOR_ONE, intensity=1000, period=1,
                     backoff=Backoff(min=0.05, max=0.2, jitter=0))
    await sup.start()
    always["on"] = True
    await box.tell(Crash())
    await until(lambda: sup.snapshot()["a"]["state"] in ("restarting", "failed"), what="restart loop")
    await asyncio.wait_for(sup.stop(timeout=5), 4)
    assert sup.done.done()


async def test_nested_supervisor_escalates_to_its_parent() -> None:
    journal: list = []
    inner_box = Worker.mailbox("leaf")
    inner = ChildSpec("inner", lambda: Supervisor("inner", [ChildSpec.actor(Worker, inner_box, journal)],
                                                  intensity=1, period=30, backoff=FAST))
    sibling, _ = spec("sibling", journal)
    outer = Supervisor("outer", [sibling, inner], Strategy.ONE_FOR_ONE, intensity=5, period=30, backoff=FAST)
    await outer.start()
    await inner_box.tell(Crash())
    await until(lambda: outer.snapshot()["leaf"]["restarts"] == 1, what="leaf restarted by inner")
    await inner_box.tell(Crash())  # second restart in the window: inner gives up
    await until(lambda: outer.snapshot()["inner"]["restarts"] == 1, what="outer restarted inner")
    snap = outer.snapshot()
    assert snap["inner"]["last_error"].startswith("Escalation")
    assert snap["leaf"]["state"] == "running" and snap["sibling"]["restarts"] == 0
    json.dumps(snap)  # /health must be able to serialise it
    await outer.stop()


def test_backoff_grows_caps_and_jitters() -> None:
    b = Backoff(min=0.1, max=1.0, factor=2, jitter=0.2)
    assert b.delay(0) == 0
    for streak, base in [(1, 0.1), (2, 0.2), (3, 0.4), (4, 0.8), (5, 1.0), (20, 1.0)]:
        for _ in range(50):
            d = b.delay(streak)
            assert base * 0.8 - 1e-9 <= d <= min(1.0, base * 1.2) + 1e-9


async def test_backoff_streak_resets_after_a_quiet_period() -> None:
    journal: list = []
    s, box = spec("a", journal)
    sup = Supervisor("sup", [s], intensity=100, period=30, backoff=Backoff(min=0.01, max=5, jitter=0,
                                                                            reset_after=0.2))
    await sup.start()
    record = next(r for _, r in sup.walk())
    for n in range(3):
        await box.tell(Crash())
        await until(lambda n=n: record.restarts == n + 1 and record.state is State.RUNNING, what="restart")
    assert record.streak == 3 and record.last_delay == pytest.approx(0.04)
    started = record.started_at
    await until(lambda: asyncio.get_running_loop().time() - started > 0.25, what="quiet period")
    await box.tell(Crash())
    await until(lambda: record.restarts == 4 and record.state is State.RUNNING, what="restart after quiet")
    assert record.streak == 1 and record.last_delay == pytest.approx(0.01)
    await sup.stop()


async def test_dynamic_children() -> None:
    journal: list = []
    sup = Supervisor("pool", [], backoff=FAST)
    await sup.start()
    s, box = spec("w1", journal)
    await sup.start_child(s)
    assert await box.ask(Ping(7)) is not None
    with pytest.raises(ValueError, match="already has"):
        await sup.start_child(s)
    await sup.terminate_child("w1")
    assert sup.children() == [] and ("stop", "w1") in journal
    with pytest.raises(KeyError):
        await sup.terminate_child("w1")
    await sup.stop()


async def test_snapshot_shows_state_restarts_error_and_mailbox() -> None:
    journal: list = []
    sup, boxes = tree(journal, "a", Strategy.ONE_FOR_ONE)
    await sup.start()
    await boxes["a"].tell(Crash())
    await until(lambda: sup.snapshot()["a"]["restarts"] == 1, what="restart")
    item = sup.snapshot()["a"]
    assert item["state"] == "running" and item["last_error"] == "RuntimeError: boom"
    assert isinstance(item["last_error_at"], float)
    assert item["mailbox_capacity"] == Worker.capacity and item["mailbox_depth"] == 0
    json.dumps(sup.snapshot())
    await sup.stop()
