"""A job's status message, shown once whatever cuts the update short (issue 19's stuck "queued").

The wizard sends the message after Confirm's commit and records it on the job for the jobs actor
to edit. Sending and recording are two steps: a deadline (UPDATE_DEADLINE, then the update runs
again) or a cancelled handler between them left a message nobody recorded, and the run after it
sent and recorded another, so the first stayed "accepted, queueing" for ever. Here the two steps
run shielded from the handler's cancellation, and a message is recorded only when the job has
none: a twin that lost (a replay that raced the first run) deletes its own message, so every
status message in the chat is the job's one, and the jobs actor gives it its last word.
"""

from __future__ import annotations

import asyncio

from aiogram import Bot
from aiogram.exceptions import TelegramAPIError

from store import jobs
from store.database import Database
from telemetry import logs

log = logs.get("bot")
_RUNNING: set[asyncio.Task[None]] = set()  # shielded sends still going after their handler was cut short


async def show(bot: Bot, database: Database, lock_name: str, epoch: int, job: jobs.Job, text: str) -> None:
    """Send `text` as the job's status message and record it, unless one is recorded already."""
    if job.status_message_id is not None:
        return
    task = asyncio.ensure_future(_send_and_record(bot, database, lock_name, epoch, job, text))
    _RUNNING.add(task)
    task.add_done_callback(_finished)
    await asyncio.shield(task)


async def _send_and_record(bot: Bot, database: Database, lock_name: str, epoch: int, job: jobs.Job,
                           text: str) -> None:
    sent = await bot.send_message(job.chat_id, text)
    step = await jobs.set_status_message(database, lock_name, epoch, job.id, sent.message_id, only_if_none=True)
    if step.changed or step.job.status_message_id == sent.message_id:
        return
    try:  # a twin recorded its message first: ours would never be edited
        await bot.delete_message(job.chat_id, sent.message_id)
    except TelegramAPIError as exc:
        log.info("status_twin_not_deleted", extra={"job_id": job.id, "error_text": exc.message})


def _finished(task: asyncio.Task[None]) -> None:
    """A shielded send whose handler was gone: its failure is logged, never lost silently."""
    _RUNNING.discard(task)
    if not task.cancelled() and task.exception() is not None:
        log.warning("status_message_failed", extra={"error_text": repr(task.exception())[:300]})
