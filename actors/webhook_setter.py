"""webhook_setter: keeps Telegram's webhook pointing at us, with our secret, ACTIVE only.

Each cycle reads getWebhookInfo and calls setWebhook only when something differs (url,
allowed_updates, max_connections, or the secret, known by the hash kept in the database). A
cycle has a hard deadline; failures retry with exponential backoff and jitter; it re-verifies
every WEBHOOK_VERIFY_INTERVAL and at once on becoming ACTIVE. Nothing waits for it: start-up and
/health never block on Telegram.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from typing import Any, ClassVar

from aiogram import Bot
from aiogram.exceptions import TelegramAPIError, TelegramNetworkError, TelegramRetryAfter

from actors.actor import Actor, handles
from actors.backoff import Backoff
from actors.mailbox import Mailbox
from actors.roles import ask_for_role
from config import Settings
from messages.control import Tick
from messages.roles import Relinquish, Role, RoleChanged
from store import webhook
from store.database import Database, DatabaseUnavailable
from store.fence import Fenced
from store.leader import lock_name
from telemetry import logs
from telemetry.metrics import METRICS

log = logs.get("webhook_setter")


class WebhookSetter(Actor):
    default_deadline: ClassVar[float] = 10.0

    def __init__(self, mailbox: Mailbox, settings: Settings, database: Database, bot: Bot,
                 lock_keeper: Mailbox, allowed_updates: list[str], cycle_deadline: float = 5.0) -> None:
        super().__init__(mailbox)
        self.settings = settings
        self.database = database
        self.bot = bot
        self.lock_keeper = lock_keeper
        self.allowed = sorted(allowed_updates)
        self.cycle_deadline = cycle_deadline
        self.name_ = lock_name(settings.bot_id)
        self.secret_hash = hashlib.sha256(settings.webhook_secret.encode()).hexdigest()
        self.backoff = Backoff(min=1.0, max=min(300.0, settings.webhook_verify_interval), jitter=0.2)
        self.role = Role.PASSIVE
        self.epoch = 0
        self.failures = 0
        self.next_attempt: float | None = None
        self.last_ok: float | None = None
        self.last_error: str | None = None
        self.last_error_at: float | None = None
        self.telegram: dict[str, Any] = {}
        self.sets = 0

    async def on_start(self) -> None:
        ask_for_role(self.lock_keeper)
        self.every(0.1, Tick("due"))  # fine-grained enough that a backoff is what sets the pace

    @handles(RoleChanged, deadline=1.0)
    async def role_changed(self, msg: RoleChanged) -> None:
        """Told after every heartbeat: only a new leadership (role or epoch) starts a verification."""
        if (msg.role, msg.epoch) == (self.role, self.epoch):
            return
        self.role, self.epoch = msg.role, msg.epoch
        if msg.role is Role.ACTIVE:
            self.failures = 0
            self.next_attempt = time.monotonic()  # verify at once
        else:
            self.next_attempt = None

    @handles(Relinquish, deadline=1.0)
    async def relinquish(self, msg: Relinquish) -> bool:
        self.role, self.next_attempt = Role.PASSIVE, None
        return True

    async def on_tick(self, msg: Tick) -> None:
        if self.role is not Role.ACTIVE or self.next_attempt is None or time.monotonic() < self.next_attempt:
            return
        try:
            async with asyncio.timeout(self.cycle_deadline):
                await self.cycle()
        except TimeoutError:
            self._failed(f"cycle exceeded its {self.cycle_deadline:g}s deadline")
        except TelegramRetryAfter as exc:
            self._failed(f"Telegram asked to retry after {exc.retry_after}s", at_least=float(exc.retry_after))
        except (TelegramAPIError, TelegramNetworkError, DatabaseUnavailable, OSError) as exc:
            self._failed(logs.redact(f"{type(exc).__name__}: {exc}")[:300])
        except Fenced as exc:
            self._failed(str(exc))
            self.role = Role.PASSIVE  # lock_keeper will say so too; stop acting now
        else:
            self.failures = 0
            self.last_ok = time.time()
            self.next_attempt = time.monotonic() + self.settings.webhook_verify_interval
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

    def _failed(self, error: str, at_least: float = 0.0) -> None:
        self.failures += 1
        delay = max(at_least, self.backoff.delay(self.failures))
        self.next_attempt = time.monotonic() + delay
        self.last_error, self.last_error_at = error, time.time()
        METRICS.webhook_ok.set(0)
        METRICS.webhook_errors.inc()
        log.warning("webhook_cycle_failed", extra={"error_text": error, "retry_in": round(delay, 2),
                                                   "failures": self.failures})

    async def on_stop(self) -> None:
        await self.bot.session.close()

    def health(self) -> dict[str, Any]:
        due = None if self.next_attempt is None else round(max(0.0, self.next_attempt - time.monotonic()), 2)
        return {
            "active": self.role is Role.ACTIVE,
            "auto_set": self.settings.auto_set_webhook,
            "last_ok_at": self.last_ok,
            "ok": self.last_ok is not None and self.failures == 0,
            "webhook_error": self.last_error if self.failures else None,  # what is wrong now
            "failures": self.failures,
            "webhook_last_error": self.last_error,  # kept after recovery, for the operator
            "webhook_last_error_at": self.last_error_at,
            "next_attempt_in_seconds": due,
            "sets": self.sets,
            "telegram": self.telegram,
        }
