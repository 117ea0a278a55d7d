"""The JSON session's shortcuts for inline keyboards, over HTTP against the fake Telegram with the
bot as the dispatcher makes it (conftest's): a keyboard's JSON form is walked once per keyboard
object, and the keyboard Telegram echoes back in a sent message is the one we sent; neither
changes what goes on the wire or what errors say."""

from __future__ import annotations

import pytest
from aiogram import Bot
from aiogram.exceptions import TelegramBadRequest
from aiogram.types import InlineKeyboardButton, InlineKeyboardMarkup

from fakes.telegram_api import FakeTelegram
from ingest import bot_api

pytestmark = pytest.mark.timeout(30)


def keyboard(*labels: str) -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup(inline_keyboard=[[InlineKeyboardButton(text=label, callback_data=f"cb:{label}")]
                                                 for label in labels])


async def test_a_keyboard_sent_twice_goes_on_the_wire_whole_both_times_and_comes_back_as_sent(
        fake: FakeTelegram, bot: Bot) -> None:
    made = bot
    markup = keyboard("one", "two")
    first = await made.send_message(5001, "hello", reply_markup=markup)
    second = await made.send_message(5001, "again", reply_markup=markup)
    calls = fake.calls("sendMessage")
    wire = {"inline_keyboard": [[{"text": "one", "callback_data": "cb:one"}],
                                [{"text": "two", "callback_data": "cb:two"}]]}
    assert [c.params["reply_markup"] for c in calls] == [wire, wire]
    assert [c.params["text"] for c in calls] == ["hello", "again"]
    assert first.reply_markup is markup and second.reply_markup is markup
    assert (first.chat.id, first.text, second.text) == (5001, "hello", "again")
    assert second.message_id != first.message_id


async def test_the_kept_forms_are_bounded_and_a_new_keyboard_is_never_sent_as_an_old_ones_form(
        fake: FakeTelegram, bot: Bot) -> None:
    made = bot
    for n in range(bot_api.MARKUPS_KEPT + 5):  # each keyboard object dropped after its send
        await made.send_message(5001, "n", reply_markup=keyboard(f"k{n}"))
    assert len(bot_api._MARKUPS) <= bot_api.MARKUPS_KEPT
    sent = [c.params["reply_markup"]["inline_keyboard"][0][0]["text"] for c in fake.calls("sendMessage")]
    assert sent == [f"k{n}" for n in range(bot_api.MARKUPS_KEPT + 5)]


async def test_an_edit_that_returns_true_and_errors_with_a_keyboard_are_aiograms_answers(
        fake: FakeTelegram, bot: Bot) -> None:
    made = bot
    markup = keyboard("one")
    sent = await made.send_message(5001, "hello", reply_markup=markup)
    edited = await made.edit_message_text("changed", chat_id=5001, message_id=sent.message_id,
                                          reply_markup=keyboard("two"))
    assert not isinstance(edited, bool) and edited.text == "changed"
    assert edited.reply_markup is not None and edited.reply_markup.inline_keyboard[0][0].text == "two"
    fake.inject("sendMessage", status=400, description="Bad Request: chat not found")
    with pytest.raises(TelegramBadRequest, match="chat not found"):
        await made.send_message(5001, "hello", reply_markup=markup)
