"""The dispatcher's side of flood control: coalescing a flooding private chat's queued updates
(stale presses, updates over the limit), putting its last update aside until the chat's next
token, and the burst's one notice. bot/flood.py is the policy (its docstring says why); this is
its use over the dispatcher's per-chat queues, apart from actors/dispatcher.py to keep each under
the size limit. A mixin, not an actor: it lives outside actors/ so actors still import no actor
module, and it holds no state of its own (the dispatcher's __init__ makes what it declares)."""

from __future__ import annotations

import asyncio
import collections
import functools
import time
from collections.abc import Coroutine
from typing import TYPE_CHECKING, Any

from aiogram import Bot
from aiogram.exceptions import TelegramAPIError, TelegramNetworkError

from bot import flood, texts
from config import Settings
from ingest.send_gate import ActingRefused
from store import accounts
from store.database import DB_ERRORS, Database
from store.inbox import Claimed
from telemetry import logs
from telemetry.metrics import METRICS

log = logs.get("dispatcher")

Key = tuple[str, int]


class FloodControl:
    """Mixed into UpdateDispatcher (before Actor): the flood methods over its queues."""

    settings: Settings
    database: Database
    bot: Bot
    generation: int
    runs: dict[int, int]
    queues: dict[Key, collections.deque[Claimed]]
    ready: collections.deque[Key]
    ready_event: asyncio.Event
    pre_answered: set[int]
    flood: flood.Flood
    waiting: set[int]
    kept: dict[int, str]
    owed: dict[int, Any]

    if TYPE_CHECKING:  # the dispatcher's and Actor's: declared for the type checker only
        def spawn(self, coro: Coroutine[Any, Any, Any], name: str) -> asyncio.Task[Any]: ...
        def _done(self, claimed: Claimed, outcome: str) -> None: ...
        async def _answer_early(self, claimed: Claimed) -> None: ...

    async def _coalesce(self, key: Key, queue: collections.deque[Claimed], claimed: Claimed) -> Claimed | None:
        """The update of a private chat a worker took, past the chat's flood: returns the one to
        run (`claimed` itself unless the chat floods), or None when the chat's last update waits
        for its token. Stale presses and updates over the limit with newer ones behind them are
        marked done unrun; the burst's one notice goes out before the answer it announces."""
        chat = key[1]
        notice = chat in self.owed
        sender = self.owed.pop(chat, None) if notice else None
        drops: collections.Counter[str] = collections.Counter()
        first_dropped = claimed.update_id
        run: Claimed | None = None
        while True:
            if claimed.kind == "callback_query" and queue and any(c.kind == "callback_query" for c in queue):
                self._drop(claimed, "stale_press")  # a newer press of the chat waits: this screen is gone
                drops["stale_press"] += 1
            else:
                parsed: list[Any] = []
                verdict = self.flood.admit(chat, time.monotonic(), behind=len(queue),
                                           waited=claimed.update_id in self.waiting,
                                           is_kept=functools.partial(self._is_kept, claimed, parsed))
                if verdict is flood.Verdict.ADMIT:
                    run = claimed
                    break
                if verdict is flood.Verdict.WAIT:
                    break
                if verdict is flood.Verdict.NOTICE:
                    notice = True
                    sender = flood.sender(parsed[0] if parsed else flood.parse(claimed.payload), claimed.kind)
                self._drop(claimed, "flood")
                drops["flood"] += 1
            claimed = queue.popleft()  # not the last: something newer waits
            if claimed.kind not in flood.KINDS or claimed.update_id in self.runs:
                run = claimed
                break
        if drops:
            log.info("updates_dropped", extra={"reasons": dict(drops), "first_update_id": first_dropped,
                                               "count": sum(drops.values())})
        if notice:
            await self._notify(chat, sender)
        if run is None:  # after the notice: the answer it announces comes after it
            self._put_aside(key, claimed)
        return run

    def _is_kept(self, claimed: Claimed, parsed: list[Any]) -> bool:
        if claimed.update_id in self.kept:
            return True
        update = flood.parse(claimed.payload)
        parsed.append(update)
        return flood.kept(claimed.kind, update)

    def _put_aside(self, key: Key, claimed: Claimed) -> None:
        """The chat's last update, over the limit: back at the head until the chat's next token;
        a newer one that arrives meanwhile supersedes it (flood.Flood.admit)."""
        self.waiting.add(claimed.update_id)
        self.queues[key].appendleft(claimed)
        generation = self.generation

        def ready() -> None:
            if generation == self.generation and self.queues.get(key) and key not in self.ready:
                self.ready.append(key)
                self.ready_event.set()

        asyncio.get_running_loop().call_later(self.flood.wait(key[1], time.monotonic()), ready)

    def _trim(self, key: Key, queue: collections.deque[Claimed]) -> None:
        """A chat's queue past CHAT_QUEUE_MAX is coalesced as it grows, so a flood holds a bounded
        part of memory and of HIGH_WATER (whose claims are in update_id order: one chat holding
        them all would keep every other chat's updates in the inbox). What is never dropped stays
        (a repeated identical command once: its last copy runs), and so does the newest update."""
        chat = key[1]
        keep: list[Claimed] = [queue[-1]]
        commands: set[str] = set()
        dropped: list[Claimed] = []
        sender: Any = None
        for claimed in reversed(list(queue)[:-1]):
            if claimed.kind not in flood.KINDS or claimed.update_id in self.runs or claimed.update_id in self.waiting:
                keep.append(claimed)
                continue
            command = self.kept.get(claimed.update_id)
            if command is None:
                update = flood.parse(claimed.payload)
                if flood.kept(claimed.kind, update):
                    command = self.kept[claimed.update_id] = flood.command(update, claimed.kind)
                elif sender is None:
                    sender = flood.sender(update, claimed.kind)
            if command is not None and (command == "" or command not in commands):
                commands.add(command)
                keep.append(claimed)
            else:
                dropped.append(claimed)
        if not dropped:
            return
        queue.clear()
        queue.extend(reversed(keep))
        for claimed in dropped:
            self._drop(claimed, "flood")
        if self.flood.dropped(chat, time.monotonic()):
            self.owed[chat] = sender
        log.info("updates_dropped", extra={"reasons": {"flood": len(dropped)}, "first_update_id": dropped[-1].update_id,
                                           "count": len(dropped), "queued": len(queue)})

    def _drop(self, claimed: Claimed, reason: str) -> None:
        """Done without running its handlers; a press is answered, so no spinner waits for it."""
        if claimed.kind == "callback_query" and claimed.update_id not in self.pre_answered:
            self.spawn(self._answer_early(claimed), f"early-answer-{claimed.update_id}")
        METRICS.updates_dropped.labels(reason).inc()
        self._done(claimed, reason)

    async def _notify(self, chat: int, sender: Any) -> None:
        """The burst's one notice: politely, that the bot answers the last message, in the language
        the user chose with /language (one read a burst), else Telegram's."""
        lang = texts.lang_of(sender)
        try:
            async with asyncio.timeout(10):
                known = await accounts.get_user(self.database, self.settings.bot_id, chat)
                if known is not None and known.lang:
                    lang = known.lang
                await self.bot.send_message(chat, texts.t(lang, "flood_notice"))
        except (TelegramAPIError, TelegramNetworkError, ActingRefused, TimeoutError, *DB_ERRORS) as exc:
            text = str(exc)  # as actors.mailbox.describe, which this layer does not import
            log.info("flood_notice_failed", extra={"error_text": f"{type(exc).__name__}: {text}"[:500] if text
                                                   else type(exc).__name__})
