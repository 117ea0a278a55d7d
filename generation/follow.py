"""Following a task at KIE: recordInfo polls on KIE's schedule, stored callbacks, and KIE's
verdict handed to delivery once the task is terminal."""

from __future__ import annotations

import time
from datetime import UTC, datetime

import asyncpg

from catalog.loader import Model
from generation.context import JobContext, log
from generation.deliver import Deliverer
from generation.track import Track, poll_interval
from kie import CallbackError, KieError, TaskRecord, TaskState, parse_callback
from store import jobs
from store.jobs import Callback, Failed, Job, TimedOut
from telemetry import tracing

RECORD_TIMEOUT = 15.0
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

    async def poll(self, job: Job, track: Track, model: Model | None, overdue: bool) -> Job:
        ctx = self.ctx
        started = job.submitted_at or job.created_at
        age = (datetime.now(UTC) - started).total_seconds()
        track.next_poll = time.monotonic() + poll_interval(age)
        if job.kie_task_id is None or not ctx.has_key:
            return await self.deliverer.end(job, track, model, TimedOut()) if overdue else job
        task_id = job.kie_task_id
        try:
            record = await ctx.kie_call("record", lambda: ctx.kie.record_info(task_id, timeout=RECORD_TIMEOUT))
        except KieError as exc:
            log.info("job_poll_failed", extra={"job_id": job.id, "error_kind": exc.kind})
            return await self.deliverer.end(job, track, model, TimedOut()) if overdue else job
        job = await self.apply_record(job, track, record)
        if track.terminal is not None:
            return await self.conclude(job, track, model, track.terminal)
        if overdue:
            return await self.deliverer.end(job, track, model, TimedOut())
        return job

    async def apply_callback(self, job: Job, track: Track, callback: Callback) -> Job:
        """A stored callback, applied like a poll's answer. One for a job whose createTask answer
        was lost also records the task id it names."""
        ctx = self.ctx
        try:
            parsed = parse_callback(callback.body)  # its signature and freshness were checked at the door
        except CallbackError as exc:
            log.warning("callback_unreadable", extra={"callback_id": callback.id, "error_text": str(exc)})
            return job
        if parsed.remained_credits is not None:
            ctx.saw_credits(parsed.remained_credits)
        if job.finished:
            return job
        record = parsed.record
        if job.kie_task_id is None:
            try:
                step = await jobs.mark_submitted(ctx.database, ctx.name, ctx.epoch, job.id, record.task_id)
            except asyncpg.UniqueViolationError:
                log.warning("callback_task_of_another_job", extra={"job_id": job.id, "task_id": record.task_id})
                return job
            if step.changed:
                log.warning("task_id_from_callback", extra={"job_id": job.id, "task_id": record.task_id})
            job = step.job
        return await self.apply_record(job, track, record)

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
        if track.kie_state is not record.state:
            tracing.emit("kie_state", {"state": record.state.value, "task_id": record.task_id})
        if track.kie_state is not record.state or (running and job.state != "running"):
            step = await jobs.record_poll(self.ctx.database, self.ctx.name, self.ctx.epoch, job.id, running=running)
            job = step.job
        track.kie_state = record.state
        return job

    async def conclude(self, job: Job, track: Track, model: Model | None, record: TaskRecord) -> Job:
        if record.succeeded:
            return await self.deliverer.deliver(job, track, model, record.result_urls, finish=True)
        return await self.deliverer.end(job, track, model, Failed(failure_of(record)))
