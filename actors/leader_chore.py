"""A chore only the leader does, again and again: read something Telegram holds for the bot and
set it when it differs (the webhook: actors/webhook_setter.py; the commands and descriptions:
actors/profile_setter.py).

Why a base of its own: both need the same care, and it is easy to get one of them wrong. The
chore runs only while ACTIVE, at once on becoming ACTIVE (a new leadership: a new epoch), then
every `period()`; a cycle has a hard deadline; a failure retries with exponential backoff and
jitter, never sooner than a 429's retry_after; a fenced write means the lease is gone, so the chore
stops at once. Nothing waits for it: start-up and /health never block on Telegram.
"""

from __future__ import annotations

import abc
import asyncio
import time
from typing import Any

from aiogram.exceptions import TelegramAPIError, TelegramNetworkError, TelegramRetryAfter

from actors.actor import Actor, handles
from actors.backoff import Backoff
from actors.mailbox import Mailbox
from actors.roles import ask_for_role
from messages.control import Tick
from messages.roles import Relinquish, Role, RoleChanged
from store.database import DatabaseUnavailable
from store.fence import Fenced
from telemetry import logs


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
