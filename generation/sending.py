"""One result into the chat: fetched from where results live (bounded, a 4o result once more by
KIE's signed URL), then sent as the model's kind, each part recorded on the job as Telegram
answers it: a photo and its original as a file, a video, an audio with its title and cover, a
document, or a link when Telegram will not take the file; a text result as a message.

Kept apart from generation.deliver, which decides what is sent when and settles the money:
this is the how of one file, and the Telegram fallbacks it takes.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from aiogram.exceptions import TelegramBadRequest, TelegramEntityTooLarge
from aiogram.types import BufferedInputFile, InlineKeyboardMarkup, Message, ReplyParameters

from bot import delivery_texts as texts
from generation.context import JobContext, log
from generation.errors import DeliveryFailed, RetryLater
from generation.results import TITLE_MAX, file_name, jpeg_size, openable, too_big
from kie import KINDS, DownloadRefused, KieError, ResultItem, TooLarge
from store import job_parts
from store.job_parts import Part
from store.jobs import Job

# Telegram's limits are decimal and count the whole multipart request (Bot API: "50 MB" per
# upload, "10 MB" for a photo); ENVELOPE reserves room for the rest of the request (part
# headers, the file name, a caption of up to 1,024 characters, the reply markup).
ENVELOPE = 64 * 1024
RESULT_MAX_BYTES = 50_000_000 - ENVELOPE  # larger results go as a link
PHOTO_MAX_BYTES = 10_000_000 - ENVELOPE  # a larger picture goes as a file only
SEND_TIMEOUT = 120  # seconds for one upload of a result to Telegram
DOWNLOAD_TIMEOUT = 120.0
MESSAGE_MAX = 4096  # Telegram's limit for a message's text
THUMB_MAX_BYTES = 200_000  # Telegram's limit for an audio's thumbnail (a JPEG of at most 320 px a side)
THUMB_MAX_SIDE = 320
THUMB_TIMEOUT = 20.0
PERFORMERS = {"suno": "Suno"}  # the performer an audio of the family is sent with
SIGNED_DOWNLOADS = ("gpt4o",)  # families whose result a signed download URL (KieClient.signed_download_url) may save


class Sender:
    """The sending of one job's results, file by file (generation.deliver.Deliverer orders them)."""

    def __init__(self, ctx: JobContext) -> None:
        self.ctx = ctx

    async def send_words(self, job: Job, index: int, count: int, words: Mapping[str, str], caption: str | None,
                          keyboard: InlineKeyboardMarkup | None, lang: str, parts: dict[str, Part]) -> None:
        """One text result (a lyrics variant) as a message of its own, recorded as it reaches the chat."""
        ctx = self.ctx
        title = (words.get("title") or "").strip() or (texts.t(lang, "text_variant", n=index + 1) if count > 1 else "")
        body = "\n\n".join(piece for piece in (caption, f"📝 {title}" if title else "", words.get("text", "").strip())
                            if piece)
        sent = await ctx.bot.send_message(job.chat_id, body[:MESSAGE_MAX], reply_markup=keyboard)
        await job_parts.record_part(ctx.database, ctx.name, ctx.epoch, job.id, f"{index}:text", reached=True,
                                    message_id=sent.message_id)
        parts[f"{index}:text"] = Part(f"{index}:text", True, None, sent.message_id)

    async def thumbnail(self, job: Job, item: ResultItem) -> bytes | None:
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

    async def download(self, job: Job, url: str, kind: str) -> bytes | None:
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

    async def send_result(self, job: Job, kind: str, index: int, data: bytes | None, url: str,
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
            await job_parts.record_part(ctx.database, ctx.name, ctx.epoch, job.id, f"{index}:{suffix}", reached=True,
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
