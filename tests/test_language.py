"""/language: a user picks Русский or English over what Telegram says, the choice is stored on
the user (users.lang), and every later screen follows it — the conversation's (through
lang_of and the middleware), the money follow-ups' and the jobs actor's status and results."""

from __future__ import annotations

import pytest
from aiogram import Bot

from bot import delivery_texts, keyboards, money_in, texts
from bot.routers.language import CHOICE
from fakes.telegram_api import FakeTelegram
from generation import context
from store import accounts
from tests.conftest import Money
from tests.test_first_screen import data_of, shown
from tests.test_kie_poller import Make, world  # noqa: F401  (the jobs actor in process, a fixture)
from tests.wizard_kit import CATALOG, Chat

pytestmark = pytest.mark.timeout(120)


async def test_english_chosen_holds_for_the_next_screens_though_telegram_says_russian(
        money: Money, fake: FakeTelegram, bot: Bot) -> None:
    chat = Chat(money, fake, bot, user=7401, lang="ru")
    await chat.say("/language")
    picker = shown(chat)
    assert data_of(picker) == [f"{CHOICE}ru", f"{CHOICE}en"]
    await chat.press(f"{CHOICE}en")
    screen = shown(chat)
    assert screen["text"].startswith(texts.t("en", "language_set"))
    assert data_of(screen) == [b.callback_data for row in keyboards.main_menu("en", CATALOG.families())
                               .inline_keyboard for b in row], "the menu, in English"
    assert screen["message_id"] == picker["message_id"], "the picker became the menu: one living message"
    user = await accounts.get_user(money.db, money.bot_id, 7401)
    assert user is not None and user.lang == "en" and user.language == "ru", "Telegram's word is kept apart"

    await chat.say("/start")
    assert shown(chat)["text"].startswith(texts.t("en", "welcome", name="Test"))
    await chat.say("/help")
    assert texts.t("en", "help_start") in shown(chat)["text"]
    await chat.press(keyboards.MENU_BALANCE)
    assert texts.t("en", "balance_header", balance="0 ₽") in shown(chat)["text"]
    await chat.press(keyboards.family_data("text_to_image"))
    assert "Image from text" in shown(chat)["text"]


async def test_russian_chosen_by_an_english_telegram_user_and_back(money: Money, fake: FakeTelegram,
                                                                  bot: Bot) -> None:
    chat = Chat(money, fake, bot, user=7402, lang="en")
    await chat.say("/language")
    await chat.press(f"{CHOICE}ru")
    assert shown(chat)["text"].startswith(texts.t("ru", "language_set"))
    await chat.say("/cancel")
    assert shown(chat)["text"] == texts.t("ru", "nothing_to_cancel")
    await chat.say("/language")
    await chat.press(f"{CHOICE}en")
    await chat.say("/cancel")
    assert shown(chat)["text"] == texts.t("en", "nothing_to_cancel")


async def test_the_choice_survives_a_restart_and_reaches_the_money_follow_ups(money: Money, fake: FakeTelegram,
                                                                             bot: Bot) -> None:
    chat = Chat(money, fake, bot, user=7403, lang="ru")
    await chat.say("/language")
    await chat.press(f"{CHOICE}en")
    chat.restart()
    await chat.say("/cancel")
    assert shown(chat)["text"] == texts.t("en", "nothing_to_cancel")
    services = chat.dispatcher()["services"]
    assert await money_in.language(services, 7403) == "en"


async def test_the_choice_does_not_leak_to_another_user_in_the_same_context() -> None:
    token = texts.choose(1, "en")
    try:
        assert texts.lang_of({"id": 1, "language_code": "ru"}) == "en"
        assert texts.lang_of({"id": 2, "language_code": "ru"}) == "ru"
    finally:
        texts.CHOSEN.reset(token)
    assert texts.lang_of({"id": 1, "language_code": "ru"}) == "ru"


async def test_the_jobs_actor_speaks_the_chosen_language(money: Money, world: Make,  # noqa: F811
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    w = await world(callbacks=False)
    user = 7404
    await accounts.ensure_user(money.db, money.name, money.epoch, money.bot_id, user, "ru", 0)
    await accounts.credit(money.db, money.name, money.epoch, money.bot_id, user, 10_000, f"seed:{user}")
    w.users.add(user)
    assert await w.actor.ctx.lang(user) == "ru"
    await accounts.choose_lang(money.db, money.bot_id, user, "en")
    monkeypatch.setattr(context, "LANG_TTL", 0.0)  # the cache's age is what a running job waits out
    job = await w.job(user)
    await w.told(job.id)
    edits = [c for c in w.tg.calls("editMessageText", user) if c.ok and c.params["message_id"] == job.status_message_id]
    done_in = delivery_texts.TEXTS["en"]["status_done"].split("{")[0]  # "✅ Done in "
    assert edits and edits[-1].params["text"].startswith(done_in), [e.params["text"] for e in edits]



async def test_telegrams_language_changed_since_the_first_contact_reaches_the_jobs_actors_words(
        money: Money, fake: FakeTelegram, bot: Bot) -> None:
    chat = Chat(money, fake, bot, user=7405, lang="ru")
    await chat.say("/start")
    chat.lang = "en"  # the user switched Telegram (or the demo page) to English, and never used /language
    await chat.say("/start")
    services = chat.dispatcher()["services"]
    assert await money_in.language(services, 7405) == "en"
    user = await accounts.get_user(money.db, money.bot_id, 7405)
    assert user is not None and user.language == "en" and user.lang is None
    chat.lang = None  # type: ignore[assignment]  # an update that names no language changes nothing
    await chat.say("/start")
    assert await money_in.language(services, 7405) == "en"
