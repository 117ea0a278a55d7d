"""kie_poller: drives every job from Confirm to delivery. ACTIVE only.

The database is the truth and this actor is level-triggered over it: every sweep (a Wake from
the wizard or the callback route, else every second) reads every job the user has not been told
about, those an earlier leader left included, and the KIE callbacks stored by any instance, and
starts one drive per job that has something to do now (never two for one job). A drive takes
one step, each of them a module of generation/: submit a 'created' job (generation.submit),
follow a running one through callbacks and recordInfo polls (generation.follow), edit its status
message (generation.status), or end it with its result or an apology (generation.deliver).

This module keeps what is the actor's own: the scheduling (which job, when, never two drives of
one job), the lease and the mailbox. It acts only within the lease lock_keeper grants: every KIE
call and every Telegram request (a send gate on its own bot) is checked against it right before
it leaves, and every write is fenced by the epoch. Going PASSIVE stops everything at once; the
next leader reads the same rows.
"""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar

from aiogram import Bot

from actors.actor import Actor, handles
from actors.mailbox import Mailbox, Overflow, describe
from actors.roles import Leased, ask_for_role
from catalog.model import Catalog, Model
from config import Settings
from generation.context import JobContext, log
from generation.deliver import Deliverer
from generation.follow import Follower
from generation.inputs import Inputs
from generation.sent import Sent
from generation.status import StatusMessages
from generation.submit import Submitter
from generation.track import RETRY_LATER, Track
from ingest.send_gate import ActingRefused, SendGate
from kie import KieClient, KieError
from messages.control import Tick
from messages.jobs import WakeJobs
from messages.roles import EpochRefused, Relinquish, Role, RoleChanged
from store import jobs, kie_account, kie_callbacks
from store.database import DB_ERRORS, Database
from store.fence import Fenced
from store.jobs import Failed, Job, TimedOut
from store.kie_callbacks import Callback
from telemetry import logs
from telemetry.metrics import METRICS

SWEEP_GAP = 0.2  # at most five sweeps a second, however often woken
PAGE = 500  # jobs (and callbacks) read per query
MAX_DRIVES = 64  # jobs driven at once; the rest wait for the next sweep
DRAIN_SECONDS = 3.0  # on a stop or a relinquish, how long running drives may take to finish
CREDITS_PAUSED_EVERY = 60.0  # while paused, how often KIE's balance is asked
CREDITS_EVERY = 600.0  # otherwise (the trt_kie_credits gauge)
RESUME_CREDITS = 100  # credits above which a pause after 402 ends


class KiePoller(Leased, Actor):
    capacity: ClassVar[int] = 64  # a burst of confirmations: each WakeJobs(job_id) is a job driven at once
    overflow: ClassVar[Overflow] = Overflow.DROP_NEWEST  # WakeJobs coalesce; a dropped one waits for the sweep
    default_deadline: ClassVar[float] = 5.0
    stop_deadline: float = DRAIN_SECONDS + 5.0

    def __init__(self, mailbox: Mailbox, settings: Settings, database: Database, bot: Bot, kie: KieClient,
                 catalog: Catalog, lock_keeper: Mailbox, *, sweep_interval: float = 1.0,
                 credits_every: float = CREDITS_PAUSED_EVERY, resume_credits: int = RESUME_CREDITS,
                 sent: Sent | None = None) -> None:
        super().__init__(mailbox)
        self.settings = settings
        self.database = database
        self.bot = bot
        self.kie = kie
        self.lock_keeper = lock_keeper
        self.sweep_interval = sweep_interval
        self.credits_every = credits_every
        self.resume_credits = resume_credits
        bot.session.middleware(SendGate(self.may_act))  # after the limiter's waits: checked right before the wire
        self.bot_id = settings.bot_id
        self._init_lease()
        self.ctx = JobContext(settings, database, bot, kie, catalog, self.may_act, lambda: self.epoch)
        self.status = StatusMessages(self.ctx)
        self.deliverer = Deliverer(self.ctx, self.status)
        self.follower = Follower(self.ctx, self.deliverer)
        self.submitter = Submitter(self.ctx, Inputs(self.ctx), self.deliverer)
        self.wanted = asyncio.Event()
        self.driver: asyncio.Task[None] | None = None
        self.side: asyncio.Task[None] | None = None  # the credit balance check
        self.drives: dict[int, asyncio.Task[None]] = {}
        self.draining = False
        self.deferred: set[int] = set()  # jobs in a drive when a callback for them was seen
        self.tracks: dict[int, Track] = {}
        self.sent = sent if sent is not None else Sent()  # the process's, for every incarnation (_unsent)
        self.by_state: dict[str, int] = {}
        self.oldest_running = 0.0
        self.last_sweep: float | None = None
        self.sweep_failing_since: float | None = None
        self.last_error: str | None = None

    # -- lifecycle -----------------------------------------------------------------------------

    async def on_start(self) -> None:
        self.spawn(self._watch_lease(), "lease-watch")
        ask_for_role(self.lock_keeper)  # the answer comes as a RoleChanged; until then we do nothing
        self.every(self.sweep_interval, Tick("sweep"))

    async def on_stop(self) -> None:
        await self._drain(DRAIN_SECONDS)
        await self._stop_driving("stopping")
        await self.bot.session.close()
        await self.kie.close()

    @handles(RoleChanged, deadline=5.0)
    async def role_changed(self, msg: RoleChanged) -> None:
        step = self._take_role(msg)
        if step.stop and self.driver is not None:
            await self._stop_driving(step.stop)
        if step.start and self.driver is None:
            self._start_driving()

    @handles(Relinquish, deadline=DRAIN_SECONDS + 3.0)
    async def relinquish(self, msg: Relinquish) -> bool:
        """lock_keeper is about to let the lock go: start nothing new, let running steps end within
        the lease (a step cut short is safe, only slower: its intent is committed), then stop."""
        if self.role is Role.ACTIVE and msg.epoch == self.epoch and self.driver is not None:
            await self._drain(min(DRAIN_SECONDS, self.lease_until - time.monotonic() - 0.5))
            await self._stop_driving(f"relinquished epoch {msg.epoch}")
        self._give_up(msg.epoch)
        return True

    @handles(EpochRefused, deadline=5.0)
    async def epoch_refused(self, msg: EpochRefused) -> None:
        """The fence says another instance leads: stop at once; lock_keeper will say so too."""
        if self.role is Role.ACTIVE and msg.epoch == self.epoch:
            self.acting.clear()
            await self._stop_driving(f"fenced epoch {msg.epoch}")
            ask_for_role(self.lock_keeper)

    @handles(WakeJobs, deadline=1.0)
    async def wake(self, msg: WakeJobs) -> None:
        if msg.job_id is None:
            self.wanted.set()
        elif self.driver is not None and not self.draining:
            confirmed = msg.job if isinstance(msg.job, Job) else None
            if confirmed is not None and self._fresh(msg.job_id, confirmed):
                self._drive_new(confirmed, msg.slot)  # no read to wait for: its drive starts now
            else:
                self.spawn(self._drive_now(msg.job_id), f"new-job-{msg.job_id}")

    def _fresh(self, job_id: int, confirmed: Job) -> bool:
        """`confirmed`, the row its Confirm committed, is the job's state when it was written in
        this epoch and no step of this epoch has touched it (every step makes its Track first, and
        a Track stays until its job is delivered; only this process writes in this epoch), so it
        needs no read. The wizard may have recorded the status message since: the first step's
        mark_submitting (or mark_submitted) returns the row with it. A job made 'submitting' whose
        createTask a step has begun to send (_unsent) is read again, whatever its Track."""
        return confirmed.id == job_id and confirmed.epoch == self.epoch and job_id not in self.tracks \
            and job_id not in self.sent

    async def _drive_now(self, job_id: int) -> None:
        """A job just confirmed that is not fresh (a sweep got there first, a new epoch): its row
        is read, then it is driven without waiting for a sweep."""
        try:
            job = await jobs.job(self.database, job_id)
        except DB_ERRORS:
            self.wanted.set()  # the sweep finds it
            return
        if job is not None:
            self._drive_new(job)

    def _drive_new(self, job: Job, slot: float | None = None) -> None:
        """Drive a job just confirmed without waiting for a sweep: Confirm -> createTask is what
        the user waits on, and a sweep reads every unfinished job and runs at most every
        SWEEP_GAP. Synchronous, so a fresh job's drive is one task away from its Confirm's wake-up
        (in a burst of presses every hop through the loop waits behind every other ready task).
        `slot`: the createTask slot its Confirm took (sql/025), for its drive's request."""
        if (job.bot_id != self.bot_id or job.delivered_at is not None or self.driver is None
                or self.draining or not self.may_act() or job.id in self.drives or len(self.drives) >= MAX_DRIVES):
            return  # another drive has it, or the sweep will (a full house, a lease running out)
        track = self.tracks.setdefault(job.id, Track())
        if track.next_at > time.monotonic():
            return
        self.drives[job.id] = self.spawn(self._drive(job, track, [], slot), f"job-{job.id}")

    async def on_tick(self, msg: Tick) -> None:
        if msg.name == "sweep":
            self.wanted.set()

    def _lease_expired_extra(self) -> dict[str, object]:
        return {"driving": len(self.drives)}

    def _start_driving(self) -> None:
        self.draining = False
        self.tracks.clear()  # a new epoch: anything may have happened meanwhile, the rows say what
        log.info("jobs_driving", extra={"epoch": self.epoch, "kie_key": self.ctx.has_key,
                                        "callbacks": self.settings.webhook_base_url is not None})
        self.driver = self.spawn(self._drive_loop(), "driver")
        self.wanted.set()

    async def _drain(self, timeout: float) -> None:
        """Start nothing new and give the running steps up to `timeout` to finish."""
        self.draining = True
        running = list(self.drives.values())
        if running and timeout > 0:
            _, late = await asyncio.wait(running, timeout=timeout)
            if late:
                log.warning("drain_incomplete", extra={"running": len(late), "timeout": round(timeout, 3)})

    async def _stop_driving(self, reason: str) -> None:
        tasks = [t for t in (self.driver, self.side, *self.drives.values()) if t is not None]
        self.driver, self.side = None, None
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks, timeout=2.0)
            log.info("jobs_stopped", extra={"reason": reason, "cancelled": len(tasks)})
        self.drives.clear()
        self.deferred.clear()
        for state in (*jobs.ACTIVE, "delivering"):
            METRICS.jobs.labels(state).set(0)
        METRICS.job_oldest_running.set(0)

    # -- the sweep -----------------------------------------------------------------------------

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
            except DB_ERRORS as exc:
                self.last_error = f"sweep: {describe(exc)}"[:300]
                if self.sweep_failing_since is None:
                    self.sweep_failing_since = time.monotonic()
                    log.warning("sweep_failed", extra={"error_text": describe(exc)})
            else:
                self.sweep_failing_since = None
            await asyncio.sleep(SWEEP_GAP)

    async def _sweep(self) -> None:
        began = time.monotonic()
        await self._read_account(began)
        callbacks = await kie_callbacks.pending_callbacks(self.database, self.bot_id, PAGE)
        found: list[Job] = []
        after = 0
        while True:
            page = await jobs.jobs_to_drive(self.database, self.bot_id, PAGE, after=after)
            found += page
            if len(page) < PAGE:
                break
            after = page[-1].id
        by_id = {job.id: job for job in found}
        by_task = {job.kie_task_id: job.id for job in found if job.kie_task_id}
        waiting: dict[int, list[Callback]] = {}
        stray: list[int] = []
        for callback in callbacks:
            job_id = callback.job_id if callback.job_id in by_id else by_task.get(callback.task_id or "")
            if job_id is None:
                stray.append(callback.id)  # its job was told already, or is unknown here: nothing to apply
            else:
                waiting.setdefault(job_id, []).append(callback)
        if stray:
            await kie_callbacks.mark_callbacks_applied(self.database, stray)
        self._observe(found)
        self.last_sweep = time.monotonic()
        # many jobs at once: each status message is edited less often, so edits stay a small share
        # of what Telegram lets the bot send
        self.status.pace(len(found))
        # the most overdue first (a job never looked at, at 0.0, first of all), those with news from
        # a callback before them: in id order the oldest jobs took every drive slot again and again
        # and the rest were never polled (bench.generation, 1,000 jobs: 717 never asked about)
        found.sort(key=lambda j: (j.id not in waiting, self.tracks[j.id].next_at if j.id in self.tracks else 0.0))
        for job in found:
            if self.draining or len(self.drives) >= MAX_DRIVES:
                break
            if job.id in self.drives:
                if job.id in waiting:
                    self.deferred.add(job.id)  # its callbacks are applied once the running step ends
                continue
            track = self.tracks.setdefault(job.id, Track())
            if track.ended_at >= began:
                continue  # read before its last step ended: the next sweep reads it afresh
            if (job.id not in waiting or track.terminal is not None) and track.next_at > time.monotonic():
                continue  # a delivery waiting out its backoff waits, callbacks or not
            self.drives[job.id] = self.spawn(self._drive(job, track, waiting.get(job.id, [])), f"job-{job.id}")
        for job_id in [j for j in self.tracks if j not in by_id and j not in self.drives]:
            del self.tracks[job_id]
        self.sent.forget_past(datetime.now(UTC))

    def _observe(self, found: list[Job]) -> None:
        """Jobs by state and the oldest unfinished one, for /health and the gauges."""
        counts = dict.fromkeys((*jobs.ACTIVE, "delivering"), 0)
        now = datetime.now(UTC)
        oldest = 0.0
        for job in found:
            if job.finished:
                counts["delivering"] += 1
            else:
                counts[job.state] = counts.get(job.state, 0) + 1
                oldest = max(oldest, (now - job.created_at).total_seconds())
        for state, count in counts.items():
            METRICS.jobs.labels(state).set(count)
        METRICS.job_oldest_running.set(oldest)
        self.by_state, self.oldest_running = counts, oldest

    async def _read_account(self, now: float) -> None:
        """Paused or not (another leader may have paused), and a credit check when one is due."""
        account = await kie_account.get(self.database, self.bot_id)
        self.ctx.paused = account.paused
        METRICS.generations_paused.set(1 if self.ctx.paused else 0)
        if self.ctx.credits is None and account.credits is not None:
            self.ctx.credits = account.credits
            METRICS.kie_credits.set(account.credits)
        every = self.credits_every if self.ctx.paused else CREDITS_EVERY
        if self.ctx.has_key and now - self.ctx.credits_checked >= every and (self.side is None or self.side.done()):
            self.ctx.credits_checked = now
            self.side = self.spawn(self._check_credits(), "credits")

    async def _check_credits(self) -> None:
        """KIE's balance for the gauge, and the end of a pause once it is back above the threshold."""
        try:
            credits = await self.ctx.kie_call("credits", lambda: self.kie.credits(timeout=10.0))
            self.ctx.credits = int(credits)
            METRICS.kie_credits.set(self.ctx.credits)
            await kie_account.record_credits(self.database, self.ctx.name, self.epoch, self.bot_id, self.ctx.credits)
            if self.ctx.paused and self.ctx.credits > self.resume_credits:
                if await kie_account.resume(self.database, self.ctx.name, self.epoch, self.bot_id):
                    log.warning("generations_resumed", extra={"credits": self.ctx.credits})
                self.ctx.paused = False
                METRICS.generations_paused.set(0)
        except (KieError, ActingRefused) as exc:
            log.info("credits_check_failed", extra={"error_text": describe(exc)})
        except Fenced:
            self.mailbox.tell_nowait(EpochRefused(self.epoch))
        except DB_ERRORS as exc:
            log.info("credits_not_recorded", extra={"error_text": describe(exc)})

    # -- one job's step ------------------------------------------------------------------------

    async def _drive(self, job: Job, track: Track, callbacks: list[Callback], slot: float | None = None) -> None:
        token = logs.correlation_id.set(f"j{job.id}")
        try:
            await self._step(job, track, callbacks, slot)
        except ActingRefused:
            pass  # the lease ran out meanwhile: the step waits for the next lease, here or elsewhere
        except Fenced:
            self.mailbox.tell_nowait(EpochRefused(self.epoch))
        except DB_ERRORS as exc:
            track.next_at = time.monotonic() + RETRY_LATER
            self.last_error = f"job {job.id}: {describe(exc)}"[:300]
        except Exception as exc:  # a bug in one job's step must not stop every other job
            track.next_at = time.monotonic() + 30.0
            self.last_error = f"job {job.id}: {describe(exc)}"[:300]
            log.exception("job_step_failed", extra={"job_id": job.id, "state": job.state})
            if job.finished or track.terminal is not None:  # delivering: every attempt counts, whatever failed
                await self._delivery_failed(job, track, describe(exc))
        finally:
            logs.correlation_id.reset(token)
            track.ended_at = time.monotonic()
            self.drives.pop(job.id, None)
            if job.id in self.deferred:
                self.deferred.discard(job.id)
                self.wanted.set()

    async def _delivery_failed(self, job: Job, track: Track, why: str) -> None:
        """A delivery attempt ended in an exception nobody expected: counted like any failed
        attempt, and past the bound what was sent stands (money is never held for ever)."""
        model = self.ctx.model(job)
        self.deliverer.failed_attempt(job, track, why)
        if self.deliverer.spent(job, track, model) is None:
            return
        try:
            await self.deliverer.give_up(job, track, model, why)
        except Fenced:
            self.mailbox.tell_nowait(EpochRefused(self.epoch))
        except (ActingRefused, *DB_ERRORS):
            pass  # the next step (here or at the next leader) gives up again
        except Exception:
            log.exception("delivery_give_up_failed", extra={"job_id": job.id})

    def _overdue(self, job: Job, model: Model | None) -> bool:
        limit = self.ctx.timeout_of(model)
        return (datetime.now(UTC) - job.created_at).total_seconds() > limit

    async def _step(self, job: Job, track: Track, callbacks: list[Callback], slot: float | None) -> None:
        model = self.ctx.model(job)
        acted: list[int] = []
        for callback in callbacks:  # wake-ups: only recordInfo's answer is acted on (generation.follow)
            job, done = await self.follower.apply_callback(job, track, callback)
            if done:
                acted.append(callback.id)
        await self._advance(job, track, model, slot)
        if acted:  # one KIE could not be asked about yet stays for a later step
            await kie_callbacks.mark_callbacks_applied(self.database, acted)

    async def _advance(self, job: Job, track: Track, model: Model | None, slot: float | None = None) -> None:
        if job.finished:
            await self.deliverer.tell(job, track, model)
            return
        if track.terminal is not None:
            await self.follower.conclude(job, track, model, track.terminal)
            return
        overdue = self._overdue(job, model)
        if job.state == "created":
            if overdue:
                await self.deliverer.end(job, track, model, Failed("kie_unavailable") if job.attempts else TimedOut())
                return
            job = await self.submitter.submit(job, track, model)
        elif job.state == "submitting":
            if overdue:  # no callback showed the task of an ambiguous createTask: released, a possible orphan
                await self.submitter.release_orphan(job, track, model)
                return
            # its Confirm committed the intent: this epoch sends it, once; claimed only within the lease
            # (send() awaits nothing before its KIE call checks the lease again)
            if self.may_act() and self._unsent(job, model):
                job = await self.submitter.send(job, track, model, slot)
        elif time.monotonic() >= track.next_poll or overdue:
            job = await self.follower.poll(job, track, model, overdue)
        if job.finished:
            return
        await self.status.progress(job, track, model)
        self._schedule(job, track)

    def _unsent(self, job: Job, model: Model | None) -> bool:
        """Whether `job` is one its Confirm made 'submitting' in this epoch (sql/025) whose
        createTask nobody in this process has begun to send; if so that is claimed now, before
        anything is awaited, so it is sent once (generation/sent.py). A claim stays until the
        job's deadline has passed (plus a minute): _advance releases an overdue 'submitting' job
        before it asks this."""
        if job.state != "submitting" or job.intent_epoch != self.epoch:
            return False
        return self.sent.claim(self.epoch, job.id, job.created_at + timedelta(seconds=self.ctx.timeout_of(model) + 60))

    def _schedule(self, job: Job, track: Track) -> None:
        """When the job needs this process again: its next poll, its next status edit, or a look
        at its deadline; never sooner than a submit backoff already set."""
        now = time.monotonic()
        wake = now + 10.0
        if job.state in ("submitted", "running"):
            wake = min(wake, track.next_poll)
        if job.status_message_id is not None and not track.no_status:
            wake = min(wake, track.last_edit + self.status.edit_gap)
        if job.state != "created" or track.next_at <= now:  # a created one keeps its submit backoff
            track.next_at = wake

    # -- health --------------------------------------------------------------------------------

    def health(self) -> dict[str, Any]:
        """The `jobs` section of /health; a sweep failing for a while is a problem (warn)."""
        now = time.monotonic()
        problems = []
        if self.driver is not None and self.sweep_failing_since is not None and \
                now - self.sweep_failing_since > 30:
            problems.append(f"jobs have not been swept for {now - self.sweep_failing_since:.0f}s: {self.last_error}")
        return {
            "driving": self.driver is not None,
            "acting": self.acting.is_set(),
            "role": self.role.value,
            "epoch": self.epoch,
            "kie": "ok" if self.ctx.has_key else "no KIE key: new jobs fail with an apology",
            "callbacks": "on" if self.settings.webhook_base_url else "off (no WEBHOOK_BASE_URL): polling only",
            "paused": self.ctx.paused,
            "kie_credits": self.ctx.credits,
            "jobs": dict(self.by_state),
            "oldest_running_seconds": round(self.oldest_running, 1),
            "in_flight": len(self.drives),
            "last_sweep_age_seconds": None if self.last_sweep is None else round(now - self.last_sweep, 3),
            "counts": dict(self.ctx.counts),
            "last_error": self.last_error,
            "last_kie_error": self.ctx.last_kie_error,
            "problems": problems,
        }


