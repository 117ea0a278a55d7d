"""How an actor whose work depends on the role hears about it, through lock_keeper's address,
how one that acts only while ACTIVE holds the role and its lease, and the leader's repeated chore
(LeaderChore: read something of Telegram's, set it when it differs).

lock_keeper tells every subscriber its state again after every heartbeat and lock attempt, so a
subscriber needs no answer to go on: a (re)starting one just asks for an early word. It needs only
lock_keeper's mailbox, never the lock_keeper module (actors hold addresses, not each other).
"""

from __future__ import annotations

import abc
import asyncio
import time
from dataclasses import dataclass
from typing import Any

from aiogram.exceptions import TelegramAPIError, TelegramNetworkError, TelegramRetryAfter

from actors.actor import Actor, handles
from actors.backoff import Backoff
from actors.mailbox import Mailbox, MailboxError
from messages.control import Tick
from messages.roles import Relinquish, Role, RoleChanged, RoleQuery
from store.database import DatabaseUnavailable
from store.fence import Fenced
from telemetry import logs

log = logs.get("roles")


def ask_for_role(lock_keeper: Mailbox | None) -> None:
    """Ask lock_keeper to tell us the role now; if it cannot take the question (restarting), its
    next heartbeat or lock attempt tells us anyway: until then the role is unknown, not PASSIVE."""
    if lock_keeper is None:
        return
    try:
        lock_keeper.tell_nowait(RoleQuery())
    except MailboxError as exc:
        log.info("role_query_not_delivered", extra={"error_text": str(exc)[:200]})


@dataclass(frozen=True, slots=True)
class RoleStep:
    """What a RoleChanged asks of an ACTIVE-only actor: stop what it does first (and why), then
    whether it may act now (start, if it is not running)."""

    stop: str | None
    start: bool


class Leased:
    """The ACTIVE role with its lease, as an actor that acts only while ACTIVE holds it (the
    dispatcher, the jobs actor): one copy of the rules every such actor must follow alike.

    lock_keeper's state is applied as it is, not as an edge (it is told again after every
    heartbeat); `may_act()` is checked before every claim, call and request, and time.monotonic()
    runs on while a process is frozen, so a woken one is refused; `acting` parks the work while
    the lease is not valid, and `_watch_lease` clears it when a lease runs out unrenewed.
    """

    role: Role
    epoch: int
    lease_until: float
    acting: asyncio.Event

    def _init_lease(self) -> None:
        self.role = Role.PASSIVE
        self.epoch = 0
        self.lease_until = 0.0
        self.acting = asyncio.Event()

    def may_act(self) -> bool:
        return self.role is Role.ACTIVE and time.monotonic() < self.lease_until

    def _take_role(self, msg: RoleChanged) -> RoleStep:
        if msg.role is Role.ACTIVE:
            new = self.role is not Role.ACTIVE or msg.epoch != self.epoch
            self.role, self.epoch, self.lease_until = Role.ACTIVE, msg.epoch, msg.lease_until
            start = self.may_act()
            if start:
                self.acting.set()
            return RoleStep("new epoch" if new else None, start)
        if self.role is Role.ACTIVE:
            self.role = Role.PASSIVE
            self.acting.clear()
            return RoleStep(msg.reason or "passive", False)
        return RoleStep(None, False)

    def _give_up(self, epoch: int) -> bool:
        """Relinquish `epoch` (lock_keeper lets the lock go): True when it was the one held."""
        if self.role is Role.ACTIVE and epoch == self.epoch:
            self.role = Role.PASSIVE
            self.acting.clear()
            return True
        return False

    def lease_seconds_left(self) -> float | None:
        return round(max(0.0, self.lease_until - time.monotonic()), 3) if self.role is Role.ACTIVE else None

    def _lease_expired_extra(self) -> dict[str, object]:
        """What the `lease_expired` log line says besides the epoch."""
        return {}

    async def _watch_lease(self) -> None:
        """Parks the work when the lease runs out without a renewal; nothing is sent meanwhile (every
        request checks the lease itself), this only stops the work from trying."""
        while True:
            await self.acting.wait()
            remaining = self.lease_until - time.monotonic()
            if remaining > 0 and self.role is Role.ACTIVE:
                await asyncio.sleep(min(1.0, remaining))  # then look again: a renewal moves the lease
                continue
            self.acting.clear()
            if self.role is Role.ACTIVE:
                log.warning("lease_expired", extra={"epoch": self.epoch, **self._lease_expired_extra()})

# --- a chore only the leader does -----------------------------------------------------------------
# Read something Telegram holds for the bot and set it when it differs (the webhook:
# actors/webhook_setter.py; the commands and descriptions: actors/profile_setter.py). Both need
# the same care, easy to get wrong once: only while ACTIVE, at once on becoming ACTIVE (a new
# leadership: a new epoch), then every `period()`; a cycle has a hard deadline; a failure retries
# with exponential backoff and jitter, never sooner than a 429's retry_after; a fenced write means
# the lease is gone, so the chore stops at once. Nothing waits for it: start-up and /health never
# block on Telegram.


class LeaderChore(Actor, abc.ABC):
    """Subclasses give `cycle()` (one look, raising on failure) and `period()`, and may hook
    `succeeded()` and `failed()` (metrics, logs)."""

    def __init__(self, mailbox: Mailbox, lock_keeper: Mailbox, *, cycle_deadline: float, backoff: Backoff) -> None:
        super().__init__(mailbox)
        self.lock_keeper = lock_keeper
        self.cycle_deadline = cycle_deadline
        self.backoff = backoff
        self.role = Role.PASSIVE
        self.epoch = 0
        self.failures = 0
        self.next_attempt: float | None = None
        self.last_ok: float | None = None
        self.last_error: str | None = None
        self.last_error_at: float | None = None

    @abc.abstractmethod
    async def cycle(self) -> None:
        """One look: read what Telegram holds, set it when it differs; raise when it fails."""

    @abc.abstractmethod
    def period(self) -> float:
        """Seconds from a cycle that succeeded to the next look."""

    def succeeded(self) -> None:
        """After a cycle that succeeded."""

    def failed(self, error: str, retry_in: float) -> None:
        """After a cycle that failed (the next attempt is due in `retry_in` seconds)."""

    async def on_start(self) -> None:
        ask_for_role(self.lock_keeper)
        self.every(0.1, Tick("due"))  # fine-grained enough that a backoff is what sets the pace

    @handles(RoleChanged, deadline=1.0)
    async def role_changed(self, msg: RoleChanged) -> None:
        """Told after every heartbeat: only a new leadership (role or epoch) starts a look."""
        if (msg.role, msg.epoch) == (self.role, self.epoch):
            return
        self.role, self.epoch = msg.role, msg.epoch
        if msg.role is Role.ACTIVE:
            self.failures = 0
            self.next_attempt = time.monotonic()  # look at once
        else:
            self.next_attempt = None

    @handles(Relinquish, deadline=1.0)
    async def relinquish(self, msg: Relinquish) -> bool:
        self.role, self.next_attempt = Role.PASSIVE, None
        return True

    async def on_tick(self, msg: Tick) -> None:
        if self.role is not Role.ACTIVE or self.next_attempt is None or time.monotonic() < self.next_attempt:
            return
        try:
            async with asyncio.timeout(self.cycle_deadline):
                await self.cycle()
        except TimeoutError:
            self._failed(f"cycle exceeded its {self.cycle_deadline:g}s deadline")
        except TelegramRetryAfter as exc:
            self._failed(f"Telegram asked to retry after {exc.retry_after}s", at_least=float(exc.retry_after))
        except (TelegramAPIError, TelegramNetworkError, DatabaseUnavailable, OSError) as exc:
            self._failed(logs.redact(f"{type(exc).__name__}: {exc}")[:300])
        except Fenced as exc:
            self._failed(str(exc))
            self.role = Role.PASSIVE  # lock_keeper will say so too; stop acting now
        else:
            self.failures = 0
            self.last_ok = time.time()
            self.next_attempt = time.monotonic() + self.period()
            self.succeeded()

    def _failed(self, error: str, at_least: float = 0.0) -> None:
        self.failures += 1
        delay = max(at_least, self.backoff.delay(self.failures))
        self.next_attempt = time.monotonic() + delay
        self.last_error, self.last_error_at = error, time.time()
        self.failed(error, delay)

    def chore_health(self) -> dict[str, Any]:
        """What every chore's health says: leading, fine, failing since, due."""
        due = None if self.next_attempt is None else round(max(0.0, self.next_attempt - time.monotonic()), 2)
        return {"active": self.role is Role.ACTIVE, "ok": self.last_ok is not None and self.failures == 0,
                "last_ok_at": self.last_ok, "failures": self.failures, "next_attempt_in_seconds": due}
