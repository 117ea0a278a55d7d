"""A typed text spoken first, in the same job: the speech task behind a Spoken audio field.

Why it exists: a talking avatar takes a voice recording, and a user may type the text instead
(bot/speak.py). The job then makes two KIE tasks: the speech model's (the text, the voice), and,
once that one has its audio, the avatar's own with audio_url = the speech's result URL. The job
stays 'created' until the speech is ready; only then does generation.submit commit the avatar's
intent and create its task as for any job.

Crash safety, the same rule as createTask everywhere (KIE has no idempotency key): each try's
intent is committed under the fence as a part of the job (store.job_parts.record_part, "speak:<field>:<n>")
once the limiter's slot is ours, right before the request leaves, and the task id it got as
"speak:<field>:task". A later step (a restart, another leader) follows that task and never
creates a second one. A try KIE certainly refused is marked "speak:<field>:<n>:refused" and
another try follows after a pause. A try whose outcome is unknown (an intent with neither a task
nor a refusal: the process died in between, or the answer was lost) ends the job released: the
speech task has no callback URL (a callback naming the job's own URL would be adopted as the
avatar's task), so nothing could ever show it, and waiting would only hold the money until the
deadline. A failed speech ends the job released, like any failed job.

The speech's audio is measured before the avatar gets it: the price counted its estimated seconds,
and KIE bills the avatar by the real ones. Speech a little longer than estimated is ours to
absorb; far longer (digits and abbreviations read out: "1000000" is seven characters and two
seconds), over SLACK times the estimate, or over the field's own limit, ends the job released
before the avatar's task exists ("speech_too_long").
"""

from __future__ import annotations

import mimetypes
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from catalog import payload
from catalog.model import SPEAK_KEY
from generation.context import JobContext, log
from generation.errors import InputUnavailable, NotOurs, RetryLater
from generation.follow import RECORD_TIMEOUT, failure_of
from generation.track import Track, poll_interval
from ingest.media_length import measure_seconds
from kie import KieError, OutOfCredits
from store import job_parts
from store.jobs import Job
from telemetry.metrics import METRICS

MAX_TRIES = 3  # speech createTasks KIE certainly refused before the job gives up
TRY_BACKOFF = (2.0, 5.0, 10.0)
SLACK = 1.5  # how much longer than its estimate a speech may play before the job ends released
ROUNDING = 1.0  # seconds: a clip's silence at its ends, and the estimate's whole seconds
SPEECH_MAX_BYTES = 20 * 1024 * 1024  # a speech of at most a minute is far smaller


class Pending(RetryLater):
    """The speech is not ready yet: the job is looked at again after `delay` seconds."""

    def __init__(self, message: str, delay: float) -> None:
        super().__init__(message)
        self.delay = delay


def part(field: str, *rest: object) -> str:
    return ":".join(("speak", field, *(str(r) for r in rest)))


class Speech:
    def __init__(self, ctx: JobContext) -> None:
        self.ctx = ctx

    async def urls(self, job: Job, track: Track) -> dict[str, str]:
        """The audio URL of each Spoken field of the job's input, by field name, once every speech
        is ready; Pending while one is not; InputUnavailable when one cannot be had."""
        out: dict[str, str] = {}
        for name, value in payload.spoken_fields(job.input).items():
            out[name] = await self.url(job, track, name, value)
        return out

    async def url(self, job: Job, track: Track, name: str, value: Mapping[str, Any]) -> str:
        ctx = self.ctx
        parts = await job_parts.parts(ctx.database, job.id)
        task = parts.get(part(name, "task"))
        task_id = task.file_id if task is not None else None
        if task_id is None:
            tries = sum(1 for n in range(1, MAX_TRIES + 2) if part(name, n) in parts)
            refused = sum(1 for n in range(1, MAX_TRIES + 2) if part(name, n, "refused") in parts)
            if tries > refused:
                ctx.counts["orphaned"] += 1
                METRICS.kie_orphan_tasks.inc()
                log.warning("speech_task_unknown", extra={"job_id": job.id, "field": name, "try": tries})
                raise InputUnavailable(f"{name}: speech try {tries} may exist at KIE, its task is unknown",
                                       "speech_failed")
            if tries >= MAX_TRIES:
                raise InputUnavailable(f"{name}: KIE refused the speech {tries} times", "kie_unavailable")
            task_id = await self._create(job, name, value, tries + 1)
            raise Pending(f"speech task {task_id} created", poll_interval(0))
        try:
            record = await ctx.kie_call("record", lambda: ctx.kie.record_info(task_id, timeout=RECORD_TIMEOUT))
        except KieError as exc:
            if exc.retryable:
                raise RetryLater(f"speech task {task_id}: {exc.kind}") from None
            raise InputUnavailable(f"speech task {task_id}: {exc.kind}", "speech_failed") from None
        age = (datetime.now(UTC) - job.created_at).total_seconds()
        if not record.terminal:
            raise Pending(f"speech task {task_id} is {record.state.value}", poll_interval(age))
        if not record.succeeded or not record.result_urls:
            reason = failure_of(record) if not record.succeeded else "speech_failed"
            log.info("speech_failed", extra={"job_id": job.id, "task_id": task_id, "fail_code": record.fail_code})
            raise InputUnavailable(f"speech task {task_id} ended {record.state.value}",
                                   "content_refused" if reason == "content_refused" else "speech_failed")
        url = record.result_urls[0]
        await self._measured(job, track, name, value, url)
        return url

    async def _measured(self, job: Job, track: Track, name: str, value: Mapping[str, Any], url: str) -> None:
        """InputUnavailable("speech_too_long") when the speech plays far longer than estimated or
        longer than the field takes; a length that cannot be read lets it go (the estimate priced it)."""
        ctx = self.ctx
        seconds = track.measured.get(url)
        if seconds is None:
            try:
                async with ctx.heavy:  # a file transfer, counted with the others
                    data = await ctx.kie_call("download", lambda: ctx.kie.download(
                        url, SPEECH_MAX_BYTES, kind="audio", timeout=60.0))
            except KieError as exc:
                if exc.retryable:
                    raise RetryLater(f"the speech's audio: {exc.kind}") from None
                raise InputUnavailable(f"the speech's audio cannot be had: {exc.kind}", "speech_failed") from None
            measured = await measure_seconds(data, mimetypes.guess_type(url)[0] or "audio/mpeg")
            if measured is None:
                log.warning("speech_unmeasurable", extra={"job_id": job.id, "bytes": len(data)})
            seconds = track.measured[url] = measured or 0.0
        model = ctx.model(job)
        field = model.field(name) if model is not None and name in {f.name for f in model.fields} else None
        if field is None or field.speak is None:
            return
        estimate = field.speak.seconds(str(value[SPEAK_KEY]))
        limit = min(field.max_seconds or float("inf"), estimate * SLACK) + ROUNDING
        if seconds > limit:
            log.warning("speech_too_long", extra={"job_id": job.id, "measured": round(seconds, 2), "priced": estimate})
            raise InputUnavailable(f"{name}: the speech plays {seconds:.1f} s, {estimate} s priced", "speech_too_long")
        if seconds > estimate + ROUNDING:
            log.info("speech_longer_than_priced", extra={"job_id": job.id, "measured": round(seconds, 2),
                                                         "priced": estimate})

    async def _create(self, job: Job, name: str, value: Mapping[str, Any], attempt: int) -> str:
        """The speech's createTask, try `attempt`, under its committed intent; its task id."""
        ctx = self.ctx
        model = ctx.model(job)
        field = model.field(name) if model is not None and name in {f.name for f in model.fields} else None
        speech = field.speak if field is not None else None
        tts_id = str(value.get("tts") or "")
        if speech is None or speech.tts is None or tts_id not in ctx.catalog:
            raise InputUnavailable(f"{name}: the speech model {tts_id!r} is gone", "speech_failed")
        tts = ctx.catalog.model(tts_id)
        chosen = {"text": value[SPEAK_KEY]}
        if value.get("voice") is not None:
            chosen["voice"] = value["voice"]
        task_input = payload.build(tts, chosen)
        committed: list[bool] = []

        async def intent() -> None:
            """Committed once the limiter's slot is ours, right before createTask leaves."""
            ctx.must_act()
            if not await job_parts.record_part(ctx.database, ctx.name, ctx.epoch, job.id, part(name, attempt),
                                               reached=False):
                raise NotOurs(job)
            committed.append(True)

        try:
            created = await ctx.kie_call("create_task", lambda: ctx.kie.create_task(
                tts.id, task_input, None, before_send=intent, before_each=ctx.must_act))
        except NotOurs:
            raise RetryLater("another step made this try") from None
        except OutOfCredits:
            await ctx.pause()
            raise InputUnavailable("KIE answered 402 to the speech", "service_paused") from None
        except KieError as exc:
            if exc.ambiguous and exc.task_id and committed:
                await self._recorded(job, name, exc.task_id)
                return exc.task_id
            if exc.ambiguous:  # KIE may have it, and nothing will ever show it: released now
                raise InputUnavailable(f"{name}: speech task unknown ({exc.kind})", "speech_failed") from None
            if exc.retryable:  # certainly refused: nothing exists at KIE
                if committed:
                    await job_parts.record_part(ctx.database, ctx.name, ctx.epoch, job.id,
                                                part(name, attempt, "refused"), reached=False)
                delay = TRY_BACKOFF[min(attempt, len(TRY_BACKOFF)) - 1]
                log.info("speech_refused", extra={"job_id": job.id, "error_kind": exc.kind, "try": attempt})
                raise Pending(f"speech task creation refused ({exc.kind})", delay) from None
            if exc.code is not None and (exc.code in (401, 433) or exc.code >= 500):
                raise InputUnavailable(f"speech task creation: {exc.kind}", "kie_unavailable") from None
            raise InputUnavailable(f"speech task creation refused: {exc.kind}", "rejected") from None
        await self._recorded(job, name, created.task_id)
        log.info("speech_submitted", extra={"job_id": job.id, "task_id": created.task_id, "model": tts.id,
                                            "characters": len(value[SPEAK_KEY])})
        return created.task_id

    async def _recorded(self, job: Job, name: str, task_id: str) -> None:
        ctx = self.ctx
        await job_parts.record_part(ctx.database, ctx.name, ctx.epoch, job.id, part(name, "task"), reached=False,
                                    file_id=task_id)
