"""The end of a job: its result sent to the user, or an apology, and the money settled once.

Delivery progress is durable (store.job_parts.record_part): each part that reaches the chat (a
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

How one file goes into the chat is generation.sending; what a result is apart from the chat (kept,
read back, summed up) is generation.results.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta

from aiogram.exceptions import (
    TelegramAPIError,
    TelegramBadRequest,
    TelegramForbiddenError,
)
from aiogram.types import InlineKeyboardMarkup, Message

from actors.mailbox import describe
from bot import actions_kit, keyboards
from bot import delivery_texts as texts
from bot import texts as shop_texts
from catalog.model import Model
from generation.context import JobContext, log
from generation.errors import DeliveryFailed, RetryLater
from generation.results import (
    MAX_RESULTS,
    openable,
    reached,
    settled,
    stored_items,
    stored_result,
    stored_words,
    summary,
)
from generation.sending import Sender
from generation.status import StatusMessages
from generation.track import RETRY_LATER, Track
from ingest.send_gate import ActingRefused
from kie import ResultItem
from store import accounts, job_parts, jobs
from store.job_parts import Part
from store.jobs import Failed, Job, Outcome, Succeeded, TimedOut
from telemetry.metrics import METRICS

DELIVERY_TRIES = 5  # attempts to deliver (whatever failed) before what was sent stands
DELIVERY_GRACE = 600.0  # seconds past the job's own deadline a delivery may still take


class Deliverer:
    def __init__(self, ctx: JobContext, status: StatusMessages) -> None:
        self.ctx = ctx
        self.status = status
        self.tries = DELIVERY_TRIES
        self.retry_gap = RETRY_LATER  # seconds, times the failures so far
        self.grace = DELIVERY_GRACE
        self._chats: dict[int, tuple[asyncio.Lock, list[int]]] = {}
        self.sender = Sender(ctx)

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
        if "apology" not in await job_parts.parts(ctx.database, job.id):
            text = texts.failure(lang, job.failure or job.state, job.paid_with)
            try:
                sent = await ctx.bot.send_message(job.chat_id, text, reply_markup=texts.menu_keyboard(lang))
                await job_parts.record_part(ctx.database, ctx.name, ctx.epoch, job.id, "apology", reached=False,
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
        parts = await job_parts.parts(ctx.database, job.id)
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
                    await job_parts.record_part(ctx.database, ctx.name, ctx.epoch, job.id,
                                                f"{i}:{'link' if openable(shown[i]) else 'missing'}",
                                                reached=openable(shown[i]), message_id=sent.message_id)
                parts = await job_parts.parts(ctx.database, job.id)
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
        if part is not None and part in await job_parts.parts(ctx.database, job.id):
            return None
        try:
            sent = await ctx.bot.send_message(job.chat_id, text, reply_markup=keyboard)
        except ActingRefused:
            raise
        except Exception as exc:  # past the bound: the words are not worth another try
            log.warning("last_message_failed", extra={"job_id": job.id, "error_text": describe(exc)})
            return None
        if part is not None:
            await job_parts.record_part(ctx.database, ctx.name, ctx.epoch, job.id, part, reached=False,
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
        parts = await job_parts.parts(ctx.database, job.id)  # read under the chat's lock: no step raced it
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
                await self.sender.send_words(job, index, count, words[index], caption, keyboard if last else None, lang,
                                       parts)
                continue
            item = files[index]
            try:
                data = await self.sender.download(job, item.url, kind)
                thumbnail = await self.sender.thumbnail(job, item) if kind == "audio" and data is not None else None
                await self.sender.send_result(job, kind, index, data, item.url, caption, keyboard if last else None,
                                              lang, parts, item=item, thumbnail=thumbnail)
            except DeliveryFailed as exc:
                log.warning("result_missing", extra={"job_id": job.id, "index": index, "why": str(exc)})
                missing.append(index)
        return parts, missing

    async def _tell_missing(self, job: Job, model: Model | None, shown: list[str], missing: list[int],
                            parts: dict[str, Part], lang: str) -> None:
        """The results that cannot be had, named plainly (what did arrive is the user's)."""
        ctx = self.ctx
        text = "\n".join(texts.t(lang, "result_missing", n=i + 1, total=len(shown)) for i in missing)
        keyboard = self.result_keyboard(job, model, lang, len(shown)) if len(shown) - 1 in missing else None
        sent = await ctx.bot.send_message(job.chat_id, text, reply_markup=keyboard)
        for i in missing:
            await job_parts.record_part(ctx.database, ctx.name, ctx.epoch, job.id, f"{i}:missing", reached=False,
                                        message_id=sent.message_id)
            parts[f"{i}:missing"] = Part(f"{i}:missing", False, None, sent.message_id)
