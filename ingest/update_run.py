"""One update's run through aiogram, its outcome sorted: "done", "failed for good" (an apology
with a reference, an update_failed line) or "run again" (RunAgain: no apology, no done mark),
and its metrics and trace. Apart from actors/dispatcher.py, which decides which update runs
when; like ingest/dispatch_flood.py, a mixin that holds no state of its own (the dispatcher's
__init__ makes what it declares)."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

from aiogram import Bot, Dispatcher
from aiogram.exceptions import TelegramAPIError, TelegramNetworkError
from aiogram.types import Update

from actors.mailbox import Mailbox, describe
from bot import keyboards, texts
from config import Settings
from ingest.bot_api import ALLOWED_UPDATES
from ingest.send_gate import ActingRefused
from ingest.turns import Turns
from messages.roles import EpochRefused
from store.database import DB_UNAVAILABLE
from store.fence import Fenced, counting_commits
from store.inbox import Claimed
from telemetry import logs, tracing
from telemetry.metrics import METRICS

log = logs.get("dispatcher")

HANDLED = frozenset(ALLOWED_UPDATES)  # what we ask Telegram for is what has handlers; the rest is skipped
MAX_RUNS_UNAVAILABLE = 40  # the database unreachable this many runs in a row (minutes): failed for good
MAX_RUNS_AFTER_INTENT = 3  # a deadline after a committed intent this many times: failed for good


def _first_error(exc: Exception) -> str:
    """The first problem of a refused update, short: which field and why."""
    errors = getattr(exc, "errors", None)
    if callable(errors):
        try:
            first = errors()[0]
            return f"{'.'.join(str(p) for p in first.get('loc', ()))}: {first.get('msg', '')}"[:200]
        except (IndexError, TypeError, ValueError):
            pass
    return describe(exc)[:200]


class RunAgain(Exception):
    """The update must run again later: no apology, no done mark."""


class UpdateRun:
    """Mixed into UpdateDispatcher (before Actor): running one claimed update."""

    settings: Settings
    bot: Bot
    dp: Dispatcher
    turns: Turns
    epoch: int
    runs: dict[int, int]  # update_id -> runs that ended in "run again"
    pre_answered: set[int]
    handled: int
    failed: int
    mailbox: Mailbox

    async def _handle(self, claimed: Claimed) -> str:
        started = time.perf_counter()
        cid = f"u{claimed.update_id}"
        token = logs.correlation_id.set(cid)
        tracing.emit("handler_start", {"kind": claimed.kind, "attempts": claimed.attempts})
        outcome = "cancelled"
        try:
            if claimed.kind not in HANDLED:
                outcome = "skipped"
            else:
                outcome = await self._feed(claimed, cid)
        finally:
            tracing.emit("handler_end", {"outcome": outcome,
                                         "ms": round((time.perf_counter() - started) * 1000, 1)})
            logs.correlation_id.reset(token)
        if outcome == "again":
            METRICS.updates_handled.labels(claimed.kind, "again").inc()
            return outcome
        METRICS.updates_handled.labels(claimed.kind if claimed.kind in HANDLED else "other", outcome).inc()
        METRICS.update_seconds.labels(claimed.kind if claimed.kind in HANDLED else "other").observe(
            time.perf_counter() - started)
        self.handled += 1
        return outcome

    async def _feed(self, claimed: Claimed, cid: str) -> str:
        raw: dict[str, Any] = {}
        try:
            raw = json.loads(claimed.payload)
            update = Update.model_validate(raw, context={"bot": self.bot})
        except (ValueError, RecursionError) as exc:  # pydantic's ValidationError is a ValueError
            # not an update Telegram sends: only someone holding the secret can post it, so no apology
            # goes to whatever chat it names, and one warning line says why
            log.warning("update_invalid", extra={"update_id": claimed.update_id, "kind": claimed.kind,
                                                 "error_text": _first_error(exc)})
            return "invalid"
        try:
            await self._run(claimed, update)
            return "ok"
        except RunAgain as again:
            log.warning("update_runs_again", extra={"update_id": claimed.update_id, "kind": claimed.kind,
                                                    "reason": str(again), "runs": self.runs.get(claimed.update_id)})
            return "again"
        except TimeoutError:
            reason, error = "deadline", f"no result within {self.settings.update_deadline:g}s"
        except Exception as exc:
            reason, error = "error", describe(exc)
        self.failed += 1
        log.error("update_failed", extra={"update_id": claimed.update_id, "kind": claimed.kind, "reason": reason,
                                          "error_text": logs.redact(error)[:500], "attempts": claimed.attempts})
        await self._apologise(claimed, raw, cid)
        return reason

    async def _run(self, claimed: Claimed, update: Update) -> None:
        """One run through aiogram, its outcome sorted: returns (done), raises RunAgain, or raises
        what makes it failed for good (the deadline's TimeoutError, the handler's error)."""
        runs = self.runs.get(claimed.update_id, 0) + 1
        timer = asyncio.timeout(self.settings.update_deadline)
        with counting_commits() as intents:
            try:
                async with timer, self.turns.turn():
                    await self.dp.feed_update(self.bot, update, pre_answered=claimed.update_id in self.pre_answered,
                                              fence_epoch=self.epoch)
                return
            except (ActingRefused, Fenced) as exc:
                if isinstance(exc, Fenced):  # not ours to act on any more: stop, the next leader runs it
                    self.mailbox.tell_nowait(EpochRefused(self.epoch))
                self.runs[claimed.update_id] = runs
                raise RunAgain(describe(exc)) from exc
            except DB_UNAVAILABLE as exc:
                if timer.expired():
                    if intents and runs <= MAX_RUNS_AFTER_INTENT:  # its intent stands: carry on from it
                        self.runs[claimed.update_id] = runs
                        raise RunAgain(f"deadline after {len(intents)} fenced commit(s)") from exc
                    raise TimeoutError("deadline") from exc
                if runs <= MAX_RUNS_UNAVAILABLE:
                    self.runs[claimed.update_id] = runs
                    raise RunAgain(describe(exc)) from exc
                raise

    async def _apologise(self, claimed: Claimed, raw: dict[str, Any], cid: str) -> None:
        """A user is never left in silence: a short apology with the reference and a Menu button."""
        body = raw.get(claimed.kind) if isinstance(raw, dict) else None
        if claimed.chat_key is None or claimed.kind not in ("message", "callback_query") or not isinstance(body, dict):
            return
        lang = texts.lang_of(body.get("from"))
        try:
            async with asyncio.timeout(10):
                await self.bot.send_message(claimed.chat_key, texts.t(lang, "apology", ref=cid),
                                            reply_markup=keyboards.menu_button(lang))
        except (TelegramAPIError, TelegramNetworkError, ActingRefused, TimeoutError) as exc:
            log.warning("apology_failed", extra={"update_id": claimed.update_id, "error_text": describe(exc)})
