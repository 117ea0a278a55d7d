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

from collections.abc import Callable, Sequence
from typing import Any, ClassVar

from aiogram import Bot
from aiogram.types import BotCommand

from actors.backoff import Backoff
from actors.mailbox import Mailbox
from actors.roles import LeaderChore
from bot.first_screen import Profile
from telemetry import logs

log = logs.get("profile_setter")

VERIFY_EVERY = 6 * 3600.0  # seconds between two reads of a profile that was right


class ProfileSetter(LeaderChore):
    default_deadline: ClassVar[float] = 30.0

    def __init__(self, mailbox: Mailbox, bot: Bot, lock_keeper: Mailbox, profiles: Callable[[], Sequence[Profile]],
                 cycle_deadline: float = 10.0, backoff: Backoff | None = None) -> None:
        super().__init__(mailbox, lock_keeper, cycle_deadline=cycle_deadline,
                         backoff=backoff or Backoff(min=1.0, max=300.0, jitter=0.2))
        self.bot = bot
        self.profiles = profiles
        self.sets: dict[str, int] = {"commands": 0, "description": 0, "short_description": 0}

    def period(self) -> float:
        return VERIFY_EVERY

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

    def failed(self, error: str, retry_in: float) -> None:
        log.warning("bot_profile_failed", extra={"error_text": error, "retry_in": round(retry_in, 2),
                                                 "failures": self.failures})

    async def on_stop(self) -> None:
        await self.bot.session.close()

    def health(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            **self.chore_health(),
            "profile_error": self.last_error if self.failures else None,  # what is wrong now
            "profile_last_error": self.last_error,  # kept after recovery, for the operator
            "profile_last_error_at": self.last_error_at,
            "sets": dict(self.sets),
        }
        return body
