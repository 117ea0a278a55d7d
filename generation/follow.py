"""Following a task at KIE: recordInfo polls on KIE's schedule, stored callbacks as wake-ups, and
KIE's verdict handed to delivery once the task is terminal.

Only recordInfo, asked with our key over TLS, is KIE's word: a callback's body may be anyone's
(the URL leaks, KIE's signature does not cover the body), so a callback only makes us ask now,
and a task it names is adopted only when recordInfo shows that task's request naming this job's
own callback URL.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime

import asyncpg

from catalog.model import Model
from generation.context import JobContext, log
from generation.deliver import Deliverer
from generation.results import text_results
from generation.track import Track, poll_interval
from kie import CallbackError, KieError, TaskCreated, TaskRecord, TaskState, parse_callback
from store import jobs
from store.jobs import Failed, Job, TimedOut
from store.kie_callbacks import Callback
from telemetry import tracing

RECORD_TIMEOUT = 15.0
ADOPT_RETRY = 10.0  # seconds before a callback's task is asked about again, when KIE could not answer
# A callback brings a job's next recordInfo forward, but never closer than this to the last one: a
# leaked job URL posted in a loop must not spend the key's recordInfo budget (10/s) of every job.
CALLBACK_GAP = 1.0
CONTENT_WORDS = ("nsfw", "sensitive", "policy", "content", "moderation", "safety", "prohibited", "inappropriate",
                 "violat")


def failure_of(record: TaskRecord) -> str:
    """KIE's fail code and message as one of our plain categories (never shown as they are)."""
    code = (record.fail_code or "").strip()
    text = (record.fail_msg or "").lower()
    if code in ("400", "422") or any(word in text for word in CONTENT_WORDS):
        return "content_refused"
    return "generation_failed"


class Follower:
    def __init__(self, ctx: JobContext, deliverer: Deliverer) -> None:
        self.ctx = ctx
        self.deliverer = deliverer
        # job id -> when a callback's task may be asked about next (CALLBACK_GAP, longer when KIE failed)
        self.ask_again: dict[int, float] = {}
        self.refused: dict[int, set[str]] = {}  # job id -> task ids a callback named that are not its task

    async def poll(self, job: Job, track: Track, model: Model | None, overdue: bool) -> Job:
        ctx = self.ctx
        started = job.submitted_at or job.created_at
        age = (datetime.now(UTC) - started).total_seconds()
        track.polled_at = time.monotonic()
        track.next_poll = track.polled_at + poll_interval(age)
        if job.kie_task_id is None or not ctx.has_key:
            return await self.deliverer.end(job, track, model, TimedOut()) if overdue else job
        task_id = job.kie_task_id
        floor = ctx.kie.poll_floor(TaskCreated(task_id, job.endpoint))
        track.next_poll = max(track.next_poll, track.polled_at + floor)
        try:
            record = await ctx.kie_call("record", lambda: ctx.kie.record(TaskCreated(task_id, job.endpoint),
                                                                         timeout=RECORD_TIMEOUT))
        except KieError as exc:
            log.info("job_poll_failed", extra={"job_id": job.id, "error_kind": exc.kind})
            return await self.deliverer.end(job, track, model, TimedOut()) if overdue else job
        job = await self.apply_record(job, track, record)
        if track.terminal is not None:
            return await self.conclude(job, track, model, track.terminal)
        if overdue:
            return await self.deliverer.end(job, track, model, TimedOut())
        return job

    async def apply_callback(self, job: Job, track: Track, callback: Callback) -> tuple[Job, bool]:
        """A stored callback: a wake-up, never a verdict. Its body (state, resultUrls, failCode,
        credits) is not believed: anyone holding a job's URL can post one, and KIE's signature
        covers only taskId and timestamp. For a job with a task id, it makes the next step ask
        recordInfo at once (our key, over TLS); for one without (its createTask answer was
        ambiguous, or what we took for a refusal was not), the task it names is adopted only if
        recordInfo confirms it and its request names this job's callback URL.

        The job as it now is, and True once the callback was acted on (the caller marks it
        applied); False keeps it for a later step, when KIE could not be asked now.
        """
        try:
            parsed = parse_callback(callback.body)  # its token (and signature) were checked at the door
        except CallbackError as exc:
            log.warning("callback_unreadable", extra={"callback_id": callback.id, "error_text": str(exc)})
            return job, True
        if job.finished or track.terminal is not None:
            self.ask_again.pop(job.id, None)
            return job, True  # KIE's own verdict is known already
        if job.kie_task_id is not None:
            # recordInfo now, or CALLBACK_GAP after the last time it was asked
            track.next_poll = min(track.next_poll, track.polled_at + CALLBACK_GAP)
            return job, True
        task_id = parsed.task_id
        if not self.ctx.has_key or task_id in self.refused.get(job.id, ()):
            return job, True  # asked about already: the same claim gets the same answer
        if time.monotonic() < self.ask_again.get(job.id, 0.0):
            return job, False
        if len(self.ask_again) > 10_000:
            self.ask_again.clear()
        self.ask_again[job.id] = time.monotonic() + CALLBACK_GAP
        try:
            record = await self.ctx.kie_call("record", lambda: self.ctx.kie.record(
                TaskCreated(task_id, job.endpoint), timeout=RECORD_TIMEOUT))
        except KieError as exc:
            if exc.retryable:  # KIE could not say now: the callback stays, asked about again later
                self.ask_again[job.id] = time.monotonic() + ADOPT_RETRY
                log.info("kie_callback_check_failed", extra={"job_id": job.id, "error_kind": exc.kind})
                return job, False
            return self._unconfirmed(job, task_id, exc.kind)
        ours = self.ctx.settings.kie_callback_url(job.id)
        if ours is None or record.task_id != task_id or record.callback_url != ours:
            return self._unconfirmed(job, task_id, "the task's request names another callback URL")
        was = job.state
        try:
            step = await jobs.mark_submitted(self.ctx.database, self.ctx.name, self.ctx.epoch, job.id, task_id)
        except asyncpg.UniqueViolationError:
            return self._unconfirmed(job, task_id, "the task id is another job's")
        if not step.changed:
            return step.job, True  # a task id was recorded meanwhile (createTask's answer, or another callback)
        if was == "created":
            log.warning("kie_refusal_misclassified", extra={"job_id": job.id, "task_id": task_id})
        else:
            log.warning("task_id_from_callback", extra={"job_id": job.id, "task_id": task_id})
        return await self.apply_record(step.job, track, record), True

    def _unconfirmed(self, job: Job, task_id: str, why: str) -> tuple[Job, bool]:
        if len(self.refused) > 10_000:
            self.refused.clear()
        self.refused.setdefault(job.id, set()).add(task_id)
        log.warning("kie_callback_unconfirmed", extra={"job_id": job.id, "task_id": task_id, "why": why})
        return job, True

    async def apply_record(self, job: Job, track: Track, record: TaskRecord) -> Job:
        if record.task_id != job.kie_task_id:
            log.warning("record_of_another_task", extra={"job_id": job.id, "task_id": record.task_id})
            return job
        if record.terminal:
            if track.terminal is None:
                tracing.emit("kie_state", {"state": record.state.value, "task_id": record.task_id})
            track.terminal = record
            return job
        running = record.state is TaskState.GENERATING
        if record.stage is not None and running:
            track.stage = record.stage  # shown on the status message (status.progress); nothing is sent
        if track.kie_state is not record.state:
            tracing.emit("kie_state", {"state": record.state.value, "task_id": record.task_id})
        if track.kie_state is not record.state or (running and job.state != "running"):
            step = await jobs.record_poll(self.ctx.database, self.ctx.name, self.ctx.epoch, job.id, running=running)
            job = step.job
        track.kie_state = record.state
        return job

    async def conclude(self, job: Job, track: Track, model: Model | None, record: TaskRecord) -> Job:
        if record.succeeded:
            return await self.deliverer.deliver(job, track, model, record.result_urls, finish=True,
                                                items=record.items, task_id=record.task_id,
                                                words=text_results(record.result_object))
        return await self.deliverer.end(job, track, model, Failed(failure_of(record)))
