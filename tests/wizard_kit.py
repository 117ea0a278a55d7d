"""A user talking to the product's screens (tests/test_wizard.py, tests/test_history_balance.py):
updates fed through aiogram's real Dispatcher, built by build_dispatcher with PostgresStorage and
the services, with `fence_epoch` as the dispatcher actor passes it, and a real Bot against the
fake Telegram over HTTP; the bot id is the `money` fixture's, whose leader row fences the writes."""

from __future__ import annotations

import dataclasses
import itertools
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
from fakes.telegram_api import Call, FakeTelegram, callback_update, message_update, photo_update
from store import accounts, jobs
from tests.conftest import Money

TOKEN = f"{Money.bot_id}:AAH-fake-token-for-wizard-tests-0123456"
USER = 7001
IDS = itertools.count(1)
PNG = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x02\x00\x00\x00\x03\x08\x02" + b"\x00" * 44
CATALOG = shipped()


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
        self.dp = self.dispatcher()

    def dispatcher(self) -> Any:
        services = Services(self.money.db, self.settings, CATALOG, wake_jobs=self._wake)
        return build_dispatcher(PostgresStorage(self.money.db), services=services)

    def _wake(self) -> None:
        self.wakes += 1

    def restart(self) -> None:
        """A new process: a new Dispatcher over the same database."""
        self.dp = self.dispatcher()

    async def feed(self, update: dict[str, Any]) -> None:
        self.fake.saw(update)
        await self.dp.feed_update(self.bot, Update.model_validate(update, context={"bot": self.bot}),
                                  fence_epoch=self.money.epoch)

    async def say(self, text: str) -> None:
        await self.feed(message_update(next(IDS), self.user, text, language_code=self.lang))

    async def press(self, data: str) -> None:
        await self.feed(callback_update(next(IDS), self.user, data, language_code=self.lang))

    async def send(self, key: str, obj: dict[str, Any]) -> None:
        """A message carrying `key` (document, video, audio, voice, sticker...)."""
        update = message_update(next(IDS), self.user, "x", language_code=self.lang)
        del update["message"]["text"]
        update["message"][key] = obj
        await self.feed(update)

    async def photo(self, size: int = 50_000) -> str:
        file_id = f"photo-{next(IDS)}"
        await self.feed(photo_update(next(IDS), self.user, file_id, file_size=size, language_code=self.lang))
        return file_id

    @property
    def screens(self) -> list[Call]:
        return self.fake.sent_messages(self.user)

    @property
    def last(self) -> Call:
        return self.screens[-1]

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

