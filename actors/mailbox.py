"""The mailbox: a typed, bounded queue with an overflow policy, and the dead letters it keeps.

The mailbox belongs to the tree, not to one incarnation of its actor, so messages wait through a
restart; what cannot be delivered or handled (dropped, stopped, crashed) goes to dead letters
with the reason, counted, so nothing is lost silently.
"""

from __future__ import annotations

import asyncio
import collections
import enum
import time
from dataclasses import dataclass
from typing import Any, TypeVar

from messages.control import Control
from telemetry import logs

log = logs.get("actor")

T = TypeVar("T")


class Overflow(enum.Enum):
    """What a full mailbox does with one more message."""

    BLOCK = "block"  # the sender waits up to block_timeout, then MailboxFull
    DROP_NEWEST = "drop_newest"  # the new message is dropped (counted)
    DROP_OLDEST = "drop_oldest"  # the oldest queued message is dropped (counted)
    REJECT = "reject"  # the sender gets MailboxFull at once


class MailboxError(Exception):
    """Base of the errors a sender can see."""


class MailboxFull(MailboxError):
    pass


class MailboxClosed(MailboxError):
    pass


class WrongMessageType(TypeError):
    pass


class AskTimeout(TimeoutError):
    pass


@dataclass(slots=True)
class Envelope:
    msg: Any
    reply: asyncio.Future[Any] | None
    correlation_id: str | None
    sent_at: float


@dataclass(slots=True)
class DeadLetter:
    actor: str
    message: str
    reason: str
    error: str | None
    at: float


class DeadLetters:
    """Messages that could not be handled: bounded recent list plus counters."""

    def __init__(self, keep: int = 200) -> None:
        self.recent: collections.deque[DeadLetter] = collections.deque(maxlen=keep)
        self.counts: collections.Counter[tuple[str, str]] = collections.Counter()

    def add(self, actor: str, msg: Any, reason: str, error: BaseException | str | None = None) -> None:
        err = None if error is None else (error if isinstance(error, str) else describe(error))
        self.recent.append(DeadLetter(actor, type(msg).__name__, reason, err, time.time()))
        self.counts[(actor, reason)] += 1
        if reason not in ("dropped_newest", "dropped_oldest"):
            log.warning("dead_letter", extra={"actor": actor, "msg_type": type(msg).__name__,
                                              "reason": reason, "error_text": err})


dead_letters = DeadLetters()


def describe(error: BaseException) -> str:
    text = str(error)
    return f"{type(error).__name__}: {text}"[:500] if text else type(error).__name__


@dataclass
class MailboxStats:
    """Counters that must outlive any one incarnation of the actor."""

    sent: int = 0
    dropped: int = 0
    handled: int = 0
    deadline_misses: int = 0


class Mailbox:
    """A bounded queue that accepts only the declared message types, with a control lane.

    Control messages (messages.control.Control) bypass the bound and the overflow policy: they
    are taken before any data message, a newer state replaces a queued older one of its type,
    and they are kept while the actor restarts (the mailbox is closed), so a role change can be
    neither dropped by timer or update traffic nor lost in a restart.
    """

    def __init__(
        self,
        name: str,
        accepts: tuple[type, ...],
        capacity: int = 1000,
        overflow: Overflow = Overflow.BLOCK,
        block_timeout: float = 5.0,
    ) -> None:
        if capacity < 1:
            raise ValueError("mailbox capacity must be at least 1")
        self.name = name
        self.accepts = accepts
        self.capacity = capacity
        self.overflow = overflow
        self.block_timeout = block_timeout
        self.stats = MailboxStats()
        self.last_dropped: Any = None  # the message the latest drop of the overflow policy threw away
        self.closed = False
        self.consumers = 0  # actor incarnations running on this mailbox (an old one may still be ending)
        self._queue: collections.deque[Envelope] = collections.deque()
        self._control: dict[type, Envelope] = {}  # the latest state per type, in arrival order
        self._control_asks: collections.deque[Envelope] = collections.deque()
        self._getters: collections.deque[asyncio.Future[None]] = collections.deque()
        self._putters: collections.deque[asyncio.Future[None]] = collections.deque()

    def __repr__(self) -> str:
        return f"<Mailbox {self.name} {len(self._queue)}/{self.capacity}>"

    @property
    def depth(self) -> int:
        """Data messages waiting (the bounded part)."""
        return len(self._queue)

    @property
    def control_depth(self) -> int:
        return len(self._control) + len(self._control_asks)

    def _check(self, msg: Any) -> None:
        if not isinstance(msg, self.accepts):
            raise WrongMessageType(
                f"{self.name} does not accept {type(msg).__name__}; "
                f"it accepts {', '.join(t.__name__ for t in self.accepts)}"
            )

    def _wake(self, waiters: collections.deque[asyncio.Future[None]]) -> None:
        while waiters:
            waiter = waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return

    def _append(self, env: Envelope) -> None:
        self._queue.append(env)
        self.stats.sent += 1
        self._wake(self._getters)

    def _offer_control(self, env: Envelope) -> bool:
        if env.reply is not None:  # someone waits for the answer: in order, and never to a stopped actor
            if self.closed or not self.consumers:
                env.reply.set_exception(MailboxClosed(f"{self.name} is stopped"))
                return False
            self._control_asks.append(env)
        else:
            self._control.pop(type(env.msg), None)  # the older state is superseded, not lost
            self._control[type(env.msg)] = env
        self.stats.sent += 1
        self._wake(self._getters)
        return True

    def _offer(self, env: Envelope) -> bool | None:
        """Try to enqueue without waiting: True queued, False dropped, None must wait."""
        if isinstance(env.msg, Control):
            return self._offer_control(env)
        if self.closed:
            dead_letters.add(self.name, env.msg, "stopped")
            if env.reply is not None and not env.reply.done():
                env.reply.set_exception(MailboxClosed(f"{self.name} is stopped"))
            return False
        if len(self._queue) < self.capacity:
            self._append(env)
            return True
        if self.overflow is Overflow.DROP_NEWEST:
            self.stats.dropped += 1
            self.last_dropped = env.msg
            dead_letters.add(self.name, env.msg, "dropped_newest")
            if env.reply is not None and not env.reply.done():
                env.reply.set_exception(MailboxFull(f"{self.name} is full"))
            return False
        if self.overflow is Overflow.DROP_OLDEST:
            old = self._queue.popleft()
            self.stats.dropped += 1
            self.last_dropped = old.msg
            dead_letters.add(self.name, old.msg, "dropped_oldest")
            if old.reply is not None and not old.reply.done():
                old.reply.set_exception(MailboxFull(f"{self.name} dropped the message"))
            self._append(env)
            return True
        if self.overflow is Overflow.REJECT:
            self.stats.dropped += 1
            raise MailboxFull(f"{self.name} is full ({self.capacity})")
        return None

    def tell_nowait(self, msg: Any) -> bool:
        """Send without waiting; a full BLOCK mailbox raises MailboxFull. False when dropped."""
        self._check(msg)
        env = Envelope(msg, None, logs.correlation_id.get(), time.monotonic())
        result = self._offer(env)
        if result is None:
            self.stats.dropped += 1
            raise MailboxFull(f"{self.name} is full ({self.capacity})")
        return result

    async def tell(self, msg: Any, timeout: float | None = None) -> bool:
        """Send; under BLOCK waits for room up to the timeout. False when the message was dropped."""
        self._check(msg)
        return await self._put(Envelope(msg, None, logs.correlation_id.get(), time.monotonic()), timeout)

    async def ask(self, msg: Any, timeout: float = 5.0) -> Any:
        """Send and wait for the handler's return value (or its exception)."""
        self._check(msg)
        fut: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        env = Envelope(msg, fut, logs.correlation_id.get(), time.monotonic())
        deadline = time.monotonic() + timeout
        await self._put(env, timeout)
        try:
            async with asyncio.timeout(max(0.0, deadline - time.monotonic())):
                return await fut
        except TimeoutError:
            raise AskTimeout(f"{self.name} did not answer {type(msg).__name__} within {timeout:g}s") from None

    async def _put(self, env: Envelope, timeout: float | None) -> bool:
        result = self._offer(env)
        if result is not None:
            return result
        wait = self.block_timeout if timeout is None else timeout
        deadline = time.monotonic() + wait
        while True:
            waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            self._putters.append(waiter)
            try:
                async with asyncio.timeout(max(0.0, deadline - time.monotonic())):
                    await waiter
            except BaseException as exc:
                if waiter.done() and not waiter.cancelled():
                    self._wake(self._putters)  # woken but leaving: pass the room on, as get() does
                if not isinstance(exc, TimeoutError):
                    raise
                self.stats.dropped += 1
                raise MailboxFull(f"{self.name} stayed full for {wait:g}s") from None
            finally:
                if not waiter.done():
                    waiter.cancel()
            result = self._offer(env)
            if result is not None:
                return result

    def _next_control(self) -> Envelope | None:
        if self._control_asks:
            return self._control_asks.popleft()
        if self._control:
            return self._control.pop(next(iter(self._control)))
        return None

    async def get(self) -> Envelope:
        while True:
            control = self._next_control()
            if control is not None:
                return control
            if self._queue:
                break
            waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            self._getters.append(waiter)
            try:
                await waiter
            except asyncio.CancelledError:
                if waiter.done() and (self._queue or self.control_depth):
                    self._wake(self._getters)  # pass the wake-up on, nothing is lost
                raise
        env = self._queue.popleft()
        self._wake(self._putters)
        return env

    def drain(self, reason: str, control: bool = False) -> None:
        """Send the queued data messages to dead letters (the control state too when the actor is
        gone for good); a waiting control ask is answered MailboxClosed either way."""
        queued = list(self._queue) + list(self._control_asks) + (list(self._control.values()) if control else [])
        self._queue.clear()
        self._control_asks.clear()
        if control:
            self._control.clear()
        for env in queued:
            dead_letters.add(self.name, env.msg, reason)
            if env.reply is not None and not env.reply.done():
                env.reply.set_exception(MailboxClosed(f"{self.name} is stopped"))

    def close(self) -> None:
        self.closed = True
        self.drain("stopped")
        while self._putters:  # blocked senders see the closed mailbox now, not after their timeout
            self._wake(self._putters)

    def reopen(self) -> None:
        self.closed = False
