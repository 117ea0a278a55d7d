"""profile_setter: keeps the bot's profile in Telegram right — its command list (the "/" menu),
description ("What can this bot do?" in an empty chat) and short description (the profile page),
in Russian for everyone and in English for English users — ACTIVE only.

On becoming ACTIVE it reads each of them back (getMyCommands, getMyDescription,
getMyShortDescription per language) and sets only what differs: Telegram rate-limits the setters,
so an unchanged profile is never set again, whatever the number of restarts. A cycle has a hard
deadline; a failure (a 429 with its retry_after, a 5xx, a hang) retries with exponential backoff
and jitter; it is looked at again every VERIFY_EVERY (someone may change it in @BotFather).
Nothing waits for it: the leader's work and /health never block on it.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from typing import Any, ClassVar

from aiogram import Bot
from aiogram.exceptions import TelegramAPIError, TelegramNetworkError, TelegramRetryAfter
from aiogram.types import BotCommand

from actors.actor import Actor, handles
from actors.backoff import Backoff
from actors.mailbox import Mailbox
from actors.roles import ask_for_role
from bot.first_screen import Profile
from messages.control import Tick
from messages.roles import Relinquish, Role, RoleChanged
from telemetry import logs

log = logs.get("profile_setter")

VERIFY_EVERY = 6 * 3600.0  # seconds between two reads of a profile that was right
FAILURES_SHOWN = 3  # failures in a row past which /health warns (a profile is not worth a page before)


class ProfileSetter(Actor):
    default_deadline: ClassVar[float] = 30.0

    def __init__(self, mailbox: Mailbox, bot: Bot, lock_keeper: Mailbox, profiles: Callable[[], Sequence[Profile]],
                 cycle_deadline: float = 10.0, backoff: Backoff | None = None) -> None:
        super().__init__(mailbox)
        self.bot = bot
        self.lock_keeper = lock_keeper
        self.profiles = profiles
        self.cycle_deadline = cycle_deadline
        self.backoff = backoff or Backoff(min=1.0, max=300.0, jitter=0.2)
        self.role = Role.PASSIVE
        self.epoch = 0
        self.failures = 0
        self.next_attempt: float | None = None
        self.last_ok: float | None = None
        self.last_error: str | None = None
        self.last_error_at: float | None = None
        self.sets: dict[str, int] = {"commands": 0, "description": 0, "short_description": 0}

    async def on_start(self) -> None:
        ask_for_role(self.lock_keeper)
        self.every(0.1, Tick("due"))  # fine-grained enough that a backoff is what sets the pace

    @handles(RoleChanged, deadline=1.0)
    async def role_changed(self, msg: RoleChanged) -> None:
        """Told after every heartbeat: only a new leadership (role or epoch) starts a look."""
        if (msg.role, msg.epoch) == (self.role, self.epoch):
            return
        self.role, self.epoch = msg.role, msg.epoch
        if msg.role is Role.ACTIVE:
            self.failures = 0
            self.next_attempt = time.monotonic()
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
        except (TelegramAPIError, TelegramNetworkError, OSError) as exc:
            self._failed(logs.redact(f"{type(exc).__name__}: {exc}")[:300])
        else:
            self.failures = 0
            self.last_ok = time.time()
            self.next_attempt = time.monotonic() + VERIFY_EVERY

    async def cycle(self) -> None:
        """Each language's commands, description and short description: read, and set when they differ."""
        for profile in self.profiles():
            code = profile.language_code or None  # "": everyone without a language of their own
            commands = [(c.command, c.description) for c in await self.bot.get_my_commands(language_code=code)]
            if commands != list(profile.commands):
                await self.bot.set_my_commands([BotCommand(command=c, description=d) for c, d in profile.commands],
                                               language_code=code)
                self._set("commands", profile.language_code)
            if (await self.bot.get_my_description(language_code=code)).description != profile.description:
                await self.bot.set_my_description(profile.description, language_code=code)
                self._set("description", profile.language_code)
            short = (await self.bot.get_my_short_description(language_code=code)).short_description
            if short != profile.short_description:
                await self.bot.set_my_short_description(profile.short_description, language_code=code)
                self._set("short_description", profile.language_code)

    def _set(self, what: str, language_code: str) -> None:
        self.sets[what] += 1
        log.info("bot_profile_set", extra={"what": what, "language_code": language_code or "default",
                                           "epoch": self.epoch})

    def _failed(self, error: str, at_least: float = 0.0) -> None:
        self.failures += 1
        delay = max(at_least, self.backoff.delay(self.failures))
        self.next_attempt = time.monotonic() + delay
        self.last_error, self.last_error_at = error, time.time()
        log.warning("bot_profile_failed", extra={"error_text": error, "retry_in": round(delay, 2),
                                                 "failures": self.failures})

    async def on_stop(self) -> None:
        await self.bot.session.close()

    def health(self) -> dict[str, Any]:
        due = None if self.next_attempt is None else round(max(0.0, self.next_attempt - time.monotonic()), 2)
        body: dict[str, Any] = {
            "active": self.role is Role.ACTIVE,
            "ok": self.last_ok is not None and self.failures == 0,
            "last_ok_at": self.last_ok,
            "failures": self.failures,
            "profile_error": self.last_error if self.failures else None,  # what is wrong now
            "profile_last_error": self.last_error,  # kept after recovery, for the operator
            "profile_last_error_at": self.last_error_at,
            "next_attempt_in_seconds": due,
            "sets": dict(self.sets),
        }
        if self.failures >= FAILURES_SHOWN:
            body["problems"] = [f"the bot's profile (commands, descriptions) failed {self.failures} times: "
                                f"{self.last_error}"]
        return body
