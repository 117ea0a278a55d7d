"""The first screen sells: /start says what the user already has (the welcome bonus or their
balance, the free generations left today), what things cost "from", offers an idea to try and the
way to pay, in a few lines; /help says all of it; the menu keeps every family and callback id.
Fed through the real Dispatcher against the fake Telegram (tests/wizard_kit.py)."""

from __future__ import annotations

from typing import Any

import pytest
from aiogram import Bot
from aiogram.fsm.storage.base import StorageKey

from bot import first_screen, keyboards, texts
from bot.conversation import build_dispatcher
from bot.fsm_cache import CachedStorage
from bot.fsm_storage import PostgresStorage
from bot.prices import lowest
from bot.services import Services
from fakes.telegram_api import FakeTelegram
from store import referrals
from tests.conftest import Money
from tests.wizard_kit import CATALOG, Chat, settings_with

pytestmark = pytest.mark.timeout(120)

FAMILY_DATA = [keyboards.family_data(f.id) for f in CATALOG.families()]


def cheapest(families: tuple[str, ...]) -> int:
    settings = settings_with()
    return min(lowest(settings, m).low for m in CATALOG.models if m.family in families)


def shown(chat: Chat) -> dict[str, Any]:
    """The message the bot sent or edited last in this chat, as the chat shows it now."""
    for call in reversed(chat.fake.calls(chat_id=chat.user)):
        if not call.ok or call.method not in ("sendMessage", "editMessageText"):
            continue
        message_id = call.result["message_id"] if isinstance(call.result, dict) else call.params["message_id"]
        return next(m for m in chat.fake.chat_messages(chat.user) if m["message_id"] == message_id)
    raise AssertionError("the bot showed nothing")


def data_of(message: dict[str, Any]) -> list[str]:
    markup = message.get("reply_markup") or {}
    return [b["callback_data"] for row in markup.get("inline_keyboard", []) for b in row]


@pytest.mark.parametrize("lang", ["ru", "en"])
async def test_the_greeting_names_the_bonus_the_free_generations_the_prices_from_an_idea_and_top_up(
        money: Money, fake: FakeTelegram, bot: Bot, lang: str) -> None:
    chat = Chat(money, fake, bot, settings_with(welcome_bonus=5_000, free_daily_limit=5), user=7301, lang=lang)
    await chat.say("/start")
    screen = shown(chat)
    text = screen["text"]

    def rub(kopecks: int) -> str:
        return texts.money(lang, kopecks)

    assert text.startswith(texts.t(lang, "welcome", name="Test"))
    assert rub(5_000) in text and texts.t(lang, "welcome_bonus", bonus=rub(5_000)) in text
    assert texts.t(lang, "welcome_free", left=5, limit=5) in text
    for kind, families in first_screen.KINDS:
        assert texts.t(lang, f"price_kind_{kind}", price=rub(cheapest(families))) in text, kind
    assert 4 <= len(text.splitlines()) <= 6, "people read 4-6 lines on a phone"
    data = data_of(screen)
    assert keyboards.IDEA in data and keyboards.TOP_UP in data
    assert [d for d in data if d.startswith(keyboards.FAMILY)] == FAMILY_DATA, "every family, in order"
    assert {keyboards.MENU_BALANCE, keyboards.MENU_HISTORY, keyboards.MENU_HELP} <= set(data)


async def test_a_known_user_is_greeted_with_their_balance_and_what_is_left_free_today(
        money: Money, fake: FakeTelegram, bot: Bot) -> None:
    chat = Chat(money, fake, bot, settings_with(welcome_bonus=5_000, free_daily_limit=3), user=7302)
    await chat.say("/start")
    await chat.top_up(7_000)
    await chat.say("/start")
    text = shown(chat)["text"]
    assert texts.t("ru", "welcome_balance", balance=texts.money("ru", 12_000)) in text
    assert texts.t("ru", "welcome_bonus", bonus=texts.money("ru", 5_000)) not in text, "the gift is told once"
    assert texts.t("ru", "welcome_free", left=3, limit=3) in text


async def test_the_greeting_counts_todays_free_generations_and_the_balance_in_one_read(
        money: Money, fake: FakeTelegram, bot: Bot) -> None:
    chat = Chat(money, fake, bot, settings_with(welcome_bonus=5_000, free_daily_limit=3), user=7305)
    await chat.say("/start")
    await chat.say("a fox in the snow")  # a prompt with no flow open: the free model's confirmation
    await chat.press(chat.action("ok"))
    [job] = await chat.jobs()
    assert job.paid_with == "free"
    await chat.say("/start")
    text = shown(chat)["text"]
    assert texts.t("ru", "welcome_free", left=2, limit=3) in text, "one of three used today"
    assert texts.t("ru", "welcome_balance", balance=texts.money("ru", 5_000)) in text


async def test_a_user_with_nothing_yet_and_no_free_tier_is_not_told_of_either(money: Money, fake: FakeTelegram,
                                                                              bot: Bot) -> None:
    chat = Chat(money, fake, bot, settings_with(free_daily_limit=0), user=7303, lang="en")
    await chat.say("/start")
    text = shown(chat)["text"]
    assert "💰" not in text and "🎁" not in text and "🆓" not in text
    assert texts.t("en", "welcome_how") in text


async def test_the_menu_keeps_every_family_two_a_row_and_every_existing_callback_id(
        money: Money, fake: FakeTelegram, bot: Bot) -> None:
    for lang in ("ru", "en"):
        menu = keyboards.main_menu(lang, CATALOG.families())
        rows = menu.inline_keyboard
        data = [b.callback_data for row in rows for b in row]
        assert len(data) == len(set(data)) and all(len((d or "").encode()) <= 64 for d in data)
        family_rows = [row for row in rows if any((b.callback_data or "").startswith(keyboards.FAMILY) for b in row)]
        assert all(len(row) <= 2 for row in rows) and len(family_rows) == (len(FAMILY_DATA) + 1) // 2
        assert len(rows) <= 8, "not a wall of buttons"
        assert all(len(b.text) <= 22 for row in family_rows for b in row), "half a phone's width"
        labels = [b.text for row in family_rows for b in row if (b.callback_data or "").startswith(keyboards.FAMILY)]
        assert all(not label.startswith("•") and not label.startswith("menu_fam_") for label in labels), \
            f"every family has its icon and its own short label: {labels}"
    chat = Chat(money, fake, bot, user=7304)
    await chat.say("/start")
    await chat.press(keyboards.MENU_OPEN)
    assert data_of(shown(chat)) == [b.callback_data for row in keyboards.main_menu("ru", CATALOG.families())
                                    .inline_keyboard for b in row]


@pytest.mark.parametrize("lang", ["ru", "en"])
async def test_help_says_how_to_start_the_free_tier_prices_how_to_pay_and_language(
        money: Money, fake: FakeTelegram, bot: Bot, lang: str) -> None:
    chat = Chat(money, fake, bot, settings_with(free_daily_limit=4, payment_transfer_details="IBAN 1"),
                user=7305, lang=lang)
    await chat.say("/help")
    text = shown(chat)["text"]
    assert texts.t(lang, "help_start") in text
    assert texts.t(lang, "help_free", limit=4, left=4) in text
    assert texts.t(lang, "price_kind_image", price=texts.money(lang, cheapest(("text_to_image", "image_edit")))) \
        in text
    for command in ("/topup", "/subscribe", "/promo", "/language", "/paysupport"):
        assert command in text, command
    assert texts.t(lang, "help_transfer") in text
    await chat.press(keyboards.MENU_HELP)
    assert shown(chat)["text"] == text, "the Help button says the same"


async def test_help_leaves_out_the_transfer_when_it_is_off(money: Money, fake: FakeTelegram, bot: Bot) -> None:
    chat = Chat(money, fake, bot, settings_with(payment_transfer_details=None), user=7306)
    await chat.say("/help")
    assert texts.t("ru", "help_transfer") not in shown(chat)["text"]


def test_the_profile_fits_telegrams_limits_in_both_languages() -> None:
    settings = settings_with()
    made = first_screen.profile(settings, CATALOG)
    assert [p.language_code for p in made] == ["", "en"]
    for item in made:
        assert 0 < len(item.description) <= 512 and 0 < len(item.short_description) <= 120
        names = [c for c, _ in item.commands]
        assert names[:2] == ["start", "help"] and {"language", "topup", "paysupport"} <= set(names)
        assert all(1 <= len(d) <= 256 for _, d in item.commands)
    ru, en = made
    assert ru.description != en.description and ru.short_description != en.short_description



async def test_a_newcomer_who_came_by_an_invitation_is_told_the_gift_too(money: Money, fake: FakeTelegram,
                                                                        bot: Bot) -> None:
    settings = settings_with(welcome_bonus=3_000)
    friend = Chat(money, fake, bot, settings, user=7307)
    await friend.say("/start")
    code = await referrals.code_of(money.db, money.bot_id, 7307)
    newcomer = Chat(money, fake, bot, settings, user=7308)
    await newcomer.say(f"/start {referrals.payload_of(code)}")
    assert texts.t("ru", "welcome_bonus", bonus=texts.money("ru", 3_000)) in shown(newcomer)["text"]


class LeaderChat(Chat):
    """A chat fed through the leader's FSM cache, as `run.py serve` builds it."""

    def dispatcher(self) -> Any:
        self.storage = CachedStorage(self.money.db)
        return build_dispatcher(self.storage, services=Services(self.money.db, self.settings, CATALOG,
                                                                wake_jobs=self._wake))


async def test_a_first_contacts_start_reads_no_wizard_state_and_a_known_users_first_update_after_a_restart_does(
        money: Money, fake: FakeTelegram, bot: Bot) -> None:
    """The first contact found the newcomer's private chat clear in its own round trip, so the FSM
    middleware's read of it is answered by the cache: one round trip less for every newcomer. A
    process that has not seen them since reads the table."""
    chat = LeaderChat(money, fake, bot, user=7311)
    await chat.say("/start")
    assert chat.storage.misses == 0, "a newcomer's chat was read from the table"
    await chat.say("a fox in the snow")  # the wizard, written through to the table
    chat.restart()
    await chat.say("/start")
    assert chat.storage.misses == 1, "a known user's chat must be read: it may hold a wizard"
    assert texts.t("ru", "welcome_bonus", bonus=texts.money("ru", settings_with().welcome_bonus)) not in \
        shown(chat)["text"], "the gift is told once"
    chat.restart()
    await chat.say("a cat on a roof")
    await chat.press(chat.action("ok"))
    assert [job.input.get("prompt") for job in await chat.jobs()] == ["a cat on a roof"]
    key = StorageKey(bot_id=chat.bot.id, chat_id=chat.user, user_id=chat.user)
    assert await chat.storage.get_state(key) is None, "the wizard ended with its job"


async def test_a_newcomer_whose_chat_holds_a_state_from_before_their_account_has_it_read(
        money: Money, fake: FakeTelegram, bot: Bot) -> None:
    """Rows stored before accounts existed (or by hand) are not ruled out: the first contact asks
    the table in its own round trip, and only a clear chat skips the read."""
    chat = LeaderChat(money, fake, bot, user=7312)
    key = StorageKey(bot_id=chat.bot.id, chat_id=chat.user, user_id=chat.user)
    await PostgresStorage(money.db).set_state(key, "stars:amount")
    await chat.say("/start")
    assert chat.storage.misses == 1, "the stored state was not read"
    assert await chat.storage.get_state(key) is None, "/start ended the old state, in the table too"
    assert await PostgresStorage(money.db).get_state(key) is None
