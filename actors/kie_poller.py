"""kie_poller: drives every job from Confirm to delivery. ACTIVE only.

The database is the truth and this actor is level-triggered over it: every sweep (a Wake from
the wizard or the callback route, else every second) reads every job the user has not been told
about, those an earlier leader left included, and the KIE callbacks stored by any instance, and
starts one drive per job that has something to do now (never two for one job). A drive takes
one step: submit a 'created' job (the user's files fetched through the Bot API and uploaded to
KIE, then the intent `mark_submitting` committed under the fence before createTask leaves),
apply a callback or poll recordInfo on KIE's schedule (every 2-3 s for the first 30 s, 5-10 s
to 2 min, 15-30 s after), edit the status message (at most every 5 s), or end the job:

* success: the result is downloaded (50 MB at most), sent as the model's kind (a photo also as
  the original file), and only then finished (captured) and marked delivered in one fenced
  transaction: a result is sent twice only if the process dies between Telegram's answer and
  that commit;
* failure, timeout, a refusal: finished first (released), then the user is told in plain words
  and the job marked delivered, so nobody is told twice but after such a crash.

A createTask whose answer was lost (a timeout, a dropped connection) leaves the job 'submitting':
KIE may have the task, and no retry may create a second, billed one; the callback URL names the
job, so the callback records its task id, else the job times out with an apology. A job found
'submitting' after a crash is the same case. A certain refusal (429, 5xx, our limiter) puts the
job back to 'created' for another try after a backoff, within the model's timeout. 402 pauses
generations (store.kie_account) until KIE's credit balance is back.

It acts only within the lease lock_keeper grants: every KIE call and every Telegram request (a
send gate on its own bot) is checked against it right before it leaves, and every write is
fenced by the epoch. Going PASSIVE stops everything at once; the next leader reads the same rows.
"""

from __future__ import annotations

import asyncio
import functools
import mimetypes
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, ClassVar, TypeVar
from urllib.parse import urlsplit

import aiohttp
import asyncpg
from aiogram import Bot
from aiogram.exceptions import (
    TelegramAPIError,
    TelegramBadRequest,
    TelegramForbiddenError,
    TelegramNetworkError,
)
from aiogram.types import BufferedInputFile, InlineKeyboardMarkup

from actors.actor import Actor, handles
from actors.mailbox import Mailbox, Overflow, describe
from actors.roles import Leased, ask_for_role
from bot import delivery_texts as texts
from catalog import payload
from catalog.loader import Catalog, Model
from config import Settings
from ingest.send_gate import ActingRefused, SendGate
from kie import CallbackError, KieClient, KieError, OutOfCredits, TaskRecord, TaskState, TooLarge, parse_callback
from messages.control import Tick
from messages.jobs import WakeJobs
from messages.roles import EpochRefused, Relinquish, Role, RoleChanged
from store import accounts, jobs, kie_account
from store.database import DB_ERRORS, Database
from store.fence import Fenced
from store.jobs import Callback, Failed, Job, Outcome, Succeeded, TimedOut
from store.leader import lock_name
from telemetry import logs, tracing
from telemetry.metrics import METRICS

log = logs.get("kie_poller")
T = TypeVar("T")

SWEEP_GAP = 0.2  # at most five sweeps a second, however often woken
PAGE = 500  # jobs (and callbacks) read per query
MAX_DRIVES = 64  # jobs driven at once; the rest wait for the next sweep
HEAVY = 4  # file transfers at once (each up to RESULT_MAX_BYTES in memory)
DRAIN_SECONDS = 3.0  # on a stop or a relinquish, how long running drives may take to finish
INPUT_MAX_BYTES = 20 * 1024 * 1024  # what the Bot API lets a bot download
RESULT_MAX_BYTES = 50 * 1024 * 1024  # what the Bot API lets a bot upload; larger results go as a link
PHOTO_MAX_BYTES = 10 * 1024 * 1024  # sendPhoto's limit; a larger picture goes as a file only
MAX_RESULTS = 10  # result files sent for one job
SEND_TIMEOUT = 120  # seconds for one upload of a result to Telegram
DOWNLOAD_TIMEOUT = 120.0
RECORD_TIMEOUT = 15.0
EDIT_GAP = 5.0  # seconds between two edits of one status message, at least
EDITS_PER_SECOND = 10.0  # status edits of all jobs together, at most: Telegram allows ~30 sends/s for the bot
USUAL_TTL = 300.0  # how long a model's usual duration is reused before it is read again
CREDITS_PAUSED_EVERY = 60.0  # while paused, how often KIE's balance is asked
CREDITS_EVERY = 600.0  # otherwise (the trt_kie_credits gauge)
RESUME_CREDITS = 100  # credits above which a pause after 402 ends
DELIVERY_TRIES = 5  # failed attempts to send a result or an apology before giving up
SUBMIT_BACKOFF = (2.0, 5.0, 10.0, 20.0, 30.0)  # after createTask was certainly refused, by attempts so far
RETRY_LATER = 5.0  # after a transient failure of anything else
DEFAULT_TIMEOUT = 900  # seconds, for a job whose model left the catalog
CONTENT_WORDS = ("nsfw", "sensitive", "policy", "content", "moderation", "safety", "prohibited", "inappropriate",
                 "violat")


class InputUnavailable(Exception):
    """A file the user sent cannot be had (gone, too large, an earlier job without a task)."""


class RetryLater(Exception):
    """A transient failure: the same step is tried again at a later sweep."""


class DeliveryFailed(Exception):
    """The result cannot reach the user (its file is gone, Telegram refuses it for good)."""


@dataclass
class Track:
    """What this process remembers of a job between drives; all of it may be lost (a restart, a
    new leader): the rows say what matters, this only paces the work."""

    next_at: float = 0.0  # time.monotonic() when the job needs a look again
    next_poll: float = 0.0
    last_edit: float = float("-inf")
    last_text: str | None = None
    no_status: bool = False  # the status message cannot be edited (deleted, chat gone)
    failures: int = 0  # failed attempts to deliver (or to apologise)
    kie_state: TaskState | None = None
    terminal: TaskRecord | None = None  # how KIE ended it, when seen and not yet delivered
    uploads: dict[str, str] = field(default_factory=dict)  # Telegram file_id -> KIE upload URL
    ended_at: float = float("-inf")  # when its last drive ended: a sweep read before that is stale for it


def poll_interval(age: float) -> float:
    """KIE's guidance: every 2-3 s for the first 30 s, 5-10 s to 2 min, 15-30 s after (jittered)."""
    base = 2.5 if age < 30 else 7.5 if age < 120 else 20.0
    return base * random.uniform(0.85, 1.15)


def failure_of(record: TaskRecord) -> str:
    """KIE's fail code and message as one of our plain categories (never shown as they are)."""
    code = (record.fail_code or "").strip()
    text = (record.fail_msg or "").lower()
    if code in ("400", "422") or any(word in text for word in CONTENT_WORDS):
        return "content_refused"
    return "generation_failed"


def shown_elapsed(seconds: float) -> float:
    """Elapsed time rounded down to what a status line shows: a new figure every 5 s for the first
    minute, every 15 s to five minutes, every 30 s after (so edits stay few on long videos)."""
    step = 5 if seconds < 60 else 15 if seconds < 300 else 30
    return float(int(seconds) // step * step)


class _NotOurs(Exception):
    """mark_submitting changed nothing: another drive or an earlier leader moved the job on."""

    def __init__(self, job: Job) -> None:
        super().__init__(f"job {job.id} is {job.state}")
        self.job = job


class KiePoller(Leased, Actor):
    capacity: ClassVar[int] = 8
    overflow: ClassVar[Overflow] = Overflow.DROP_NEWEST  # WakeJobs coalesce
    default_deadline: ClassVar[float] = 5.0
    stop_deadline: float = DRAIN_SECONDS + 5.0

    def __init__(self, mailbox: Mailbox, settings: Settings, database: Database, bot: Bot, kie: KieClient,
                 catalog: Catalog, lock_keeper: Mailbox, *, sweep_interval: float = 1.0,
                 credits_every: float = CREDITS_PAUSED_EVERY, resume_credits: int = RESUME_CREDITS) -> None:
        super().__init__(mailbox)
        self.settings = settings
        self.database = database
        self.bot = bot
        self.kie = kie
        self.catalog = catalog
        self.lock_keeper = lock_keeper
        self.sweep_interval = sweep_interval
        self.credits_every = credits_every
        self.resume_credits = resume_credits
        bot.session.middleware(SendGate(self.may_act))  # after the limiter's waits: checked right before the wire
        self.bot_id = settings.bot_id
        self.name_ = lock_name(settings.bot_id)
        self.has_key = bool(settings.kie_api_key)
        self._init_lease()
        self.wanted = asyncio.Event()
        self.driver: asyncio.Task[None] | None = None
        self.side: asyncio.Task[None] | None = None  # the credit balance check
        self.drives: dict[int, asyncio.Task[None]] = {}
        self.draining = False
        self.deferred: set[int] = set()  # jobs in a drive when a callback for them was seen
        self.tracks: dict[int, Track] = {}
        self.heavy = asyncio.Semaphore(HEAVY)
        self.langs: dict[int, str] = {}
        self.usual: dict[str, tuple[float | None, float]] = {}
        self.paused = False
        self.credits: int | None = None
        self.credits_checked = float("-inf")
        self.by_state: dict[str, int] = {}
        self.oldest_running = 0.0
        self.last_sweep: float | None = None
        self.sweep_failing_since: float | None = None
        self.last_error: str | None = None
        self.last_kie_error: str | None = None
        self.edit_gap = EDIT_GAP
        self.counts = {"submitted": 0, "succeeded": 0, "failed": 0, "timed_out": 0, "told": 0}

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

    def _must_act(self) -> None:
        if not self.may_act():
            raise ActingRefused("not sent: this instance may not act now")

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
        self.wanted.set()

    async def on_tick(self, msg: Tick) -> None:
        if msg.name == "sweep":
            self.wanted.set()

    def _lease_expired_extra(self) -> dict[str, object]:
        return {"driving": len(self.drives)}

    def _start_driving(self) -> None:
        self.draining = False
        self.tracks.clear()  # a new epoch: anything may have happened meanwhile, the rows say what
        log.info("jobs_driving", extra={"epoch": self.epoch, "kie_key": self.has_key,
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
        callbacks = await jobs.pending_callbacks(self.database, self.bot_id, PAGE)
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
            await jobs.mark_callbacks_applied(self.database, stray)
        self._observe(found)
        self.last_sweep = time.monotonic()
        # many jobs at once: each status message is edited less often, so edits stay a small share
        # of what Telegram lets the bot send
        self.edit_gap = max(EDIT_GAP, len(found) / EDITS_PER_SECOND)
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
        self.paused = account.paused
        METRICS.generations_paused.set(1 if self.paused else 0)
        if self.credits is None and account.credits is not None:
            self.credits = account.credits
            METRICS.kie_credits.set(account.credits)
        every = self.credits_every if self.paused else CREDITS_EVERY
        if self.has_key and now - self.credits_checked >= every and (self.side is None or self.side.done()):
            self.credits_checked = now
            self.side = self.spawn(self._check_credits(), "credits")

    async def _check_credits(self) -> None:
        """KIE's balance for the gauge, and the end of a pause once it is back above the threshold."""
        try:
            credits = await self._kie("credits", lambda: self.kie.credits(timeout=10.0))
            self.credits = int(credits)
            METRICS.kie_credits.set(self.credits)
            await kie_account.record_credits(self.database, self.name_, self.epoch, self.bot_id, self.credits)
            if self.paused and self.credits > self.resume_credits:
                if await kie_account.resume(self.database, self.name_, self.epoch, self.bot_id):
                    log.warning("generations_resumed", extra={"credits": self.credits})
                self.paused = False
                METRICS.generations_paused.set(0)
        except (KieError, ActingRefused) as exc:
            log.info("credits_check_failed", extra={"error_text": describe(exc)})
        except Fenced:
            self.mailbox.tell_nowait(EpochRefused(self.epoch))
        except DB_ERRORS as exc:
            log.info("credits_not_recorded", extra={"error_text": describe(exc)})

    # -- one job's step ------------------------------------------------------------------------

    async def _drive(self, job: Job, track: Track, callbacks: list[Callback]) -> None:
        token = logs.correlation_id.set(f"j{job.id}")
        try:
            await self._step(job, track, callbacks)
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
        finally:
            logs.correlation_id.reset(token)
            track.ended_at = time.monotonic()
            self.drives.pop(job.id, None)
            if job.id in self.deferred:
                self.deferred.discard(job.id)
                self.wanted.set()

    def _model(self, job: Job) -> Model | None:
        return self.catalog.model(job.model) if job.model in self.catalog else None

    def _overdue(self, job: Job, model: Model | None) -> bool:
        limit = model.timeout_seconds if model is not None else DEFAULT_TIMEOUT
        return (datetime.now(UTC) - job.created_at).total_seconds() > limit

    async def _step(self, job: Job, track: Track, callbacks: list[Callback]) -> None:
        model = self._model(job)
        for callback in callbacks:
            job = await self._apply_callback(job, track, callback)
        await self._advance(job, track, model)
        # applied once their news is acted on: a result still to be sent keeps its callback, so a
        # new leader (which remembers nothing) learns it again even if KIE no longer answers polls
        if callbacks and track.terminal is None:
            await jobs.mark_callbacks_applied(self.database, [c.id for c in callbacks])

    async def _advance(self, job: Job, track: Track, model: Model | None) -> None:
        if job.finished:
            await self._tell(job, track, model)
            return
        if track.terminal is not None:
            await self._conclude(job, track, model, track.terminal)
            return
        overdue = self._overdue(job, model)
        if job.state == "created":
            if overdue:
                await self._end(job, track, model, Failed("kie_unavailable") if job.attempts else TimedOut())
                return
            job = await self._submit(job, track, model)
        elif job.state == "submitting":
            if overdue:  # KIE never called back about a createTask whose answer was lost
                await self._end(job, track, model, TimedOut())
                return
        elif time.monotonic() >= track.next_poll or overdue:
            job = await self._poll(job, track, model, overdue)
        if job.finished:
            return
        await self._edit_status(job, track, model)
        self._schedule(job, track)

    def _schedule(self, job: Job, track: Track) -> None:
        """When the job needs this process again: its next poll, its next status edit, or a look
        at its deadline; never sooner than a submit backoff already set."""
        now = time.monotonic()
        wake = now + 10.0
        if job.state in ("submitted", "running"):
            wake = min(wake, track.next_poll)
        if job.status_message_id is not None and not track.no_status:
            wake = min(wake, track.last_edit + self.edit_gap)
        if job.state != "created" or track.next_at <= now:  # a created one keeps its submit backoff
            track.next_at = wake

    # -- submit --------------------------------------------------------------------------------

    async def _submit(self, job: Job, track: Track, model: Model | None) -> Job:
        if not self.has_key:
            return await self._end(job, track, model, Failed("no_kie_key"))
        if self.paused:
            return await self._end(job, track, model, Failed("service_paused"))
        try:
            task_input = await self._resolve(job, track)
        except InputUnavailable as exc:
            log.warning("job_input_unavailable", extra={"job_id": job.id, "error_text": str(exc)})
            return await self._end(job, track, model, Failed("input_unavailable"))
        except (RetryLater, KieError) as exc:
            track.next_at = time.monotonic() + RETRY_LATER
            log.info("job_input_retry", extra={"job_id": job.id, "error_text": describe(exc)})
            return job
        self._must_act()
        committed: list[Job] = []

        async def intent() -> None:
            """The intent, committed once the limiter's slot is ours, right before createTask leaves:
            a job found 'submitting' after a crash is one KIE may really have."""
            self._must_act()
            step = await jobs.mark_submitting(self.database, self.name_, self.epoch, job.id)
            if not step.changed:
                raise _NotOurs(step.job)
            committed.append(step.job)

        try:
            created = await self._kie("create_task", lambda: self.kie.create_task(
                job.model, task_input, self.settings.kie_callback_url(job.id), before_send=intent))
        except _NotOurs as exc:
            return exc.job
        except OutOfCredits:
            await self._pause()
            return await self._end(committed[0] if committed else job, track, model, Failed("service_paused"))
        except KieError as exc:
            return await self._create_failed(committed[0] if committed else job, track, model, exc)
        job = committed[0]
        try:
            job = (await jobs.mark_submitted(self.database, self.name_, self.epoch, job.id, created.task_id)).job
        except asyncpg.UniqueViolationError:
            log.error("task_id_taken", extra={"job_id": job.id, "task_id": created.task_id})
            return job
        self.counts["submitted"] += 1
        log.info("job_submitted", extra={"job_id": job.id, "task_id": created.task_id, "model": job.model,
                                         "attempts": job.attempts})
        track.next_poll = time.monotonic() + poll_interval(0)
        return job

    async def _create_failed(self, job: Job, track: Track, model: Model | None, exc: KieError) -> Job:
        if exc.ambiguous:
            # KIE may have the task (and bill it): never create another; its callback names the job
            if exc.task_id:
                try:
                    return (await jobs.mark_submitted(self.database, self.name_, self.epoch, job.id,
                                                      exc.task_id)).job
                except asyncpg.UniqueViolationError:
                    return job
            log.warning("job_submit_ambiguous", extra={"job_id": job.id, "error_kind": exc.kind,
                                                       "waits_for": "its callback, or its timeout"})
            return job
        if exc.retryable:  # certainly refused: nothing exists at KIE, try again after a pause
            step = await jobs.submit_refused(self.database, self.name_, self.epoch, job.id)
            delay = SUBMIT_BACKOFF[min(max(job.attempts, 1), len(SUBMIT_BACKOFF)) - 1]
            track.next_at = time.monotonic() + delay
            log.info("job_submit_refused", extra={"job_id": job.id, "error_kind": exc.kind, "attempts": job.attempts,
                                                  "retry_in": delay})
            return step.job
        if exc.code is not None and (exc.code in (401, 433) or exc.code >= 500):  # nothing the user can change
            log.error("kie_refuses_us", extra={"job_id": job.id, "error_kind": exc.kind, "code": exc.code})
            return await self._end(job, track, model, Failed("kie_unavailable"))
        # 422 and other refusals of the request, and ours before it left (InvalidRequest)
        return await self._end(job, track, model, Failed("rejected"))

    async def _resolve(self, job: Job, track: Track) -> dict[str, Any]:
        """The input as KIE takes it: each file the user sent fetched from Telegram and uploaded
        to KIE (the Telegram URL, which holds the token, never leaves this process), each earlier
        job replaced by its task id."""
        for ref in payload.file_refs(job.input):
            file_id = ref["tg_file_id"]
            if file_id in track.uploads:
                continue
            async with self.heavy:
                data = await self._telegram_file(ref)
                name = f"job{job.id}-{len(track.uploads) + 1}{mimetypes.guess_extension(ref['mime']) or ''}"
                upload = await self._kie("upload", functools.partial(self.kie.upload, data, name, ref["mime"]))
            track.uploads[file_id] = upload.file_url
        task_ids: dict[int, str] = {}
        for other_id in payload.job_refs(job.input):
            other = await jobs.job(self.database, other_id)
            if other is None or other.bot_id != job.bot_id or other.user_id != job.user_id or not other.kie_task_id:
                raise InputUnavailable(f"job {other_id} has no task this user may use")
            task_ids[other_id] = other.kie_task_id
        try:
            return payload.resolve(job.input, track.uploads, task_ids)
        except KeyError as exc:
            raise InputUnavailable(f"an unresolved reference: {exc}") from None

    async def _telegram_file(self, ref: payload.FileRef) -> bytes:
        """A user's file through the Bot API, at most INPUT_MAX_BYTES. Errors never repeat the
        download URL: it holds the bot token."""
        if ref["bytes"] > INPUT_MAX_BYTES:
            raise InputUnavailable(f"{ref['bytes']} bytes, over the Bot API's download limit")
        try:
            info = await self.bot.get_file(ref["tg_file_id"])
        except TelegramBadRequest as exc:
            raise InputUnavailable(f"getFile refused: {exc.message}") from None
        except TelegramNetworkError as exc:
            raise RetryLater("getFile failed") from exc
        except TelegramAPIError as exc:
            raise RetryLater(f"getFile: {type(exc).__name__}") from None
        if not info.file_path or (info.file_size or 0) > INPUT_MAX_BYTES:
            raise InputUnavailable("the file is not downloadable through the Bot API")
        self._must_act()
        url = self.bot.session.api.file_url(self.bot.token, info.file_path)
        chunks: list[bytes] = []
        size = 0
        try:
            async with asyncio.timeout(60):
                async for chunk in self.bot.session.stream_content(url=url, timeout=60, chunk_size=65536,
                                                                   raise_for_status=True):
                    size += len(chunk)
                    if size > INPUT_MAX_BYTES:
                        raise InputUnavailable("the file grew past the download limit")
                    chunks.append(chunk)
        except aiohttp.ClientResponseError as exc:
            if 400 <= exc.status < 500:
                raise InputUnavailable(f"the file download answered HTTP {exc.status}") from None
            raise RetryLater(f"the file download answered HTTP {exc.status}") from None
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise RetryLater(f"the file download failed: {type(exc).__name__}") from None
        return b"".join(chunks)

    async def _pause(self) -> None:
        """KIE said 402: our credits are gone. New generations stop (the wizard reads the pause)."""
        if await kie_account.pause(self.database, self.name_, self.epoch, self.bot_id,
                                   "KIE answered 402: our KIE credits ran out"):
            log.error("generations_paused", extra={"reason": "KIE answered 402"})
        self.paused = True
        METRICS.generations_paused.set(1)
        self.credits_checked = time.monotonic()  # ask for the balance again in CREDITS_PAUSED_EVERY

    # -- poll and callbacks --------------------------------------------------------------------

    async def _poll(self, job: Job, track: Track, model: Model | None, overdue: bool) -> Job:
        started = job.submitted_at or job.created_at
        age = (datetime.now(UTC) - started).total_seconds()
        track.next_poll = time.monotonic() + poll_interval(age)
        if job.kie_task_id is None or not self.has_key:
            return await self._end(job, track, model, TimedOut()) if overdue else job
        task_id = job.kie_task_id
        try:
            record = await self._kie("record", lambda: self.kie.record_info(task_id, timeout=RECORD_TIMEOUT))
        except KieError as exc:
            log.info("job_poll_failed", extra={"job_id": job.id, "error_kind": exc.kind})
            return await self._end(job, track, model, TimedOut()) if overdue else job
        job = await self._apply_record(job, track, record)
        if track.terminal is not None:
            return await self._conclude(job, track, model, track.terminal)
        if overdue:
            return await self._end(job, track, model, TimedOut())
        return job

    async def _apply_callback(self, job: Job, track: Track, callback: Callback) -> Job:
        """A stored callback, applied like a poll's answer. One for a job whose createTask answer
        was lost also records the task id it names."""
        try:
            parsed = parse_callback(callback.body)  # its signature and freshness were checked at the door
        except CallbackError as exc:
            log.warning("callback_unreadable", extra={"callback_id": callback.id, "error_text": str(exc)})
            return job
        if parsed.remained_credits is not None:
            self.credits = parsed.remained_credits
            METRICS.kie_credits.set(parsed.remained_credits)
        if job.finished:
            return job
        record = parsed.record
        if job.kie_task_id is None:
            try:
                step = await jobs.mark_submitted(self.database, self.name_, self.epoch, job.id, record.task_id)
            except asyncpg.UniqueViolationError:
                log.warning("callback_task_of_another_job", extra={"job_id": job.id, "task_id": record.task_id})
                return job
            if step.changed:
                log.warning("task_id_from_callback", extra={"job_id": job.id, "task_id": record.task_id})
            job = step.job
        return await self._apply_record(job, track, record)

    async def _apply_record(self, job: Job, track: Track, record: TaskRecord) -> Job:
        if record.task_id != job.kie_task_id:
            log.warning("record_of_another_task", extra={"job_id": job.id, "task_id": record.task_id})
            return job
        if record.terminal:
            if track.terminal is None:
                tracing.emit("kie_state", {"state": record.state.value, "task_id": record.task_id})
            track.terminal = record
            return job
        running = record.state is TaskState.GENERATING
        if track.kie_state is not record.state:
            tracing.emit("kie_state", {"state": record.state.value, "task_id": record.task_id})
        if track.kie_state is not record.state or (running and job.state != "running"):
            step = await jobs.record_poll(self.database, self.name_, self.epoch, job.id, running=running)
            job = step.job
        track.kie_state = record.state
        return job

    async def _conclude(self, job: Job, track: Track, model: Model | None, record: TaskRecord) -> Job:
        if record.succeeded:
            return await self._deliver(job, track, model, record.result_urls, finish=True)
        return await self._end(job, track, model, Failed(failure_of(record)))

    # -- the end -------------------------------------------------------------------------------

    async def _end(self, job: Job, track: Track, model: Model | None, outcome: Outcome) -> Job:
        """A job without a result: finished first (its hold released), then the user is told."""
        step = await jobs.finish(self.database, self.name_, self.epoch, job.id, outcome)
        if step.changed:
            kind = "timed_out" if isinstance(outcome, TimedOut) else "failed"
            self.counts[kind] += 1
            log.warning("job_ended", extra={"job_id": job.id, "state": step.job.state, "failure": step.job.failure,
                                            "model": job.model})
        track.terminal = None
        return await self._tell(step.job, track, model)

    async def _tell(self, job: Job, track: Track, model: Model | None) -> Job:
        """A finished job the user has not been told about (this step's, or one a crash left)."""
        fresh = await jobs.job(self.database, job.id)
        if fresh is None or fresh.delivered_at is not None:
            return fresh or job
        job = fresh
        if job.state == "succeeded":  # finished before its result was sent (not by this code): send it now
            urls = (job.result or {}).get("urls") or []
            return await self._deliver(job, track, model, [u for u in urls if isinstance(u, str)], finish=False)
        lang = await self._lang(job.user_id)
        await self._final_status(job, track, lang, done=False)
        text = texts.failure(lang, job.failure or job.state, job.paid_with)
        try:
            await self.bot.send_message(job.chat_id, text, reply_markup=texts.menu_keyboard(lang))
        except TelegramForbiddenError:
            await accounts.set_blocked(self.database, self.bot_id, job.user_id, True)
        except TelegramBadRequest as exc:
            log.warning("apology_refused", extra={"job_id": job.id, "error_text": exc.message})
        except TelegramAPIError as exc:  # network, 5xx past the limiter's retries: try again later
            if track.failures + 1 < DELIVERY_TRIES:
                return self._try_later(job, track, f"apology: {type(exc).__name__}")
            log.error("apology_undeliverable", extra={"job_id": job.id, "error_text": type(exc).__name__})
        step = await jobs.mark_delivered(self.database, self.name_, self.epoch, job.id, None)
        if step.changed:
            self.counts["told"] += 1
            METRICS.deliveries.labels(job.state).inc()
        return step.job

    def _try_later(self, job: Job, track: Track, why: str) -> Job:
        track.failures += 1
        track.next_at = time.monotonic() + RETRY_LATER * track.failures
        log.warning("delivery_retry", extra={"job_id": job.id, "why": why, "failures": track.failures})
        return job

    async def _deliver(self, job: Job, track: Track, model: Model | None, urls: list[str], *, finish: bool) -> Job:
        """Send the result, then commit: finished (captured) and delivered in one transaction."""
        fresh = await jobs.job(self.database, job.id)
        if fresh is None or fresh.delivered_at is not None:
            return fresh or job  # told meanwhile (a stale read): never send twice
        job = fresh
        if finish and job.finished:  # ended otherwise meanwhile (timed out): that outcome stands
            track.terminal = None
            return await self._tell(job, track, model)
        if not urls:
            if finish:
                return await self._end(job, track, model, Failed("empty_result"))
            return await self._mark_told(job, None)
        lang = await self._lang(job.user_id)
        kind = model.output if model is not None else "document"
        title = model.title.get(lang) if model is not None else job.model
        first_caption = texts.caption(title, job.input.get("prompt") or job.input.get("text"))
        keyboard = texts.result_keyboard(lang, job.id)
        shown = urls[:MAX_RESULTS]
        sent: list[dict[str, Any]] = []
        try:
            await self._final_status(job, track, lang, done=True)
            async with self.heavy:
                for index, url in enumerate(shown):
                    last = index == len(shown) - 1
                    data = await self._download(url)
                    sent.append(await self._send_result(job, kind, data, url, first_caption if index == 0 else None,
                                                        keyboard if last else None, lang))
        except DeliveryFailed as exc:
            return await self._undeliverable(job, track, model, str(exc), finish=finish)
        except TelegramForbiddenError:
            await accounts.set_blocked(self.database, self.bot_id, job.user_id, True)
            return await self._undeliverable(job, track, model, "the user blocked the bot", finish=finish, told=True)
        except TelegramBadRequest as exc:
            return await self._undeliverable(job, track, model, f"Telegram refused: {exc.message}", finish=finish)
        except (TelegramAPIError, RetryLater) as exc:
            if track.failures + 1 >= DELIVERY_TRIES:
                return await self._undeliverable(job, track, model, f"{DELIVERY_TRIES} attempts failed",
                                                 finish=finish)
            return self._try_later(job, track, describe(exc))
        file_id = next((s["file_id"] for s in sent if s.get("file_id")), None)
        if not finish:
            return await self._mark_told(job, file_id)
        result = {"urls": urls, "kind": kind, "sent": sent}
        step = await jobs.finish(self.database, self.name_, self.epoch, job.id, Succeeded(result), delivered=True,
                                 file_id=file_id)
        track.terminal = None
        if step.changed:
            self.counts["succeeded"] += 1
            METRICS.deliveries.labels("succeeded").inc()
            log.info("job_delivered", extra={"job_id": job.id, "model": job.model, "results": len(sent),
                                             "file_id_kept": file_id is not None})
        elif step.job.state != "succeeded":  # ended otherwise between our read and our send: the user has it
            log.warning("result_sent_after_end", extra={"job_id": job.id, "state": step.job.state})
        return step.job

    async def _mark_told(self, job: Job, file_id: str | None) -> Job:
        step = await jobs.mark_delivered(self.database, self.name_, self.epoch, job.id, file_id)
        if step.changed:
            self.counts["told"] += 1
            METRICS.deliveries.labels(job.state).inc()
        return step.job

    async def _undeliverable(self, job: Job, track: Track, model: Model | None, why: str, *, finish: bool,
                             told: bool = False) -> Job:
        """The result cannot reach the user: released (when not captured yet) and apologised for."""
        log.error("result_undeliverable", extra={"job_id": job.id, "why": why})
        track.terminal = None
        if not finish:  # captured before this code ran; nothing more can be done than say so
            return await self._mark_told(job, None) if told else await self._apologise_captured(job)
        if told:  # nobody to tell: released, and marked told in the same transaction
            step = await jobs.finish(self.database, self.name_, self.epoch, job.id, Failed("delivery"), delivered=True)
            if step.changed:
                self.counts["failed"] += 1
            return step.job
        return await self._end(job, track, model, Failed("delivery"))

    async def _apologise_captured(self, job: Job) -> Job:
        lang = await self._lang(job.user_id)
        try:
            await self.bot.send_message(job.chat_id, texts.t(lang, "failed_temporary"),
                                        reply_markup=texts.menu_keyboard(lang))
        except (TelegramForbiddenError, TelegramBadRequest):
            pass
        return await self._mark_told(job, None)

    async def _download(self, url: str) -> bytes | None:
        """A result's bytes, or None when it is over RESULT_MAX_BYTES (it goes as a link)."""
        try:
            return await self._kie("download", lambda: self.kie.download(url, RESULT_MAX_BYTES,
                                                                          timeout=DOWNLOAD_TIMEOUT))
        except TooLarge:
            return None
        except KieError as exc:
            if exc.retryable:
                raise RetryLater(f"download: {exc.kind}") from None
            raise DeliveryFailed(f"download: {exc.kind}") from None

    async def _send_result(self, job: Job, kind: str, data: bytes | None, url: str, caption: str | None,
                           keyboard: InlineKeyboardMarkup | None, lang: str) -> dict[str, Any]:
        """One result file as the model's kind; a photo also as the original file (Telegram
        recompresses photos); a kind Telegram refuses goes as a file; too large, as a link."""
        chat = job.chat_id
        if data is None:
            text = (f"{caption}\n\n" if caption else "") + texts.t(lang, "result_link", url=url)
            await self.bot.send_message(chat, text, reply_markup=keyboard)
            return {"as": "link", "file_id": None}
        name = file_name(job, url, kind)
        if kind == "photo":
            photo_id = None
            if len(data) <= PHOTO_MAX_BYTES:
                try:
                    sent = await self.bot.send_photo(chat, BufferedInputFile(data, name), caption=caption,
                                                     request_timeout=SEND_TIMEOUT)
                    photo_id = sent.photo[-1].file_id if sent.photo else None
                    caption = None
                except TelegramBadRequest as exc:  # dimensions, format: the file alone still reaches them
                    log.info("photo_refused", extra={"job_id": job.id, "error_text": exc.message})
            sent = await self.bot.send_document(chat, BufferedInputFile(data, name), caption=caption,
                                                reply_markup=keyboard, request_timeout=SEND_TIMEOUT)
            document_id = sent.document.file_id if sent.document else None
            return {"as": "photo" if photo_id else "document", "file_id": photo_id or document_id,
                    "document_file_id": document_id}
        try:
            if kind == "video":
                sent = await self.bot.send_video(chat, BufferedInputFile(data, name), caption=caption,
                                                 reply_markup=keyboard, supports_streaming=True,
                                                 request_timeout=SEND_TIMEOUT)
                if sent.video is not None:
                    return {"as": "video", "file_id": sent.video.file_id}
            elif kind == "audio":
                sent = await self.bot.send_audio(chat, BufferedInputFile(data, name), caption=caption,
                                                 reply_markup=keyboard, request_timeout=SEND_TIMEOUT)
                if sent.audio is not None:
                    return {"as": "audio", "file_id": sent.audio.file_id}
        except TelegramBadRequest as exc:
            log.info("media_refused", extra={"job_id": job.id, "kind": kind, "error_text": exc.message})
        sent = await self.bot.send_document(chat, BufferedInputFile(data, name), caption=caption,
                                            reply_markup=keyboard, request_timeout=SEND_TIMEOUT)
        return {"as": "document", "file_id": sent.document.file_id if sent.document else None}

    # -- the status message ----------------------------------------------------------------------

    async def _edit_status(self, job: Job, track: Track, model: Model | None) -> None:
        """The job's status message, edited when what it says changes, at most every edit_gap."""
        if job.status_message_id is None or track.no_status:
            return
        now = time.monotonic()
        if now - track.last_edit < self.edit_gap:
            return
        lang = await self._lang(job.user_id)
        title = model.title.get(lang) if model is not None else job.model
        phase = "sending" if job.state in ("created", "submitting") else \
            "generating" if job.state == "running" else "queued"
        elapsed = shown_elapsed((datetime.now(UTC) - job.created_at).total_seconds())
        text = texts.status(lang, phase, title, elapsed, await self._usual(job.model))
        if text == track.last_text:
            return
        track.last_edit = now
        await self._edit(job, track, text)

    async def _final_status(self, job: Job, track: Track, lang: str, *, done: bool) -> None:
        if job.status_message_id is None or track.no_status:
            return
        if done:
            elapsed = (datetime.now(UTC) - job.created_at).total_seconds()
            text = texts.t(lang, "status_done", elapsed=texts.duration(elapsed, lang))
        else:
            text = texts.t(lang, "status_failed")
        await self._edit(job, track, text)
        track.no_status = True  # its last word

    async def _edit(self, job: Job, track: Track, text: str) -> None:
        """Best effort: "not modified" is harmless, a message gone stops the edits, the rest waits."""
        assert job.status_message_id is not None
        try:
            await self.bot.edit_message_text(text=text, chat_id=job.chat_id, message_id=job.status_message_id)
            track.last_text = text
        except TelegramBadRequest as exc:
            if "not modified" in exc.message:
                track.last_text = text
            else:
                track.no_status = True
        except TelegramForbiddenError:
            track.no_status = True
        except TelegramAPIError as exc:
            log.info("status_edit_failed", extra={"job_id": job.id, "error_text": type(exc).__name__})

    async def _usual(self, model: str) -> float | None:
        cached = self.usual.get(model)
        if cached is not None and time.monotonic() - cached[1] < USUAL_TTL:
            return cached[0]
        value = await jobs.usual_seconds(self.database, self.bot_id, model)
        self.usual[model] = (value, time.monotonic())
        return value

    async def _lang(self, user_id: int) -> str:
        lang = self.langs.get(user_id)
        if lang is None:
            user = await accounts.get_user(self.database, self.bot_id, user_id)
            lang = texts.lang_of_code(user.language if user is not None else None)
            if len(self.langs) > 10_000:
                self.langs.clear()
            self.langs[user_id] = lang
        return lang

    # -- KIE calls -----------------------------------------------------------------------------

    async def _kie(self, endpoint: str, call: Callable[[], Awaitable[T]]) -> T:
        """One KIE call, only within the lease, counted and timed by endpoint and outcome."""
        self._must_act()
        began = time.perf_counter()
        outcome = "ok"
        try:
            return await call()
        except KieError as exc:
            outcome = exc.kind
            self.last_kie_error = f"{endpoint}: {exc.kind}"
            raise
        except asyncio.CancelledError:
            outcome = "cancelled"
            raise
        finally:
            seconds = time.perf_counter() - began
            METRICS.kie_calls.labels(endpoint, outcome).inc()
            METRICS.kie_seconds.labels(endpoint).observe(seconds)
            tracing.emit(f"kie.{endpoint}", {"status": outcome, "ms": round(seconds * 1000, 1)})

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
            "kie": "ok" if self.has_key else "no KIE key: new jobs fail with an apology",
            "callbacks": "on" if self.settings.webhook_base_url else "off (no WEBHOOK_BASE_URL): polling only",
            "paused": self.paused,
            "kie_credits": self.credits,
            "jobs": dict(self.by_state),
            "oldest_running_seconds": round(self.oldest_running, 1),
            "in_flight": len(self.drives),
            "last_sweep_age_seconds": None if self.last_sweep is None else round(now - self.last_sweep, 3),
            "counts": dict(self.counts),
            "last_error": self.last_error,
            "last_kie_error": self.last_kie_error,
            "problems": problems,
        }


def file_name(job: Job, url: str, kind: str) -> str:
    """The name a result file carries in the chat: the job and the extension of its URL."""
    path = urlsplit(url).path
    dot = path.rfind(".")
    extension = path[dot:].lower() if dot > path.rfind("/") and len(path) - dot <= 6 else ""
    if not extension[1:].isalnum():
        extension = {"photo": ".png", "video": ".mp4", "audio": ".mp3"}.get(kind, "")
    return f"result-{job.id}{extension}"
