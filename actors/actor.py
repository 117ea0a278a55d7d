"""The actor: handlers with deadlines, the loop that runs them, a start deadline, a liveness
watchdog, and owned tasks whose death fails the actor.

An actor owns its state and talks to others only through mailboxes (actors/mailbox.py). The
message that crashed an actor is not redelivered but goes to dead letters with the error, so one
poison message cannot crash-loop it.
"""

from __future__ import annotations

import asyncio
import enum
import logging
import os
import time
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass
from typing import Any, ClassVar

from actors.mailbox import Envelope, Mailbox, MailboxClosed, Overflow, dead_letters, describe
from messages.control import ChaosFault, Tick
from telemetry import logs
from telemetry.metrics import METRICS

log = logs.get("actor")

class DeadlineExceeded(Exception):
    """A handler, a start or a stop took longer than its deadline: a failure of the actor."""


class ChaosCrash(Exception):
    """The crash fault injected through /chaos."""



Handler = Callable[[Any, Any], Awaitable[Any]]


def handles(*types: type, deadline: float | None = None) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Mark an actor method as the handler of these message types, with a handling deadline."""

    def mark(fn: Callable[..., Any]) -> Callable[..., Any]:
        setattr(fn, "__handles__", (types, deadline))  # noqa: B010 - a marker read by __init_subclass__
        return fn

    return mark


class ExitKind(enum.Enum):
    NORMAL = "normal"
    SHUTDOWN = "shutdown"
    ABNORMAL = "abnormal"


@dataclass(frozen=True)
class Exit:
    """Why a child ended: OTP's normal, shutdown, or an error."""

    kind: ExitKind
    error: BaseException | None = None

    @property
    def abnormal(self) -> bool:
        return self.kind is ExitKind.ABNORMAL

    def __str__(self) -> str:
        return describe(self.error) if self.error else self.kind.value


NORMAL = Exit(ExitKind.NORMAL)
SHUTDOWN = Exit(ExitKind.SHUTDOWN)


class Actor:
    """Base class: subclasses declare handlers with @handles and optional on_start / on_stop.

    Periodic work goes through the mailbox too (self.every), so it has deadlines and metrics
    like any other message.
    """

    capacity: ClassVar[int] = 1000
    overflow: ClassVar[Overflow] = Overflow.BLOCK
    block_timeout: ClassVar[float] = 5.0
    default_deadline: ClassVar[float] = 5.0
    start_deadline: float = 10.0  # an instance may set its own (lock_keeper waits LOCK_WAIT_SECONDS)
    stop_deadline: float = 5.0  # an instance may set its own (lock_keeper waits out its lease)
    watchdog_grace: ClassVar[float] = 1.0
    _handlers: ClassVar[dict[type, tuple[str, float | None]]] = {}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        table: dict[type, tuple[str, float | None]] = {}
        for klass in reversed(cls.__mro__):
            for attr, fn in vars(klass).items():
                marker = getattr(fn, "__handles__", None)
                if marker:
                    for t in marker[0]:
                        table[t] = (attr, marker[1])
        cls._handlers = table

    @classmethod
    def accepts(cls) -> tuple[type, ...]:
        return (*cls._handlers, ChaosFault, Tick)

    @classmethod
    def new_mailbox(cls, name: str, capacity: int | None = None, overflow: Overflow | None = None) -> Mailbox:
        """The mailbox (address) for an actor of this class, made once by whoever builds the tree."""
        return Mailbox(name, cls.accepts(), capacity or cls.capacity, overflow or cls.overflow,
                       cls.block_timeout)

    def __init__(self, mailbox: Mailbox) -> None:
        self.mailbox = mailbox
        self.name = mailbox.name
        self.done: asyncio.Future[Exit] = asyncio.get_running_loop().create_future()
        self._task: asyncio.Task[None] | None = None
        self._timers: list[asyncio.Task[None]] = []
        self._owned: set[asyncio.Task[Any]] = set()
        self._task_error: BaseException | None = None
        self._ending = False
        self._stopping = False
        self._abandoned = False
        self._leaving = False
        self._busy_since: float | None = None
        self._busy_deadline: float | None = None
        self._busy_msg: Any = None
        self.started_at: float | None = None

    # -- for subclasses ------------------------------------------------------------------------

    async def on_start(self) -> None:
        """Acquire resources; runs under start_deadline. Raising fails the start."""

    async def on_stop(self) -> None:
        """Release resources; runs on every exit under stop_deadline."""

    def leave(self, reason: ExitKind = ExitKind.NORMAL) -> None:
        """End the actor after the current message with a normal or shutdown exit (OTP's reasons)."""
        self._leaving = True
        if reason is ExitKind.SHUTDOWN:
            self._stopping = True

    def every(self, interval: float, msg: Any = None, first: float | None = None) -> None:
        """Tell ourselves `msg` (a Tick by default) every `interval` s while running; skipped when full."""
        msg = Tick() if msg is None else msg

        async def timer() -> None:
            await asyncio.sleep(interval if first is None else first)
            while True:
                if self.mailbox.depth < self.mailbox.capacity:
                    self.mailbox.tell_nowait(msg)
                await asyncio.sleep(interval)

        self._timers.append(asyncio.create_task(timer(), name=f"timer:{self.name}"))

    def spawn(self, coro: Coroutine[Any, Any, Any], name: str) -> asyncio.Task[Any]:
        """A background task owned by this actor. If it dies with an error the actor fails with
        that error (its supervisor restarts it) instead of the error going unseen; whatever is
        still running when the actor has stopped (after on_stop) is cancelled."""
        task = asyncio.get_running_loop().create_task(coro, name=f"{self.name}:{name}")
        self._owned.add(task)
        task.add_done_callback(self._owned_done)
        return task

    def _owned_done(self, task: asyncio.Task[Any]) -> None:
        self._owned.discard(task)
        if task.cancelled() or (error := task.exception()) is None:
            return
        log.error("actor_task_failed", extra={"task": task.get_name(), "error_text": describe(error)})
        if self._task is not None and not self._task.done() and not self._ending and self._task_error is None:
            self._task_error = error
            self._task.cancel()

    def health(self) -> dict[str, Any]:
        """Actor-specific facts for /health (JSON-serialisable)."""
        return {}

    # -- run-time ------------------------------------------------------------------------------

    @property
    def heartbeat_age(self) -> float:
        """Seconds the actor has been stuck in one message (0 when idle or quick)."""
        return 0.0 if self._busy_since is None else time.monotonic() - self._busy_since

    @property
    def stuck(self) -> bool:
        """True while the current message has outlived its handling deadline."""
        deadline = self._busy_deadline
        return self._busy_since is not None and deadline is not None and self.heartbeat_age > deadline

    async def start(self) -> None:
        """Run on_start under its deadline, then the message loop in a task of its own."""
        started: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._task = asyncio.create_task(self._main(started), name=f"actor:{self.name}")
        self._task.add_done_callback(self._finished)
        await started

    def _finished(self, task: asyncio.Task[None]) -> None:
        if self.done.done():
            return
        if task.cancelled() and self._task_error is not None:  # an owned task failed: so did we
            self.done.set_result(Exit(ExitKind.ABNORMAL, self._task_error))
        elif task.cancelled():
            self.done.set_result(SHUTDOWN)
        elif task.exception() is not None:
            self.done.set_result(Exit(ExitKind.ABNORMAL, task.exception()))
        else:
            self.done.set_result(SHUTDOWN if self._stopping else NORMAL)

    async def _main(self, started: asyncio.Future[None]) -> None:
        logs.current_actor.set(self.name)
        self.mailbox.consumers += 1
        try:
            try:
                async with asyncio.timeout(self.start_deadline):
                    await self.on_start()
            except TimeoutError:
                self.mailbox.stats.deadline_misses += 1
                METRICS.deadline_misses.labels(self.name, "start").inc()
                error = DeadlineExceeded(f"{self.name} did not start within {self.start_deadline:g}s")
                started.set_exception(error)
                raise error from None
            except BaseException as exc:
                if not started.done():
                    started.set_exception(exc)
                raise
            self.started_at = time.monotonic()
            started.set_result(None)
            watchdog = asyncio.create_task(self._watchdog(), name=f"watchdog:{self.name}")
            self._timers.append(watchdog)
            await self._loop()
        finally:
            self._ending = True
            for timer in self._timers:
                timer.cancel()
            try:
                async with asyncio.timeout(self.stop_deadline):
                    await self.on_stop()
            except TimeoutError:
                log.error("stop_deadline_exceeded", extra={"deadline": self.stop_deadline})
            except Exception as exc:
                log.error("on_stop_failed", extra={"error_text": describe(exc)})
            finally:
                # whatever ended on_stop (its deadline, an error, or stop() cancelling us a second
                # time), no task of this incarnation may outlive it: a new incarnation would run
                # beside it (two workers on one update)
                if not started.done():
                    started.set_exception(DeadlineExceeded(f"{self.name} stopped while starting"))
                try:
                    await self._end_owned()
                finally:
                    self.mailbox.consumers -= 1

    async def _end_owned(self) -> None:
        """Cancel every owned task and wait (bounded) for them to finish; a further cancellation
        of ours does not stop the cancelling, only the waiting."""
        owned = list(self._owned)
        for task in owned:  # on_stop has had its chance to end them in order
            task.cancel()
        if owned:
            _, late = await asyncio.wait(owned, timeout=self.watchdog_grace)
            if late:
                log.error("owned_tasks_ignored_cancel", extra={"tasks": sorted(t.get_name() for t in late)})

    def _looping(self) -> bool:
        return not (self._stopping or self._abandoned or self._leaving)

    async def _loop(self) -> None:
        handlers = self._handlers
        stats = self.mailbox.stats
        histogram = METRICS.handling_seconds
        while self._looping():
            env = await self.mailbox.get()
            if self._abandoned:  # a newer incarnation owns the mailbox now
                dead_letters.add(self.name, env.msg, "abandoned")
                return
            msg = env.msg
            kind = type(msg)
            if kind is ChaosFault:
                name, deadline = "_chaos", msg.deadline
            elif kind is Tick and kind not in handlers:
                name, deadline = "on_tick", None
            else:  # the exact type, else a declared base (the mailbox accepts subclasses too)
                name, deadline = handlers.get(kind) or next(handlers[k] for k in kind.__mro__ if k in handlers)
            deadline = deadline or self.default_deadline
            token = logs.correlation_id.set(env.correlation_id)
            started = time.monotonic()
            self._busy_since, self._busy_deadline, self._busy_msg = started, deadline, msg
            timer = asyncio.timeout(deadline)
            try:
                async with timer:
                    result = await getattr(self, name)(msg)
            except TimeoutError as exc:
                if not timer.expired():
                    self._fail_message(env, exc)
                    raise
                stats.deadline_misses += 1
                METRICS.deadline_misses.labels(self.name, "handle").inc()
                error = DeadlineExceeded(f"{kind.__name__} took longer than {deadline:g}s")
                self._fail_message(env, error)
                raise error from exc
            except asyncio.CancelledError:
                if env.reply is not None and not env.reply.done():
                    env.reply.set_exception(MailboxClosed(f"{self.name} stopped"))
                raise
            except BaseException as exc:
                self._fail_message(env, exc)
                raise
            finally:
                self._busy_since = None
                self._busy_msg = None
                logs.correlation_id.reset(token)
                histogram.labels(self.name, kind.__name__).observe(time.monotonic() - started)
            stats.handled += 1
            if env.reply is not None and not env.reply.done():
                env.reply.set_result(result)

    def _fail_message(self, env: Envelope, error: BaseException) -> None:
        dead_letters.add(self.name, env.msg, "crashed", error)
        if env.reply is not None and not env.reply.done():
            env.reply.set_exception(error)

    async def _watchdog(self) -> None:
        """Fail the actor when one message outlives its deadline even after cancellation."""
        while True:
            await asyncio.sleep(0.25)
            since, deadline = self._busy_since, self._busy_deadline
            if since is None or deadline is None:
                continue
            if time.monotonic() - since > deadline + self.watchdog_grace:
                self.mailbox.stats.deadline_misses += 1
                METRICS.deadline_misses.labels(self.name, "watchdog").inc()
                msg = self._busy_msg
                error = DeadlineExceeded(
                    f"{type(msg).__name__} ignored its {deadline:g}s deadline; actor abandoned"
                )
                dead_letters.add(self.name, msg, "hung", error)
                log.error("actor_hung", extra={"msg_type": type(msg).__name__, "deadline": deadline})
                self._abandoned = True
                if self._task is not None:
                    self._task.cancel()
                if not self.done.done():
                    self.done.set_result(Exit(ExitKind.ABNORMAL, error))
                return

    async def stop(self, timeout: float) -> None:
        """Graceful stop: finish the current message, then cancel; never wait past the timeout."""
        task = self._task
        if task is None or task.done():
            return
        self._stopping = True
        if self._busy_since is None:
            task.cancel()
        done, _ = await asyncio.wait({task}, timeout=timeout)
        if not done:
            self._abandoned = True  # from here on a handler swallowing cancellation is let go
            task.cancel()
            done, _ = await asyncio.wait({task}, timeout=min(1.0, timeout))
        if not done:
            log.error("actor_ignored_shutdown", extra={"timeout": timeout})
        if not self.done.done():
            self.done.set_result(SHUTDOWN)

    # -- built-in handlers ---------------------------------------------------------------------

    async def on_tick(self, msg: Tick) -> None:
        """Default Tick handler: nothing."""

    async def _chaos(self, msg: ChaosFault) -> None:
        log.warning("chaos_fault", extra={"fault": msg.fault, "seconds": msg.seconds})
        if msg.fault == "crash":
            raise ChaosCrash(f"injected crash in {self.name}")
        if msg.fault == "hang":
            if msg.ignore_cancel:
                while True:
                    try:
                        await asyncio.Event().wait()
                    except asyncio.CancelledError:
                        if self._abandoned:
                            raise
            await asyncio.Event().wait()
        if msg.fault == "slow":
            await asyncio.sleep(msg.seconds)
        if msg.fault not in ("crash", "hang", "slow", "exit"):
            raise ValueError(f"{self.name} does not know the fault {msg.fault!r}")
        if msg.fault == "exit":
            log.critical("chaos_exit", extra={"code": msg.code})
            for handler in logging.getLogger().handlers:
                handler.flush()
            os._exit(msg.code)
