"""dispatcher: runs inbox updates through aiogram, one at a time per chat, chats in parallel.

ACTIVE only. A pump claims the oldest unfinished updates under the leader's epoch (at once when
our ingress wakes it, every INBOX_SWEEP_INTERVAL for what other instances stored or a previous
leader left) into per-chat queues; DISPATCH_CONCURRENCY workers take a chat each, run its
oldest update through aiogram's Dispatcher under UPDATE_DEADLINE, and come back for another
chat, so a slow chat holds one worker and never another chat. Done marks are written in batches.
Going PASSIVE drops everything in memory at once: the claims stay in the inbox and the next
leader takes them again (at-least-once; only what was in flight can run twice).
"""

from __future__ import annotations

import asyncio
import bisect
import collections
import json
import time
import uuid
from typing import Any, ClassVar

from aiogram import Bot, Dispatcher
from aiogram.exceptions import TelegramAPIError, TelegramNetworkError
from aiogram.types import Update

from actors.actor import Actor, handles
from actors.mailbox import Mailbox, Overflow, describe
from actors.roles import current_role
from bot import keyboards, texts
from config import Settings
from ingest.bot_api import ALLOWED_UPDATES
from messages.control import Tick
from messages.pipeline import Wake
from messages.roles import Role, RoleChanged
from store import inbox
from store.database import DB_ERRORS, Database
from store.fence import Fenced
from store.inbox import Claimed
from store.leader import lock_name
from telemetry import logs
from telemetry.metrics import METRICS

log = logs.get("dispatcher")

HANDLED = frozenset(ALLOWED_UPDATES)  # what we ask Telegram for is what has handlers; the rest is skipped
CLAIM_BATCH = 500
HIGH_WATER = 2000  # updates held in memory at most; the rest waits in the inbox
DRAIN_SECONDS = 5.0  # on a stop, how long running updates may take to finish (under stop_deadline)
Key = tuple[str, int]


class UpdateDispatcher(Actor):
    capacity: ClassVar[int] = 8
    overflow: ClassVar[Overflow] = Overflow.DROP_NEWEST  # Wake messages coalesce
    default_deadline: ClassVar[float] = 5.0
    stop_deadline: ClassVar[float] = 10.0

    def __init__(self, mailbox: Mailbox, settings: Settings, database: Database, bot: Bot,
                 dp: Dispatcher, lock_keeper: Mailbox) -> None:
        super().__init__(mailbox)
        self.settings = settings
        self.database = database
        self.bot = bot
        self.dp = dp
        self.lock_keeper = lock_keeper
        self.name_ = lock_name(settings.bot_id)
        self.role = Role.PASSIVE
        self.epoch = 0
        self.queues: dict[Key, collections.deque[Claimed]] = {}
        self.ready: collections.deque[Key] = collections.deque()
        self.ready_event = asyncio.Event()
        self.wanted = asyncio.Event()  # the pump should claim
        self.held: set[int] = set()
        self.pre_answered: set[int] = set()
        self.tasks: list[asyncio.Task[None]] = []
        self.busy: set[asyncio.Task[Any]] = set()  # workers inside an update
        self.draining = False
        self.session = ""
        self.done_marks: list[tuple[int, str]] = []
        self.done_event = asyncio.Event()
        self.done_writer: asyncio.Task[None] | None = None
        self.handled = 0
        self.failed = 0
        self.pending = 0
        self.oldest_age = 0.0
        self.last_claim_error: str | None = None

    # -- lifecycle -----------------------------------------------------------------------------

    async def on_start(self) -> None:
        self.done_writer = self.spawn(self._write_done(), "done-writer")
        if (current := await current_role(self.lock_keeper)) is not None:
            await self.role_changed(current)
        self.every(self.settings.inbox_sweep_interval, Tick("sweep"))
        self.every(2.0, Tick("depth"), first=0.5)

    async def on_stop(self) -> None:
        await self._drain(DRAIN_SECONDS)
        await self._stop_consuming("stopping")
        writer, self.done_writer = self.done_writer, None
        if writer is not None:
            writer.cancel()
            await asyncio.gather(writer, return_exceptions=True)
        if self.done_marks:  # a last attempt, so a clean stop does not replay finished updates
            marks, self.done_marks = self.done_marks, []
            try:
                async with asyncio.timeout(2.0):
                    await inbox.mark_done(self.database, self.settings.bot_id, marks)
            except DB_ERRORS as exc:
                log.warning("done_marks_lost", extra={"count": len(marks), "error_text": describe(exc)})
        await self.bot.session.close()

    async def _drain(self, timeout: float) -> None:
        """On a stop (a deploy), updates already running finish and nothing new starts, so the
        next leader replays none of them; the queued rest stays claimed in the inbox for it."""
        if not self.tasks:
            return
        self.draining = True
        busy = [task for task in self.tasks if task in self.busy]
        for task in self.tasks:
            if task not in self.busy:
                task.cancel()
        if busy:
            _, late = await asyncio.wait(busy, timeout=timeout)
            if late:
                log.warning("drain_incomplete", extra={"running": len(late), "timeout": timeout})

    @handles(RoleChanged, deadline=5.0)
    async def role_changed(self, msg: RoleChanged) -> None:
        if msg.role is Role.ACTIVE and (self.role is not Role.ACTIVE or msg.epoch != self.epoch):
            await self._stop_consuming("new epoch")
            self.role, self.epoch = Role.ACTIVE, msg.epoch
            self._start_consuming()
        elif msg.role is not Role.ACTIVE and self.role is Role.ACTIVE:
            self.role = msg.role
            await self._stop_consuming(msg.reason or "passive")

    def _start_consuming(self) -> None:
        self.draining = False
        # a fresh claim owner: whatever an earlier session left claimed is taken over, ours is not
        self.session = f"{self.settings.instance_id}/{uuid.uuid4().hex[:8]}"
        log.info("dispatch_started", extra={"epoch": self.epoch, "workers": self.settings.dispatch_concurrency})
        # a task that dies fails the actor (Actor.spawn): the supervisor restarts it, the inbox keeps every claim
        self.tasks = [self.spawn(self._pump(), "pump")]
        self.tasks += [self.spawn(self._worker(i), f"worker-{i}") for i in range(self.settings.dispatch_concurrency)]
        self.wanted.set()

    async def _stop_consuming(self, reason: str) -> None:
        tasks, self.tasks = self.tasks, []
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
            log.info("dispatch_stopped", extra={"reason": reason, "dropped": len(self.held)})
        self.queues.clear()
        self.ready.clear()
        self.held.clear()
        self.pre_answered.clear()
        METRICS.dispatch_inflight.set(0)

    # -- claiming ------------------------------------------------------------------------------

    @handles(Wake, deadline=1.0)
    async def wake(self, msg: Wake) -> None:
        self.wanted.set()

    async def on_tick(self, msg: Tick) -> None:
        if msg.name == "sweep":
            self.wanted.set()
        elif msg.name == "depth":
            try:
                self.pending, self.oldest_age = await inbox.depth(self.database, self.settings.bot_id)
            except DB_ERRORS:
                return
            METRICS.inbox_pending.set(self.pending)
            METRICS.inbox_oldest.set(self.oldest_age)

    async def _pump(self) -> None:
        while True:
            await self.wanted.wait()
            self.wanted.clear()
            while len(self.held) < HIGH_WATER:
                limit = min(CLAIM_BATCH, HIGH_WATER - len(self.held))
                try:
                    batch = await inbox.claim(self.database, self.name_, self.epoch, self.settings.bot_id, limit,
                                              self.session)
                except Fenced as exc:  # another instance leads now; lock_keeper will say so too
                    log.warning("claim_fenced", extra={"epoch": self.epoch, "error_text": str(exc)})
                    self.mailbox.tell_nowait(RoleChanged(Role.PASSIVE, self.epoch, "fenced"))  # stop consuming
                    return
                except DB_ERRORS as exc:
                    self.last_claim_error = describe(exc)[:200]
                    break  # the next sweep tries again
                self.last_claim_error = None
                for claimed in batch:
                    self._enqueue(claimed)
                METRICS.dispatch_inflight.set(len(self.held))
                if len(batch) < limit:
                    break

    def _enqueue(self, claimed: Claimed) -> None:
        if claimed.update_id in self.held:
            return
        self.held.add(claimed.update_id)
        if claimed.kind == "pre_checkout_query":  # must be answered within 10 s: ahead of everything
            key: Key = ("pcq", claimed.update_id)
            self.queues[key] = collections.deque([claimed])
            self.ready.appendleft(key)
            self.ready_event.set()
            return
        key = ("chat", claimed.chat_key) if claimed.chat_key is not None else ("update", claimed.update_id)
        queue = self.queues.get(key)
        if queue is None:
            self.queues[key] = collections.deque([claimed])
            self.ready.append(key)
            self.ready_event.set()
            return
        if claimed.kind == "callback_query":  # it waits behind its chat: stop the spinner now
            self.pre_answered.add(claimed.update_id)
            self.spawn(self._answer_early(claimed), f"early-answer-{claimed.update_id}")
        if not queue or queue[-1].update_id < claimed.update_id:
            queue.append(claimed)
        else:  # committed out of order by two instances: keep update_id order
            ids = [c.update_id for c in queue]
            queue.insert(bisect.bisect(ids, claimed.update_id), claimed)

    async def _answer_early(self, claimed: Claimed) -> None:
        try:
            query_id = json.loads(claimed.payload)["callback_query"]["id"]
            await self.bot.answer_callback_query(str(query_id))
        except (TelegramAPIError, TelegramNetworkError, KeyError, ValueError, TypeError) as exc:
            log.info("early_answer_failed", extra={"update_id": claimed.update_id, "error_text": describe(exc)})

    # -- handling ------------------------------------------------------------------------------

    async def _next_chat(self) -> Key:
        while not self.ready:
            self.ready_event.clear()
            await self.ready_event.wait()
        return self.ready.popleft()

    async def _worker(self, number: int) -> None:
        me = asyncio.current_task()
        assert me is not None
        while not self.draining:
            key = await self._next_chat()
            queue = self.queues[key]
            claimed = queue.popleft()
            self.busy.add(me)
            try:
                outcome = await self._handle(claimed)
            finally:
                self.busy.discard(me)
            self.held.discard(claimed.update_id)
            self.pre_answered.discard(claimed.update_id)
            self.done_marks.append((claimed.update_id, outcome))
            self.done_event.set()
            if queue:
                self.ready.append(key)
                self.ready_event.set()
            else:
                del self.queues[key]
            if len(self.held) < HIGH_WATER // 2:
                self.wanted.set()
            METRICS.dispatch_inflight.set(len(self.held))

    async def _handle(self, claimed: Claimed) -> str:
        started = time.perf_counter()
        cid = f"u{claimed.update_id}"
        token = logs.correlation_id.set(cid)
        try:
            if claimed.kind not in HANDLED:
                outcome = "skipped"
            else:
                outcome = await self._feed(claimed, cid)
        finally:
            logs.correlation_id.reset(token)
        METRICS.updates_handled.labels(claimed.kind if claimed.kind in HANDLED else "other", outcome).inc()
        METRICS.update_seconds.labels(claimed.kind if claimed.kind in HANDLED else "other").observe(
            time.perf_counter() - started)
        self.handled += 1
        return outcome

    async def _feed(self, claimed: Claimed, cid: str) -> str:
        raw: dict[str, Any] = {}
        try:
            raw = json.loads(claimed.payload)
            update = Update.model_validate(raw, context={"bot": self.bot})
            async with asyncio.timeout(self.settings.update_deadline):
                await self.dp.feed_update(self.bot, update, pre_answered=claimed.update_id in self.pre_answered)
            return "ok"
        except TimeoutError:
            reason, error = "deadline", f"no result within {self.settings.update_deadline:g}s"
        except Exception as exc:
            reason, error = "error", describe(exc)
        self.failed += 1
        log.error("update_failed", extra={"update_id": claimed.update_id, "kind": claimed.kind, "reason": reason,
                                          "error_text": logs.redact(error)[:500], "attempts": claimed.attempts})
        await self._apologise(claimed, raw, cid)
        return reason

    async def _apologise(self, claimed: Claimed, raw: dict[str, Any], cid: str) -> None:
        """A user is never left in silence: a short apology with the reference and a Menu button."""
        body = raw.get(claimed.kind) if isinstance(raw, dict) else None
        if claimed.chat_key is None or claimed.kind not in ("message", "callback_query") or not isinstance(body, dict):
            return
        lang = texts.lang_of(body.get("from"))
        try:
            async with asyncio.timeout(10):
                await self.bot.send_message(claimed.chat_key, texts.t(lang, "apology", ref=cid),
                                            reply_markup=keyboards.menu_button(lang))
        except (TelegramAPIError, TelegramNetworkError, TimeoutError) as exc:
            log.warning("apology_failed", extra={"update_id": claimed.update_id, "error_text": describe(exc)})

    # -- done marks ----------------------------------------------------------------------------

    async def _write_done(self) -> None:
        while True:
            await self.done_event.wait()
            self.done_event.clear()
            # no linger: what finishes while a statement runs goes in the next one, so batches grow
            # with the load by themselves, and an update whose reply went out stays unmarked (and
            # replays after a crash) only for as long as one statement takes
            # the marks leave the list only once written: a cancel mid-statement (a stop) keeps them
            # for on_stop's last attempt instead of losing them, which would replay finished updates
            marks = self.done_marks[:]
            if not marks:
                continue
            try:
                await inbox.mark_done(self.database, self.settings.bot_id, marks)
            except DB_ERRORS as exc:
                log.warning("done_marks_retry", extra={"count": len(marks), "error_text": describe(exc)})
                await asyncio.sleep(1.0)
                self.done_event.set()
            else:
                del self.done_marks[:len(marks)]  # later marks were only appended meanwhile

    def health(self) -> dict[str, Any]:
        return {
            "consuming": bool(self.tasks),
            "epoch": self.epoch,
            "inflight": len(self.held),
            "chats_queued": len(self.queues),
            "handled": self.handled,
            "failed": self.failed,
            "done_marks_waiting": len(self.done_marks),
            "inbox_pending": self.pending,
            "inbox_oldest_pending_seconds": round(self.oldest_age, 3),
            "last_claim_error": self.last_claim_error,
        }
