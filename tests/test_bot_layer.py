"""bot/: handlers, texts, keyboards, the callback middleware and the send limiter, driven through
aiogram's real Dispatcher and Bot against the fake Telegram over HTTP."""

from __future__ import annotations

import asyncio
import string
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiogram import Bot, Dispatcher
from aiogram.dispatcher.event.bases import UNHANDLED
from aiogram.exceptions import TelegramBadRequest, TelegramNetworkError, TelegramRetryAfter, TelegramServerError
from aiogram.types import BufferedInputFile, Update

from bot import keyboards, texts
from bot.conversation import build_dispatcher
from catalog.families import FAMILIES
from fakes.telegram_api import FakeTelegram, callback_update, message_update
from ingest.bot_api import make_bot
from ingest.send_limiter import Bucket, SendLimiter
from telemetry.metrics import METRICS
from tests.actors_kit import until
from tests.procs import FAKE_TOKEN

pytestmark = pytest.mark.timeout(60)

MENU_DATA = [keyboards.IDEA, *(keyboards.family_data(f.id) for f in FAMILIES), keyboards.TOP_UP, keyboards.MENU_BALANCE,
             keyboards.MENU_HISTORY, keyboards.MENU_HELP]
# a PNG header the fake reads 2x3 pixels from
PNG = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x02\x00\x00\x00\x03\x08\x02" + b"\x00" * 44


@pytest.fixture
async def bot(fake: FakeTelegram) -> AsyncIterator[Bot]:
    bot = make_bot(FAKE_TOKEN, fake.base_url, timeout=10, limiter=SendLimiter(0, 0, max_retries=2))
    yield bot
    await bot.session.close()


@pytest.fixture
def dp() -> Dispatcher:
    return build_dispatcher(chaos=True)


async def feed(dp: Dispatcher, bot: Bot, update: dict[str, Any], **data: Any) -> Any:
    return await dp.feed_update(bot, Update.model_validate(update, context={"bot": bot}), **data)


def buttons(call: Any) -> list[str]:
    markup = call.params.get("reply_markup") or {}
    return [b["callback_data"] for row in markup.get("inline_keyboard", []) for b in row]


def retries(method: str) -> float:
    return METRICS.registry.get_sample_value("trt_telegram_retry_after_total", {"method": method}) or 0.0


# -- texts -----------------------------------------------------------------------------------


def test_every_text_exists_in_both_languages_with_the_same_placeholders() -> None:
    assert set(texts.TEXTS["ru"]) == set(texts.TEXTS["en"])
    fields = string.Formatter()
    for key, ru in texts.TEXTS["ru"].items():
        en = texts.TEXTS["en"][key]
        assert {f for _, f, _, _ in fields.parse(ru) if f} == {f for _, f, _, _ in fields.parse(en) if f}, key
        assert ru != en or key.startswith("btn_"), f"{key} is not translated"


def test_language_choice() -> None:
    assert texts.lang_of(None) == "ru"
    assert texts.lang_of({"language_code": "en"}) == "en"
    assert texts.lang_of({"language_code": "en-GB"}) == "en"
    assert texts.lang_of({"language_code": "de"}) == "ru"
    assert texts.lang_of({}) == "ru"
    assert texts.t("en", "apology", ref="u42").endswith("u42")
    assert texts.t("fr", "cancelled") == texts.TEXTS["ru"]["cancelled"]
    assert texts.t("en", "no-such-key") == "no-such-key"


def test_callback_data_fit_telegrams_64_bytes_and_labels_follow_the_language() -> None:
    for lang in ("ru", "en"):
        menu = keyboards.main_menu(lang)
        data = [b.callback_data for row in menu.inline_keyboard for b in row]
        assert data == MENU_DATA and all(len(d.encode()) <= 64 for d in data)
        assert menu.inline_keyboard[0][0].text == texts.t(lang, "btn_try_idea")
        cells = [b for row in menu.inline_keyboard for b in row]  # an odd count of families: the idea shares a row
        assert cells[1].text == keyboards.menu_label(lang, FAMILIES[0])
        assert menu.inline_keyboard[-2][1].text == texts.t(lang, "btn_balance")
    assert keyboards.menu_button("en").inline_keyboard[0][0].text == texts.t("en", "btn_menu")


# -- handlers --------------------------------------------------------------------------------


async def test_start_sends_the_main_menu_in_russian_by_default_and_english_for_english_users(
        fake: FakeTelegram, bot: Bot, dp: Dispatcher) -> None:
    await feed(dp, bot, message_update(1, 11, "/start", first_name="Иван"))
    await feed(dp, bot, message_update(2, 12, "/start", language_code="en", first_name="Ann"))
    await feed(dp, bot, message_update(3, 13, "/start", language_code=None))
    ru, en, unknown = (fake.sent_messages(c)[0] for c in (11, 12, 13))
    assert ru.text == texts.t("ru", "welcome", name="Иван") + "\n" + texts.t("ru", "welcome_choose")
    assert en.text == texts.t("en", "welcome", name="Ann") + "\n" + texts.t("en", "welcome_choose")
    assert buttons(ru) == buttons(en) == MENU_DATA
    assert (unknown.text or "").startswith(texts.t("ru", "welcome", name="Test"))


async def test_start_clears_a_wizard_state(fake: FakeTelegram, bot: Bot, dp: Dispatcher) -> None:
    state = dp.fsm.get_context(bot, chat_id=21, user_id=21)
    await state.set_state("wizard:prompt")
    await feed(dp, bot, message_update(1, 21, "/start"))
    assert await state.get_state() is None


async def test_help_has_a_menu_button(fake: FakeTelegram, bot: Bot, dp: Dispatcher) -> None:
    await feed(dp, bot, message_update(1, 31, "/help", language_code="en"))
    [call] = fake.sent_messages(31)
    assert (call.text or "").startswith(texts.t("en", "help_intro")) and buttons(call) == [keyboards.MENU_OPEN]
    assert "/topup" in (call.text or "") and "/language" in (call.text or "")


async def test_cancel_says_whether_there_was_something_to_cancel(fake: FakeTelegram, bot: Bot,
                                                                 dp: Dispatcher) -> None:
    state = dp.fsm.get_context(bot, chat_id=41, user_id=41)
    await state.set_state("wizard:prompt")
    await state.update_data(model="flux")
    await feed(dp, bot, message_update(1, 41, "/cancel"))
    await feed(dp, bot, message_update(2, 41, "/cancel"))
    first, second = fake.sent_messages(41)
    assert first.text == texts.t("ru", "cancelled") and second.text == texts.t("ru", "nothing_to_cancel")
    assert buttons(first) == MENU_DATA
    assert await state.get_state() is None and await state.get_data() == {}


@pytest.mark.parametrize("text", ["hello", "/unknown_command", "🙂"])
async def test_anything_unknown_gets_the_menu(fake: FakeTelegram, bot: Bot, dp: Dispatcher, text: str) -> None:
    assert await feed(dp, bot, message_update(1, 51, text)) is not UNHANDLED
    [call] = fake.sent_messages(51)
    assert call.text == texts.t("ru", "fallback") and buttons(call) == MENU_DATA


async def test_a_photo_without_text_gets_the_menu_too(fake: FakeTelegram, bot: Bot, dp: Dispatcher) -> None:
    update = message_update(1, 52, "x")
    del update["message"]["text"]
    update["message"]["photo"] = [{"file_id": "f", "file_unique_id": "u", "width": 1, "height": 1}]
    await feed(dp, bot, update)
    assert buttons(fake.sent_messages(52)[0]) == MENU_DATA


@pytest.mark.parametrize(("data", "key", "markup"), [
    (keyboards.MENU_OPEN, "menu", MENU_DATA),
    (keyboards.MENU_HELP, "help_intro", [keyboards.MENU_OPEN]),
    (keyboards.MENU_IMAGE, "coming_soon", MENU_DATA),
    (keyboards.MENU_HISTORY, "coming_soon", MENU_DATA),
    (keyboards.family_data("audio"), "coming_soon", MENU_DATA),
    ("stale:button-from-an-old-release", "fallback", MENU_DATA),
])
async def test_buttons_are_handled_and_answered_once(fake: FakeTelegram, bot: Bot, dp: Dispatcher,
                                                    data: str, key: str, markup: list[str]) -> None:
    await feed(dp, bot, callback_update(1, 61, data, language_code="en"))
    methods = [c.method for c in fake.calls() if c.method in ("answerCallbackQuery", "sendMessage")]
    assert sorted(methods) == ["answerCallbackQuery", "sendMessage"], "a handler may toast, so the answer comes last"
    [call] = fake.sent_messages(61)
    assert (call.text or "").startswith(texts.t("en", key)) and buttons(call) == markup


async def test_a_button_the_dispatcher_answered_early_is_not_answered_again(fake: FakeTelegram, bot: Bot,
                                                                           dp: Dispatcher) -> None:
    await feed(dp, bot, callback_update(1, 62, keyboards.MENU_OPEN), pre_answered=True)
    assert fake.calls("answerCallbackQuery") == [] and len(fake.sent_messages(62)) == 1


async def test_a_failing_answer_does_not_stop_the_handler(fake: FakeTelegram, bot: Bot, dp: Dispatcher) -> None:
    fake.inject("answerCallbackQuery", status=400, description="Bad Request: query is too old")
    await feed(dp, bot, callback_update(1, 63, keyboards.MENU_OPEN))
    assert len(fake.sent_messages(63)) == 1


async def test_edits_and_membership_changes_are_handled_quietly(fake: FakeTelegram, bot: Bot,
                                                                dp: Dispatcher) -> None:
    edited = message_update(1, 71, "changed")
    edited["edited_message"] = edited.pop("message") | {"edit_date": 2}
    member = {"update_id": 2, "my_chat_member": {
        "chat": {"id": 71, "type": "private", "first_name": "T"},
        "from": {"id": 71, "is_bot": False, "first_name": "T"}, "date": 1,
        "old_chat_member": {"status": "member", "user": {"id": 1, "is_bot": True, "first_name": "B"}},
        "new_chat_member": {"status": "kicked", "until_date": 0, "user": {"id": 1, "is_bot": True, "first_name": "B"}}}}
    assert await feed(dp, bot, edited) is not UNHANDLED
    assert await feed(dp, bot, member) is not UNHANDLED
    assert fake.calls() == []


async def test_chaos_commands_exist_only_with_chaos_on(fake: FakeTelegram, bot: Bot, dp: Dispatcher) -> None:
    with pytest.raises(RuntimeError, match="on purpose"):
        await feed(dp, bot, message_update(1, 81, "/chaos_raise"))
    with pytest.raises(TimeoutError):
        async with asyncio.timeout(0.2):
            await feed(dp, bot, message_update(2, 81, "/chaos_hang"))
    plain = build_dispatcher()
    await feed(plain, bot, message_update(3, 82, "/chaos_raise"))
    assert fake.sent_messages(82)[0].text == texts.t("ru", "fallback")


# -- limiter ---------------------------------------------------------------------------------


async def test_a_429_is_waited_out_and_the_send_succeeds(fake: FakeTelegram, bot: Bot) -> None:
    before = retries("sendMessage")
    fake.inject("sendMessage", retry_after=1, count=2)
    message = await bot.send_message(91, "hello")
    assert message.text == "hello"
    assert [c.status for c in fake.calls("sendMessage")] == [429, 429, 200]
    assert retries("sendMessage") == before + 2


async def test_a_telegram_5xx_is_tried_again_and_too_many_reach_the_caller(fake: FakeTelegram, bot: Bot) -> None:
    """bench.soak (seed 6) found a user left in silence: a 500 on the reply, another on the
    apology right after, and the update was done with nothing sent."""
    fake.inject("sendMessage", status=500, count=2)
    message = await bot.send_message(93, "hello")
    assert message.text == "hello"
    assert [c.status for c in fake.calls("sendMessage")] == [500, 500, 200]
    fake.inject("sendMessage", status=502, count=3)  # the bot fixture's limiter retries twice
    with pytest.raises(TelegramServerError):
        await bot.send_message(94, "hello")
    assert [c.status for c in fake.calls("sendMessage", chat_id=94)] == [502, 502, 502]


async def test_a_429_pauses_every_request_not_only_its_own(fake: FakeTelegram) -> None:
    limiter = SendLimiter(0, 0)
    bot = make_bot(FAKE_TOKEN, fake.base_url, limiter=limiter)
    fake.inject("sendMessage", retry_after=1, count=1)
    try:
        first = asyncio.create_task(bot.send_message(92, "first"))
        await until(lambda: limiter.paused_until > 0, what="the 429 seen by the limiter")
        limited_at = fake.calls("sendMessage", chat_id=92)[0].at
        await bot.send_message(93, "other chat")
        await first
    finally:
        await bot.session.close()
    other = fake.calls("sendMessage", chat_id=93)
    assert len(other) == 1 and other[0].ok
    assert other[0].at - limited_at >= 0.9, "another chat's send went out inside the retry_after pause"


async def test_too_many_429s_or_a_huge_retry_after_reach_the_caller(fake: FakeTelegram, bot: Bot) -> None:
    fake.inject("sendMessage", retry_after=1, count=3)
    with pytest.raises(TelegramRetryAfter):
        await bot.send_message(94, "x")
    assert len(fake.calls("sendMessage")) == 3  # the first try and max_retries=2 more
    fake.inject("sendMessage", retry_after=3600, count=1)
    with pytest.raises(TelegramRetryAfter):
        await bot.send_message(95, "y")


def test_a_bucket_paces_by_reservation() -> None:
    bucket = Bucket(rate=2.0, burst=2.0)
    now = bucket.stamp
    assert [bucket.reserve(now) for _ in range(4)] == [0.0, 0.0, 0.5, 1.0]
    assert bucket.reserve(now + 2.0) == pytest.approx(0.0)  # 2 s refill the 4 reserved tokens: at 0 again
    assert not bucket.idle(now + 2.0) and bucket.idle(now + 3.5)


async def test_per_chat_buckets_do_not_grow_without_bound(fake: FakeTelegram) -> None:
    limiter = SendLimiter(0, 1e6, max_chats=50)
    bot = make_bot(FAKE_TOKEN, fake.base_url, limiter=limiter)
    try:
        for chat in range(200):
            await bot.send_message(1000 + chat, "hi")
    finally:
        await bot.session.close()
    assert len(limiter.chats) <= 50 and len(fake.sent_messages()) == 200


async def test_methods_go_as_json_bodies_and_uploads_as_multipart(fake: FakeTelegram, bot: Bot) -> None:
    sent = await bot.send_message(96, "<b>hi</b>", parse_mode="HTML", disable_notification=False,
                                  reply_markup=keyboards.main_menu("en"))
    assert sent.chat.id == 96 and sent.text == "hi"  # the answer is parsed into aiogram's model
    call = fake.calls("sendMessage", chat_id=96)[0]
    assert call.content_type == "application/json"
    assert call.params["disable_notification"] is False, "a false flag must reach Telegram, not be dropped"
    assert buttons(call) == MENU_DATA
    await bot.send_photo(96, BufferedInputFile(PNG, "p.png"), caption="c")
    photo = fake.calls("sendPhoto", chat_id=96)[0]
    assert photo.ok and photo.content_type == "multipart/form-data" and photo.files == {"photo": len(PNG)}


async def test_json_session_errors_are_aiograms_own(fake: FakeTelegram) -> None:
    bot = make_bot(FAKE_TOKEN, fake.base_url, timeout=1)
    try:
        with pytest.raises(TelegramBadRequest, match="can't parse entities"):
            await bot.send_message(97, "<b>unclosed", parse_mode="HTML")
        fake.inject("sendMessage", hang=True)
        with pytest.raises(TelegramNetworkError, match="timeout"):
            await bot.send_message(97, "slow")
        fake.inject("sendMessage", status=500, description="Internal Server Error")
        with pytest.raises(TelegramServerError):
            await bot.send_message(97, "x")
    finally:
        await bot.session.close()
