"""lock_keeper: decides whether this instance is ACTIVE, and proves it every heartbeat.

It holds `pg_try_advisory_lock(int4, int4)` on a dedicated connection and a fencing epoch in the
`leader` row. Any doubt demotes at once (PASSIVE is announced before anything else happens):
a failed or late heartbeat, a heartbeat guard that matches no row, or the connection ending.
Standbys retry every LOCK_RETRY_INTERVAL and terminate a holder whose heartbeat is older than
STALE_AFTER. The server closes a frozen holder's idle session by itself (idle_session_timeout),
so a SIGSTOPped leader loses the lock within a few heartbeats even without a standby's help.

The role is level-triggered: after every heartbeat, lock attempt and transition, every
subscriber is told the current state (a control message: never dropped, the latest replaces an
older one). While ACTIVE the state carries a lease: the time until which no other instance can
take the lock (the server's idle timeout and STALE_AFTER, counted from the last heartbeat sent,
less one heartbeat of margin). A subscriber acts only within its lease, so a keeper that hangs,
crashes or is frozen with its process stops the work before the lock can change hands; and a
keeper that stops lets the lock go only after every subscriber confirmed it stopped acting, or
its lease ran out.
"""

from __future__ import annotations

import asyncio
import os
import time
from typing import Any, ClassVar

from actors.actor import Actor, handles
from actors.mailbox import Mailbox, MailboxClosed, MailboxError
from config import Settings
from messages.control import ChaosFault, Tick
from messages.roles import CurrentRole, LockConnectionLost, Relinquish, Role, RoleChanged, RoleQuery
from store import leader
from store.database import DB_ERRORS, Database
from store.fence import Fenced, fenced_probe
from store.lock_session import LOCK_ERRORS, LockSession, idle_session_timeout
from telemetry import logs
from telemetry.metrics import METRICS

log = logs.get("lock_keeper")
HELD_LOG_EVERY = 30.0
BUMP_WAIT = 8.0  # seconds an epoch bump may wait for an old leader's fenced transactions


class LockKeeper(Actor):
    default_deadline: ClassVar[float] = 10.0

    def __init__(self, mailbox: Mailbox, settings: Settings, database: Database, subscribers: list[Mailbox]) -> None:
        super().__init__(mailbox)
        self.settings = settings
        self.database = database
        self.subscribers = subscribers
        self.name_ = leader.lock_name(settings.bot_id)
        self.keys = leader.lock_keys(self.name_)
        self.start_deadline = settings.lock_wait_seconds + 15.0
        self.lease_seconds = lease_seconds(settings.heartbeat_interval, settings.stale_after)
        self.stop_deadline = self.lease_seconds + 5.0  # on_stop may wait out the lease before releasing
        self.session: LockSession | None = None
        self.session_serial = 0
        self.role = Role.PASSIVE
        self.epoch = 0
        self.lease_until = 0.0
        self.leader_instance: str | None = None
        self.leader_heartbeat_age: float | None = None
        self.last_heartbeat: float | None = None
        self.acquired_at: float | None = None
        self.lock_wait: float | None = None
        self.takeovers = 0
        self.demotions = 0
        self.last_error: str | None = None
        self._held_logged_at = 0.0
        self.probes = {"written": 0, "fenced": 0, "failed": 0}
        self._started = time.monotonic()

    # -- life cycle ----------------------------------------------------------------------------

    async def on_start(self) -> None:
        interval = self.settings.lock_retry_interval
        deadline = time.monotonic() + self.settings.lock_wait_seconds
        await self._attempt()
        while self.role is Role.PASSIVE and time.monotonic() + interval <= deadline:
            await asyncio.sleep(interval)
            await self._attempt()
        if self.role is Role.PASSIVE:
            self._broadcast("lock held by another instance")
        self.every(self.settings.heartbeat_interval, Tick("heartbeat"))
        self.every(interval, Tick("retry"))

    async def on_stop(self) -> None:
        """Release last, and only once nobody acts under our epoch: the tree stops lock_keeper
        after the work that needed the lock; a crash of lock_keeper alone first tells every
        subscriber to stop and waits for each to confirm, or for the lease to run out."""
        was_active = self.role is Role.ACTIVE
        if was_active:
            # first the ask (they finish what runs), then the word PASSIVE (which would cancel it)
            await self._relinquished()
            self.role = Role.PASSIVE
            self._broadcast("lock_keeper stopping")
        session, self.session = self.session, None
        if session is None:
            return
        try:
            if was_active:
                await asyncio.wait_for(session.unlock(), 2.0)
                log.info("leadership_released", extra={"epoch": self.epoch})
        except LOCK_ERRORS:
            session.terminate()
            return
        await session.close()

    # -- messages ------------------------------------------------------------------------------

    async def on_tick(self, msg: Tick) -> None:
        if msg.name == "heartbeat" and self.role is Role.ACTIVE:
            await self._heartbeat()
            self._broadcast("heartbeat")
        elif msg.name == "retry" and self.role is Role.PASSIVE:
            await self._attempt()
            self._broadcast("retry")

    @handles(CurrentRole, deadline=1.0)
    async def current(self, msg: CurrentRole) -> RoleChanged:
        return self._state("current")

    @handles(RoleQuery, deadline=1.0)
    async def query(self, msg: RoleQuery) -> None:
        self._broadcast("asked")

    @handles(LockConnectionLost, deadline=5.0)
    async def connection_lost(self, msg: LockConnectionLost) -> None:
        if msg.session != self.session_serial:  # a late word about a connection we already replaced
            return
        if self.role is Role.ACTIVE:
            await self._demote(f"lock connection lost: {msg.reason}")
        self._drop_connection()

    async def _chaos(self, msg: ChaosFault) -> None:
        """Adds `fenced_write`: a fenced write with the last epoch we held, to prove the fence holds."""
        if msg.fault != "fenced_write":
            await super()._chaos(msg)
            return
        try:
            await fenced_probe(self.database, self.name_, self.epoch, f"probe by {self.settings.instance_id}")
            self.probes["written"] += 1
            log.warning("fenced_write_committed", extra={"epoch": self.epoch})
        except Fenced:
            self.probes["fenced"] += 1
            log.warning("fenced_write_refused", extra={"epoch": self.epoch, "role": self.role.value})
        except DB_ERRORS as exc:
            self.probes["failed"] += 1
            log.warning("fenced_write_failed", extra={"epoch": self.epoch, "error_text": str(exc)[:200]})

    # -- leadership ----------------------------------------------------------------------------

    async def _connect(self) -> LockSession:
        self.session_serial += 1
        serial = self.session_serial

        def lost(session: LockSession) -> None:
            if session is self.session:
                try:
                    self.mailbox.tell_nowait(LockConnectionLost("connection terminated", serial))
                except MailboxError:
                    self._drop_connection()

        return await LockSession.open(self.database.url, instance_id=self.settings.instance_id,
                                      heartbeat_interval=self.settings.heartbeat_interval, name=self.name_,
                                      keys=self.keys, on_lost=lost)

    def _drop_connection(self) -> None:
        session, self.session = self.session, None
        if session is not None:
            session.terminate()  # a call that timed out may have been granted: never reuse

    async def _attempt(self) -> None:
        """One standby step: (re)connect, try the lock, take over a stale holder."""
        began = time.monotonic()
        try:
            # the epoch bump may wait for a frozen ex-leader's open fenced transaction until the
            # server ends it (the pool's idle_in_transaction timeout, 5 s)
            async with asyncio.timeout(max(3.0, self.settings.lock_retry_interval * 3) + BUMP_WAIT):
                if self.session is None or self.session.closed:
                    self.session = await self._connect()
                session = self.session
                sent = time.monotonic()  # the lease counts from before the lock could be ours
                got = await session.try_lock()
                took_over: str | None = None
                if not got:
                    holder = await session.holder()
                    self.leader_instance = holder.instance if holder else None
                    self.leader_heartbeat_age = holder.heartbeat_age if holder else None
                    if holder is not None and holder.heartbeat_age > self.settings.stale_after:
                        # ends only the backend recorded with that stale heartbeat, never whoever holds
                        # the lock by now (a leader elected meanwhile)
                        pids = await session.terminate_stale_holder(self.settings.stale_after)
                        log.warning("takeover", extra={"from_instance": holder.instance, "to_instance":
                                                       self.settings.instance_id,
                                                       "heartbeat_age": round(holder.heartbeat_age, 2),
                                                       "terminated_pids": pids})
                        got = await session.try_lock()
                        took_over = holder.instance if got else None
                if not got:
                    self._log_held()
                    return
                self.epoch = await session.bump_epoch(self.settings.instance_id, os.getpid(), took_over,
                                                      timeout=BUMP_WAIT)
        except LOCK_ERRORS as exc:
            self.last_error = f"{type(exc).__name__}: {exc}"[:300]
            log.warning("lock_attempt_failed", extra={"error_text": self.last_error})
            self._drop_connection()
            return
        if took_over:
            self.takeovers += 1
            METRICS.takeovers.inc()
        self.lease_until = sent + self.lease_seconds
        self.lock_wait = time.monotonic() - self._started
        self.acquired_at = time.time()
        self.last_heartbeat = time.monotonic()
        self.leader_instance = self.settings.instance_id
        self.leader_heartbeat_age = 0.0
        log.info("leadership_acquired", extra={"epoch": self.epoch, "lock_wait_seconds": round(self.lock_wait, 3),
                                               "took_over": took_over, "attempt_ms":
                                               round((time.monotonic() - began) * 1000, 1)})
        self.role = Role.ACTIVE
        self._broadcast("lock acquired")

    def _log_held(self) -> None:
        now = time.monotonic()
        if now - self._held_logged_at >= HELD_LOG_EVERY:
            self._held_logged_at = now
            log.info("lock_held_by_another_instance", extra={"holder": self.leader_instance,
                                                             "heartbeat_age": self.leader_heartbeat_age})

    async def _heartbeat(self) -> None:
        session = self.session
        try:
            if session is None:
                raise ConnectionError("no lock connection")
            sent = time.monotonic()  # the server's idle timer restarts no earlier than this
            async with asyncio.timeout(max(1.0, self.settings.heartbeat_interval)):
                still = await session.heartbeat(self.epoch)
        except LOCK_ERRORS as exc:
            await self._demote(f"heartbeat failed: {type(exc).__name__}: {exc}"[:300])
            self._drop_connection()
            return
        if not still:
            await self._demote(f"fenced: epoch {self.epoch} is no longer the leader's")
            self._drop_connection()
            return
        self.last_heartbeat = time.monotonic()
        self.lease_until = sent + self.lease_seconds
        self.leader_heartbeat_age = 0.0

    async def _demote(self, reason: str) -> None:
        if self.role is not Role.ACTIVE:
            return
        self.demotions += 1
        METRICS.demotions.inc()
        self.last_error = reason
        log.error("demoted", extra={"epoch": self.epoch, "reason": reason})
        self.role = Role.PASSIVE
        self._broadcast(reason)

    def _state(self, reason: str) -> RoleChanged:
        """PASSIVE carries the epoch given up (0 before any), ACTIVE its lease."""
        if self.role is Role.ACTIVE:
            return RoleChanged(Role.ACTIVE, self.epoch, reason, self.lease_until)
        return RoleChanged(Role.PASSIVE, self.epoch, reason)

    def _broadcast(self, reason: str) -> None:
        """Tell every subscriber the state now (level-triggered: repeated, so a missed word heals)."""
        METRICS.role.set(1 if self.role is Role.ACTIVE else 0)
        METRICS.epoch.set(self.epoch)
        logs.set_role(self.role.value, self.epoch)
        msg = self._state(reason)
        for box in self.subscribers:
            try:
                box.tell_nowait(msg)  # a control message: queued even in a full or restarting mailbox
            except MailboxError as exc:  # only a programming error (a mailbox without the type) gets here
                log.error("role_not_delivered", extra={"to": box.name, "error_text": str(exc)})

    async def _relinquished(self) -> None:
        """Wait until every subscriber has stopped acting under our epoch, or our lease has run out
        (after which nobody acts on it anyway); a stopped subscriber counts as stopped."""
        remaining = self.lease_until - time.monotonic()
        if remaining <= 0 or not self.subscribers:
            return

        async def confirm(box: Mailbox) -> str | None:
            try:
                await box.ask(Relinquish(self.epoch), timeout=remaining)
            except MailboxClosed:
                return None
            except (MailboxError, TimeoutError) as exc:
                return f"{box.name}: {exc}"
            return None

        began = time.monotonic()
        missing = [m for m in await asyncio.gather(*(confirm(b) for b in self.subscribers)) if m]
        if missing:
            log.error("relinquish_unconfirmed", extra={"epoch": self.epoch, "waited": round(remaining, 3),
                                                       "subscribers": missing})
            await asyncio.sleep(max(0.0, self.lease_until - time.monotonic()))
        log.info("relinquished", extra={"epoch": self.epoch, "seconds": round(time.monotonic() - began, 3)})

    def health(self) -> dict[str, Any]:
        """Also the `leadership` section of /health."""
        if self.role is Role.ACTIVE and self.last_heartbeat is not None:
            age: float | None = time.monotonic() - self.last_heartbeat
        else:
            age = self.leader_heartbeat_age
        return {
            "role": self.role.value,
            "epoch": self.epoch,
            "leader_instance": self.leader_instance,
            "leader_heartbeat_age_seconds": None if age is None else round(age, 3),
            "lock_wait_seconds": None if self.lock_wait is None else round(self.lock_wait, 3),
            "takeovers": self.takeovers,
            "demotions": self.demotions,
            "lock_error": self.last_error,
            "lease_seconds_left": round(max(0.0, self.lease_until - time.monotonic()), 3)
            if self.role is Role.ACTIVE else None,
            "fenced_probes": dict(self.probes),
        }


def lease_seconds(heartbeat_interval: float, stale_after: float) -> float:
    """How long an ACTIVE role is certain after a heartbeat was sent: the lock cannot change hands
    before the server ends our silent session (idle_session_timeout) or a standby finds our
    heartbeat stale, whichever is first; one heartbeat interval of margin comes off."""
    return min(idle_session_timeout(heartbeat_interval), stale_after) - heartbeat_interval
