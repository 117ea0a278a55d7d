"""A job's input as KIE takes it: each file the user sent fetched through the Bot API and uploaded
to KIE's file service (a Telegram file URL holds the bot token and never leaves this process),
each earlier job it builds on replaced by that job's task id, each typed text to speak replaced by
the URL of its speech (generation/speech.py: a task of its own, made first, in the same job).

An audio or video file's length is measured from its bytes before it goes anywhere: Telegram's
`duration` is what the sender's client declared, and the price per second was computed from it.
A file longer than what was priced (beyond Telegram's rounding to whole seconds) or than the
field takes, or one whose length cannot be read where the price or a limit depends on it, ends
the job released before KIE sees it (KIE would bill the real length).
"""

from __future__ import annotations

import asyncio
import functools
import mimetypes
from typing import Any

import aiohttp
from aiogram.exceptions import TelegramAPIError, TelegramBadRequest, TelegramNetworkError

from catalog import payload
from catalog.model import Field, Model
from generation.context import JobContext, log
from generation.errors import InputUnavailable, RetryLater
from generation.speech import Speech
from generation.track import Track
from ingest.media_length import measure_seconds
from store import jobs
from store.jobs import Job

INPUT_MAX_BYTES = 20 * 1024 * 1024  # what the Bot API lets a bot download
ROUNDING = 1.0  # seconds: Telegram declares whole seconds, rounded either way by the sender's client
MEASURED = ("audio", "video")  # field kinds whose files play for a length


class Inputs:
    def __init__(self, ctx: JobContext) -> None:
        self.ctx = ctx
        self.speech = Speech(ctx)

    async def resolve(self, job: Job, track: Track) -> dict[str, Any]:
        """The input with every reference replaced; InputUnavailable or RetryLater otherwise."""
        ctx = self.ctx
        model = ctx.model(job)
        if model is not None:
            for field in model.fields:
                if field.kind in MEASURED and field.name in job.input:
                    await self._measured(job, track, model, field)
        for ref in payload.file_refs(job.input):
            if ref["tg_file_id"] not in track.uploads:
                async with ctx.heavy:
                    await self._upload(job, track, ref, await self.telegram_file(ref))
        task_ids: dict[int, str] = {}
        for other_id in payload.job_refs(job.input):
            other = await jobs.job(ctx.database, other_id)
            if other is None or other.bot_id != job.bot_id or other.user_id != job.user_id or not other.kie_task_id:
                raise InputUnavailable(f"job {other_id} has no task this user may use")
            task_ids[other_id] = other.kie_task_id
        spoken = await self.speech.urls(job, track)  # last: the user's files are checked before it is made
        try:
            return payload.resolve(job.input, track.uploads, task_ids, spoken)
        except KeyError as exc:
            raise InputUnavailable(f"an unresolved reference: {exc}") from None

    async def _upload(self, job: Job, track: Track, ref: payload.FileRef, data: bytes) -> None:
        ctx = self.ctx
        name = f"job{job.id}-{len(track.uploads) + 1}{mimetypes.guess_extension(ref['mime']) or ''}"
        upload = await ctx.kie_call("upload", functools.partial(ctx.kie.upload, data, name, ref["mime"]))
        track.uploads[ref["tg_file_id"]] = upload.file_url

    async def _measured(self, job: Job, track: Track, model: Model, field: Field) -> None:
        """Each file of an audio or video field measured (then uploaded, so a file is fetched once);
        InputUnavailable with reason input_too_long or input_unmeasurable when it must not go on."""
        value = job.input[field.name]
        refs = [r for r in (value if isinstance(value, list) else [value]) if payload.is_file_ref(r)]
        metered = any(sku.unit == "second" and sku.of == field.name for sku in model.skus)
        declared = [r["seconds"] for r in refs if r["seconds"] is not None]
        total = 0.0
        for ref in refs:
            file_id = ref["tg_file_id"]
            seconds = track.measured.get(file_id)
            if seconds is None:
                async with self.ctx.heavy:
                    seconds = await self._measure_and_upload(job, track, model, field, ref, metered)
            total += seconds
        priced = sum(declared)
        if metered and total > priced + ROUNDING * max(len(refs), 1):
            log.warning("input_longer_than_priced", extra={"job_id": job.id, "field": field.name,
                                                           "measured": round(total, 2), "priced": priced})
            raise InputUnavailable(f"{field.name}: {total:.1f} s measured, {priced:g} s priced", "input_too_long")

    async def _measure_and_upload(self, job: Job, track: Track, model: Model, field: Field, ref: payload.FileRef,
                                  metered: bool) -> float:
        file_id = ref["tg_file_id"]
        data = await self.telegram_file(ref)
        seconds = await measure_seconds(data, ref["mime"])
        if seconds is None:
            if metered or field.max_seconds is not None:
                raise InputUnavailable(f"{field.name}: the length of a {ref['mime']} file cannot be read",
                                       "input_unmeasurable")
            seconds = 0.0  # nothing depends on its length
        if field.max_seconds is not None and seconds > field.max_seconds + ROUNDING:
            raise InputUnavailable(f"{field.name}: {seconds:.1f} s, the field takes {field.max_seconds:g} s",
                                   "input_too_long")
        track.measured[file_id] = seconds
        if file_id not in track.uploads:
            await self._upload(job, track, ref, data)
        return seconds

    async def telegram_file(self, ref: payload.FileRef) -> bytes:
        """A user's file through the Bot API, at most INPUT_MAX_BYTES. Errors never repeat the
        download URL: it holds the bot token."""
        bot = self.ctx.bot
        if ref["bytes"] > INPUT_MAX_BYTES:
            raise InputUnavailable(f"{ref['bytes']} bytes, over the Bot API's download limit")
        try:
            info = await bot.get_file(ref["tg_file_id"])
        except TelegramBadRequest as exc:
            raise InputUnavailable(f"getFile refused: {exc.message}") from None
        except TelegramNetworkError as exc:
            raise RetryLater("getFile failed") from exc
        except TelegramAPIError as exc:
            raise RetryLater(f"getFile: {type(exc).__name__}") from None
        if not info.file_path or (info.file_size or 0) > INPUT_MAX_BYTES:
            raise InputUnavailable("the file is not downloadable through the Bot API")
        self.ctx.must_act()
        url = bot.session.api.file_url(bot.token, info.file_path)
        chunks: list[bytes] = []
        size = 0
        try:
            async with asyncio.timeout(60):
                async for chunk in bot.session.stream_content(url=url, timeout=60, chunk_size=65536,
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
