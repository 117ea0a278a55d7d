"""/paysupport's way to a human: the user writes one message to support, every admin gets it with a
Reply button, and the admin's answer reaches the user in the bot (bot/routers/support.py). Real
aiogram, the fake Telegram over HTTP, a real PostgreSQL."""

from __future__ import annotations

from typing import Any

import pytest
from aiogram import Bot

from bot import keyboards
from bot.routers import support
from fakes.telegram_api import FakeTelegram
from store import audit
from tests.conftest import Money
from tests.wizard_kit import Chat, settings_with, t

pytestmark = pytest.mark.timeout(60)
USER, ADMIN, OTHER_ADMIN = 7601, 7690, 7691


def chats(money: Money, fake: FakeTelegram, bot: Bot, **changes: Any) -> tuple[Chat, Chat]:
    settings = settings_with(admin_ids=frozenset({ADMIN, OTHER_ADMIN}), **changes)
    return Chat(money, fake, bot, settings, user=USER), Chat(money, fake, bot, settings, user=ADMIN)


async def test_a_message_to_support_reaches_every_admin_and_the_answer_reaches_the_user(
        money: Money, fake: FakeTelegram, bot: Bot) -> None:
    user, admin = chats(money, fake, bot)
    await admin.say("/start")
    await user.say("/paysupport")
    assert keyboards.SUPPORT_WRITE in user.data()
    await user.press(keyboards.SUPPORT_WRITE)
    assert user.last.text == t("support_ask")
    await user.say("Оплатил 100 звёзд, баланс не изменился")
    assert user.last.text == t("support_sent") and user.data() == [keyboards.MENU_OPEN]
    for who in (ADMIN, OTHER_ADMIN):
        header, copy = [c for c in fake.calls(chat_id=who) if c.method in ("sendMessage", "copyMessage") and c.ok][-2:]
        assert f"id {USER}" in header.params["text"] and header.method == "sendMessage"
        assert copy.method == "copyMessage" and copy.params["from_chat_id"] == USER
    await admin.press(f"{support.REPLY}{USER}")
    assert admin.last.text == t("support_reply_ask", id=USER)
    before = len(user.screens)
    await admin.say("Проверили: платёж зачислен, обновите баланс.")
    assert admin.last.text == t("support_answer_sent", id=USER)
    answer = [c for c in fake.calls(chat_id=USER) if c.ok][-2:]
    assert answer[0].params["text"] == t("support_answer") and answer[1].method == "copyMessage"
    assert len(user.screens) > before
    [action] = await audit.recent(money.db, money.bot_id, action="support_reply")
    assert action.admin_id == ADMIN and action.target == str(USER)
    assert (await user.state())[0] is None and (await admin.state())[0] is None


async def test_a_command_while_writing_leaves_the_input_and_nothing_goes_to_the_admins(
        money: Money, fake: FakeTelegram, bot: Bot) -> None:
    user, _ = chats(money, fake, bot)
    await user.say("/paysupport")
    await user.press(keyboards.SUPPORT_WRITE)
    await user.say("/start")
    assert (await user.state())[0] is None
    await user.say("hello?")
    assert not fake.calls("copyMessage"), "a message after /start is not a support request"


async def test_with_no_admins_support_says_where_to_turn_instead(money: Money, fake: FakeTelegram, bot: Bot) -> None:
    user = Chat(money, fake, bot, settings_with(admin_ids=frozenset()), user=USER)
    await user.say("/paysupport")
    await user.press(keyboards.SUPPORT_WRITE)
    assert user.last.text == t("support_nobody") and (await user.state())[0] is None


async def test_only_an_admin_can_answer(money: Money, fake: FakeTelegram, bot: Bot) -> None:
    user, _ = chats(money, fake, bot)
    stranger = Chat(money, fake, bot, user.settings, user=7602)
    await stranger.say("/start")
    await stranger.press(f"{support.REPLY}{USER}")
    assert (await stranger.state())[0] is None
    await stranger.say("I am support now")
    assert not [c for c in fake.calls(chat_id=USER) if c.ok], "nothing reached the user"
