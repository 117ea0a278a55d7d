"""A user talking to the product's screens (tests/test_wizard.py, tests/test_history_balance.py):
updates fed through aiogram's real Dispatcher, built by build_dispatcher with PostgresStorage and
the services, with `fence_epoch` as the dispatcher actor passes it, and a real Bot against the
fake Telegram over HTTP; the bot id is the `money` fixture's, whose leader row fences the writes.

What the user sees: the bot edits a flow's message in place (one living message per flow), so
`screens` lists every screen shown (sent or edited into a message), `last` is the latest one in
its current form (a keyboard taken away since is gone), `sent` counts only new messages, and a
button is pressed on the message that shows it, as a thumb would."""

from __future__ import annotations

import dataclasses
import itertools
import json
from typing import Any

from aiogram import Bot
from aiogram.types import Update

import config
from bot import keyboards, texts
from bot.conversation import build_dispatcher
from bot.fsm_storage import PostgresStorage
from bot.prices import kopecks
from bot.services import Services
from catalog.loader import shipped
from fakes.telegram.wire import SEND_METHODS
from fakes.telegram_api import Call, FakeTelegram, callback_update, message_update, photo_update
from kie import CREATE, Limiter
from store import accounts, jobs
from tests.conftest import Money

TOKEN = f"{Money.bot_id}:AAH-fake-token-for-wizard-tests-0123456"
USER = 7001
IDS = itertools.count(1)
PNG = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x02\x00\x00\x00\x03\x08\x02" + b"\x00" * 44
CATALOG = shipped()
SHOWN_BY_EDIT = frozenset({"editMessageText", "editMessageCaption"})


def settings_with(**changes: Any) -> config.Settings:
    return dataclasses.replace(config.load("serve", {"TELEGRAM_BOT_TOKEN": TOKEN}), **changes)


def price_of(model_id: str, values: dict[str, Any], settings: config.Settings | None = None) -> int:
    return kopecks(settings or settings_with(), CATALOG.model(model_id).credits(values))


def title(model_id: str, field: str) -> str:
    text = CATALOG.model(model_id).field(field).title
    assert text is not None
    return text.ru


def t(key: str, **values: Any) -> str:
    return texts.t("ru", key, **values)


def rub(kopecks_: int) -> str:
    return texts.money("ru", kopecks_)


class Chat:
    """One user talking to the bot, every update fed as the dispatcher actor feeds it."""

    def __init__(self, money: Money, fake: FakeTelegram, bot: Bot, settings: config.Settings | None = None,
                 user: int = USER, lang: str = "ru") -> None:
        self.money, self.fake, self.bot, self.user, self.lang = money, fake, bot, user, lang
        self.settings = settings or settings_with()
        self.wakes = 0
        self.queries: list[str] = []  # the callback query ids of this chat's presses, in order
        # KIE's limiter a Confirm takes a createTask slot of (sql/025); None: none offered, as without a key
        self.slots: Limiter | None = None
        self.driven: list[tuple[int, float | None]] = []  # (job id, its Confirm's slot) told to the jobs actor
        self.dp = self.dispatcher()

    def dispatcher(self) -> Any:
        services = Services(self.money.db, self.settings, CATALOG, wake_jobs=self._wake, drive_job=self._drive,
                            take_slot=lambda: self.slots.reserve(CREATE) if self.slots is not None else None,
                            give_back_slot=lambda slot: self.slots.give_back(CREATE, slot) if self.slots else None)
        return build_dispatcher(PostgresStorage(self.money.db), services=services)

    def _wake(self) -> None:
        self.wakes += 1

    def _drive(self, job: jobs.Job, slot: float | None) -> None:
        self.wakes += 1
        self.driven.append((job.id, slot))

    def restart(self) -> None:
        """A new process: a new Dispatcher over the same database."""
        self.dp = self.dispatcher()

    async def feed(self, update: dict[str, Any], **data: Any) -> None:
        self.fake.saw(update)
        await self.dp.feed_update(self.bot, Update.model_validate(update, context={"bot": self.bot}),
                                  fence_epoch=self.money.epoch, **data)

    async def say(self, text: str) -> None:
        await self.feed(message_update(next(IDS), self.user, text, language_code=self.lang,
                                       message_id=self.fake.next_message_id(self.user)))

    async def press(self, data: str, on: int | None = None, *, message: dict[str, Any] | None = None,
                    pre_answered: bool = False) -> str:
        """The button `data` pressed on message `on` (default: the message that showed it last,
        else the bot's latest) as it is now, or as `message` (a copy taken earlier: a press made
        before an edit); `pre_answered`: the dispatcher answered it early (it waited behind its
        chat). Returns the query's id (see `answers`)."""
        message_id = on if on is not None else self.showing(data)
        stored = next((m for m in self.fake.chat_messages(self.user) if m["message_id"] == message_id), None)
        query_id = str(self.user * 1_000_000 + next(IDS) % 1_000_000)
        self.queries.append(query_id)
        if message is None and stored is not None:
            message = json.loads(json.dumps(stored))
        await self.feed(callback_update(next(IDS), self.user, data, message_id or 1, language_code=self.lang,
                                        message=message, query_id=query_id), pre_answered=pre_answered)
        return query_id

    def showing(self, data: str) -> int | None:
        """The message that showed the button `data` last (sent or edited in), else the bot's latest."""
        for call in reversed(self.fake.calls(chat_id=self.user)):
            if not call.ok or data not in self.data(call):
                continue
            if call.method in SEND_METHODS and isinstance(call.result, dict):
                return int(call.result["message_id"])
            if isinstance(call.params.get("message_id"), int):
                return int(call.params["message_id"])
        own = [m for m in self.fake.chat_messages(self.user) if (m.get("from") or {}).get("is_bot")]
        return int(own[-1]["message_id"]) if own else None

    async def send(self, key: str, obj: dict[str, Any]) -> None:
        """A message carrying `key` (document, video, audio, voice, sticker...)."""
        update = message_update(next(IDS), self.user, "x", language_code=self.lang,
                                message_id=self.fake.next_message_id(self.user))
        del update["message"]["text"]
        update["message"][key] = obj
        await self.feed(update)

    async def photo(self, size: int = 50_000) -> str:
        file_id = f"photo-{next(IDS)}"
        await self.feed(photo_update(next(IDS), self.user, file_id, file_size=size, language_code=self.lang,
                                     message_id=self.fake.next_message_id(self.user)))
        return file_id

    @property
    def screens(self) -> list[Call]:
        """Every screen the user was shown, oldest first: each message sent and each text or
        caption edited into one (as it was shown then; a keyboard taken away is not a screen)."""
        return [c for c in self.fake.calls(chat_id=self.user)
                if c.ok and (c.method in SEND_METHODS or c.method in SHOWN_BY_EDIT)]

    @property
    def last(self) -> Call:
        """The latest screen in its current form: its message's text and keyboard now."""
        call = self.screens[-1]
        message_id = (call.result.get("message_id") if isinstance(call.result, dict)
                      else call.params.get("message_id"))
        stored = next((m for m in self.fake.chat_messages(self.user) if m["message_id"] == message_id), None)
        if stored is None:
            return call
        params = {k: v for k, v in call.params.items() if k != "reply_markup"}
        if "reply_markup" in stored:
            params["reply_markup"] = stored["reply_markup"]
        for key in ("text", "caption"):
            if key in stored:
                params[key] = stored[key]
        return dataclasses.replace(call, params=params)

    @property
    def sent(self) -> list[Call]:
        """The messages the bot sent (an edit is not one)."""
        return self.fake.sent_messages(self.user)

    @property
    def sent_count(self) -> int:
        return len(self.sent)

    @property
    def toasts(self) -> list[str]:
        """The texts this chat's presses were answered with (a toast over the chat), oldest first."""
        mine = set(self.queries)
        return [str(c.params["text"]) for c in self.fake.calls("answerCallbackQuery")
                if c.ok and c.params.get("callback_query_id") in mine and c.params.get("text")]

    def answers(self, query_id: str) -> int:
        """How many times the query was answered successfully (Telegram takes one)."""
        return len([c for c in self.fake.calls("answerCallbackQuery")
                    if c.ok and c.params.get("callback_query_id") == query_id])

    def message(self, message_id: int | None) -> dict[str, Any]:
        """A message of the chat as it is now (a copy)."""
        found = [m for m in self.fake.chat_messages(self.user) if m["message_id"] == message_id]
        assert found, f"no message {message_id} in the chat"
        return json.loads(json.dumps(found[0]))  # type: ignore[no-any-return]

    def live(self) -> list[dict[str, Any]]:
        """The bot's messages that still have buttons, oldest first (what is one tap away)."""
        return [m for m in self.fake.chat_messages(self.user)
                if (m.get("from") or {}).get("is_bot") and (m.get("reply_markup") or {}).get("inline_keyboard")]

    def buttons(self, call: Call | None = None) -> list[tuple[str, str]]:
        markup = (call or self.last).params.get("reply_markup") or {}
        return [(b["text"], b["callback_data"]) for row in markup.get("inline_keyboard", []) for b in row]

    def data(self, call: Call | None = None) -> list[str]:
        return [d for _, d in self.buttons(call)]

    def find(self, label: str, call: Call | None = None) -> str:
        """The data of the button whose text contains `label`."""
        found = [d for text, d in self.buttons(call) if label in text]
        assert found, f"no button {label!r} in {self.buttons(call)}"
        return found[0]

    def action(self, name: str, call: Call | None = None) -> str:
        found = [d for d in self.data(call) if d.startswith("w:") and d.split(":")[2] == name]
        assert found, f"no {name!r} button in {self.data(call)}"
        return found[0]

    async def state(self) -> tuple[str | None, dict[str, Any]]:
        context = self.dp.fsm.get_context(self.bot, chat_id=self.user, user_id=self.user)
        return await context.get_state(), await context.get_data()

    async def open_model(self, model_id: str) -> None:
        """Menu -> family -> the model's card -> Start."""
        model = CATALOG.model(model_id)
        await self.say("/start")
        await self.press(keyboards.family_data(model.family))
        await self.press(keyboards.model_data(model_id))
        await self.press(keyboards.start_data(model_id))

    async def top_up(self, amount: int, key: str = "seed") -> None:
        await accounts.ensure_user(self.money.db, self.money.name, self.money.epoch, self.money.bot_id, self.user,
                                   self.lang, 0)
        await accounts.credit(self.money.db, self.money.name, self.money.epoch, self.money.bot_id, self.user, amount,
                              f"{key}:{self.user}")

    async def balance(self) -> accounts.Balance:
        return await accounts.balance(self.money.db, self.money.bot_id, self.user)

    async def jobs(self) -> list[jobs.Job]:
        return await jobs.user_jobs(self.money.db, self.money.bot_id, self.user, 0, 100)

