"""broadcaster: sends confirmed broadcasts to their recipients. ACTIVE only, within the lease.

The database is the truth (store/broadcasts.py): every second (or at once when woken) the actor
reads the open broadcasts and drives the oldest running one, recipient by recipient in user id
order, one at a time, at BROADCAST_RATE messages a second. For each recipient: the intent
('sending', tries + 1) is committed under the fence, the message leaves through a bot whose every
request is checked against the lease right before the wire (SendGate) and paced by the bot's
shared limiter (Telegram's 30/s, a 429's pause shared with the dispatcher), then the outcome is
recorded under the fence: sent, blocked (403; the user is marked), or failed (a permanent
refusal, or MAX_TRIES attempts without an answer). A 429 is waited out and the same recipient
tried again, not counted as a try.

Exactly once, except one window: a row found 'sending' (a leader died or lost its lease after
the intent) is sent again by whoever leads next, so a user gets the message twice only if the
process died between Telegram's answer and the recording of 'sent' — at most one user per death,
since one recipient is in flight at a time. A send refused by the lease never left, so resending
it is exact.

The admin sees one progress message, edited every PROGRESS_EVERY seconds (never per user), with
Pause / Resume / Cancel (bot/routers/admin_broadcast.py writes those; this actor sees the state at
its next recipient), and at the end the final counts.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any, ClassVar

from aiogram import Bot
from aiogram.exceptions import (
    TelegramAPIError,
    TelegramBadRequest,
    TelegramForbiddenError,
    TelegramRetryAfter,
)

from actors.actor import Actor, handles
from actors.mailbox import Mailbox, Overflow, describe
from actors.roles import Leased, ask_for_role
from bot import broadcast_view as view
from config import Settings
from ingest.send_gate import ActingRefused, SendGate
from ingest.send_limiter import Bucket
from messages.broadcast import WakeBroadcast
from messages.control import Tick
from messages.roles import EpochRefused, Relinquish, Role, RoleChanged
from store import broadcasts
from store.broadcasts import MAX_TRIES, Broadcast, Outcome, Recipient
from store.database import DB_ERRORS, Database
from store.fence import Fenced
from store.leader import lock_name
from telemetry import logs

log = logs.get("broadcaster")

PAGE = 500  # recipients read per query
PROGRESS_EVERY = 3.0  # seconds between edits of the admin's progress message
DRAIN_SECONDS = 3.0  # on a relinquish, how long the send in flight may take to finish
RETRY_PAUSES = (1.0, 3.0)  # before the 2nd and 3rd try of a recipient after no answer (5xx, network)
MAX_RETRY_AFTER = 600.0  # a longer flood wait is still honoured, in steps of this much
BUG_PAUSE = 30.0  # after an unexpected error, before the next sweep


class Stopped(Exception):
    """The broadcast is no longer running (paused, cancelled): stop at this recipient."""


class Broadcaster(Leased, Actor):
    capacity: ClassVar[int] = 8
    overflow: ClassVar[Overflow] = Overflow.DROP_NEWEST  # wakes coalesce
    default_deadline: ClassVar[float] = 5.0
    stop_deadline: float = DRAIN_SECONDS + 5.0

    def __init__(self, mailbox: Mailbox, settings: Settings, database: Database, bot: Bot, lock_keeper: Mailbox, *,
                 sweep_interval: float = 1.0, progress_every: float = PROGRESS_EVERY,
                 retry_pauses: tuple[float, ...] = RETRY_PAUSES) -> None:
        super().__init__(mailbox)
        self.settings = settings
        self.database = database
        self.bot = bot
        self.lock_keeper = lock_keeper
        self.sweep_interval = sweep_interval
        self.progress_every = progress_every
        self.retry_pauses = retry_pauses
        bot.session.middleware(SendGate(self.may_act))  # after the limiter's waits: checked right before the wire
        self.bot_id = settings.bot_id
        self.lock_name = lock_name(settings.bot_id)
        self.pace = Bucket(settings.broadcast_rate, 1.0)
        self._init_lease()
        self.wanted = asyncio.Event()
        self.idle = asyncio.Event()  # no recipient between its intent and its outcome
        self.idle.set()
        self.driver: asyncio.Task[None] | None = None
        self.draining = False
        self.current: dict[str, Any] = {}
        self.last_edit = 0.0
        self.counts = {"sent": 0, "blocked": 0, "failed": 0, "retry_after": 0, "resent": 0}
        self.last_error: str | None = None

    # -- lifecycle -----------------------------------------------------------------------------

    async def on_start(self) -> None:
        self.spawn(self._watch_lease(), "lease-watch")
        ask_for_role(self.lock_keeper)
        self.every(self.sweep_interval, Tick("sweep"))

    async def on_stop(self) -> None:
        await self._drain(DRAIN_SECONDS)
        await self._stop_driving("stopping")
        await self.bot.session.close()

    @handles(RoleChanged, deadline=5.0)
    async def role_changed(self, msg: RoleChanged) -> None:
        step = self._take_role(msg)
        if step.stop and self.driver is not None:
            await self._stop_driving(step.stop)
        if step.start and self.driver is None:
            self._start_driving()

    @handles(Relinquish, deadline=DRAIN_SECONDS + 3.0)
    async def relinquish(self, msg: Relinquish) -> bool:
        """The lock is about to go: the send in flight may end within the lease (so its outcome is
        recorded and nobody gets it twice), nothing new starts."""
        if self.role is Role.ACTIVE and msg.epoch == self.epoch and self.driver is not None:
            await self._drain(min(DRAIN_SECONDS, self.lease_until - time.monotonic() - 0.5))
            await self._stop_driving(f"relinquished epoch {msg.epoch}")
        self._give_up(msg.epoch)
        return True

    @handles(EpochRefused, deadline=5.0)
    async def epoch_refused(self, msg: EpochRefused) -> None:
        if self.role is Role.ACTIVE and msg.epoch == self.epoch:
            self.acting.clear()
            await self._stop_driving(f"fenced epoch {msg.epoch}")
            ask_for_role(self.lock_keeper)

    @handles(WakeBroadcast, deadline=1.0)
    async def wake(self, msg: WakeBroadcast) -> None:
        self.wanted.set()

    async def on_tick(self, msg: Tick) -> None:
        if msg.name == "sweep":
            self.wanted.set()

    def _lease_expired_extra(self) -> dict[str, object]:
        return {"broadcast": self.current.get("broadcast")}

    def _start_driving(self) -> None:
        self.draining = False
        log.info("broadcasts_driving", extra={"epoch": self.epoch})
        self.driver = self.spawn(self._drive_loop(), "driver")
        self.wanted.set()

    async def _drain(self, timeout: float) -> None:
        self.draining = True
        if not self.idle.is_set() and timeout > 0:
            try:
                await asyncio.wait_for(self.idle.wait(), timeout)
            except TimeoutError:
                log.warning("broadcast_drain_incomplete", extra={"timeout": round(timeout, 3)})

    async def _stop_driving(self, reason: str) -> None:
        task, self.driver = self.driver, None
        if task is not None:
            task.cancel()
            await asyncio.wait([task], timeout=2.0)
            log.info("broadcasts_stopped", extra={"reason": reason})
        self.idle.set()

    # -- the work ------------------------------------------------------------------------------

    async def _drive_loop(self) -> None:
        while True:
            await self.wanted.wait()
            self.wanted.clear()
            await self.acting.wait()
            if self.draining or not self.may_act():
                continue
            try:
                await self._sweep()
            except Fenced:
                self.mailbox.tell_nowait(EpochRefused(self.epoch))
                return
            except ActingRefused:
                continue  # the lease lapsed: the next lease (here or elsewhere) carries on from the rows
            except DB_ERRORS as exc:
                self.last_error = f"sweep: {describe(exc)}"[:300]
                log.warning("broadcast_sweep_failed", extra={"error_text": describe(exc)})
                await asyncio.sleep(1.0)
            except Exception as exc:  # a bug must not crash-loop the actor (and its supervisor's siblings)
                self.last_error = f"sweep: {describe(exc)}"[:300]
                log.exception("broadcast_step_failed")
                await asyncio.sleep(BUG_PAUSE)

    async def _sweep(self) -> None:
        for found in await broadcasts.open_work(self.database, self.bot_id):
            if self.draining or not self.may_act():
                return
            try:
                if found.state == "running":
                    await self._run(found)
                else:
                    await self._report(found)
            except Stopped:
                continue

    async def _run(self, b: Broadcast) -> None:
        """One broadcast, from its first recipient without an outcome to its end (or a pause)."""
        token = logs.correlation_id.set(f"b{b.id}")
        try:
            self._observe(b)
            if b.progress_message_id is None:
                b = await self._progress_message(b)
            log.info("broadcast_sending", extra={"broadcast": b.id, "total": b.total, "left": b.left})
            after = 0
            while True:
                page = await broadcasts.open_recipients(self.database, b.id, after, PAGE)
                if not page:
                    break
                for recipient in page:
                    if self.draining:
                        return
                    after = recipient.user_id
                    try:
                        await self._one(b, recipient)
                    except Stopped:
                        b = await self._fresh(b)
                        if b.state == "running":
                            continue  # this recipient had an outcome already
                        await self._progress(b, force=True)
                        if b.finished:
                            await self._report(b)
                        return
                    await self._progress(b)
            done = await broadcasts.finish(self.database, self.lock_name, self.epoch, b.id)
            if done is not None:
                log.info("broadcast_done", extra={"broadcast": b.id, "sent": done.sent, "blocked": done.blocked,
                                                  "failed": done.failed, "total": done.total})
                await self._report(done)
        finally:
            logs.correlation_id.reset(token)

    async def _progress_message(self, b: Broadcast) -> Broadcast:
        """The admin's progress message, sent once and recorded (a crash in between: a second one)."""
        try:
            message = await self.bot.send_message(b.admin_chat_id, view.progress_text(b.admin_lang, b),
                                                  reply_markup=view.progress_keyboard(b.admin_lang, b))
        except TelegramAPIError as exc:  # the broadcast does not wait for its progress report
            log.warning("broadcast_progress_not_sent", extra={"broadcast": b.id, "error_text": describe(exc)})
            return b
        await broadcasts.set_progress_message(self.database, self.lock_name, self.epoch, b.id, message.message_id)
        self.last_edit = time.monotonic()
        return await self._fresh(b)

    async def _one(self, b: Broadcast, r: Recipient) -> None:
        """One recipient to its outcome: intent, send (429s waited out), outcome."""
        if r.tries >= MAX_TRIES:  # attempts died without an answer (a crash, a lease lost) MAX_TRIES times
            await self._record(b, r.user_id, "failed", "no_answer")
            return
        if r.banned:  # banned since the Confirm: a banned user gets nothing but their one message
            await self._record(b, r.user_id, "failed", "banned")
            return
        if r.state == "sending":
            self.counts["resent"] += 1
            log.info("broadcast_resend", extra={"broadcast": b.id, "user_id": r.user_id, "tries": r.tries})
        while True:
            wait = self.pace.reserve(time.monotonic())
            if wait > 0:
                await asyncio.sleep(wait)
            self.idle.clear()
            try:
                tries = await broadcasts.intend(self.database, self.lock_name, self.epoch, b.id, r.user_id)
                if tries is None:
                    raise Stopped()
                outcome, error = await self._send(b, r.user_id)
                if outcome is None:  # no answer (5xx, network): tried again after a pause, MAX_TRIES in all
                    if tries >= MAX_TRIES:
                        outcome = "failed"
                    else:
                        self.idle.set()
                        await asyncio.sleep(self.retry_pauses[min(tries, len(self.retry_pauses)) - 1])
                        continue
                await self._record(b, r.user_id, outcome, error)
                return
            finally:
                self.idle.set()

    async def _send(self, b: Broadcast, user_id: int) -> tuple[Outcome | None, str | None]:
        """The message to one user: its outcome, or (None, why) when Telegram did not answer."""
        while True:
            try:
                await view.send_content(self.bot, user_id, b.content)
                return "sent", None
            except TelegramRetryAfter as exc:  # the limiter's own retries were not enough: wait, same user
                self.counts["retry_after"] += 1
                pause = min(float(exc.retry_after), MAX_RETRY_AFTER)
                log.warning("broadcast_retry_after", extra={"broadcast": b.id, "retry_after": exc.retry_after})
                await asyncio.sleep(pause)
            except TelegramForbiddenError:
                return "blocked", "forbidden"
            except TelegramBadRequest as exc:
                return "failed", str(exc.message)[:200]
            except TelegramAPIError as exc:  # 5xx after the limiter's retries, network errors, timeouts
                self.last_error = f"user {user_id}: {describe(exc)}"[:300]
                return None, describe(exc)[:200]

    async def _record(self, b: Broadcast, user_id: int, outcome: Outcome, error: str | None) -> None:
        if await broadcasts.record(self.database, self.lock_name, self.epoch, self.bot_id, b.id, user_id, outcome,
                                   error):
            self.counts[outcome] += 1
            self.current[outcome] = self.current.get(outcome, 0) + 1

    async def _fresh(self, b: Broadcast) -> Broadcast:
        found = await broadcasts.get(self.database, b.id)
        if found is None:
            raise Stopped()
        self._observe(found)
        return found

    def _observe(self, b: Broadcast) -> None:
        self.current = {"broadcast": b.id, "state": b.state, "total": b.total, "sent": b.sent,
                        "blocked": b.blocked, "failed": b.failed}

    async def _progress(self, b: Broadcast, *, force: bool = False) -> None:
        """The admin's progress message, at most every progress_every seconds (or now when forced)."""
        if not force and time.monotonic() - self.last_edit < self.progress_every:
            return
        self.last_edit = time.monotonic()
        fresh = await self._fresh(b) if not force else b
        if fresh.progress_message_id is None:
            return
        await self._edit(fresh, view.progress_text(fresh.admin_lang, fresh),
                         view.progress_keyboard(fresh.admin_lang, fresh))

    async def _edit(self, b: Broadcast, text: str, markup: Any) -> None:
        """An edit of the progress message; one that fails is skipped (the next one says more)."""
        if b.progress_message_id is None:
            return
        try:
            await self.bot.edit_message_text(text, chat_id=b.admin_chat_id, message_id=b.progress_message_id,
                                             reply_markup=markup)
        except TelegramAPIError as exc:
            if "not modified" not in str(exc):
                log.info("broadcast_progress_not_edited", extra={"broadcast": b.id, "error_text": describe(exc)})

    async def _report(self, b: Broadcast) -> None:
        """The final counts: the progress message shows them (buttons gone) and a message says them."""
        if b.told_at is not None:
            return
        self._observe(b)
        await self._edit(b, view.progress_text(b.admin_lang, b), None)
        try:
            await self.bot.send_message(b.admin_chat_id, view.final_text(b.admin_lang, b))
        except TelegramAPIError as exc:  # the admin blocked the bot, or Telegram failed: the counts stay in the rows
            log.warning("broadcast_report_failed", extra={"broadcast": b.id, "error_text": describe(exc)})
        await broadcasts.told(self.database, self.lock_name, self.epoch, b.id)

    # -- health --------------------------------------------------------------------------------

    def health(self) -> dict[str, Any]:
        """The `broadcast` section of /health: the broadcast being sent, sent/total, its state."""
        return {
            "driving": self.driver is not None,
            "acting": self.acting.is_set(),
            "role": self.role.value,
            "epoch": self.epoch,
            "rate": self.settings.broadcast_rate,
            **self.current,
            "counts": dict(self.counts),
            "last_error": self.last_error,
        }
