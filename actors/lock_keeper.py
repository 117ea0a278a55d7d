"""lock_keeper: decides whether this instance is ACTIVE, and proves it every heartbeat.

It holds `pg_try_advisory_lock(int4, int4)` on a dedicated connection and a fencing epoch in the
`leader` row. Any doubt demotes at once (PASSIVE is announced before anything else happens):
a failed or late heartbeat, a heartbeat guard that matches no row, or the connection ending.
Standbys retry every LOCK_RETRY_INTERVAL and terminate a holder whose heartbeat is older than
STALE_AFTER. The server closes a frozen holder's idle session by itself (idle_session_timeout),
so a SIGSTOPped leader loses the lock within a few heartbeats even without a standby's help.
"""

from __future__ import annotations

import asyncio
import os
import time
from typing import Any, ClassVar

from actors.actor import Actor, handles
from actors.mailbox import Mailbox, MailboxError
from config import Settings
from messages.control import ChaosFault, Tick
from messages.roles import CurrentRole, LockConnectionLost, Role, RoleChanged
from store import leader
from store.database import DB_ERRORS, Database
from store.fence import Fenced, fenced_probe
from store.lock_session import LOCK_ERRORS, LockSession
from telemetry import logs
from telemetry.metrics import METRICS

log = logs.get("lock_keeper")
HELD_LOG_EVERY = 30.0


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
        self.session: LockSession | None = None
        self.role = Role.PASSIVE
        self.epoch = 0
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
            await self._announce(Role.PASSIVE, "lock held by another instance")
        self.every(self.settings.heartbeat_interval, Tick("heartbeat"))
        self.every(interval, Tick("retry"))

    async def on_stop(self) -> None:
        """Release last: the tree stops lock_keeper after the work that needed the lock."""
        session, self.session = self.session, None
        was_active = self.role is Role.ACTIVE
        self.role = Role.PASSIVE
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
        elif msg.name == "retry" and self.role is Role.PASSIVE:
            await self._attempt()

    @handles(CurrentRole, deadline=1.0)
    async def current(self, msg: CurrentRole) -> RoleChanged:
        return RoleChanged(self.role, self.epoch if self.role is Role.ACTIVE else 0, "current")

    @handles(LockConnectionLost, deadline=5.0)
    async def connection_lost(self, msg: LockConnectionLost) -> None:
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
        return await LockSession.open(self.database.url, instance_id=self.settings.instance_id,
                                      heartbeat_interval=self.settings.heartbeat_interval, name=self.name_,
                                      keys=self.keys, on_lost=self._terminated)

    def _terminated(self, session: LockSession) -> None:
        if session is self.session:
            try:
                self.mailbox.tell_nowait(LockConnectionLost("connection terminated"))
            except MailboxError:
                self._drop_connection()

    def _drop_connection(self) -> None:
        session, self.session = self.session, None
        if session is not None:
            session.terminate()  # a call that timed out may have been granted: never reuse

    async def _attempt(self) -> None:
        """One standby step: (re)connect, try the lock, take over a stale holder."""
        began = time.monotonic()
        try:
            async with asyncio.timeout(max(3.0, self.settings.lock_retry_interval * 3)):
                if self.session is None or self.session.closed:
                    self.session = await self._connect()
                session = self.session
                got = await session.try_lock()
                took_over: str | None = None
                if not got:
                    holder = await session.holder()
                    self.leader_instance = holder.instance if holder else None
                    self.leader_heartbeat_age = holder.heartbeat_age if holder else None
                    if holder is not None and holder.heartbeat_age > self.settings.stale_after:
                        pids = await session.terminate_holder()
                        log.warning("takeover", extra={"from_instance": holder.instance, "to_instance":
                                                       self.settings.instance_id,
                                                       "heartbeat_age": round(holder.heartbeat_age, 2),
                                                       "terminated_pids": pids})
                        got = await session.try_lock()
                        took_over = holder.instance if got else None
                if not got:
                    self._log_held()
                    return
                self.epoch = await session.bump_epoch(self.settings.instance_id, os.getpid(), took_over)
        except LOCK_ERRORS as exc:
            self.last_error = f"{type(exc).__name__}: {exc}"[:300]
            log.warning("lock_attempt_failed", extra={"error_text": self.last_error})
            self._drop_connection()
            return
        if took_over:
            self.takeovers += 1
            METRICS.takeovers.inc()
        self.lock_wait = time.monotonic() - self._started
        self.acquired_at = time.time()
        self.last_heartbeat = time.monotonic()
        self.leader_instance = self.settings.instance_id
        self.leader_heartbeat_age = 0.0
        log.info("leadership_acquired", extra={"epoch": self.epoch, "lock_wait_seconds": round(self.lock_wait, 3),
                                               "took_over": took_over, "attempt_ms":
                                               round((time.monotonic() - began) * 1000, 1)})
        await self._announce(Role.ACTIVE, "lock acquired")

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
        self.leader_heartbeat_age = 0.0

    async def _demote(self, reason: str) -> None:
        if self.role is not Role.ACTIVE:
            return
        self.demotions += 1
        METRICS.demotions.inc()
        self.last_error = reason
        log.error("demoted", extra={"epoch": self.epoch, "reason": reason})
        await self._announce(Role.PASSIVE, reason)

    async def _announce(self, role: Role, reason: str) -> None:
        self.role = role
        METRICS.role.set(1 if role is Role.ACTIVE else 0)
        METRICS.epoch.set(self.epoch)
        msg = RoleChanged(role, self.epoch if role is Role.ACTIVE else 0, reason)
        for box in self.subscribers:
            try:
                box.tell_nowait(msg)
            except MailboxError as exc:
                log.error("role_not_delivered", extra={"to": box.name, "error_text": str(exc)})

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
            "fenced_probes": dict(self.probes),
        }
