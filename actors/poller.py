"""poller (BOT_MODE=polling): getUpdates long polling into the same inbox, ACTIVE only.

Telegram allows one getUpdates consumer per bot, so only the leader polls. An update is
confirmed (the next offset) only after its inbox commit, so a crash between the two refetches it
and the inbox key makes that a no-op. Raw JSON is kept as Telegram sent it: unknown fields and
update types pass through untouched.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any, ClassVar

import aiohttp
import asyncpg

from actors.actor import Actor, handles
from actors.backoff import Backoff
from actors.mailbox import Mailbox, describe
from actors.roles import ask_for_role
from config import Settings
from ingest import updates
from ingest.bot_api import ALLOWED_UPDATES
from messages.roles import Relinquish, Role, RoleChanged
from store import inbox
from store.database import DB_ERRORS, Database
from telemetry import logs, tracing
from telemetry.metrics import METRICS

log = logs.get("poller")

POLL_TIMEOUT = 25  # seconds Telegram holds an empty getUpdates open


class TelegramError(Exception):
    def __init__(self, status: int, description: str, retry_after: float | None = None) -> None:
        super().__init__(f"{status}: {description}")
        self.status = status
        self.retry_after = retry_after


class Poller(Actor):
    default_deadline: ClassVar[float] = 5.0

    def __init__(self, mailbox: Mailbox, settings: Settings, database: Database, lock_keeper: Mailbox,
                 wake: Callable[[], None], poll_timeout: int = POLL_TIMEOUT) -> None:
        super().__init__(mailbox)
        self.settings = settings
        self.database = database
        self.lock_keeper = lock_keeper
        self.wake = wake  # tells the dispatcher that updates were committed
        self.poll_timeout = poll_timeout
        self.role = Role.PASSIVE
        self.task: asyncio.Task[None] | None = None
        self.session: aiohttp.ClientSession | None = None
        self.offset: int | None = None
        self.backoff = Backoff(min=0.5, max=30.0, jitter=0.2)
        self.failures = 0
        self.received = 0
        self.refused = 0  # updates the database would not take even alone (logged, skipped)
        self.last_error: str | None = None
        base = settings.telegram_api_base.rstrip("/")
        self._url = f"{base}/bot{settings.telegram_bot_token}/"  # never logged: it holds the token

    async def on_start(self) -> None:
        self.session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=self.poll_timeout + 15))
        ask_for_role(self.lock_keeper)

    async def on_stop(self) -> None:
        await self._stop_polling()
        if self.session is not None:
            await self.session.close()

    @handles(RoleChanged, deadline=5.0)
    async def role_changed(self, msg: RoleChanged) -> None:
        self.role = msg.role
        if msg.role is Role.ACTIVE and self.task is None:
            self.task = self.spawn(self._poll(), "poll")  # if it dies, the poller fails and is restarted
        elif msg.role is not Role.ACTIVE:
            await self._stop_polling()

    @handles(Relinquish, deadline=5.0)
    async def relinquish(self, msg: Relinquish) -> bool:
        """lock_keeper lets the lock go: only the leader polls (Telegram allows one consumer)."""
        self.role = Role.PASSIVE
        await self._stop_polling()
        return True

    async def _stop_polling(self) -> None:
        task, self.task = self.task, None
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            log.info("polling_stopped")

    async def _call(self, method: str, params: dict[str, Any]) -> Any:
        assert self.session is not None
        async with self.session.post(self._url + method, json=params) as response:
            try:
                body = await response.json(content_type=None)
            except ValueError:
                raise TelegramError(response.status, "answer is not JSON") from None
        if not isinstance(body, dict) or not body.get("ok"):
            body = body if isinstance(body, dict) else {}
            retry = (body.get("parameters") or {}).get("retry_after")
            raise TelegramError(int(body.get("error_code") or response.status),
                                str(body.get("description") or "error"), retry)
        return body.get("result")

    async def _poll(self) -> None:
        log.info("polling_started", extra={"offset": self.offset})
        deleted = False
        while True:
            try:
                if not deleted:
                    await self._call("deleteWebhook", {"drop_pending_updates": False})
                    deleted = True
                params: dict[str, Any] = {"timeout": self.poll_timeout, "allowed_updates": ALLOWED_UPDATES}
                if self.offset is not None:
                    params["offset"] = self.offset
                result = await self._call("getUpdates", params)
                batch = [u for u in result if updates.is_update(u)]
                if batch:
                    rows = [updates.from_object(u) for u in batch]
                    new = await self._store(rows)
                    self.offset = max(r.update_id for r in rows) + 1  # confirmed by the next call only now
                    self.received += len(new)
                    METRICS.updates_received.labels("polling", "new").inc(len(new))
                    METRICS.updates_received.labels("polling", "duplicate").inc(len(rows) - len(new))
                    for row in rows:
                        tracing.emit("received", {"source": "polling", "kind": row.kind,
                                                  "new": row.update_id in new}, correlation_id=f"u{row.update_id}")
                    if new:
                        self.wake()
                self.failures, self.last_error = 0, None
            except (TelegramError, aiohttp.ClientError, *DB_ERRORS) as exc:
                self.failures += 1
                delay = self.backoff.delay(self.failures)
                if isinstance(exc, TelegramError) and exc.retry_after:
                    delay = max(delay, float(exc.retry_after))
                self.last_error = logs.redact(describe(exc))[:300]
                log.warning("poll_failed", extra={"error_text": self.last_error, "retry_in": round(delay, 2),
                                                  "failures": self.failures})
                await asyncio.sleep(delay)

    async def _store(self, rows: list[inbox.Incoming]) -> set[int]:
        """Append the batch; the update_ids that were new.

        When the database refuses the data itself (a DataError: it will refuse it again, unlike a
        connection error), each update is stored alone, and one it refuses even then is logged and
        counted and left behind: retrying it would stall every later update for ever.
        """
        bot_id, instance = self.settings.bot_id, self.settings.instance_id
        try:
            return await inbox.append_batch(self.database, bot_id, instance, rows)
        except asyncpg.DataError:
            pass
        new: set[int] = set()
        for row in rows:
            try:
                new |= await inbox.append_batch(self.database, bot_id, instance, [row])
            except asyncpg.DataError as exc:
                self.refused += 1
                log.error("poll_update_refused", extra={"update_id": row.update_id, "kind": row.kind,
                                                        "error_text": logs.redact(describe(exc))[:300]})
        return new

    def health(self) -> dict[str, Any]:
        return {"polling": self.task is not None and not self.task.done(), "offset": self.offset,
                "received": self.received, "refused": self.refused, "failures": self.failures,
                "poll_error": self.last_error}
