"""The end of a job: its result sent to the user, or an apology, and the money settled once.

* success: the result is downloaded (bounded), sent as the model's kind (a photo also as the
  original file), and only then finished (captured) and marked delivered in one fenced
  transaction: a result is sent twice only if the process dies between Telegram's answer and
  that commit;
* failure, timeout, a refusal: finished first (released), then the user is told in plain words
  and the job marked delivered, so nobody is told twice but after such a crash.
"""

from __future__ import annotations

import time
from typing import Any
from urllib.parse import urlsplit

from aiogram.exceptions import TelegramAPIError, TelegramBadRequest, TelegramForbiddenError
from aiogram.types import BufferedInputFile, InlineKeyboardMarkup

from actors.mailbox import describe
from bot import delivery_texts as texts
from catalog.loader import Model
from generation.context import JobContext, log
from generation.errors import DeliveryFailed, RetryLater
from generation.status import StatusMessages
from generation.track import RETRY_LATER, Track
from kie import KieError, TooLarge
from store import accounts, jobs
from store.jobs import Failed, Job, Outcome, Succeeded, TimedOut
from telemetry.metrics import METRICS

RESULT_MAX_BYTES = 50 * 1024 * 1024  # what the Bot API lets a bot upload; larger results go as a link
PHOTO_MAX_BYTES = 10 * 1024 * 1024  # sendPhoto's limit; a larger picture goes as a file only
MAX_RESULTS = 10  # result files sent for one job
SEND_TIMEOUT = 120  # seconds for one upload of a result to Telegram
DOWNLOAD_TIMEOUT = 120.0
DELIVERY_TRIES = 5  # failed attempts to send a result or an apology before giving up


class Deliverer:
    def __init__(self, ctx: JobContext, status: StatusMessages) -> None:
        self.ctx = ctx
        self.status = status

    async def end(self, job: Job, track: Track, model: Model | None, outcome: Outcome) -> Job:
        """A job without a result: finished first (its hold released), then the user is told."""
        ctx = self.ctx
        step = await jobs.finish(ctx.database, ctx.name, ctx.epoch, job.id, outcome)
        if step.changed:
            kind = "timed_out" if isinstance(outcome, TimedOut) else "failed"
            ctx.counts[kind] += 1
            log.warning("job_ended", extra={"job_id": job.id, "state": step.job.state, "failure": step.job.failure,
                                            "model": job.model})
        track.terminal = None
        return await self.tell(step.job, track, model)

    async def tell(self, job: Job, track: Track, model: Model | None) -> Job:
        """A finished job the user has not been told about (this step's, or one a crash left)."""
        ctx = self.ctx
        fresh = await jobs.job(ctx.database, job.id)
        if fresh is None or fresh.delivered_at is not None:
            return fresh or job
        job = fresh
        if job.state == "succeeded":  # finished before its result was sent (not by this code): send it now
            urls = (job.result or {}).get("urls") or []
            return await self.deliver(job, track, model, [u for u in urls if isinstance(u, str)], finish=False)
        lang = await ctx.lang(job.user_id)
        await self.status.final(job, track, lang, done=False)
        text = texts.failure(lang, job.failure or job.state, job.paid_with)
        try:
            await ctx.bot.send_message(job.chat_id, text, reply_markup=texts.menu_keyboard(lang))
        except TelegramForbiddenError:
            await accounts.set_blocked(ctx.database, ctx.bot_id, job.user_id, True)
        except TelegramBadRequest as exc:
            log.warning("apology_refused", extra={"job_id": job.id, "error_text": exc.message})
        except TelegramAPIError as exc:  # network, 5xx past the limiter's retries: try again later
            if track.failures + 1 < DELIVERY_TRIES:
                return self.try_later(job, track, f"apology: {type(exc).__name__}")
            log.error("apology_undeliverable", extra={"job_id": job.id, "error_text": type(exc).__name__})
        return await self.mark_told(job, None)

    def try_later(self, job: Job, track: Track, why: str) -> Job:
        track.failures += 1
        track.next_at = time.monotonic() + RETRY_LATER * track.failures
        log.warning("delivery_retry", extra={"job_id": job.id, "why": why, "failures": track.failures})
        return job

    async def deliver(self, job: Job, track: Track, model: Model | None, urls: list[str], *, finish: bool) -> Job:
        """Send the result, then commit: finished (captured) and delivered in one transaction."""
        ctx = self.ctx
        fresh = await jobs.job(ctx.database, job.id)
        if fresh is None or fresh.delivered_at is not None:
            return fresh or job  # told meanwhile (a stale read): never send twice
        job = fresh
        if finish and job.finished:  # ended otherwise meanwhile (timed out): that outcome stands
            track.terminal = None
            return await self.tell(job, track, model)
        if not urls:
            if finish:
                return await self.end(job, track, model, Failed("empty_result"))
            return await self.mark_told(job, None)
        lang = await ctx.lang(job.user_id)
        kind = model.output if model is not None else "document"
        title = model.title.get(lang) if model is not None else job.model
        first_caption = texts.caption(title, job.input.get("prompt") or job.input.get("text"))
        keyboard = texts.result_keyboard(lang, job.id)
        shown = urls[:MAX_RESULTS]
        sent: list[dict[str, Any]] = []
        try:
            await self.status.final(job, track, lang, done=True)
            async with ctx.heavy:
                for index, url in enumerate(shown):
                    last = index == len(shown) - 1
                    data = await self._download(url)
                    sent.append(await self._send_result(job, kind, data, url, first_caption if index == 0 else None,
                                                        keyboard if last else None, lang))
        except DeliveryFailed as exc:
            return await self._undeliverable(job, track, model, str(exc), finish=finish)
        except TelegramForbiddenError:
            await accounts.set_blocked(ctx.database, ctx.bot_id, job.user_id, True)
            return await self._undeliverable(job, track, model, "the user blocked the bot", finish=finish, told=True)
        except TelegramBadRequest as exc:
            return await self._undeliverable(job, track, model, f"Telegram refused: {exc.message}", finish=finish)
        except (TelegramAPIError, RetryLater) as exc:
            if track.failures + 1 >= DELIVERY_TRIES:
                return await self._undeliverable(job, track, model, f"{DELIVERY_TRIES} attempts failed",
                                                 finish=finish)
            return self.try_later(job, track, describe(exc))
        file_id = next((s["file_id"] for s in sent if s.get("file_id")), None)
        if not finish:
            return await self.mark_told(job, file_id)
        result = {"urls": urls, "kind": kind, "sent": sent}
        step = await jobs.finish(ctx.database, ctx.name, ctx.epoch, job.id, Succeeded(result), delivered=True,
                                 file_id=file_id)
        track.terminal = None
        if step.changed:
            ctx.counts["succeeded"] += 1
            METRICS.deliveries.labels("succeeded").inc()
            log.info("job_delivered", extra={"job_id": job.id, "model": job.model, "results": len(sent),
                                             "file_id_kept": file_id is not None})
        elif step.job.state != "succeeded":  # ended otherwise between our read and our send: the user has it
            log.warning("result_sent_after_end", extra={"job_id": job.id, "state": step.job.state})
        return step.job

    async def mark_told(self, job: Job, file_id: str | None) -> Job:
        ctx = self.ctx
        step = await jobs.mark_delivered(ctx.database, ctx.name, ctx.epoch, job.id, file_id)
        if step.changed:
            ctx.counts["told"] += 1
            METRICS.deliveries.labels(job.state).inc()
        return step.job

    async def _undeliverable(self, job: Job, track: Track, model: Model | None, why: str, *, finish: bool,
                             told: bool = False) -> Job:
        """The result cannot reach the user: released (when not captured yet) and apologised for."""
        ctx = self.ctx
        log.error("result_undeliverable", extra={"job_id": job.id, "why": why})
        track.terminal = None
        if not finish:  # captured before this code ran; nothing more can be done than say so
            return await self.mark_told(job, None) if told else await self._apologise_captured(job)
        if told:  # nobody to tell: released, and marked told in the same transaction
            step = await jobs.finish(ctx.database, ctx.name, ctx.epoch, job.id, Failed("delivery"), delivered=True)
            if step.changed:
                ctx.counts["failed"] += 1
            return step.job
        return await self.end(job, track, model, Failed("delivery"))

    async def _apologise_captured(self, job: Job) -> Job:
        lang = await self.ctx.lang(job.user_id)
        try:
            await self.ctx.bot.send_message(job.chat_id, texts.t(lang, "failed_temporary"),
                                            reply_markup=texts.menu_keyboard(lang))
        except (TelegramForbiddenError, TelegramBadRequest):
            pass
        return await self.mark_told(job, None)

    async def _download(self, url: str) -> bytes | None:
        """A result's bytes, or None when it is over RESULT_MAX_BYTES (it goes as a link)."""
        ctx = self.ctx
        try:
            return await ctx.kie_call("download", lambda: ctx.kie.download(url, RESULT_MAX_BYTES,
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
        bot = self.ctx.bot
        chat = job.chat_id
        if data is None:
            text = (f"{caption}\n\n" if caption else "") + texts.t(lang, "result_link", url=url)
            await bot.send_message(chat, text, reply_markup=keyboard)
            return {"as": "link", "file_id": None}
        name = file_name(job, url, kind)
        if kind == "photo":
            photo_id = None
            if len(data) <= PHOTO_MAX_BYTES:
                try:
                    sent = await bot.send_photo(chat, BufferedInputFile(data, name), caption=caption,
                                                request_timeout=SEND_TIMEOUT)
                    photo_id = sent.photo[-1].file_id if sent.photo else None
                    caption = None
                except TelegramBadRequest as exc:  # dimensions, format: the file alone still reaches them
                    log.info("photo_refused", extra={"job_id": job.id, "error_text": exc.message})
            sent = await bot.send_document(chat, BufferedInputFile(data, name), caption=caption,
                                           reply_markup=keyboard, request_timeout=SEND_TIMEOUT)
            document_id = sent.document.file_id if sent.document else None
            return {"as": "photo" if photo_id else "document", "file_id": photo_id or document_id,
                    "document_file_id": document_id}
        try:
            if kind == "video":
                sent = await bot.send_video(chat, BufferedInputFile(data, name), caption=caption,
                                            reply_markup=keyboard, supports_streaming=True,
                                            request_timeout=SEND_TIMEOUT)
                if sent.video is not None:
                    return {"as": "video", "file_id": sent.video.file_id}
            elif kind == "audio":
                sent = await bot.send_audio(chat, BufferedInputFile(data, name), caption=caption,
                                            reply_markup=keyboard, request_timeout=SEND_TIMEOUT)
                if sent.audio is not None:
                    return {"as": "audio", "file_id": sent.audio.file_id}
        except TelegramBadRequest as exc:
            log.info("media_refused", extra={"job_id": job.id, "kind": kind, "error_text": exc.message})
        sent = await bot.send_document(chat, BufferedInputFile(data, name), caption=caption,
                                       reply_markup=keyboard, request_timeout=SEND_TIMEOUT)
        return {"as": "document", "file_id": sent.document.file_id if sent.document else None}


def file_name(job: Job, url: str, kind: str) -> str:
    """The name a result file carries in the chat: the job and the extension of its URL."""
    path = urlsplit(url).path
    dot = path.rfind(".")
    extension = path[dot:].lower() if dot > path.rfind("/") and len(path) - dot <= 6 else ""
    if not extension[1:].isalnum():
        extension = {"photo": ".png", "video": ".mp4", "audio": ".mp3"}.get(kind, "")
    return f"result-{job.id}{extension}"
