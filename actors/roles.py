"""How an actor whose work depends on the role hears about it, through lock_keeper's address,
and how one that acts only while ACTIVE holds the role and its lease.

lock_keeper tells every subscriber its state again after every heartbeat and lock attempt, so a
subscriber needs no answer to go on: a (re)starting one just asks for an early word. It needs only
lock_keeper's mailbox, never the lock_keeper module (actors hold addresses, not each other).
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

from actors.mailbox import Mailbox, MailboxError
from messages.roles import Role, RoleChanged, RoleQuery
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
