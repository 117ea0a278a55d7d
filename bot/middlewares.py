"""Update middlewares that hold for every handler, so no handler can forget them."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from aiogram import BaseMiddleware, Bot
from aiogram.exceptions import TelegramAPIError, TelegramNetworkError
from aiogram.fsm.context import FSMContext
from aiogram.fsm.middleware import FSMContextMiddleware
from aiogram.fsm.storage.base import DEFAULT_DESTINY
from aiogram.types import CallbackQuery, Message, TelegramObject, Update

from bot.flow import Wiz, Wizard
from bot.fsm_cache import CachedStorage
from bot.fsm_storage import forget
from bot.services import Services
from bot.texts import CHOSEN, choose, lang_of, t
from ingest.turns import away
from store import accounts
from telemetry import logs

log = logs.get("bot")

SEEN_EVERY = timedelta(hours=1)

Handler = Callable[[TelegramObject, dict[str, Any]], Awaitable[Any]]


class AnswerCallbackFirst(BaseMiddleware):
    """Every callback query is answered exactly once, whatever its handler does: the handler may
    answer it with a toast (`toast` in the handler data: True when shown), otherwise it is
    answered empty when the handler ends, fails, or has run for `patience` seconds, so a slow or
    failing handler cannot leave the button spinning and a second answer never earns an error.

    The dispatcher answers a query that had to wait behind its chat early and says so with
    `pre_answered`: then no toast is possible (`toast` returns False, the handler shows its notice
    on the screen instead) and nothing is answered here.
    """

    def __init__(self, patience: float = 1.0) -> None:
        self.patience = patience

    async def __call__(self, handler: Handler, event: TelegramObject, data: dict[str, Any]) -> Any:
        query = event.callback_query if isinstance(event, Update) else event
        if not isinstance(query, CallbackQuery):
            return await handler(event, data)
        answer = _Answer(query, given=bool(data.get("pre_answered")))
        data["toast"] = answer.toast
        if not answer.given:
            answer.timer = asyncio.create_task(answer.after(self.patience))
        try:
            result = await handler(event, data)
        except BaseException:
            # what unwinds (a stop's cancellation, the deadline, the handler's error) goes on
            # unchanged: an answer refused on the way out (the send gate, once the lease is lost)
            # once replaced a stop's cancel, and the dispatcher took the update for "run again"
            try:
                await answer.close()
            except Exception as exc:
                error = logs.redact(f"{type(exc).__name__}: {exc}")[:200]
                log.info("callback_answer_failed", extra={"error_text": error})
            raise
        await answer.close()
        return result


TOAST_LIMIT = 200  # characters Telegram shows in a callback answer


class _Answer:
    """One callback query's single answer: a toast from the handler, or empty (late or at the end)."""

    def __init__(self, query: CallbackQuery, *, given: bool) -> None:
        self.query, self.given = query, given
        self.timer: asyncio.Task[None] | None = None

    async def toast(self, text: str) -> bool:
        """Answer with `text` shown over the chat; False when the query was answered already."""
        if self.given:
            return False
        self.given = True
        if self.timer is not None:
            self.timer.cancel()
        if await self._send(text[:TOAST_LIMIT]):
            return True
        await self._send(None)  # refused with its text: the spinner still stops, the caller shows it on screen
        return False

    async def after(self, patience: float) -> None:
        await asyncio.sleep(patience)
        if not self.given:
            self.given = True
            await self._send(None)

    async def close(self) -> None:
        if not self.given:
            self.given = True
            if self.timer is not None:
                self.timer.cancel()
            await self._send(None)
        if self.timer is not None:  # an answer the timer began is finished, not cut off
            await asyncio.wait({self.timer})

    async def _send(self, text: str | None) -> bool:
        try:
            await self.query.answer(text)
            return True
        except (TelegramAPIError, TelegramNetworkError) as exc:  # too old, or Telegram hiccup
            log.info("callback_answer_failed", extra={"error_text": str(exc)[:200]})
            return False


class Met:
    """User ids this process has met (an account exists), at most `size`: the oldest half is
    forgotten when full. Only decides how the account is read, never what it says."""

    def __init__(self, size: int = 100_000) -> None:
        self.size = size
        self.ids: dict[int, None] = {}

    def __contains__(self, user_id: object) -> bool:
        return user_id in self.ids

    def add(self, user_id: int) -> None:
        if user_id not in self.ids and len(self.ids) >= self.size:
            for old in list(itertools.islice(self.ids, self.size // 2)):
                del self.ids[old]
        self.ids[user_id] = None


class EnsureUser(BaseMiddleware):
    """The user has an account before any handler runs (the welcome bonus at first contact), so
    a Confirm never meets an unknown user. A known user costs one read, or none when the leader
    read them in this epoch (store/user_cache.py: every writer of the row forgets it); the first
    contact is a fenced write under the update's `fence_epoch` (refused by the fence: the update
    runs again).

    A user an operator banned gets one polite message and no handler runs, except for what
    money and Telegram's terms need: a payment's service message (a Star paid is never lost) and
    /paysupport, /terms, /privacy (the ban's message points to support); last_seen and the
    @username are refreshed at most once an hour (stats and the admin's lookup), not per update.
    """

    def __init__(self, met: Met | None = None, fsm: FSMContextMiddleware | None = None) -> None:
        self.met = met if met is not None else Met()  # one for messages and callback queries alike
        self.fsm = fsm  # its cache learns that a first contact's chat has no wizard state to read

    async def __call__(self, handler: Handler, event: TelegramObject, data: dict[str, Any]) -> Any:
        """The language the user chose with /language holds for this update's lang_of() calls only."""
        chosen = CHOSEN.set(None)
        try:
            return await self._ensure(handler, event, data)
        finally:
            CHOSEN.reset(chosen)

    async def _ensure(self, handler: Handler, update: TelegramObject, data: dict[str, Any]) -> Any:
        services: Services | None = data.get("services")
        inner = (update.message or update.callback_query) if isinstance(update, Update) else update
        event = inner if isinstance(inner, Message | CallbackQuery) else None
        user = event.from_user if event is not None else None
        if services is not None and event is not None and user is not None and not user.is_bot:
            settings = services.settings
            # a first contact's commit waits on a WAL flush: other handlers run meanwhile. A user
            # met before is only read (users are never deleted): that read keeps the turn, so a
            # burst of known users' presses is served in order instead of all reading at once
            async with contextlib.nullcontext() if user.id in self.met else away():
                contact = await accounts.meet(services.database, services.lock_name, data["fence_epoch"],
                                              settings.bot_id, user.id, user.language_code, settings.welcome_bonus,
                                              username=user.username)
            known, new = contact.user, contact.new
            self.met.add(user.id)
            choose(user.id, known.lang)
            data["first_contact"] = new  # the greeting names the welcome bonus just credited
            if contact.chat_clear:
                await self._nothing_stored(data, user.id)
            if known.blocked:  # they blocked the bot once and write again: deliveries may go to them
                await accounts.set_blocked(services.database, settings.bot_id, user.id, False)
            if known.banned and not _still_served(event):
                if await accounts.ban_told(services.database, settings.bot_id, user.id):
                    bot: Bot = data["bot"]
                    await bot.send_message(user.id, t(lang_of(user), "banned"))
                log.info("banned_user_ignored", extra={"user_id": user.id})
                return None
            if (known.username != user.username or known.last_seen is None
                    or datetime.now(UTC) - known.last_seen > SEEN_EVERY):
                await accounts.seen(services.database, settings.bot_id, user.id, user.username)
            if user.language_code and user.language_code != known.language:  # the jobs actor's words follow
                await accounts.set_language(services.database, settings.bot_id, user.id, user.language_code)
        return await handler(update, data)

    async def _nothing_stored(self, data: dict[str, Any], user_id: int) -> None:
        """The user's first contact found nothing stored under their private chat (in the same
        round trip): when this update is in that chat, the FSM middleware, which runs next, reads
        its state from the cache instead of the table."""
        if self.fsm is None or not isinstance(self.fsm.storage, CachedStorage):
            return
        context = self.fsm.resolve_event_context(data["bot"], data)
        key = context.key if context is not None else None
        if (key is not None and key.chat_id == key.user_id == user_id and key.thread_id is None
                and key.business_connection_id is None and key.destiny == DEFAULT_DESTINY):
            await self.fsm.storage.nothing_stored(key)


SERVED_WHEN_BANNED = ("/paysupport", "/terms", "/privacy")


def _still_served(event: TelegramObject) -> bool:
    if not isinstance(event, Message):
        return False
    if event.successful_payment is not None or event.refunded_payment is not None:
        return True
    command = (event.text or "").split(maxsplit=1)[0].split("@", 1)[0].lower() if event.text else ""
    return command in SERVED_WHEN_BANNED


class LoadWizard(BaseMiddleware):
    """Reads the wizard's data once per update, for the filters and handlers of every router
    (`wiz`: None outside the wizard). Data that is not a wizard's (an older layout, a model
    taken out of the catalog) ends the wizard instead of failing every update after it."""

    async def __call__(self, handler: Handler, event: TelegramObject, data: dict[str, Any]) -> Any:
        wiz = None
        state: FSMContext | None = data.get("state")
        services: Services | None = data.get("services")
        if state is not None and services is not None and data.get("raw_state") == Wizard.step.state:
            wiz = Wiz.load(await state.get_data())
            if wiz is None or wiz.model not in services.catalog:
                log.info("wizard_dropped", extra={"model": None if wiz is None else wiz.model})
                await forget(state)
                data["raw_state"], wiz = None, None
        data["wiz"] = wiz
        return await handler(event, data)
