"""A job's input as KIE takes it: each file the user sent fetched through the Bot API and uploaded
to KIE's file service (a Telegram file URL holds the bot token and never leaves this process),
each earlier job it builds on replaced by that job's task id."""

from __future__ import annotations

import asyncio
import functools
import mimetypes
from typing import Any

import aiohttp
from aiogram.exceptions import TelegramAPIError, TelegramBadRequest, TelegramNetworkError

from catalog import payload
from generation.context import JobContext
from generation.errors import InputUnavailable, RetryLater
from generation.track import Track
from store import jobs
from store.jobs import Job

INPUT_MAX_BYTES = 20 * 1024 * 1024  # what the Bot API lets a bot download


class Inputs:
    def __init__(self, ctx: JobContext) -> None:
        self.ctx = ctx

    async def resolve(self, job: Job, track: Track) -> dict[str, Any]:
        """The input with every reference replaced; InputUnavailable or RetryLater otherwise."""
        ctx = self.ctx
        for ref in payload.file_refs(job.input):
            file_id = ref["tg_file_id"]
            if file_id in track.uploads:
                continue
            async with ctx.heavy:
                data = await self.telegram_file(ref)
                name = f"job{job.id}-{len(track.uploads) + 1}{mimetypes.guess_extension(ref['mime']) or ''}"
                upload = await ctx.kie_call("upload", functools.partial(ctx.kie.upload, data, name, ref["mime"]))
            track.uploads[file_id] = upload.file_url
        task_ids: dict[int, str] = {}
        for other_id in payload.job_refs(job.input):
            other = await jobs.job(ctx.database, other_id)
            if other is None or other.bot_id != job.bot_id or other.user_id != job.user_id or not other.kie_task_id:
                raise InputUnavailable(f"job {other_id} has no task this user may use")
            task_ids[other_id] = other.kie_task_id
        try:
            return payload.resolve(job.input, track.uploads, task_ids)
        except KeyError as exc:
            raise InputUnavailable(f"an unresolved reference: {exc}") from None

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
