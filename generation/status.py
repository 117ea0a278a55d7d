"""The status message a user watches while a job runs: edited when what it says changes, never
more often than Telegram's limits leave room for, and given its last word when the job ends."""

from __future__ import annotations

import time
from datetime import UTC, datetime

from aiogram.exceptions import TelegramAPIError, TelegramBadRequest, TelegramForbiddenError

from bot import delivery_texts as texts
from catalog.model import Model
from generation.context import JobContext, log
from generation.track import Track, shown_elapsed
from store import jobs
from store.jobs import Job

EDIT_GAP = 5.0  # seconds between two edits of one status message, at least
EDITS_PER_SECOND = 10.0  # status edits of all jobs together, at most: Telegram allows ~30 sends/s for the bot
USUAL_TTL = 300.0  # how long a model's usual duration is reused before it is read again


class StatusMessages:
    def __init__(self, ctx: JobContext) -> None:
        self.ctx = ctx
        self.edit_gap = EDIT_GAP
        self.usual: dict[str, tuple[float | None, float]] = {}
        # job id -> the status message given its last word: one recorded later (the wizard records
        # it after Confirm's commit, a fast end may come first) is given its own
        self.said: dict[int, int] = {}

    def pace(self, jobs_running: int) -> None:
        """Many jobs at once: each status message is edited less often, so edits stay a small share
        of what Telegram lets the bot send."""
        self.edit_gap = max(EDIT_GAP, jobs_running / EDITS_PER_SECOND)

    async def progress(self, job: Job, track: Track, model: Model | None) -> None:
        """The job's status message, edited when what it says changes, at most every edit_gap."""
        if job.status_message_id is None or track.no_status:
            return
        now = time.monotonic()
        # a new stage (Suno's lyrics, its first song) is news worth an edit at once: at most two a job
        news = job.state == "running" and track.stage is not None and track.stage != track.stage_said
        if now - track.last_edit < self.edit_gap and not news:
            return
        lang = await self.ctx.lang(job.user_id)
        title = model.title.get(lang) if model is not None else job.model
        phase = "sending" if job.state in ("created", "submitting") else \
            "generating" if job.state == "running" else "queued"
        elapsed = shown_elapsed((datetime.now(UTC) - job.created_at).total_seconds())
        text = texts.status(lang, phase, title, elapsed, await self._usual(job.model), job.user_number,
                            stage=track.stage)
        if text == track.last_text:
            return
        track.last_edit = now
        if await self.edit(job, track, text) and phase == "generating":
            track.stage_said = track.stage

    async def final(self, job: Job, track: Track, lang: str, *, done: bool) -> bool:
        """The status message's last word; False when it could not be said now (the deliverer
        tries again on the next step, so a 429 or the per-chat limiter never leaves "queued")."""
        if job.status_message_id is None or track.no_status or self.said.get(job.id) == job.status_message_id:
            return True  # none, said, or it cannot be edited (deleted, chat gone)
        model = self.ctx.model(job)
        title = model.title.get(lang) if model is not None else job.model
        elapsed = (datetime.now(UTC) - job.created_at).total_seconds()
        text = texts.ended(lang, title, elapsed, job.user_number, done=done)
        if not await self.edit(job, track, text):
            return False
        if len(self.said) > 10_000:
            self.said.clear()
        self.said[job.id] = job.status_message_id  # its last word
        return True

    async def edit(self, job: Job, track: Track, text: str) -> bool:
        """Best effort: "not modified" is harmless, a message gone stops the edits; False when the
        edit failed for a reason that may pass (a 429, the network)."""
        assert job.status_message_id is not None
        try:
            await self.ctx.bot.edit_message_text(text=text, chat_id=job.chat_id, message_id=job.status_message_id)
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
            return False
        return True

    async def _usual(self, model: str) -> float | None:
        cached = self.usual.get(model)
        if cached is not None and time.monotonic() - cached[1] < USUAL_TTL:
            return cached[0]
        value = await jobs.usual_seconds(self.ctx.database, self.ctx.bot_id, model)
        self.usual[model] = (value, time.monotonic())
        return value
