"""createTask for a 'created' job, and what its failure means.

KIE has no idempotency key, so the intent `mark_submitting` is committed under the fence once
the limiter's slot is ours, right before the request leaves: a job found 'submitting' after a
crash or a lost answer is one KIE may really have, and no retry may create a second, billed one
(its callback URL names the job, so the task shows itself through a callback that recordInfo
confirms, else the job ends at its deadline, released, and is counted as a possible orphan task
at KIE: trt_kie_orphan_tasks_total, the `kie_orphan_task` warning, /health's "orphaned"). A
certain refusal puts the job back to 'created' for another try after a backoff, within the
model's timeout. 402 pauses generations until KIE's credit balance is back. A Confirm that held
a free slot of the limiter for a job whose input goes as it is commits that intent itself, with
the job (sql/025); send() then writes nothing before createTask leaves.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg

from actors.mailbox import describe
from catalog import payload
from catalog.model import Model
from generation.context import JobContext, log
from generation.deliver import Deliverer
from generation.errors import InputUnavailable, NotOurs, RetryLater
from generation.inputs import Inputs
from generation.speech import Pending
from generation.track import RETRY_LATER, Track, poll_interval
from kie import KieError, OutOfCredits
from store import jobs
from store.jobs import Failed, Job, TimedOut
from telemetry.metrics import METRICS

SUBMIT_BACKOFF = (2.0, 5.0, 10.0, 20.0, 30.0)  # after createTask was certainly refused, by attempts so far


class Submitter:
    def __init__(self, ctx: JobContext, inputs: Inputs, deliverer: Deliverer) -> None:
        self.ctx = ctx
        self.inputs = inputs
        self.deliverer = deliverer

    async def submit(self, job: Job, track: Track, model: Model | None) -> Job:
        ctx = self.ctx
        if (ended := await self._unable(job, track, model)) is not None:
            return ended
        try:
            task_input = await self.inputs.resolve(job, track)
        except InputUnavailable as exc:
            log.warning("job_input_unavailable", extra={"job_id": job.id, "error_text": str(exc)})
            return await self.deliverer.end(job, track, model, Failed(exc.reason))
        except Pending as exc:  # a typed text is being spoken first (generation.speech)
            track.next_at = time.monotonic() + exc.delay
            return job
        except (RetryLater, KieError) as exc:
            track.next_at = time.monotonic() + RETRY_LATER
            log.info("job_input_retry", extra={"job_id": job.id, "error_text": describe(exc)})
            return job
        ctx.must_act()
        committed: list[Job] = []

        async def intent() -> None:
            """The intent, committed once the limiter's slot is ours, right before createTask leaves:
            a job found 'submitting' after a crash is one KIE may really have."""
            ctx.must_act()
            step = await jobs.mark_submitting(ctx.database, ctx.name, ctx.epoch, job.id)
            if not step.changed:
                raise NotOurs(step.job)
            committed.append(step.job)

        return await self._create(job, track, model, task_input, committed, before_send=intent)

    async def send(self, job: Job, track: Track, model: Model | None, slot: float | None) -> Job:
        """createTask for a job its Confirm made in 'submitting' (sql/025): the intent is committed
        and the input needs nothing resolved, so nothing is written before the request leaves; and
        `slot`, when the Confirm's wake brought it, is the limiter's slot taken for the job before
        that commit, so nothing is waited for either. The caller sends it once (the jobs actor
        keeps, for its epoch, the jobs it has sent). An input that does need resolving after all
        goes back to 'created', nothing sent, for submit()."""
        ctx = self.ctx
        if (ended := await self._unable(job, track, model)) is not None:
            return ended
        try:
            task_input = payload.resolve(job.input, {})
        except KeyError:
            return (await jobs.submit_refused(ctx.database, ctx.name, ctx.epoch, job.id)).job
        return await self._create(job, track, model, task_input, [job], slot=slot)

    async def _unable(self, job: Job, track: Track, model: Model | None) -> Job | None:
        """The job ended, nothing sent, when no generation can go now (no KIE key, or paused after
        KIE's 402); None otherwise."""
        if not self.ctx.has_key:
            return await self.deliverer.end(job, track, model, Failed("no_kie_key"))
        if self.ctx.paused:
            return await self.deliverer.end(job, track, model, Failed("service_paused"))
        return None

    async def _create(self, job: Job, track: Track, model: Model | None, task_input: dict[str, Any],
                      committed: list[Job], *, before_send: Callable[[], Awaitable[None]] | None = None,
                      slot: float | None = None) -> Job:
        """createTask and what its answer means; `committed` holds the job once its intent stands."""
        ctx = self.ctx
        try:
            created = await ctx.kie_call("create_task", lambda: ctx.kie.create_task(
                job.model, task_input, ctx.settings.kie_callback_url(job.id), endpoint=job.endpoint,
                before_send=before_send, slot=slot,
                before_each=ctx.must_act))  # a retry may leave seconds later: the lease is checked again
        except NotOurs as exc:
            return exc.job
        except OutOfCredits:
            await ctx.pause()
            return await self.deliverer.end(committed[0] if committed else job, track, model,
                                            Failed("service_paused"))
        except KieError as exc:
            return await self._failed(committed[0] if committed else job, track, model, exc)
        job = committed[0]
        try:
            job = (await jobs.mark_submitted(ctx.database, ctx.name, ctx.epoch, job.id, created.task_id)).job
        except asyncpg.UniqueViolationError:
            log.error("task_id_taken", extra={"job_id": job.id, "task_id": created.task_id})
            return job
        ctx.counts["submitted"] += 1
        log.info("job_submitted", extra={"job_id": job.id, "task_id": created.task_id, "model": job.model,
                                         "attempts": job.attempts})
        track.next_poll = time.monotonic() + poll_interval(0)
        return job

    async def release_orphan(self, job: Job, track: Track, model: Model | None) -> Job:
        """A 'submitting' job at its deadline: createTask's answer was ambiguous and no task showed
        up (no callback adopted one), so the hold is released (TimedOut) and the task KIE may have
        made, and may bill, is counted as a possible orphan, once: only the finish that changed
        the job counts (a replayed step, or another leader's, finds it finished already)."""
        ctx = self.ctx
        step = await jobs.finish(ctx.database, ctx.name, ctx.epoch, job.id, TimedOut())
        if step.changed:
            ctx.counts["timed_out"] += 1
            ctx.counts["orphaned"] += 1
            METRICS.kie_orphan_tasks.inc()
            log.warning("kie_orphan_task", extra={"job_id": job.id, "model": job.model, "attempts": job.attempts})
        return await self.deliverer.end(step.job, track, model, TimedOut())  # finished already: tells the user

    async def _failed(self, job: Job, track: Track, model: Model | None, exc: KieError) -> Job:
        ctx = self.ctx
        if exc.ambiguous:
            # KIE may have the task (and bill it): never create another; its callback names the job
            if exc.task_id:
                try:
                    return (await jobs.mark_submitted(ctx.database, ctx.name, ctx.epoch, job.id, exc.task_id)).job
                except asyncpg.UniqueViolationError:
                    return job
            log.warning("job_submit_ambiguous", extra={"job_id": job.id, "error_kind": exc.kind,
                                                       "waits_for": "its callback, or its timeout"})
            return job
        if exc.retryable:  # certainly refused: nothing exists at KIE, try again after a pause
            step = await jobs.submit_refused(ctx.database, ctx.name, ctx.epoch, job.id)
            delay = SUBMIT_BACKOFF[min(max(job.attempts, 1), len(SUBMIT_BACKOFF)) - 1]
            track.next_at = time.monotonic() + delay
            log.info("job_submit_refused", extra={"job_id": job.id, "error_kind": exc.kind, "attempts": job.attempts,
                                                  "retry_in": delay})
            return step.job
        if exc.code is not None and (exc.code in (401, 433) or exc.code >= 500):  # nothing the user can change
            log.error("kie_refuses_us", extra={"job_id": job.id, "error_kind": exc.kind, "code": exc.code})
            return await self.deliverer.end(job, track, model, Failed("kie_unavailable"))
        # 422 and other refusals of the request, and ours before it left (InvalidRequest)
        return await self.deliverer.end(job, track, model, Failed("rejected"))
