"""Supervisors with Erlang/OTP semantics: strategies, restart types, intensity, backoff, shutdown.

A supervisor starts its children in spec order and stops them in reverse. When a child ends it
decides, by the child's restart type and its own strategy, what to restart. More than
`intensity` restarts within `period` seconds means restarting does not help: it stops all its
children and fails to its parent, which applies its own strategy. Restarts wait an exponential
backoff with jitter, so a dead dependency does not become a hot restart loop.
"""

from __future__ import annotations

import asyncio
import collections
import enum
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol

from actors.actor import SHUTDOWN, Actor, Exit, ExitKind
from actors.backoff import Backoff
from actors.mailbox import Mailbox, describe
from telemetry import logs
from telemetry.metrics import METRICS

log = logs.get("supervisor")


class Strategy(enum.Enum):
    ONE_FOR_ONE = "one_for_one"
    ONE_FOR_ALL = "one_for_all"
    REST_FOR_ONE = "rest_for_one"


class Restart(enum.Enum):
    PERMANENT = "permanent"  # always restarted
    TRANSIENT = "transient"  # restarted only after an abnormal end
    TEMPORARY = "temporary"  # never restarted, forgotten once it ends


class State(enum.Enum):
    STARTING = "starting"
    RUNNING = "running"
    RESTARTING = "restarting"
    STOPPED = "stopped"
    FAILED = "failed"


class Child(Protocol):
    """What a supervisor can run: an Actor or another Supervisor."""

    name: str
    done: asyncio.Future[Exit]

    async def start(self) -> None: ...

    async def stop(self, timeout: float) -> None: ...

    def health(self) -> dict[str, Any]: ...


class Escalation(Exception):
    """A supervisor gave up: its children restarted too often."""


class StartFailed(Exception):
    """A child could not be started when the supervisor started."""


@dataclass(frozen=True)
class ChildSpec:
    """How to make and treat one child. `start` is called anew for every incarnation."""

    name: str
    start: Callable[[], Child]
    restart: Restart = Restart.PERMANENT
    shutdown: float = 5.0
    mailbox: Mailbox | None = None

    @classmethod
    def actor(
        cls,
        actor_cls: type[Actor],
        mailbox: Mailbox,
        *args: Any,
        restart: Restart = Restart.PERMANENT,
        shutdown: float = 5.0,
        **kwargs: Any,
    ) -> ChildSpec:
        return cls(mailbox.name, lambda: actor_cls(mailbox, *args, **kwargs), restart, shutdown, mailbox)


@dataclass(eq=False)
class _Record:
    spec: ChildSpec
    state: State = State.STOPPED
    child: Child | None = None
    generation: int = 0
    restarts: int = 0
    streak: int = 0
    last_error: str | None = None
    last_error_at: float | None = None
    started_at: float = 0.0
    last_delay: float = 0.0

    @property
    def name(self) -> str:
        return self.spec.name


@dataclass
class _Event:
    record: _Record
    generation: int
    exit: Exit
    at: float = field(default_factory=time.monotonic)


class Supervisor:
    """Runs children and keeps them running according to OTP rules."""

    def __init__(
        self,
        name: str,
        children: list[ChildSpec],
        strategy: Strategy = Strategy.ONE_FOR_ONE,
        intensity: int = 3,
        period: float = 5.0,
        backoff: Backoff | None = None,
    ) -> None:
        names = [c.name for c in children]
        if len(set(names)) != len(names):
            raise ValueError(f"duplicate child names under {name}: {names}")
        self.name = name
        self.strategy = strategy
        self.intensity = intensity
        self.period = period
        self.backoff = backoff or Backoff()
        self._specs = list(children)
        self._records: list[_Record] = []
        self._restarts: collections.deque[float] = collections.deque()
        self._events: asyncio.Queue[_Event] = asyncio.Queue()
        self._lock = asyncio.Lock()
        self._stop_event = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.done: asyncio.Future[Exit] = asyncio.get_running_loop().create_future()
        self.failed_reason: str | None = None

    # -- life cycle ---------------------------------------------------------------------------

    async def start(self) -> None:
        """Start children in order; if one fails, stop those started and fail."""
        self._records = [_Record(spec) for spec in self._specs]
        for index, record in enumerate(self._records):
            try:
                await self._start_record(record)
            except BaseException as exc:
                log.error("child_start_failed", extra={"supervisor": self.name, "child": record.name,
                                                       "error_text": describe(exc)})
                for started in reversed(self._records[:index]):
                    await self._stop_record(started)
                raise StartFailed(f"{self.name}: child {record.name} failed to start: {describe(exc)}") from exc
        self._task = asyncio.create_task(self._run(), name=f"supervisor:{self.name}")

    async def stop(self, timeout: float = 30.0) -> None:
        """Stop all children in reverse start order, each within its own shutdown timeout."""
        if self.done.done():
            return
        self._stop_event.set()
        try:
            async with asyncio.timeout(timeout):
                async with self._lock:
                    await self._stop_all(final=True)
        except TimeoutError:
            log.error("supervisor_stop_timeout", extra={"supervisor": self.name, "timeout": timeout})
        if self._task is not None:
            self._task.cancel()
        if not self.done.done():
            self.done.set_result(SHUTDOWN)

    async def _stop_all(self, final: bool = False) -> None:
        for record in reversed(self._records):
            await self._stop_record(record, final)

    async def _start_record(self, record: _Record) -> None:
        record.generation += 1
        generation = record.generation
        record.state = State.STARTING
        try:
            child = record.spec.start()
            record.child = child
            await child.start()
        except BaseException as exc:
            record.child = None
            record.state = State.FAILED
            record.last_error, record.last_error_at = describe(exc), time.time()
            raise
        record.state = State.RUNNING
        record.started_at = time.monotonic()
        if record.spec.mailbox is not None:
            record.spec.mailbox.reopen()
        log.info("child_started", extra={"supervisor": self.name, "child": record.name,
                                         "generation": generation})
        child.done.add_done_callback(lambda fut: self._events.put_nowait(_Event(record, generation, fut.result())))

    async def _stop_record(self, record: _Record, final: bool = False) -> None:
        """Stop one child; `final` also closes its mailbox so later sends become dead letters."""
        child = record.child
        record.generation += 1  # its exit is ours, not news
        record.child = None
        if child is not None:
            try:
                await child.stop(record.spec.shutdown)
            except Exception as exc:
                log.error("child_stop_failed", extra={"child": record.name, "error_text": describe(exc)})
            log.info("child_stopped", extra={"supervisor": self.name, "child": record.name})
        if record.state is not State.FAILED:
            record.state = State.STOPPED
        if final and record.spec.mailbox is not None:
            record.spec.mailbox.close()

    # -- reacting to exits --------------------------------------------------------------------

    async def _run(self) -> None:
        while True:
            event = await self._events.get()
            async with self._lock:
                if self._stop_event.is_set() or self.done.done():
                    continue
                if event.generation != event.record.generation or event.record not in self._records:
                    continue
                try:
                    await self._child_exited(event.record, event.exit)
                except Exception as exc:  # a bug here must not leave children unsupervised
                    log.exception("supervisor_error", extra={"supervisor": self.name})
                    await self._escalate(Exit(ExitKind.ABNORMAL, exc))
            if self.done.done():
                return

    async def _child_exited(self, record: _Record, exit: Exit) -> None:
        record.child = None
        if exit.abnormal:
            record.last_error, record.last_error_at = str(exit), time.time()
            log.error("child_failed", extra={"supervisor": self.name, "child": record.name,
                                             "reason": str(exit)})
        else:
            log.info("child_exited", extra={"supervisor": self.name, "child": record.name,
                                            "reason": str(exit)})
        kind = record.spec.restart
        if kind is Restart.TEMPORARY or (kind is Restart.TRANSIENT and not exit.abnormal):
            record.state = State.FAILED if exit.abnormal else State.STOPPED
            if kind is Restart.TEMPORARY:
                self._records.remove(record)
            if record.spec.mailbox is not None:
                record.spec.mailbox.close()
            return
        record.state = State.FAILED
        if not self._allow_restart():
            await self._escalate(exit)
            return
        await self._restart_group(record)

    def _allow_restart(self) -> bool:
        now = time.monotonic()
        self._restarts.append(now)
        while self._restarts and now - self._restarts[0] > self.period:
            self._restarts.popleft()
        return len(self._restarts) <= self.intensity

    def _affected(self, record: _Record) -> list[_Record]:
        if self.strategy is Strategy.ONE_FOR_ONE:
            return [record]
        if self.strategy is Strategy.ONE_FOR_ALL:
            return list(self._records)
        return self._records[self._records.index(record):]

    async def _restart_group(self, record: _Record) -> None:
        group = self._affected(record)
        for other in reversed(group):
            if other is not record:
                await self._stop_record(other)
        for other in group:
            if other is not record and other.spec.restart is Restart.TEMPORARY:
                self._records.remove(other)
                if other.spec.mailbox is not None:
                    other.spec.mailbox.close()
        group = [r for r in group if r in self._records]
        if time.monotonic() - record.started_at >= self.backoff.reset_after:
            record.streak = 0
        record.streak += 1
        delay = self.backoff.delay(record.streak)
        record.last_delay = delay
        for other in group:
            other.state = State.RESTARTING
        log.warning("child_restarting", extra={"supervisor": self.name, "child": record.name,
                                               "group": [r.name for r in group], "delay": round(delay, 3),
                                               "strategy": self.strategy.value})
        if delay > 0:
            try:
                async with asyncio.timeout(delay):
                    await self._stop_event.wait()
                return  # stopping: do not restart
            except TimeoutError:
                pass
        for other in group:
            if other.state is not State.RESTARTING:
                continue
            try:
                await self._start_record(other)
            except Exception as exc:
                log.error("child_restart_failed", extra={"supervisor": self.name, "child": other.name,
                                                         "error_text": describe(exc)})
                self._events.put_nowait(_Event(other, other.generation, Exit(ExitKind.ABNORMAL, exc)))
                return
            other.restarts += 1
            METRICS.restarts.labels(other.name).inc()

    async def _escalate(self, exit: Exit) -> None:
        reason = (f"{self.name}: more than {self.intensity} restarts in {self.period:g}s; "
                  f"last: {exit}")
        self.failed_reason = reason
        log.critical("supervisor_escalated", extra={"supervisor": self.name, "reason": reason})
        METRICS.escalations.labels(self.name).inc()
        await self._stop_all()
        if not self.done.done():
            self.done.set_result(Exit(ExitKind.ABNORMAL, Escalation(reason)))

    # -- dynamic children ---------------------------------------------------------------------

    async def start_child(self, spec: ChildSpec) -> None:
        """Add and start a child (pools); raises if the name is taken or the start fails."""
        async with self._lock:
            if any(r.name == spec.name for r in self._records):
                raise ValueError(f"{self.name} already has a child named {spec.name}")
            record = _Record(spec)
            self._records.append(record)
            try:
                await self._start_record(record)
            except BaseException:
                self._records.remove(record)
                raise

    async def terminate_child(self, name: str) -> None:
        """Stop a child and forget it."""
        async with self._lock:
            record = next((r for r in self._records if r.name == name), None)
            if record is None:
                raise KeyError(f"{self.name} has no child named {name}")
            await self._stop_record(record, final=True)
            self._records.remove(record)

    # -- introspection ------------------------------------------------------------------------

    def children(self) -> list[tuple[str, State]]:
        return [(r.name, r.state) for r in self._records]

    def child(self, name: str) -> Child | None:
        return next((r.child for r in self._records if r.name == name), None)

    def health(self) -> dict[str, Any]:
        return {"kind": "supervisor", "strategy": self.strategy.value,
                "children": [r.name for r in self._records]}

    def walk(self, parent: str | None = None) -> Iterator[tuple[str | None, _Record]]:
        """Every record of the tree below this supervisor, depth first, in start order."""
        for record in self._records:
            yield parent or self.name, record
            if isinstance(record.child, Supervisor):
                yield from record.child.walk(record.name)

    def snapshot(self) -> dict[str, dict[str, Any]]:
        """Per child (the whole subtree, keyed by unique name): what /health shows."""
        out: dict[str, dict[str, Any]] = {}
        for parent, record in self.walk():
            item: dict[str, Any] = {
                "parent": parent,
                "state": record.state.value,
                "restart": record.spec.restart.value,
                "restarts": record.restarts,
                "last_error": record.last_error,
                "last_error_at": record.last_error_at,
            }
            mailbox = record.spec.mailbox
            if mailbox is not None:
                item.update(mailbox_depth=mailbox.depth, mailbox_capacity=mailbox.capacity,
                            deadline_misses=mailbox.stats.deadline_misses, handled=mailbox.stats.handled)
            child = record.child
            if isinstance(child, Actor):
                item["heartbeat_age_seconds"] = round(child.heartbeat_age, 3)
            if child is not None:
                try:
                    extra = child.health()
                except Exception as exc:  # health must never fail because one actor's did
                    extra = {"health_error": describe(exc)}
                if extra:
                    item.update(extra)
            out[record.name] = item
        return out

    @property
    def failed(self) -> bool:
        return self.failed_reason is not None
