"""What every step of a job shares: the clients, the lease, the caches and the counters.

Why it exists: the steps (submit, follow, deliver) are modules of their own, yet each KIE call
and each Telegram request must be checked against the one lease the actor holds, every write
fenced by its current epoch, and every outcome counted in one place for /health. The actor
builds one JobContext and lends it to each step; a step never reaches into the actor.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TypeVar

from aiogram import Bot

from bot import delivery_texts as texts
from catalog.model import Catalog, Model
from config import Settings
from ingest.send_gate import ActingRefused
from kie import KieClient, KieError
from store import accounts, kie_account
from store.database import Database
from store.jobs import Job
from store.leader import lock_name
from telemetry import logs, tracing
from telemetry.metrics import METRICS

log = logs.get("kie_poller")
T = TypeVar("T")

HEAVY = 4  # file transfers at once (each up to a result's bound in memory)
DEFAULT_TIMEOUT = 900  # seconds, for a job whose model left the catalog
LANG_TTL = 5.0  # seconds a user's language is reused before it is read again (/language may change it)


@dataclass
class JobContext:
    """The actor's means, lent to its steps. `may_act` and `epoch` are read at each use: the
    lease and the epoch change under a running step."""

    settings: Settings
    database: Database
    bot: Bot
    kie: KieClient
    catalog: Catalog
    may_act: Callable[[], bool]
    epoch_of: Callable[[], int]
    heavy: asyncio.Semaphore = field(default_factory=lambda: asyncio.Semaphore(HEAVY))
    counts: dict[str, int] = field(default_factory=lambda: {
        "submitted": 0, "succeeded": 0, "failed": 0, "timed_out": 0, "told": 0, "orphaned": 0})
    langs: dict[int, tuple[str, float]] = field(default_factory=dict)  # user id -> (language, read at)
    paused: bool = False
    credits: int | None = None
    credits_checked: float = float("-inf")
    last_kie_error: str | None = None

    def __post_init__(self) -> None:
        self.bot_id = self.settings.bot_id
        self.name = lock_name(self.settings.bot_id)
        self.has_key = bool(self.settings.kie_api_key)

    @property
    def epoch(self) -> int:
        return self.epoch_of()

    def must_act(self) -> None:
        if not self.may_act():
            raise ActingRefused("not sent: this instance may not act now")

    def model(self, job: Job) -> Model | None:
        return self.catalog.model(job.model) if job.model in self.catalog else None

    def timeout_of(self, model: Model | None) -> int:
        return model.timeout_seconds if model is not None else DEFAULT_TIMEOUT

    async def kie_call(self, endpoint: str, call: Callable[[], Awaitable[T]]) -> T:
        """One KIE call, only within the lease, counted and timed by endpoint and outcome."""
        self.must_act()
        began = time.perf_counter()
        outcome = "ok"
        try:
            return await call()
        except KieError as exc:
            outcome = exc.kind
            self.last_kie_error = f"{endpoint}: {exc.kind}"
            raise
        except asyncio.CancelledError:
            outcome = "cancelled"
            raise
        finally:
            seconds = time.perf_counter() - began
            METRICS.kie_calls.labels(endpoint, outcome).inc()
            METRICS.kie_seconds.labels(endpoint).observe(seconds)
            tracing.emit(f"kie.{endpoint}", {"status": outcome, "ms": round(seconds * 1000, 1)})

    async def lang(self, user_id: int) -> str:
        """The user's language for our words: the one chosen with /language, else Telegram's
        (cached for LANG_TTL seconds, so a switch reaches a running job's next words soon)."""
        cached = self.langs.get(user_id)
        if cached is None or time.monotonic() - cached[1] > LANG_TTL:
            user = await accounts.get_user(self.database, self.bot_id, user_id)
            cached = texts.lang_of_code(user.speaks if user is not None else None), time.monotonic()
            if len(self.langs) > 10_000:
                self.langs.clear()
            self.langs[user_id] = cached
        return cached[0]

    async def pause(self) -> None:
        """KIE said 402: our credits are gone. New generations stop (the wizard reads the pause)."""
        if await kie_account.pause(self.database, self.name, self.epoch, self.bot_id,
                                   "KIE answered 402: our KIE credits ran out"):
            log.error("generations_paused", extra={"reason": "KIE answered 402"})
        self.paused = True
        METRICS.generations_paused.set(1)
        self.credits_checked = time.monotonic()  # ask for the balance again soon

    def saw_credits(self, credits: int) -> None:
        self.credits = credits
        METRICS.kie_credits.set(credits)
