"""webhook_setter: keeps Telegram's webhook pointing at us, with our secret, ACTIVE only.

Each cycle reads getWebhookInfo and calls setWebhook only when something differs (url,
allowed_updates, max_connections, or the secret, known by the hash kept in the database). A
cycle has a hard deadline; failures retry with exponential backoff and jitter; it re-verifies
every WEBHOOK_VERIFY_INTERVAL and at once on becoming ACTIVE. Nothing waits for it: start-up and
/health never block on Telegram.
"""

from __future__ import annotations

import hashlib
from typing import Any, ClassVar

from aiogram import Bot

from actors.backoff import Backoff
from actors.mailbox import Mailbox
from actors.roles import LeaderChore
from config import Settings
from store import webhook
from store.database import Database
from store.leader import lock_name
from telemetry import logs
from telemetry.metrics import METRICS

log = logs.get("webhook_setter")


class WebhookSetter(LeaderChore):
    default_deadline: ClassVar[float] = 10.0

    def __init__(self, mailbox: Mailbox, settings: Settings, database: Database, bot: Bot,
                 lock_keeper: Mailbox, allowed_updates: list[str], cycle_deadline: float = 5.0) -> None:
        super().__init__(mailbox, lock_keeper, cycle_deadline=cycle_deadline,
                         backoff=Backoff(min=1.0, max=min(300.0, settings.webhook_verify_interval), jitter=0.2))
        self.settings = settings
        self.database = database
        self.bot = bot
        self.allowed = sorted(allowed_updates)
        self.name_ = lock_name(settings.bot_id)
        self.secret_hash = hashlib.sha256(settings.webhook_secret.encode()).hexdigest()
        self.telegram: dict[str, Any] = {}
        self.sets = 0

    def period(self) -> float:
        return self.settings.webhook_verify_interval

    def succeeded(self) -> None:
        METRICS.webhook_ok.set(1)

    async def cycle(self) -> None:
        url = self.settings.webhook_url
        if url is None:
            raise OSError("no WEBHOOK_BASE_URL: nothing to set")
        info = await self.bot.get_webhook_info()
        self.telegram = {
            "url": info.url,
            "pending_update_count": info.pending_update_count,
            "last_error_date": info.last_error_date.timestamp() if info.last_error_date else None,
            "last_error_message": info.last_error_message,
            "max_connections": info.max_connections,
            "allowed_updates": info.allowed_updates,
        }
        METRICS.webhook_pending.set(info.pending_update_count)
        differs = []
        if info.url != url:
            differs.append("url")
        if sorted(info.allowed_updates or []) != self.allowed:
            differs.append("allowed_updates")
        if info.max_connections != self.settings.webhook_max_connections:
            differs.append("max_connections")
        if await webhook.last_secret_hash(self.database, self.name_) != self.secret_hash:
            differs.append("secret")
        if not differs:
            return
        if not self.settings.auto_set_webhook:
            raise OSError(f"webhook differs ({', '.join(differs)}) and AUTO_SET_WEBHOOK=0: not changing it")
        log.info("webhook_setting", extra={"differs": differs, "url": url})
        await self.bot.set_webhook(url, secret_token=self.settings.webhook_secret, allowed_updates=self.allowed,
                                   max_connections=self.settings.webhook_max_connections,
                                   drop_pending_updates=False)
        await webhook.record_set(self.database, self.name_, self.epoch, url, self.secret_hash, self.allowed,
                                 self.settings.webhook_max_connections)
        self.telegram.update(url=url, max_connections=self.settings.webhook_max_connections,
                             allowed_updates=self.allowed)  # what Telegram holds now, until the next read
        self.sets += 1
        METRICS.webhook_sets.inc()
        log.info("webhook_set", extra={"url": url, "epoch": self.epoch})

    def failed(self, error: str, retry_in: float) -> None:
        METRICS.webhook_ok.set(0)
        METRICS.webhook_errors.inc()
        log.warning("webhook_cycle_failed", extra={"error_text": error, "retry_in": round(retry_in, 2),
                                                   "failures": self.failures})

    async def on_stop(self) -> None:
        await self.bot.session.close()

    def health(self) -> dict[str, Any]:
        return {
            **self.chore_health(),
            "auto_set": self.settings.auto_set_webhook,
            "webhook_error": self.last_error if self.failures else None,  # what is wrong now
            "webhook_last_error": self.last_error,  # kept after recovery, for the operator
            "webhook_last_error_at": self.last_error_at,
            "sets": self.sets,
            "telegram": self.telegram,
        }
