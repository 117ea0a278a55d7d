"""Outgoing Telegram rate limits, shared by every request of one Bot.

Telegram allows about 30 messages a second overall and about one a second per chat; past that
it answers 429 with retry_after and the whole bot should hold off, not only the request that
hit it. SendLimiter is an aiogram request middleware: sending methods take a token from a global
and a per-chat bucket first; a 429 pauses every request until retry_after has passed and the
request is tried again (up to MAX_RETRIES), so nothing is dropped for a flood wait. A 5xx answer
(Telegram's hiccup) is tried again too, after SERVER_ERROR_PAUSES, that request alone: giving up
at once left a user in silence when the reply and then its apology both met one (bench.soak,
seed 6). A send repeated after a 5xx that had gone through is a duplicate message, which the
at-least-once contract of the handlers already allows.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from aiogram import Bot
from aiogram.client.session.middlewares.base import BaseRequestMiddleware, NextRequestMiddlewareType
from aiogram.exceptions import TelegramRetryAfter, TelegramServerError
from aiogram.methods import TelegramMethod
from aiogram.methods.base import Response, TelegramType

from telemetry import logs
from telemetry.metrics import METRICS

log = logs.get("telegram")

MAX_RETRIES = 5
SERVER_ERROR_PAUSES = (0.5, 1.0, 2.0, 4.0)  # seconds before each retry of a 5xx answer (the last repeats)
MAX_PAUSE = 60.0  # a retry_after beyond this fails the request instead of stalling every chat
PER_CHAT_BURST = 3.0
MAX_CHAT_BUCKETS = 10_000
LIMITED_PREFIXES = ("send", "edit", "copy", "forward")  # what Telegram counts as messages
UNLIMITED = frozenset({"sendChatAction"})


class Bucket:
    """A token bucket by reservation: taking a token may drive it negative, and the caller waits
    until its reservation is covered, so waiters are served in arrival order without a lock."""

    __slots__ = ("burst", "rate", "stamp", "tokens")

    def __init__(self, rate: float, burst: float) -> None:
        self.rate = rate
        self.burst = burst
        self.tokens = burst
        self.stamp = time.monotonic()

    def reserve(self, now: float) -> float:
        """Takes one token; returns the seconds to wait before using it."""
        self.tokens = min(self.burst, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        self.tokens -= 1.0
        return 0.0 if self.tokens >= 0 else -self.tokens / self.rate

    def idle(self, now: float) -> bool:
        return self.tokens + (now - self.stamp) * self.rate >= self.burst


class SendLimiter(BaseRequestMiddleware):
    """Global and per-chat pacing plus a shared pause on 429 (rates of 0 turn pacing off)."""

    def __init__(self, rate_global: float, rate_per_chat: float, *, max_retries: int = MAX_RETRIES,
                 max_chats: int = MAX_CHAT_BUCKETS) -> None:
        self.global_bucket = Bucket(rate_global, max(1.0, rate_global)) if rate_global > 0 else None
        self.rate_per_chat = rate_per_chat
        self.max_retries = max_retries
        self.max_chats = max_chats
        self.chats: dict[Any, Bucket] = {}
        self.paused_until = 0.0

    async def __call__(self, make_request: NextRequestMiddlewareType[TelegramType], bot: Bot,
                       method: TelegramMethod[TelegramType]) -> Response[TelegramType]:
        name = type(method).__api_method__
        limited = name.startswith(LIMITED_PREFIXES) and name not in UNLIMITED
        attempt = 0
        while True:
            await self._wait_pause()
            if limited:
                await self._pace(getattr(method, "chat_id", None))
            try:
                return await make_request(bot, method)
            except TelegramRetryAfter as exc:
                attempt += 1
                if attempt > self.max_retries or exc.retry_after > MAX_PAUSE:
                    raise
                METRICS.telegram_retries.labels(name).inc()
                self.paused_until = max(self.paused_until, time.monotonic() + exc.retry_after)
                log.warning("telegram_retry_after", extra={"method": name, "retry_after": exc.retry_after,
                                                           "attempt": attempt})
            except TelegramServerError as exc:
                attempt += 1
                if attempt > self.max_retries:
                    raise
                pause = SERVER_ERROR_PAUSES[min(attempt, len(SERVER_ERROR_PAUSES)) - 1]
                log.warning("telegram_server_error_retry", extra={"method": name, "attempt": attempt,
                                                                  "pause": pause, "error_text": str(exc)[:200]})
                await asyncio.sleep(pause)

    async def _wait_pause(self) -> None:
        """Sleeps out the shared pause, again if another 429 extended it meanwhile."""
        for _ in range(self.max_retries + 1):
            left = self.paused_until - time.monotonic()
            if left <= 0:
                return
            await asyncio.sleep(left)

    async def _pace(self, chat_id: Any) -> None:
        now = time.monotonic()
        wait = 0.0
        if chat_id is not None and self.rate_per_chat > 0:
            bucket = self.chats.get(chat_id)
            if bucket is None:
                if len(self.chats) >= self.max_chats:
                    self.chats = {k: b for k, b in self.chats.items() if not b.idle(now)}
                bucket = self.chats[chat_id] = Bucket(self.rate_per_chat, PER_CHAT_BURST)
            wait = bucket.reserve(now)
        if wait > 0:
            await asyncio.sleep(wait)
            now = time.monotonic()
        if self.global_bucket is not None:
            wait = self.global_bucket.reserve(now)
            if wait > 0:
                await asyncio.sleep(wait)
