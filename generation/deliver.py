"""The end of a job: its result sent to the user, or an apology, and the money settled once.

Delivery progress is durable (store.jobs.record_part): each part that reaches the chat (a
photo, its original as a file, a video, a link, our words about a missing result, the apology)
is recorded on the job, fenced, right after Telegram's answer, so a retry, a restart or a new
leader resumes at the first part not recorded; a part is sent twice only if the process dies
between Telegram's answer and that commit.

* success: each result is downloaded (bounded) and sent as the model's kind (a photo, then its
  original as a file replying to it), one job's files together (a per-chat lock); a file
  Telegram finds too big (413) falls through photo -> document -> link; a result that cannot be
  had goes untold until the end, then the user is told which one is missing. Once any result
  reached the user the job is a success and captures (store.jobs.finish enforces it whatever
  outcome is asked); only when nothing did is it released with an apology;
* failure, timeout, a refusal: finished first (released), then the user is told in plain words;
* either way the status message gets its last word only after the files (or the apology) went
  out, and the job is marked told only once that word is said (or cannot be): a failed edit is
  tried again on the next step.

Every attempt counts against a bound (DELIVERY_TRIES, and a deadline DELIVERY_GRACE past the
job's own), whatever the exception: past it, what was sent stands (give_up).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from aiogram.exceptions import (
    TelegramAPIError,
    TelegramBadRequest,
    TelegramEntityTooLarge,
    TelegramForbiddenError,
)
from aiogram.types import BufferedInputFile, InlineKeyboardMarkup, Message, ReplyParameters

from actors.mailbox import describe
from bot import actions_kit, keyboards
from bot import delivery_texts as texts
from bot import texts as shop_texts
from catalog.model import Model
from generation.context import JobContext, log
from generation.errors import DeliveryFailed, RetryLater
from generation.status import StatusMessages
from generation.track import RETRY_LATER, Track
from ingest.send_gate import ActingRefused
from kie import KINDS, DownloadRefused, KieError, ResultItem, TooLarge
from store import accounts, jobs
from store.jobs import Failed, Job, Outcome, Part, Succeeded, TimedOut
from telemetry.metrics import METRICS

# Telegram's limits are decimal and count the whole multipart request (Bot API: "50 MB" per
# upload, "10 MB" for a photo); ENVELOPE reserves room for the rest of the request (part
# headers, the file name, a caption of up to 1,024 characters, the reply markup).
ENVELOPE = 64 * 1024
RESULT_MAX_BYTES = 50_000_000 - ENVELOPE  # larger results go as a link
PHOTO_MAX_BYTES = 10_000_000 - ENVELOPE  # a larger picture goes as a file only
MAX_RESULTS = 10  # result files sent for one job
SEND_TIMEOUT = 120  # seconds for one upload of a result to Telegram
DOWNLOAD_TIMEOUT = 120.0
DELIVERY_TRIES = 5  # attempts to deliver (whatever failed) before what was sent stands
DELIVERY_GRACE = 600.0  # seconds past the job's own deadline a delivery may still take
TOO_BIG = ("too big", "too large", "entity too large")  # Telegram's 400 words for an oversized file
SETTLED = ("document", "video", "audio", "link", "missing", "text")  # a result with one of these is done
TITLE_MAX = 200  # characters of a file's title kept in the job's result
TEXT_MAX = 4000  # characters of one text result (a lyrics variant) sent and kept: one message, a few KB
MESSAGE_MAX = 4096  # Telegram's limit for a message's text
THUMB_MAX_BYTES = 200_000  # Telegram's limit for an audio's thumbnail (a JPEG of at most 320 px a side)
THUMB_MAX_SIDE = 320
THUMB_TIMEOUT = 20.0
PERFORMERS = {"suno": "Suno"}  # the performer an audio of the family is sent with
SIGNED_DOWNLOADS = ("gpt4o",)  # families whose result a signed download URL (KieClient.signed_download_url) may save


def too_big(exc: TelegramAPIError) -> bool:
    """Telegram says the request or the file is over its limit (a 413, or a 400 saying so)."""
    return isinstance(exc, TelegramEntityTooLarge) or (
        isinstance(exc, TelegramBadRequest) and any(word in exc.message.lower() for word in TOO_BIG))


def openable(url: str) -> bool:
    """A result URL the user can open themselves (a link is worth sending)."""
    parts = urlsplit(url)
    return parts.scheme in ("https", "http") and bool(parts.hostname)


def settled(parts: dict[str, Part], index: int) -> bool:
    return any(f"{index}:{suffix}" in parts for suffix in SETTLED)


def reached(parts: dict[str, Part]) -> bool:
    return any(p.reached for p in parts.values())


class Deliverer:
    def __init__(self, ctx: JobContext, status: StatusMessages) -> None:
        self.ctx = ctx
        self.status = status
        self.tries = DELIVERY_TRIES
        self.retry_gap = RETRY_LATER  # seconds, times the failures so far
        self.grace = DELIVERY_GRACE
        self._chats: dict[int, tuple[asyncio.Lock, list[int]]] = {}

    # -- the bound ---------------------------------------------------------------------------

    def spent(self, job: Job, track: Track, model: Model | None) -> str | None:
        """Why this job's delivery may try no more (None: it may). The attempts are this process's;
        the deadline is the row's, so a string of new leaders cannot extend it."""
        if track.failures >= self.tries:
            return f"{track.failures} attempts failed"
        deadline = job.created_at + timedelta(seconds=self.ctx.timeout_of(model) + self.grace)
        if datetime.now(UTC) > deadline:
            return "past the delivery deadline"
        return None

    def failed_attempt(self, job: Job, track: Track, why: str) -> None:
        """One more attempt failed (any exception, see actors.kie_poller._drive): try later."""
        track.failures += 1
        track.next_at = time.monotonic() + self.retry_gap * track.failures
        log.warning("delivery_retry", extra={"job_id": job.id, "why": why, "failures": track.failures})

    def try_later(self, job: Job, track: Track, why: str) -> Job:
        self.failed_attempt(job, track, why)
        return job

    # -- a job without a result --------------------------------------------------------------

    async def end(self, job: Job, track: Track, model: Model | None, outcome: Outcome) -> Job:
        """A job without a result: finished first (its hold released), then the user is told. The
        store captures instead when a result reached the user before (the rest is then sent)."""
        ctx = self.ctx
        step = await jobs.finish(ctx.database, ctx.name, ctx.epoch, job.id, outcome,
                                 referral_bonus=ctx.settings.referral_bonus)
        await self._tell_referrer(step)
        if step.changed:
            kind = "succeeded" if step.job.state == "succeeded" else \
                "timed_out" if isinstance(outcome, TimedOut) else "failed"
            ctx.counts[kind] += 1
            log.warning("job_ended", extra={"job_id": job.id, "state": step.job.state, "failure": step.job.failure,
                                            "model": job.model, "asked": type(outcome).__name__})
        track.terminal = None
        return await self.tell(step.job, track, model)

    async def tell(self, job: Job, track: Track, model: Model | None) -> Job:
        """A finished job the user has not been told about (this step's, or one a crash left)."""
        ctx = self.ctx
        fresh = await jobs.job(ctx.database, job.id)
        if fresh is None or fresh.delivered_at is not None:
            return fresh or job
        job = fresh
        if job.state == "succeeded":  # its result (or the rest of it) still to send, or its last word
            urls = (job.result or {}).get("urls") or []
            return await self.deliver(job, track, model, [u for u in urls if isinstance(u, str)], finish=False,
                                      items=stored_items(job.result), words=stored_words(job.result))
        lang = await ctx.lang(job.user_id)
        why = self.spent(job, track, model)
        if why is not None:
            log.error("apology_undeliverable", extra={"job_id": job.id, "why": why})
            return await self._close(job, track, lang, done=False, force=True)
        if "apology" not in await jobs.parts(ctx.database, job.id):
            text = texts.failure(lang, job.failure or job.state, job.paid_with)
            try:
                sent = await ctx.bot.send_message(job.chat_id, text, reply_markup=texts.menu_keyboard(lang))
                await jobs.record_part(ctx.database, ctx.name, ctx.epoch, job.id, "apology", reached=False,
                                       message_id=sent.message_id)
            except TelegramForbiddenError:
                await accounts.set_blocked(ctx.database, ctx.bot_id, job.user_id, True)
                return await self.mark_told(job, None)
            except TelegramBadRequest as exc:
                log.warning("apology_refused", extra={"job_id": job.id, "error_text": exc.message})
            except TelegramAPIError as exc:  # network, 5xx past the limiter's retries: try again later
                return self.try_later(job, track, f"apology: {type(exc).__name__}")
        return await self._close(job, track, lang, done=False)

    # -- a result ----------------------------------------------------------------------------

    async def deliver(self, job: Job, track: Track, model: Model | None, urls: list[str], *, finish: bool,
                      items: Sequence[ResultItem] = (), task_id: str | None = None,
                      words: Sequence[Mapping[str, str]] = ()) -> Job:
        """Send what of the result is not in the chat yet, then capture (when `finish`), then the
        status message's last word, then the job is told. `items`: the files with their family's
        details (Suno's titles and covers), in order; `words`: a text result ({title, text} each,
        see text_results), sent as messages when there are no files; `task_id`: KIE's, kept in the
        job's result for actions on it."""
        ctx = self.ctx
        fresh = await jobs.job(ctx.database, job.id)
        if fresh is None or fresh.delivered_at is not None:
            track.terminal = None
            return fresh or job  # told meanwhile (a stale read): never send twice
        job = fresh
        if finish and job.finished:  # ended otherwise meanwhile (timed out): that outcome stands
            track.terminal = None
            return await self.tell(job, track, model)
        urls = list(urls) or [item.url for item in items]
        words = [] if urls else [w for w in words if w.get("text")][:MAX_RESULTS]
        if not urls and not words:
            if finish:
                return await self.end(job, track, model, Failed("empty_result"))
            return await self.mark_told(job, None)
        files = list(items)[:MAX_RESULTS] if items else [ResultItem(url) for url in urls[:MAX_RESULTS]]
        shown = [item.url for item in files]
        kind = "text" if words else model.output if model is not None else "document"
        if finish and job.result is None:  # kept first: whoever ends the job later can send the rest
            job = (await jobs.record_result(ctx.database, ctx.name, ctx.epoch, job.id,
                                            stored_result(urls, kind, files, task_id or job.kie_task_id,
                                                          words))).job
        why = self.spent(job, track, model)
        if why is not None:
            return await self.give_up(job, track, model, why)
        lang = await ctx.lang(job.user_id)
        try:
            async with self._chat(job.chat_id), ctx.heavy:
                parts, missing = await self._send_all(job, model, files, words, kind, lang)
                if missing and reached(parts):
                    await self._tell_missing(job, model, shown, missing, parts, lang)
        except TelegramForbiddenError:
            await accounts.set_blocked(ctx.database, ctx.bot_id, job.user_id, True)
            return await self._nobody_to_tell(job, track, "the user blocked the bot")
        except TelegramBadRequest as exc:  # our plain message refused: the chat cannot take more
            return await self.give_up(job, track, model, f"Telegram refused: {exc.message}")
        except (TelegramAPIError, RetryLater) as exc:
            self.failed_attempt(job, track, describe(exc))
            if (why := self.spent(job, track, model)) is not None:
                return await self.give_up(job, track, model, why)
            return job
        if not reached(parts):  # not one result could be had (gone at KIE): nothing to charge for
            return await self._undeliverable(job, track, model, "no result could be had", finish=not job.finished)
        return await self._captured(job, track, len(shown) or len(words), kind, parts, lang)

    async def give_up(self, job: Job, track: Track, model: Model | None, why: str) -> Job:
        """The bound is reached: what was sent stands. Anything in the chat: the rest named (links
        where the user can open them), captured, told. Nothing: released with an apology."""
        ctx = self.ctx
        fresh = await jobs.job(ctx.database, job.id)
        if fresh is None or fresh.delivered_at is not None:
            return fresh or job
        job = fresh
        log.error("delivery_given_up", extra={"job_id": job.id, "why": why, "state": job.state})
        track.terminal = None
        lang = await ctx.lang(job.user_id)
        parts = await jobs.parts(ctx.database, job.id)
        if not reached(parts):
            if not job.finished:
                return await self._release_and_apologise(job, track, lang)
            if job.state != "succeeded":  # a failure whose apology could not be said
                return await self._close(job, track, lang, done=False, force=True)
            await self._best_effort(job, "apology", texts.t(lang, "failed_temporary"), texts.menu_keyboard(lang))
            return await self._close(job, track, lang, done=False, force=True)
        shown = [u for u in ((job.result or {}).get("urls") or []) if isinstance(u, str)][:MAX_RESULTS]
        count = len(shown) or len(stored_words(job.result))
        shown += [""] * (count - len(shown))  # a text result has no link: what is not sent is missing
        rest = [i for i in range(count) if not settled(parts, i)]
        if rest:
            lines = [texts.t(lang, "result_rest_link", n=i + 1, total=len(shown), url=shown[i]) if openable(shown[i])
                     else texts.t(lang, "result_missing", n=i + 1, total=len(shown)) for i in rest]
            sent = await self._best_effort(job, None, "\n\n".join(lines),
                                           self.result_keyboard(job, model, lang, count))
            if sent is not None:
                for i in rest:
                    await jobs.record_part(ctx.database, ctx.name, ctx.epoch, job.id,
                                           f"{i}:{'link' if openable(shown[i]) else 'missing'}",
                                           reached=openable(shown[i]), message_id=sent.message_id)
                parts = await jobs.parts(ctx.database, job.id)
        kind = str((job.result or {}).get("kind") or "document")
        return await self._captured(job, track, count, kind, parts, lang, force=True)

    async def _captured(self, job: Job, track: Track, count: int, kind: str, parts: dict[str, Part],
                        lang: str, *, force: bool = False) -> Job:
        """A result reached the user: finished as a success (captured) if not yet, then told. The
        result kept (record_result: urls, items, task_id) stays, with what was sent beside it."""
        ctx = self.ctx
        sent = summary(parts, count)
        file_id = next((s["file_id"] for s in sent if s.get("file_id")), None)
        track.terminal = None
        if not job.finished:
            step = await jobs.finish(ctx.database, ctx.name, ctx.epoch, job.id,
                                     Succeeded({**(job.result or {}), "urls": (job.result or {}).get("urls") or [],
                                                "kind": kind, "sent": sent}),
                                     referral_bonus=ctx.settings.referral_bonus)
            await self._tell_referrer(step)
            if step.changed:
                ctx.counts["succeeded"] += 1
                log.info("job_delivered", extra={"job_id": job.id, "model": job.model, "results": len(sent),
                                                 "file_id_kept": file_id is not None})
            elif step.job.state != "succeeded":  # ended otherwise between our read and our send
                log.warning("result_sent_after_end", extra={"job_id": job.id, "state": step.job.state})
            job = step.job
        return await self._close(job, track, lang, done=True, file_id=file_id, force=force)

    async def _close(self, job: Job, track: Track, lang: str, *, done: bool, file_id: str | None = None,
                     force: bool = False) -> Job:
        """The status message's last word, then the job is told. A failed edit (a 429, the
        network) is tried again on the next step; `force`: past the bound, told without it."""
        said = await self.status.final(job, track, lang, done=done)
        if not said:
            if not force:
                return self.try_later(job, track, "the status message's last word")
            log.warning("status_last_word_given_up", extra={"job_id": job.id})
        return await self.mark_told(job, file_id, status_message_id=job.status_message_id)

    async def mark_told(self, job: Job, file_id: str | None, **status: int | None) -> Job:
        """The job leaves the driver. `status_message_id=`: the status message given its last word;
        when the wizard recorded another meanwhile, nothing changes and the next step says that
        one's last word (the parts keep the rest from being sent again)."""
        ctx = self.ctx
        step = await jobs.mark_delivered(ctx.database, ctx.name, ctx.epoch, job.id, file_id, **status)
        if step.changed:
            ctx.counts["told"] += 1
            METRICS.deliveries.labels(step.job.state).inc()
        elif step.job.delivered_at is None:
            log.info("status_message_recorded_late", extra={"job_id": job.id})
        return step.job

    async def _nobody_to_tell(self, job: Job, track: Track, why: str) -> Job:
        """The user blocked the bot: settled (the store captures if a result reached them before)
        and marked told in the same transaction."""
        ctx = self.ctx
        log.error("result_undeliverable", extra={"job_id": job.id, "why": why})
        track.terminal = None
        if job.finished:
            return await self.mark_told(job, None)
        step = await jobs.finish(ctx.database, ctx.name, ctx.epoch, job.id, Failed("delivery"), delivered=True)
        if step.changed:
            ctx.counts["succeeded" if step.job.state == "succeeded" else "failed"] += 1
        return step.job

    async def _undeliverable(self, job: Job, track: Track, model: Model | None, why: str, *, finish: bool) -> Job:
        """No result can reach the user: released (when not captured yet) and apologised for."""
        log.error("result_undeliverable", extra={"job_id": job.id, "why": why})
        track.terminal = None
        if not finish:  # captured before this code ran; nothing more can be done than say so
            lang = await self.ctx.lang(job.user_id)
            await self._best_effort(job, "apology", texts.t(lang, "failed_temporary"), texts.menu_keyboard(lang))
            return await self._close(job, track, lang, done=False, force=True)
        return await self.end(job, track, model, Failed("delivery"))

    async def _release_and_apologise(self, job: Job, track: Track, lang: str) -> Job:
        ctx = self.ctx
        step = await jobs.finish(ctx.database, ctx.name, ctx.epoch, job.id, Failed("delivery"))
        if step.changed:
            ctx.counts["succeeded" if step.job.state == "succeeded" else "failed"] += 1
        job = step.job
        if job.state == "succeeded":  # a part was recorded meanwhile (another leader's): it stands
            return await self._close(job, track, lang, done=True, force=True)
        await self._best_effort(job, "apology", texts.failure(lang, job.failure or job.state, job.paid_with),
                                texts.menu_keyboard(lang))
        return await self._close(job, track, lang, done=False, force=True)

    async def _tell_referrer(self, step: jobs.Step) -> None:
        """This success was the user's first paid use and paid their referrer (in finish's
        transaction): one try to tell them; a failure is only logged (the bonus is in)."""
        if step.referral is None:
            return
        ctx, referrer = self.ctx, step.referral.referrer_id
        lang = await ctx.lang(referrer)
        text = shop_texts.t(lang, "referral_paid", amount=shop_texts.money(lang, step.referral.amount))
        try:
            await ctx.bot.send_message(referrer, text, reply_markup=texts.menu_keyboard(lang))
        except ActingRefused:
            raise
        except Exception as exc:  # the bonus is credited; the words are not worth a retry
            log.warning("referral_notice_failed", extra={"user_id": referrer, "error_text": describe(exc)})

    async def _best_effort(self, job: Job, part: str | None, text: str,
                           keyboard: InlineKeyboardMarkup | None) -> Message | None:
        """One try of a message past the bound (its failure, whatever it is, is only logged);
        recorded as `part` when given, and not sent again when recorded before."""
        ctx = self.ctx
        if part is not None and part in await jobs.parts(ctx.database, job.id):
            return None
        try:
            sent = await ctx.bot.send_message(job.chat_id, text, reply_markup=keyboard)
        except ActingRefused:
            raise
        except Exception as exc:  # past the bound: the words are not worth another try
            log.warning("last_message_failed", extra={"job_id": job.id, "error_text": describe(exc)})
            return None
        if part is not None:
            await jobs.record_part(ctx.database, ctx.name, ctx.epoch, job.id, part, reached=False,
                                   message_id=sent.message_id)
        return sent

    # -- sending -----------------------------------------------------------------------------

    @asynccontextmanager
    async def _chat(self, chat_id: int) -> AsyncIterator[None]:
        """One job's files at a time in a chat, so a photo and its original arrive together."""
        entry = self._chats.get(chat_id)
        if entry is None:
            entry = self._chats[chat_id] = (asyncio.Lock(), [0])
        entry[1][0] += 1
        try:
            async with entry[0]:
                yield
        finally:
            entry[1][0] -= 1
            if entry[1][0] == 0:
                del self._chats[chat_id]

    def result_keyboard(self, job: Job, model: Model | None, lang: str, files: int) -> InlineKeyboardMarkup:
        """The buttons under a result's last message, the one place they are made: the model's
        actions on the result (per file when an action is: `files` is how many the result has)
        beside Again and Menu."""
        offers = actions_kit.offered(model, job.input) if model is not None else ()
        return keyboards.result_keyboard(lang, job.id, offers, files)

    async def _send_all(self, job: Job, model: Model | None, files: list[ResultItem],
                        words: list[Mapping[str, str]], kind: str, lang: str) -> tuple[dict[str, Part], list[int]]:
        """Every result not in the chat yet, in order (Suno's two songs, 4o's variants, the lyrics'
        variants); (what is in the chat, results that cannot be had). Transient failures and
        Telegram's refusals of the chat raise."""
        ctx = self.ctx
        parts = await jobs.parts(ctx.database, job.id)  # read under the chat's lock: no step raced it
        title = model.title.get(lang) if model is not None else job.model
        first_caption = texts.caption(title, job.input.get("prompt") or job.input.get("text"), lang, job.user_number)
        count = len(words) or len(files)
        keyboard = self.result_keyboard(job, model, lang, count)
        missing: list[int] = []
        for index in range(count):
            if settled(parts, index):
                continue
            last = index == count - 1
            fresh_result = not any(key.startswith(f"{index}:") for key in parts)
            caption = first_caption if index == 0 and fresh_result else None
            if words:
                await self._send_words(job, index, count, words[index], caption, keyboard if last else None, lang,
                                       parts)
                continue
            item = files[index]
            try:
                data = await self._download(job, item.url, kind)
                thumbnail = await self._thumbnail(job, item) if kind == "audio" and data is not None else None
                await self._send_result(job, kind, index, data, item.url, caption, keyboard if last else None, lang,
                                        parts, item=item, thumbnail=thumbnail)
            except DeliveryFailed as exc:
                log.warning("result_missing", extra={"job_id": job.id, "index": index, "why": str(exc)})
                missing.append(index)
        return parts, missing

    async def _send_words(self, job: Job, index: int, count: int, words: Mapping[str, str], caption: str | None,
                          keyboard: InlineKeyboardMarkup | None, lang: str, parts: dict[str, Part]) -> None:
        """One text result (a lyrics variant) as a message of its own, recorded as it reaches the chat."""
        ctx = self.ctx
        title = (words.get("title") or "").strip() or (texts.t(lang, "text_variant", n=index + 1) if count > 1 else "")
        body = "\n\n".join(piece for piece in (caption, f"📝 {title}" if title else "", words.get("text", "").strip())
                            if piece)
        sent = await ctx.bot.send_message(job.chat_id, body[:MESSAGE_MAX], reply_markup=keyboard)
        await jobs.record_part(ctx.database, ctx.name, ctx.epoch, job.id, f"{index}:text", reached=True,
                               message_id=sent.message_id)
        parts[f"{index}:text"] = Part(f"{index}:text", True, None, sent.message_id)

    async def _thumbnail(self, job: Job, item: ResultItem) -> bytes | None:
        """The song's cover as Telegram takes an audio's thumbnail (a JPEG of at most 200 kB and 320
        px a side), or None: a cover that cannot be had, or is larger or not a JPEG, is left out."""
        ctx, cover = self.ctx, item.cover_url
        if not cover:
            return None
        try:
            data = await ctx.kie_call("download", lambda: ctx.kie.download(cover, THUMB_MAX_BYTES, kind="photo",
                                                                           timeout=THUMB_TIMEOUT))
        except KieError as exc:  # TooLarge among them: the song goes without it
            log.info("cover_left_out", extra={"job_id": job.id, "error_kind": exc.kind})
            return None
        size = jpeg_size(data)
        if size is None or max(size) > THUMB_MAX_SIDE:
            log.info("cover_left_out", extra={"job_id": job.id, "error_kind": "not a small JPEG"})
            return None
        return data

    async def _tell_missing(self, job: Job, model: Model | None, shown: list[str], missing: list[int],
                            parts: dict[str, Part], lang: str) -> None:
        """The results that cannot be had, named plainly (what did arrive is the user's)."""
        ctx = self.ctx
        text = "\n".join(texts.t(lang, "result_missing", n=i + 1, total=len(shown)) for i in missing)
        keyboard = self.result_keyboard(job, model, lang, len(shown)) if len(shown) - 1 in missing else None
        sent = await ctx.bot.send_message(job.chat_id, text, reply_markup=keyboard)
        for i in missing:
            await jobs.record_part(ctx.database, ctx.name, ctx.epoch, job.id, f"{i}:missing", reached=False,
                                   message_id=sent.message_id)
            parts[f"{i}:missing"] = Part(f"{i}:missing", False, None, sent.message_id)

    async def _download(self, job: Job, url: str, kind: str) -> bytes | None:
        """A result's bytes, or None when it is over RESULT_MAX_BYTES (it goes as a link). A 4o
        result its URL no longer gives is asked for once more through KIE's signed download URL."""
        try:
            return await self._fetch(url, kind)
        except DeliveryFailed:
            signed = await self._signed_url(job, url)
            if signed is None:
                raise
            log.info("result_signed_url", extra={"job_id": job.id})
            return await self._fetch(signed, kind)

    async def _signed_url(self, job: Job, url: str) -> str | None:
        """KIE's fresh URL for a result of a family that offers one (4o's download-url), else None."""
        ctx, task_id = self.ctx, job.kie_task_id
        sign = getattr(ctx.kie, "signed_download_url", None)
        if job.endpoint not in SIGNED_DOWNLOADS or task_id is None or sign is None:
            return None
        try:
            signed = await ctx.kie_call("download_url", lambda: sign(job.endpoint, task_id, url))
        except KieError as exc:
            if exc.retryable:
                raise RetryLater(f"download url: {exc.kind}") from None
            log.warning("result_signed_url_refused", extra={"job_id": job.id, "error_kind": exc.kind})
            return None
        return signed if isinstance(signed, str) and signed and signed != url else None

    async def _fetch(self, url: str, kind: str) -> bytes | None:
        """Only from where results live, of the model's kind (kie.download): a URL that is refused
        (a private address, a redirect out, an HTML page) is a result that cannot be had."""
        ctx = self.ctx
        try:
            return await ctx.kie_call("download", lambda: ctx.kie.download(
                url, RESULT_MAX_BYTES, kind=kind if kind in KINDS else "document", timeout=DOWNLOAD_TIMEOUT))
        except TooLarge:
            return None
        except DownloadRefused as exc:
            log.error("result_download_refused", extra={"error_text": exc.message})
            raise DeliveryFailed("download refused") from None
        except KieError as exc:
            if exc.retryable:
                raise RetryLater(f"download: {exc.kind}") from None
            raise DeliveryFailed(f"download: {exc.kind}") from None

    async def _send_result(self, job: Job, kind: str, index: int, data: bytes | None, url: str,
                           caption: str | None, keyboard: InlineKeyboardMarkup | None, lang: str,
                           parts: dict[str, Part], *, item: ResultItem | None = None,
                           thumbnail: bytes | None = None) -> None:
        """One result as the model's kind, each part recorded as it reaches the chat: a photo
        also as the original file, replying to it (Telegram recompresses photos); a kind Telegram
        refuses goes as a file; a file too big for Telegram (ours or its 413), as a link. An audio
        carries its title, its family as the performer and its cover (`thumbnail`) when it has them."""
        ctx = self.ctx
        bot, chat = ctx.bot, job.chat_id

        async def record(suffix: str, message: Message, file_id: str | None) -> Part:
            await jobs.record_part(ctx.database, ctx.name, ctx.epoch, job.id, f"{index}:{suffix}", reached=True,
                                   file_id=file_id, message_id=message.message_id)
            part = parts[f"{index}:{suffix}"] = Part(f"{index}:{suffix}", True, file_id, message.message_id)
            return part

        if data is None:
            await self._link(job, index, url, caption, keyboard, lang, "result_link", record)
            return
        name = file_name(job, url, kind)
        reply: int | None = None
        if kind == "photo":
            photo = parts.get(f"{index}:photo")
            if photo is None and len(data) <= PHOTO_MAX_BYTES:
                try:
                    sent = await bot.send_photo(chat, BufferedInputFile(data, name), caption=caption,
                                                request_timeout=SEND_TIMEOUT)
                    photo = await record("photo", sent, sent.photo[-1].file_id if sent.photo else None)
                except (TelegramBadRequest, TelegramEntityTooLarge) as exc:  # size, dimensions: the file alone
                    log.info("photo_refused", extra={"job_id": job.id, "error_text": exc.message})
            if photo is not None:
                caption, reply = None, photo.message_id
        elif kind in ("video", "audio"):
            try:
                if kind == "video":
                    sent = await bot.send_video(chat, BufferedInputFile(data, name), caption=caption,
                                                reply_markup=keyboard, supports_streaming=True,
                                                request_timeout=SEND_TIMEOUT)
                    if sent.video is not None:
                        await record("video", sent, sent.video.file_id)
                        return
                else:
                    title = (item.title or "").strip()[:TITLE_MAX] if item is not None else ""
                    seconds = item.duration if item is not None else None
                    sent = await bot.send_audio(
                        chat, BufferedInputFile(data, name), caption=caption, reply_markup=keyboard,
                        title=title or None, performer=PERFORMERS.get(job.endpoint),
                        duration=int(seconds + 0.5) if seconds and seconds > 0 else None,
                        thumbnail=BufferedInputFile(thumbnail, f"cover-{job.id}-{index}.jpg") if thumbnail else None,
                        request_timeout=SEND_TIMEOUT)
                    if sent.audio is not None:
                        await record("audio", sent, sent.audio.file_id)
                        return
                await record("document", sent, None)  # Telegram kept it as something else: it is there
                return
            except (TelegramBadRequest, TelegramEntityTooLarge) as exc:
                log.info("media_refused", extra={"job_id": job.id, "kind": kind, "error_text": exc.message})
        try:
            sent = await bot.send_document(
                chat, BufferedInputFile(data, name), caption=caption, reply_markup=keyboard,
                reply_parameters=None if reply is None else ReplyParameters(message_id=reply,
                                                                            allow_sending_without_reply=True),
                request_timeout=SEND_TIMEOUT)
        except (TelegramBadRequest, TelegramEntityTooLarge) as exc:
            log.info("document_refused", extra={"job_id": job.id, "error_text": exc.message})
            await self._link(job, index, url, caption, keyboard, lang,
                             "result_link" if too_big(exc) else "result_link_refused", record)
            return
        await record("document", sent, sent.document.file_id if sent.document else None)

    async def _link(self, job: Job, index: int, url: str, caption: str | None, keyboard: InlineKeyboardMarkup | None,
                    lang: str, key: str, record: Any) -> None:
        """The result as a link the user opens themselves; one they could not open is missing."""
        if not openable(url):
            raise DeliveryFailed("no link the user can open")
        text = (f"{caption}\n\n" if caption else "") + texts.t(lang, key, url=url)
        sent = await self.ctx.bot.send_message(job.chat_id, text, reply_markup=keyboard)
        await record("link", sent, None)


def summary(parts: dict[str, Part], count: int) -> list[dict[str, Any]]:
    """What of each result reached the chat, as kept in the job's result."""
    sent: list[dict[str, Any]] = []
    for index in range(count):
        mine = {key.split(":", 1)[1]: part for key, part in parts.items() if key.startswith(f"{index}:")}
        main = next((s for s in ("photo", "video", "audio", "document", "text", "link") if s in mine), None)
        if main is None:
            sent.append({"as": "missing", "file_id": None})
            continue
        entry: dict[str, Any] = {"as": main, "file_id": mine[main].file_id}
        if "document" in mine:
            entry["document_file_id"] = mine["document"].file_id
        sent.append(entry)
    return sent


def file_name(job: Job, url: str, kind: str) -> str:
    """The name a result file carries in the chat: the job and the extension of its URL."""
    path = urlsplit(url).path
    dot = path.rfind(".")
    extension = path[dot:].lower() if dot > path.rfind("/") and len(path) - dot <= 6 else ""
    if not extension[1:].isalnum():
        extension = {"photo": ".png", "video": ".mp4", "audio": ".mp3"}.get(kind, "")
    return f"result-{job.id}{extension}"


def text_results(result_object: object) -> list[dict[str, str]]:
    """A text result as messages to send: Suno's lyrics ([{title, text}], 2-3 variants), or one
    {"text": ...} or a bare string; each cut to TEXT_MAX characters (one message, a few KB kept)."""
    found = result_object if isinstance(result_object, list) else [result_object]
    out: list[dict[str, str]] = []
    for entry in found[:MAX_RESULTS]:
        if isinstance(entry, str):
            entry = {"text": entry}
        if not isinstance(entry, dict) or not isinstance(entry.get("text"), str) or not entry["text"].strip():
            continue
        text = entry["text"].strip()
        if len(text) > TEXT_MAX:
            text = text[:TEXT_MAX - 1].rstrip() + "…"
        title = entry.get("title")
        out.append({"title": title.strip()[:TITLE_MAX] if isinstance(title, str) else "", "text": text})
    return out


def stored_result(urls: list[str], kind: str, files: list[ResultItem], task_id: str | None,
                  words: Sequence[Mapping[str, str]]) -> dict[str, Any]:
    """What a job keeps of its result (jobs.result): the URLs, each file's details that actions
    name (Suno's audioId as ref, its title, cover and length), KIE's task id, a text result's
    words. Kept small: no lyrics of songs, titles cut."""
    result: dict[str, Any] = {"urls": urls, "kind": kind, "task_id": task_id, "items": [
        {"url": item.url, "title": item.title[:TITLE_MAX] if item.title else None, "cover": item.cover_url,
         "ref": item.ref, "duration": item.duration} for item in files]}
    if words:
        result["texts"] = [dict(w) for w in words]
    return result


def stored_items(result: Mapping[str, Any] | None) -> list[ResultItem]:
    """The files a job's kept result names, as items (a later step sends the rest with their titles)."""
    items: list[ResultItem] = []
    for entry in (result or {}).get("items") or []:
        if not isinstance(entry, dict) or not isinstance(entry.get("url"), str):
            return []  # not ours: the URLs alone
        duration = entry.get("duration")
        items.append(ResultItem(entry["url"], title=_text(entry.get("title")), cover_url=_text(entry.get("cover")),
                                ref=_text(entry.get("ref")),
                                duration=float(duration) if isinstance(duration, int | float) else None))
    return items


def stored_words(result: Mapping[str, Any] | None) -> list[dict[str, str]]:
    return text_results((result or {}).get("texts") or [])


def _text(value: object) -> str | None:
    return value if isinstance(value, str) else None


def jpeg_size(data: bytes) -> tuple[int, int] | None:
    """A JPEG's (width, height) from its frame header, or None when it is not a JPEG (no image
    library needed: Telegram takes only a JPEG thumbnail, and only its size is checked)."""
    if not data.startswith(b"\xff\xd8"):
        return None
    at = 2
    while at + 4 <= len(data):
        if data[at] != 0xFF:
            return None
        marker = data[at + 1]
        if marker == 0xFF:  # fill byte
            at += 1
            continue
        if marker in (0x01, *range(0xD0, 0xD8)):  # markers without a length
            at += 2
            continue
        length = int.from_bytes(data[at + 2:at + 4], "big")
        if length < 2:
            return None
        if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
            if at + 9 > len(data):
                return None
            height = int.from_bytes(data[at + 5:at + 7], "big")
            width = int.from_bytes(data[at + 7:at + 9], "big")
            return (width, height) if width and height else None
        if marker in (0xD9, 0xDA):  # the end, or the scan before any frame header
            return None
        at += 2 + length
    return None
