"""The bot's profile in Telegram: the fake Telegram speaks setMyDescription, getMyDescription,
setMyShortDescription and getMyShortDescription as the Bot API does (language_code, the 512 and
120 character limits, an empty text removing a language's own), and a real run.py leader sets the
command list and both descriptions in Russian (the default) and English at start — only what
differs, so a second start with the same texts sets nothing — and a failing setter is retried
with backoff while the leader goes on answering users."""

from __future__ import annotations

import signal
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from aiogram import Bot
from aiogram.exceptions import TelegramBadRequest

import config
from bot import first_screen, texts
from catalog.loader import shipped
from fakes.telegram_api import FakeTelegram
from ingest.bot_api import make_bot
from tests.procs import FAKE_TOKEN, TrtProcess, eventually, free_port

pytestmark = pytest.mark.timeout(120)


@pytest.fixture
async def tg_bot(fake: FakeTelegram) -> AsyncIterator[Bot]:
    made = make_bot(FAKE_TOKEN, fake.base_url, timeout=10)
    yield made
    await made.session.close()


# --- the fake's wire format -----------------------------------------------------------------------


async def test_descriptions_are_kept_per_language_and_an_empty_one_removes_it(fake: FakeTelegram,
                                                                             tg_bot: Bot) -> None:
    assert (await tg_bot.get_my_description()).description == ""
    assert await tg_bot.set_my_description("Русское описание")
    assert await tg_bot.set_my_description("English description", language_code="en")
    assert (await tg_bot.get_my_description()).description == "Русское описание"
    assert (await tg_bot.get_my_description(language_code="en")).description == "English description"
    assert (await tg_bot.get_my_description(language_code="de")).description == "", "no German one of its own"
    assert await tg_bot.set_my_short_description("Коротко", language_code=None)
    assert await tg_bot.set_my_short_description("Short", language_code="en")
    assert (await tg_bot.get_my_short_description()).short_description == "Коротко"
    assert (await tg_bot.get_my_short_description(language_code="en")).short_description == "Short"
    assert await tg_bot.set_my_description("", language_code="en")
    assert (await tg_bot.get_my_description(language_code="en")).description == ""
    assert fake.calls("setMyDescription")[1].params["language_code"] == "en"


async def test_telegrams_limits_and_language_codes_are_enforced(fake: FakeTelegram, tg_bot: Bot) -> None:
    assert await tg_bot.set_my_description("д" * 512)
    with pytest.raises(TelegramBadRequest, match="DESCRIPTION_TOO_LONG"):
        await tg_bot.set_my_description("д" * 513)
    assert await tg_bot.set_my_short_description("к" * 120)
    with pytest.raises(TelegramBadRequest, match="SHORT_DESCRIPTION_TOO_LONG"):
        await tg_bot.set_my_short_description("к" * 121)
    with pytest.raises(TelegramBadRequest, match="LANGUAGE_CODE_INVALID"):
        await tg_bot.set_my_description("x", language_code="english")
    assert (await tg_bot.get_my_description()).description == "д" * 512, "a refused call changes nothing"


async def test_the_raw_wire_takes_form_fields_and_any_method_case(fake: FakeTelegram) -> None:
    async with aiohttp.ClientSession() as session:
        url = f"{fake.base_url}/bot{FAKE_TOKEN}"
        async with session.post(f"{url}/setmyshortdescription",
                                data={"short_description": "Hi", "language_code": "en"}) as response:
            assert response.status == 200 and (await response.json()) == {"ok": True, "result": True}
        async with session.get(f"{url}/getMyShortDescription", params={"language_code": "en"}) as response:
            assert (await response.json())["result"] == {"short_description": "Hi"}


# --- the leader sets the profile ------------------------------------------------------------------


def env(database_url: str, fake: FakeTelegram, port: int, **extra: str) -> dict[str, str]:
    base = {"TELEGRAM_BOT_TOKEN": FAKE_TOKEN, "DATABASE_URL": database_url, "TELEGRAM_API_BASE": fake.base_url,
            "WEBHOOK_BASE_URL": f"http://127.0.0.1:{port}", "BOT_MODE": "webhook", "PORT": str(port),
            "WEBHOOK_SECRET": "profile-secret-0123456789", "TELEGRAM_RATE_GLOBAL": "0",
            "TELEGRAM_RATE_PER_CHAT": "0", "HEARTBEAT_INTERVAL": "0.5", "LOCK_RETRY_INTERVAL": "0.2",
            "INBOX_SWEEP_INTERVAL": "0.2"}
    base.update(extra)
    return base


async def profile_settled(proc: TrtProcess) -> dict[str, Any]:
    async def probe() -> dict[str, Any] | None:
        section = (await proc.health())["actors"].get("profile_setter") or {}
        return section if section.get("last_ok_at") is not None and section.get("failures") == 0 else None
    return await eventually(probe, 60, "the bot's profile looked at and right")


async def test_the_leader_sets_commands_and_descriptions_in_both_languages_once(database_url: str,
                                                                               fake: FakeTelegram, spawn: Any,
                                                                               tg_bot: Bot) -> None:
    values = env(database_url, fake, free_port())
    first = spawn(values)
    await first.wait_healthy()
    section = await profile_settled(first)
    assert section["active"] is True and section["sets"] == {"commands": 2, "description": 2,
                                                             "short_description": 2}
    wanted = first_screen.profile(config.load("serve", values), shipped())
    for item in wanted:
        code = item.language_code or None
        lang = "en" if code == "en" else "ru"
        commands = await tg_bot.get_my_commands(language_code=code)
        assert [(c.command, c.description) for c in commands] == list(item.commands)
        assert commands[0].description == texts.t(lang, "cmd_start")
        assert (await tg_bot.get_my_description(language_code=code)).description == item.description
        assert (await tg_bot.get_my_short_description(language_code=code)).short_description == \
            item.short_description
    assert "Telegram" in wanted[0].description and wanted[0].description != wanted[1].description

    first.signal(signal.SIGTERM)
    assert await first.wait_exit(20) == 0
    reads = len(fake.calls("getMyCommands"))
    second = spawn(values, name="second")
    await second.wait_healthy()
    section = await profile_settled(second)
    assert len(fake.calls("getMyCommands")) > reads, "the second leader looked"
    assert section["sets"] == {"commands": 0, "description": 0, "short_description": 0}
    for method in ("setMyCommands", "setMyDescription", "setMyShortDescription"):
        assert len(fake.calls(method)) == 2, f"{method} set again though nothing changed"
    assert FAKE_TOKEN.split(":")[1] not in second.log_text()


async def test_a_failing_set_my_commands_is_retried_and_the_leader_goes_on(database_url: str, fake: FakeTelegram,
                                                                          spawn: Any) -> None:
    fake.inject("setMyCommands", status=500, description="Internal Server Error", count=2)
    proc = spawn(env(database_url, fake, free_port()))
    await proc.wait_healthy()
    await fake.wait_for(lambda: fake.webhook_info().get("url"), 30, "the webhook set")
    assert await fake.deliver(fake.user_message(4301, "/start")) == 200
    greeting = (await fake.wait_for(1, method="sendMessage", chat_id=4301, timeout=30,
                                    what="the greeting while the profile fails"))[0]
    assert greeting.params["text"].startswith(texts.t("ru", "welcome", name="Test"))

    section = await profile_settled(proc)
    calls = fake.calls("setMyCommands")
    assert [c.status for c in calls][:2] == [500, 500] and calls[-1].ok
    failed = [line for line in proc.log_lines() if line.get("event") == "bot_profile_failed"]
    assert [f["failures"] for f in failed] == [1, 2] and "Internal Server Error" in failed[0]["error_text"]
    assert section["sets"]["commands"] == 2 and "Internal Server Error" in section["profile_last_error"]
    assert (await proc.health())["status"] == "pass"
