"""dispatcher: runs inbox updates through aiogram, one at a time per chat, chats in parallel.

ACTIVE only. A pump claims the oldest unfinished updates under the leader's epoch (at once when
our ingress wakes it, every INBOX_SWEEP_INTERVAL for what other instances stored or a previous
leader left) into per-chat queues; DISPATCH_CONCURRENCY workers take a chat each, run its
oldest update through aiogram's Dispatcher under UPDATE_DEADLINE, and come back for another
chat, so a slow chat holds one worker and never another chat. Of those, DISPATCH_TURNS run at
once and the rest wait on Telegram (ingest/turns.py), so a burst is handled in order of arrival.
Done marks are written in batches (ingest/done_marks.py).
Going PASSIVE drops everything in memory at once: the claims stay in the inbox and the next
leader takes them again (at-least-once; only what was in flight can run twice).

It acts only within the lease lock_keeper grants with every heartbeat: past it (lock_keeper hung,
crashed, or the whole process frozen and woken) workers park and the bot's send gate refuses
every request, so nothing is sent once another instance may lead. An update's outcome
(ingest/update_run.py) is "done", "failed for good" (apology, done mark) or "run again" (no
apology, no mark): refused by the fence or the send gate, the database unreachable, or a deadline
after the handler committed an intent under the fence.
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

from actors.actor import Actor, handles
from actors.mailbox import Mailbox, Overflow, describe
from actors.roles import Leased, ask_for_role
from bot import flood
from config import Settings
from ingest.dispatch_flood import FloodControl, Key
from ingest.done_marks import DoneMarks
from ingest.send_gate import ActingRefused, SendGate
from ingest.turns import Turns
from ingest.update_run import UpdateRun
from messages.control import Tick
from messages.pipeline import Wake
from messages.roles import EpochRefused, Relinquish, Role, RoleChanged
from store import inbox
from store.database import DB_ERRORS, Database
from store.fence import Fenced
from store.inbox import Claimed
from store.leader import lock_name
from telemetry import logs, tracing
from telemetry.awaiting import awaiting
from telemetry.metrics import METRICS

log = logs.get("dispatcher")

CLAIM_BATCH = 500
HIGH_WATER = 2000  # updates held in memory at most; the rest waits in the inbox
DRAIN_SECONDS = 5.0  # on a stop, how long running updates may take to finish (under stop_deadline)
STOP_SLOW = 1.0  # cancelled tasks still running after this are logged with where they wait
RETRY_DELAYS = (0.2, 0.5, 1.0, 2.0, 5.0)  # between runs of an update that must run again
TURN_PATIENCE = 1.0  # seconds a handler waits for a turn before it runs without one (ingest/turns.py)


class UpdateDispatcher(FloodControl, UpdateRun, Leased, Actor):
    capacity: ClassVar[int] = 8
    overflow: ClassVar[Overflow] = Overflow.DROP_NEWEST  # Wake messages coalesce
    default_deadline: ClassVar[float] = 5.0
    stop_deadline: float = 10.0

    def __init__(self, mailbox: Mailbox, settings: Settings, database: Database, bot: Bot,
                 dp: Dispatcher, lock_keeper: Mailbox) -> None:
        super().__init__(mailbox)
        self.settings = settings
        self.database = database
        self.bot = bot
        self.dp = dp
        self.lock_keeper = lock_keeper
        bot.session.middleware(SendGate(self.may_act))  # after the limiter's waits: checked right before the wire
        self.turns = Turns(settings.dispatch_turns, TURN_PATIENCE)  # a burst handled in order of arrival
        self.name_ = lock_name(settings.bot_id)
        self._init_lease()  # role, epoch, lease_until, and `acting`: workers and the pump park while it is clear
        self.runs: dict[int, int] = {}  # update_id -> runs that ended in "run again"
        self.generation = 0  # of the consuming session: a retry timer of an earlier one does nothing
        self.retried = 0
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
        self.taken_over = ""  # the session whose claim has taken over earlier sessions' claims
        self.done_marks = DoneMarks(database, settings.bot_id)
        self.done_writer: asyncio.Task[None] | None = None
        self.handled = 0
        self.failed = 0
        self.pending = 0
        self.oldest_age = 0.0
        self.last_claim_error: str | None = None
        self.foreign_claims = 0
        self.foreign_claim_age = 0.0
        self.idle_since: float | None = time.monotonic()  # not consuming since (None while consuming)
        self.consuming_since = 0.0
        self.running: dict[asyncio.Task[Any], tuple[int, float]] = {}  # worker -> (update_id, started)
        self.flood = flood.Flood()  # per-chat rate limit, applied when a worker takes a chat's next update
        self.waiting: set[int] = set()  # updates put aside until their chat's next token (flood.Verdict.WAIT)
        self.kept: dict[int, str] = {}  # update_id -> its command ("" for a payment): never dropped, parsed once
        self.owed: dict[int, Any] = {}  # chat -> the sender a flood notice is owed to (coalesced at enqueue)

    # -- lifecycle -----------------------------------------------------------------------------

    async def on_start(self) -> None:
        self.done_writer = self.spawn(self.done_marks.write(), "done-writer")
        self.spawn(self._watch_lease(), "lease-watch")
        ask_for_role(self.lock_keeper)  # the answer comes as a RoleChanged; until then we do nothing
        self.every(self.settings.inbox_sweep_interval, Tick("sweep"))
        self.every(2.0, Tick("depth"), first=0.5)

    async def on_stop(self) -> None:
        await self._drain(DRAIN_SECONDS)
        await self._stop_consuming("stopping")
        writer, self.done_writer = self.done_writer, None
        if writer is not None:
            writer.cancel()
            await asyncio.gather(writer, return_exceptions=True)
        await self.done_marks.last_attempt()
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
        step = self._take_role(msg)
        if step.stop and self.tasks:
            await self._stop_consuming(step.stop)
        if step.start and not self.tasks:
            self._start_consuming()

    @handles(Relinquish, deadline=DRAIN_SECONDS + 3.0)
    async def relinquish(self, msg: Relinquish) -> bool:
        """lock_keeper is about to let the lock go and waits for this answer: take nothing new, let
        the running updates finish within the lease and their done marks reach the inbox (so the
        next leader does not run them again), then stop acting."""
        if self.role is Role.ACTIVE and msg.epoch == self.epoch and self.tasks:
            began = time.monotonic()
            await self._drain(min(DRAIN_SECONDS, self.lease_until - began - 0.5))
            await self._stop_consuming(f"relinquished epoch {msg.epoch}")
            await self.done_marks.flush(max(0.0, self.lease_until - time.monotonic() - 0.2))
            log.info("relinquished", extra={"epoch": msg.epoch, "seconds": round(time.monotonic() - began, 3),
                                            "done_marks_waiting": len(self.done_marks)})
        self._give_up(msg.epoch)
        return True

    @handles(EpochRefused, deadline=5.0)
    async def epoch_refused(self, msg: EpochRefused) -> None:
        """The fence says another instance leads: stop at once (nothing drains: it is not ours to
        finish). lock_keeper learns it at its next heartbeat; until it says otherwise, a RoleChanged
        of this same epoch starts us again and the fence refuses again, so nothing is done twice."""
        if self.role is Role.ACTIVE and msg.epoch == self.epoch:
            self.acting.clear()
            await self._stop_consuming(f"fenced epoch {msg.epoch}")
            ask_for_role(self.lock_keeper)

    def _lease_expired_extra(self) -> dict[str, object]:
        return {"held": len(self.held)}

    def _start_consuming(self) -> None:
        self.draining = False
        self.runs.clear()
        # a fresh claim owner: whatever an earlier session left claimed is taken over, ours is not
        self._new_session()
        log.info("dispatch_started", extra={"epoch": self.epoch, "workers": self.settings.dispatch_concurrency})
        # a task that dies fails the actor (Actor.spawn): the supervisor restarts it, the inbox keeps every claim
        self.idle_since = None
        self.consuming_since = time.monotonic()
        self.tasks = [self.spawn(self._pump(), "pump")]
        self.tasks += [self.spawn(self._worker(i), f"worker-{i}") for i in range(self.settings.dispatch_concurrency)]
        self.wanted.set()

    def _new_session(self) -> None:
        """A fresh claim owner; its first claim takes over what any other session left claimed.
        The FSM's cache starts empty with it: another session (another leader) may have written."""
        self.session = f"{self.settings.instance_id}/{uuid.uuid4().hex[:8]}"
        reset = getattr(self.dp.fsm.storage, "reset", None)  # bot.fsm_cache.CachedStorage
        if callable(reset):
            reset()

    async def _stop_consuming(self, reason: str) -> None:
        self.generation += 1
        if self.tasks:
            self.idle_since = time.monotonic()
        tasks, self.tasks = self.tasks, []
        for task in tasks:
            task.cancel()
        if tasks:
            _, late = await asyncio.wait(tasks, timeout=STOP_SLOW)
            if late:  # a task not ending when cancelled holds the whole stop (and the role change) up
                log.warning("dispatch_stop_slow", extra={"reason": reason, "late": len(late), "seconds": STOP_SLOW,
                                                         "awaiting": [awaiting(t) for t in list(late)[:4]]})
            await asyncio.gather(*tasks, return_exceptions=True)
            log.info("dispatch_stopped", extra={"reason": reason, "dropped": len(self.held)})
        self.queues.clear()
        self.ready.clear()
        self.held.clear()
        self.pre_answered.clear()
        self.waiting.clear()
        self.kept.clear()
        self.owed.clear()
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
                depth = await inbox.depth(self.database, self.settings.bot_id, self.session if self.tasks else "")
            except DB_ERRORS:
                return
            self.pending, self.oldest_age = depth.pending, depth.oldest_age
            self.foreign_claims, self.foreign_claim_age = depth.foreign_claims, depth.foreign_claim_age
            METRICS.inbox_pending.set(self.pending)
            METRICS.inbox_oldest.set(self.oldest_age)

    async def _pump(self) -> None:
        generation = self.generation  # a stop moves it on: see _worker
        while generation == self.generation:
            await self.wanted.wait()
            self.wanted.clear()
            await self.acting.wait()
            while len(self.held) < HIGH_WATER and self.may_act():
                limit = min(CLAIM_BATCH, HIGH_WATER - len(self.held))
                try:
                    session = self.session
                    take_over = self.taken_over != session
                    batch = await inbox.claim(self.database, self.name_, self.epoch, self.settings.bot_id, limit,
                                              session, take_over=take_over)
                    if take_over and len(batch) < limit:
                        # every other session's claim is ours now, and under the fence no other session
                        # can claim since: later claims read only unclaimed rows. A full batch may have
                        # left more of them (a leader killed holding HIGH_WATER): take over again.
                        self.taken_over = session
                except Fenced as exc:  # another instance leads now; lock_keeper will say so too
                    log.warning("claim_fenced", extra={"epoch": self.epoch, "error_text": str(exc)})
                    self.mailbox.tell_nowait(EpochRefused(self.epoch))  # stop consuming (a control message)
                    return
                except DB_ERRORS as exc:
                    self.last_claim_error = describe(exc)[:200]
                    # the claim may have committed with its answer lost: those rows are ours but
                    # unknown to us, and a session skips its own claims; a new session takes them
                    # over (what we already hold is claimed again and skipped as held)
                    self._new_session()
                    break  # the next sweep tries again
                self.last_claim_error = None
                for claimed in batch:
                    tracing.emit("claimed", {"attempts": claimed.attempts, "epoch": self.epoch,
                                             "kind": claimed.kind}, correlation_id=f"u{claimed.update_id}")
                    self._enqueue(claimed)
                METRICS.dispatch_inflight.set(len(self.held))
                if len(batch) < limit:
                    break

    def _enqueue(self, claimed: Claimed) -> None:
        if claimed.update_id in self.held:
            return
        self.held.add(claimed.update_id)
        if claimed.kind == "pre_checkout_query":  # must be answered within 10 s: never waits for a worker
            task = self.spawn(self._express(claimed), f"pre-checkout-{claimed.update_id}")
            self.tasks.append(task)
            task.add_done_callback(lambda done: self.tasks.remove(done) if done in self.tasks else None)
            return
        key: Key = ("chat", claimed.chat_key) if claimed.chat_key is not None else ("update", claimed.update_id)
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
        if len(queue) > flood.CHAT_QUEUE_MAX and key[0] == "chat" and key[1] > 0:
            self._trim(key, queue)

    async def _answer_early(self, claimed: Claimed) -> None:
        try:
            query_id = json.loads(claimed.payload)["callback_query"]["id"]
            await self.bot.answer_callback_query(str(query_id))
        except (TelegramAPIError, TelegramNetworkError, ActingRefused, KeyError, ValueError, TypeError) as exc:
            log.info("early_answer_failed", extra={"update_id": claimed.update_id, "error_text": describe(exc)})

    # -- handling ------------------------------------------------------------------------------

    async def _next_chat(self) -> Key:
        while not self.ready:
            self.ready_event.clear()
            await self.ready_event.wait()
        return self.ready.popleft()

    async def _worker(self, number: int) -> None:
        """Takes ready chats' updates until its session stops (`generation`: a stop's cancel that a
        handler turned into "run again" once parked workers on `acting` for good, past a role
        change's deadline; soak seed 2117, bot/middlewares.AnswerCallbackFirst)."""
        me = asyncio.current_task()
        assert me is not None
        generation = self.generation
        while not self.draining and generation == self.generation:
            await self.acting.wait()
            key = await self._next_chat()
            queue = self.queues[key]
            if not self.may_act():  # the lease ran out while we waited for a chat: put it back
                self.ready.appendleft(key)
                self.acting.clear()
                continue
            claimed = queue.popleft()
            if key[0] == "chat" and key[1] > 0 and claimed.kind in flood.KINDS and claimed.update_id not in self.runs:
                taken = await self._coalesce(key, queue, claimed)
                if taken is None:  # put aside until the chat's next token: no worker waits for it
                    continue
                claimed = taken
            self.busy.add(me)
            self.running[me] = (claimed.update_id, time.monotonic())
            try:
                outcome = await self._handle(claimed)
            finally:
                self.busy.discard(me)
                self.running.pop(me, None)
            if outcome == "again":
                self._run_again(key, claimed)
                continue
            if queue:
                self.ready.append(key)
                self.ready_event.set()
            else:
                del self.queues[key]
            self._done(claimed, outcome)

    def _done(self, claimed: Claimed, outcome: str) -> None:
        """The update's handling ended for good: its done mark goes to the writer."""
        self.runs.pop(claimed.update_id, None)
        self.held.discard(claimed.update_id)
        self.pre_answered.discard(claimed.update_id)
        if self.waiting or self.kept:
            self.waiting.discard(claimed.update_id)
            self.kept.pop(claimed.update_id, None)
        self.done_marks.add(claimed.update_id, outcome)
        if len(self.held) < HIGH_WATER // 2:
            self.wanted.set()
        METRICS.dispatch_inflight.set(len(self.held))

    # floods (_coalesce, _trim, _drop, ...): FloodControl, ingest/dispatch_flood.py

    async def _express(self, claimed: Claimed) -> None:
        """A pre_checkout_query runs at once in a task of its own: Telegram fails the payment
        unless it is answered within 10 s, and every worker may be busy with slow chats. It has
        no chat order to keep; run again (a fenced write refused, the database away) it retries
        here, and a lost lease leaves it claimed for the next leader."""
        while True:
            if not self.may_act():
                self.held.discard(claimed.update_id)
                return
            outcome = await self._handle(claimed)
            if outcome != "again":
                break
            self.retried += 1
            runs = self.runs.get(claimed.update_id, 1)
            await asyncio.sleep(RETRY_DELAYS[min(runs - 1, len(RETRY_DELAYS) - 1)])
        self._done(claimed, outcome)

    def _run_again(self, key: Key, claimed: Claimed) -> None:
        """Back at the head of its chat, which waits (the chat's order holds); other chats go on."""
        self.retried += 1
        runs = self.runs.get(claimed.update_id, 0)
        self.queues[key].appendleft(claimed)
        delay = RETRY_DELAYS[min(runs - 1, len(RETRY_DELAYS) - 1)]
        generation = self.generation

        def ready() -> None:  # meanwhile no worker can take the chat: it is neither ready nor new
            if generation == self.generation and self.queues.get(key) and key not in self.ready:
                self.ready.append(key)
                self.ready_event.set()

        asyncio.get_running_loop().call_later(delay, ready)


    def health(self) -> dict[str, Any]:
        """With `problems` (warn): updates running past their deadline, claims no live consumer holds."""
        now = time.monotonic()
        problems = []
        grace = self.settings.update_deadline + 5.0  # the deadline fires first unless a handler ignores it
        late = sorted((now - started, update_id) for update_id, started in self.running.values())
        if late and late[-1][0] > grace:
            age, update_id = late[-1]
            problems.append(f"update {update_id} has run {age:.0f}s, past its deadline")
        if self.tasks and self.foreign_claim_age > self.settings.update_deadline:
            problems.append(f"{self.foreign_claims} update(s) claimed by a consumer that stopped, the oldest"
                            f" {self.foreign_claim_age:.0f}s ago, not taken over")
        return {
            "consuming": bool(self.tasks),
            "acting": self.acting.is_set(),
            "role": self.role.value,
            "lease_seconds_left": self.lease_seconds_left(),
            "idle_seconds": None if self.idle_since is None else round(now - self.idle_since, 3),
            "parked_seconds": None if self.acting.is_set() or not self.tasks
            else round(now - max(self.lease_until, self.consuming_since), 3),
            "runs_again": self.retried,
            "foreign_claims": self.foreign_claims,
            "problems": problems,
            "epoch": self.epoch,
            "inflight": len(self.held),
            **self.turns.stats(),
            "chats_queued": len(self.queues),
            "handled": self.handled,
            "failed": self.failed,
            "done_marks_waiting": len(self.done_marks),
            "inbox_pending": self.pending,
            "inbox_oldest_pending_seconds": round(self.oldest_age, 3),
            "last_claim_error": self.last_claim_error,
        }
