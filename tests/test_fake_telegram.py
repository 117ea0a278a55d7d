"""The Telegram fake speaks the Bot API's wire format over real HTTP: these tests drive it with a real
aiogram Bot (form data, multipart uploads, JSON fields sent as strings, error envelopes) so the e2e
suite can rely on it."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiogram import Bot, Dispatcher
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer
from aiogram.exceptions import (
    TelegramBadRequest,
    TelegramConflictError,
    TelegramForbiddenError,
    TelegramNetworkError,
    TelegramRetryAfter,
    TelegramServerError,
    TelegramUnauthorizedError,
)
from aiogram.filters import CommandStart
from aiogram.types import (
    BufferedInputFile,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    InputMediaPhoto,
    LabeledPrice,
    Message,
    Update,
)
from aiohttp import web

from fakes.telegram_api import (
    FakeTelegram,
    callback_update,
    message_update,
    parse_html,
    pre_checkout_update,
    successful_payment_update,
)

ROOT = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.timeout(30)

TOKEN = "123456789:AAH-fake-token-for-tests-0123456789ab"
OTHER_TOKEN = "987654321:AAH-someone-elses-token-0123456789"
CHAT = 4242
PNG = (
    b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x02\x00\x00\x00\x03\x08\x02\x00\x00\x00\x00\x00\x00\x00"
    + b"\x00" * 40
)


def make_bot(base_url: str, token: str = TOKEN, timeout: float = 10.0) -> Bot:
    session = AiohttpSession(api=TelegramAPIServer.from_base(base_url), timeout=timeout)
    return Bot(token, session=session)


@pytest.fixture
async def tg() -> AsyncIterator[FakeTelegram]:
    async with FakeTelegram({TOKEN}) as fake:
        yield fake
        assert not fake.internal_errors, fake.internal_errors


@pytest.fixture
async def bot(tg: FakeTelegram) -> AsyncIterator[Bot]:
    bot = make_bot(tg.base_url)
    yield bot
    await bot.session.close()


@pytest.fixture
async def client() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


async def raw(
    client: aiohttp.ClientSession, tg: FakeTelegram, method: str, token: str = TOKEN, **kwargs: Any
) -> tuple[int, dict[str, Any]]:
    http_method = kwargs.pop("http_method", "POST")
    async with client.request(http_method, f"{tg.base_url}/bot{token}/{method}", **kwargs) as response:
        return response.status, await response.json()


# ---------------------------------------------------------------------- the happy paths, through aiogram


async def test_get_me_returns_the_bot_of_the_token(bot: Bot, tg: FakeTelegram) -> None:
    me = await bot.get_me()
    assert (me.id, me.is_bot, me.username) == (123456789, True, "trt_fake_bot")
    [call] = tg.calls("getMe")
    assert (call.token, call.status, call.params) == (TOKEN, 200, {})


async def test_send_message_records_decoded_markup_and_echoes_it(bot: Bot, tg: FakeTelegram) -> None:
    keyboard = InlineKeyboardMarkup(
        inline_keyboard=[
            [InlineKeyboardButton(text="Buy", callback_data="buy:1")],
            [InlineKeyboardButton(text="Site", url="https://example.com")],
        ]
    )
    first = await bot.send_message(CHAT, "<b>Привет</b>, мир", reply_markup=keyboard, parse_mode="HTML")
    second = await bot.send_message(CHAT, "again", disable_notification=True)

    assert (first.message_id, second.message_id) == (1, 2)
    assert first.chat.id == CHAT and first.chat.type == "private"
    assert first.from_user is not None and first.from_user.id == 123456789
    assert first.text == "Привет, мир"  # HTML parsed like Telegram does
    assert first.entities is not None and (first.entities[0].type, first.entities[0].length) == ("bold", 6)
    assert first.reply_markup is not None and first.reply_markup.model_dump() == keyboard.model_dump()

    call = tg.calls("sendMessage")[0]
    assert call.params["chat_id"] == CHAT  # typed back from the form string
    assert call.params["text"] == "<b>Привет</b>, мир"
    assert call.params["reply_markup"] == {
        "inline_keyboard": [
            [{"text": "Buy", "callback_data": "buy:1"}],
            [{"text": "Site", "url": "https://example.com"}],
        ]
    }
    assert tg.calls("sendMessage")[1].params["disable_notification"] is True
    assert [c.text for c in tg.sent_messages(CHAT)] == ["<b>Привет</b>, мир", "again"]
    assert tg.sent_messages(CHAT + 1) == []
    assert [m["text"] for m in tg.chat_messages(CHAT)] == ["Привет, мир", "again"]


async def test_webhook_set_info_delete_round_trip(bot: Bot, tg: FakeTelegram) -> None:
    empty = await bot.get_webhook_info()
    assert (empty.url, empty.has_custom_certificate, empty.pending_update_count) == ("", False, 0)

    assert await bot.set_webhook(
        "https://bot.example.com/webhook",
        secret_token="s3cret-Token_1",
        allowed_updates=["message", "callback_query"],
        max_connections=10,
        drop_pending_updates=True,
        ip_address="203.0.113.5",
    )
    call = tg.calls("setWebhook")[0]
    assert call.params["allowed_updates"] == ["message", "callback_query"]
    assert call.params["max_connections"] == 10 and call.params["drop_pending_updates"] is True

    tg.push_update(message_update(1, CHAT, "queued"))
    tg.set_webhook_error("Wrong response from the webhook: 503 Service Unavailable", date=1_700_000_000)
    info = await bot.get_webhook_info()
    assert info.url == "https://bot.example.com/webhook"
    assert (info.max_connections, info.allowed_updates, info.ip_address) == (
        10,
        ["message", "callback_query"],
        "203.0.113.5",
    )
    assert info.pending_update_count == 1
    assert info.last_error_message == "Wrong response from the webhook: 503 Service Unavailable"
    assert info.last_error_date is not None and int(info.last_error_date.timestamp()) == 1_700_000_000

    # allowed_updates not given keeps the previous setting, as in Telegram
    await bot.set_webhook("https://bot.example.com/webhook2")
    assert (await bot.get_webhook_info()).allowed_updates == ["message", "callback_query"]

    assert await bot.delete_webhook(drop_pending_updates=True)
    info = await bot.get_webhook_info()
    assert (info.url, info.pending_update_count, info.last_error_message) == ("", 0, None)
    assert tg.calls("deleteWebhook")[0].params == {"drop_pending_updates": True}


async def test_get_updates_long_polls_and_offset_confirms(bot: Bot, tg: FakeTelegram) -> None:
    poll = asyncio.create_task(bot.get_updates(offset=0, timeout=20))
    await tg.wait_for(1, method="getUpdates")  # the long poll is parked on the server
    assert not poll.done()
    tg.push_update(tg.user_message(CHAT, "/start ref_42", first_name="Иван", username="ivan"))

    [update] = await asyncio.wait_for(poll, 10)
    assert update.message is not None and update.message.text == "/start ref_42"
    assert update.message.from_user is not None and update.message.from_user.language_code == "ru"
    assert update.message.entities is not None and update.message.entities[0].type == "bot_command"

    # not confirmed yet: served again
    again = await bot.get_updates(timeout=0)
    assert [u.update_id for u in again] == [update.update_id]
    second = tg.push_update(tg.user_message(CHAT, "hello"))
    # offset confirms (and forgets) every earlier update
    batch = await bot.get_updates(offset=update.update_id + 1, timeout=0)
    assert [u.update_id for u in batch] == [second["update_id"]]
    assert [u["update_id"] for u in tg.pending_updates] == [second["update_id"]]
    assert await bot.get_updates(offset=second["update_id"] + 1, timeout=0, limit=5) == []
    assert tg.pending_updates == []
    assert [c.params.get("offset") for c in tg.calls("getUpdates")] == [
        0,
        None,
        update.update_id + 1,
        second["update_id"] + 1,
    ]


async def test_overlapping_polls_and_active_webhook_conflict(bot: Bot, tg: FakeTelegram) -> None:
    older = asyncio.create_task(bot.get_updates(timeout=20))
    await tg.wait_for(1, method="getUpdates")
    assert await bot.get_updates(timeout=0) == []  # the newer request wins...
    with pytest.raises(TelegramConflictError, match="terminated by other getUpdates request"):
        await asyncio.wait_for(older, 10)  # ...the parked one is terminated

    await bot.set_webhook("https://bot.example.com/webhook")
    with pytest.raises(TelegramConflictError, match="can't use getUpdates method while webhook is active"):
        await bot.get_updates(timeout=0)


async def test_send_photo_uploads_multipart_and_file_downloads(bot: Bot, tg: FakeTelegram) -> None:
    sent = await bot.send_photo(
        CHAT, BufferedInputFile(PNG, filename="fox.png"), caption="<i>a fox</i>", parse_mode="HTML"
    )
    assert sent.caption == "a fox" and sent.caption_entities is not None
    assert sent.photo is not None and len(sent.photo) >= 1
    largest = sent.photo[-1]
    assert (largest.width, largest.height, largest.file_size) == (2, 3, len(PNG))

    call = tg.calls("sendPhoto")[0]
    assert call.files == {"photo": len(PNG)}
    assert call.params["photo"].startswith("attach://")
    [upload] = call.uploads.values()
    assert (upload.filename, upload.data) == ("fox.png", PNG)

    file = await bot.get_file(largest.file_id)
    assert file.file_path and file.file_size == len(PNG)
    downloaded = await bot.download_file(file.file_path)
    assert downloaded is not None and downloaded.read() == PNG

    # re-sending by file_id reuses the file; an unknown file_id is refused like Telegram does
    resent = await bot.send_photo(CHAT, largest.file_id)
    assert resent.photo is not None and resent.photo[-1].file_id == largest.file_id
    with pytest.raises(TelegramBadRequest, match="wrong file identifier"):
        await bot.send_photo(CHAT, "AgACAgIAAxkBAAIunknown")

    group = await bot.send_media_group(
        CHAT,
        [InputMediaPhoto(media=BufferedInputFile(PNG, "a.png"), caption="one"), InputMediaPhoto(media=largest.file_id)],
    )
    assert [m.message_id for m in group] == [resent.message_id + 1, resent.message_id + 2]
    assert group[0].media_group_id is not None and group[0].media_group_id == group[1].media_group_id
    assert tg.calls("sendMediaGroup")[0].files == {"media[0]": len(PNG)}
    assert [c.method for c in tg.sent_messages(CHAT)] == ["sendPhoto", "sendPhoto", "sendMediaGroup"]


async def test_other_media_and_misc_methods(bot: Bot, tg: FakeTelegram) -> None:
    video = await bot.send_video(
        CHAT,
        BufferedInputFile(b"\x00\x00\x00\x18ftypmp42" + b"\x00" * 64, "clip.mp4"),
        duration=7,
        width=640,
        height=360,
    )
    assert video.video is not None and (video.video.duration, video.video.width) == (7, 640)
    assert video.video.mime_type == "video/mp4"
    document = await bot.send_document(CHAT, BufferedInputFile(b"%PDF-1.4 fake", "report.pdf"))
    assert document.document is not None and document.document.file_name == "report.pdf"
    audio = await bot.send_audio(CHAT, BufferedInputFile(b"ID3" + b"\x00" * 32, "song.mp3"), title="Song")
    assert audio.audio is not None and audio.audio.title == "Song"
    animation = await bot.send_animation(CHAT, BufferedInputFile(b"GIF89a\x02\x00\x03\x00" + b"\x00" * 8, "a.gif"))
    assert animation.animation is not None and animation.document is not None

    assert await bot.send_chat_action(CHAT, "upload_photo")
    with pytest.raises(TelegramBadRequest, match="wrong parameter action"):
        await bot.send_chat_action(CHAT, "dancing")

    assert await bot.set_my_commands([{"command": "start", "description": "Start"}], language_code="ru")
    assert [c.command for c in await bot.get_my_commands(language_code="ru")] == ["start"]
    assert await bot.get_my_commands() == []
    assert await bot.set_chat_menu_button(chat_id=CHAT, menu_button={"type": "commands"})
    assert (await bot.get_chat_menu_button(chat_id=CHAT)).type == "commands"

    invoice = await bot.send_invoice(
        CHAT, "100 credits", "Top up", "topup:100", "XTR", [LabeledPrice(label="100 credits", amount=50)]
    )
    assert invoice.invoice is not None and (invoice.invoice.currency, invoice.invoice.total_amount) == ("XTR", 50)
    assert tg.calls("sendInvoice")[0].params["prices"] == [{"label": "100 credits", "amount": 50}]

    chat = await bot.get_chat(CHAT)
    assert (chat.id, chat.type) == (CHAT, "private")
    copied = await bot.copy_message(CHAT + 1, CHAT, document.message_id, caption="copy")
    assert copied.message_id == 1
    forwarded = await bot.forward_message(CHAT + 1, CHAT, document.message_id)
    assert forwarded.document is not None and forwarded.forward_origin is not None
    with pytest.raises(TelegramBadRequest, match="message to copy not found"):
        await bot.copy_message(CHAT + 1, CHAT, 999)

    assert await bot.delete_message(CHAT, document.message_id)
    with pytest.raises(TelegramBadRequest, match="message to delete not found"):
        await bot.delete_message(CHAT, document.message_id)


async def test_edits_follow_telegram_rules(bot: Bot, tg: FakeTelegram) -> None:
    keyboard = InlineKeyboardMarkup(inline_keyboard=[[InlineKeyboardButton(text="Go", callback_data="go")]])
    sent = await bot.send_message(CHAT, "step 1", reply_markup=keyboard)
    edited = await bot.edit_message_text("step 2", chat_id=CHAT, message_id=sent.message_id, reply_markup=keyboard)
    assert isinstance(edited, Message) and edited.text == "step 2" and edited.edit_date is not None
    with pytest.raises(TelegramBadRequest, match="message is not modified"):
        await bot.edit_message_text("step 2", chat_id=CHAT, message_id=sent.message_id, reply_markup=keyboard)
    # no reply_markup in an edit removes the keyboard
    await bot.edit_message_reply_markup(chat_id=CHAT, message_id=sent.message_id)
    assert "reply_markup" not in tg.chat_messages(CHAT)[-1]
    with pytest.raises(TelegramBadRequest, match="message to edit not found"):
        await bot.edit_message_text("x", chat_id=CHAT, message_id=999)
    with pytest.raises(TelegramBadRequest, match="there is no caption in the message to edit"):
        await bot.edit_message_caption(chat_id=CHAT, message_id=sent.message_id, caption="c")

    photo = await bot.send_photo(CHAT, BufferedInputFile(PNG, "p.png"), caption="old")
    changed = await bot.edit_message_caption(chat_id=CHAT, message_id=photo.message_id, caption="new")
    assert isinstance(changed, Message) and changed.caption == "new"
    assert await bot.edit_message_text("inline", inline_message_id="AgAAAKxyz") is True


async def test_telegram_side_validation_catches_bot_bugs(bot: Bot, tg: FakeTelegram) -> None:
    with pytest.raises(TelegramBadRequest, match="message text is empty"):
        await bot.send_message(CHAT, "   ")
    with pytest.raises(TelegramBadRequest, match='Unsupported start tag "foo" at byte offset 0'):
        await bot.send_message(CHAT, "<foo>x</foo>", parse_mode="HTML")
    with pytest.raises(TelegramBadRequest, match='Can\'t find end tag corresponding to start tag "b"'):
        await bot.send_message(CHAT, "<b>x", parse_mode="HTML")
    with pytest.raises(TelegramBadRequest, match="message is too long"):
        await bot.send_message(CHAT, "x" * 4097)
    too_long_data = InlineKeyboardMarkup(inline_keyboard=[[InlineKeyboardButton(text="x", callback_data="d" * 65)]])
    with pytest.raises(TelegramBadRequest, match="BUTTON_DATA_INVALID"):
        await bot.send_message(CHAT, "x", reply_markup=too_long_data)
    tg.block(CHAT)
    with pytest.raises(TelegramForbiddenError, match="bot was blocked by the user"):
        await bot.send_message(CHAT, "hello?")
    assert tg.sent_messages() == []
    assert [c.status for c in tg.calls("sendMessage")] == [400] * 5 + [403]


def test_parse_html_counts_utf16_and_unescapes() -> None:
    text, entities = parse_html('😀 <b>bold &amp; <i>both</i></b> <a href="https://x.y/?a=1&amp;b=2">link</a> 1 &lt; 2')
    assert text == "😀 bold & both link 1 < 2"
    assert entities == [
        {"type": "bold", "offset": 3, "length": 11},
        {"type": "italic", "offset": 10, "length": 4},
        {"type": "text_link", "offset": 15, "length": 4, "url": "https://x.y/?a=1&b=2"},
    ]


async def test_answer_callback_query_once(bot: Bot, tg: FakeTelegram) -> None:
    assert await bot.answer_callback_query("4242000001", text="Done", show_alert=True)
    assert tg.calls("answerCallbackQuery")[0].params == {
        "callback_query_id": "4242000001",
        "text": "Done",
        "show_alert": True,
    }
    with pytest.raises(TelegramBadRequest, match="query is too old"):
        await bot.answer_callback_query("4242000001")
    assert await bot.answer_pre_checkout_query("pcq-1", ok=True)
    with pytest.raises(TelegramBadRequest, match="ERROR_MESSAGE_EMPTY"):
        await bot.answer_pre_checkout_query("pcq-2", ok=False)


# ---------------------------------------------------------------------- the wire itself


async def test_raw_wire_formats_and_errors(tg: FakeTelegram, client: aiohttp.ClientSession) -> None:
    # method names are case-insensitive; parameters from the query string, JSON, urlencoded form
    status, body = await raw(client, tg, "GETME", http_method="GET")
    assert (status, body["ok"], body["result"]["id"]) == (200, True, 123456789)
    status, body = await raw(client, tg, "sendmessage", params={"chat_id": "7", "text": "from query"})
    assert (status, body["result"]["text"]) == (200, "from query")
    markup = {"inline_keyboard": [[{"text": "A", "callback_data": "a"}]]}
    status, body = await raw(client, tg, "sendMessage", json={"chat_id": 7, "text": "json", "reply_markup": markup})
    assert (status, body["result"]["message_id"], body["result"]["reply_markup"]) == (200, 2, markup)
    status, body = await raw(
        client, tg, "sendMessage", data={"chat_id": "-1001234", "text": "form", "reply_markup": json.dumps(markup)}
    )
    assert status == 200 and body["result"]["chat"]["type"] == "supergroup"
    assert [c.method for c in tg.calls()] == ["getMe", "sendMessage", "sendMessage", "sendMessage"]
    assert tg.calls("sendMessage")[2].params["reply_markup"] == markup

    # a file sent as the parameter itself (not attach://)
    form = aiohttp.FormData()
    form.add_field("chat_id", "7")
    form.add_field("photo", PNG, filename="direct.png", content_type="image/png")
    status, body = await raw(client, tg, "sendPhoto", data=form)
    assert status == 200 and body["result"]["photo"][-1]["file_size"] == len(PNG)
    assert tg.calls("sendPhoto")[0].files == {"photo": len(PNG)}

    assert await raw(client, tg, "getMe", token=OTHER_TOKEN) == (
        401,
        {"ok": False, "error_code": 401, "description": "Unauthorized"},
    )
    assert await raw(client, tg, "sendSticker") == (404, {"ok": False, "error_code": 404, "description": "Not Found"})
    status, body = await raw(client, tg, "sendMessage", json={"chat_id": 7})
    assert (status, body["description"]) == (400, "Bad Request: message text is empty")
    status, body = await raw(client, tg, "sendMessage", json={"text": "no chat"})
    assert (status, body["description"]) == (400, "Bad Request: chat_id is empty")
    status, body = await raw(client, tg, "sendMessage", data={"chat_id": "7", "text": "x", "reply_markup": "{bad"})
    assert (status, body["description"]) == (400, "Bad Request: can't parse reply keyboard markup JSON object")


async def test_wrong_token_raises_unauthorized(tg: FakeTelegram) -> None:
    other = make_bot(tg.base_url, OTHER_TOKEN)
    try:
        with pytest.raises(TelegramUnauthorizedError):
            await other.get_me()
    finally:
        await other.session.close()
    assert tg.calls()[0].status == 401 and tg.calls()[0].token == OTHER_TOKEN


async def test_any_well_formed_token_when_tokens_is_none() -> None:
    async with FakeTelegram() as fake:
        other = make_bot(fake.base_url, OTHER_TOKEN)
        try:
            assert (await other.get_me()).id == 987654321
        finally:
            await other.session.close()


# ---------------------------------------------------------------------- fault injection


async def test_injected_errors_map_to_aiogram_exceptions(bot: Bot, tg: FakeTelegram) -> None:
    tg.inject("sendMessage", status=429, retry_after=3)
    tg.inject("sendMessage", status=500)
    tg.inject("*", status=400, description="Bad Request: chat not found")
    tg.inject("getMe", status=502, count=2)

    with pytest.raises(TelegramRetryAfter) as retry:
        await bot.send_message(CHAT, "1")
    assert retry.value.retry_after == 3 and "Too Many Requests: retry after 3" in str(retry.value)
    with pytest.raises(TelegramServerError):
        await bot.send_message(CHAT, "2")
    with pytest.raises(TelegramBadRequest, match="chat not found"):
        await bot.send_message(CHAT, "3")  # the "*" fault, consumed in order
    for _ in range(2):
        with pytest.raises(TelegramServerError):
            await bot.get_me()
    assert (await bot.send_message(CHAT, "4")).message_id == 1  # faults used up
    assert (await bot.get_me()).id == 123456789
    assert [c.status for c in tg.calls()] == [429, 500, 400, 502, 502, 200, 200]
    assert tg.sent_messages(CHAT)[0].text == "4"


async def test_injected_429_wire_format(tg: FakeTelegram, client: aiohttp.ClientSession) -> None:
    tg.inject("sendMessage", retry_after=7)
    assert await raw(client, tg, "sendMessage", json={"chat_id": 1, "text": "x"}) == (
        429,
        {
            "ok": False,
            "error_code": 429,
            "description": "Too Many Requests: retry after 7",
            "parameters": {"retry_after": 7},
        },
    )


async def test_injected_delay_then_normal_answer(bot: Bot, tg: FakeTelegram) -> None:
    tg.inject("sendMessage", delay=0.3)
    started = time.monotonic()
    sent = await bot.send_message(CHAT, "slow")
    assert time.monotonic() - started >= 0.29
    assert sent.text == "slow" and tg.calls("sendMessage")[0].status == 200


async def test_injected_hang_trips_the_client_timeout(bot: Bot, tg: FakeTelegram) -> None:
    tg.inject("sendMessage", hang=True)
    with pytest.raises(TelegramNetworkError, match="Request timeout error"):
        await bot.send_message(CHAT, "lost", request_timeout=1)
    hung = tg.calls("sendMessage")[0]
    assert hung.status is None and hung.result is None
    assert (await bot.send_message(CHAT, "fine")).text == "fine"


async def test_hang_is_released_when_the_fake_stops() -> None:
    fake = FakeTelegram({TOKEN})
    await fake.start()
    bot = make_bot(fake.base_url, timeout=20)
    try:
        fake.inject("getMe", hang=True)
        pending = asyncio.create_task(bot.get_me())
        await fake.wait_for(1, method="getMe")
        await fake.stop()
        with pytest.raises(TelegramNetworkError):
            await asyncio.wait_for(pending, 10)
    finally:
        await bot.session.close()


async def test_concurrent_sends_are_all_recorded_with_per_chat_ids(bot: Bot, tg: FakeTelegram) -> None:
    chats = [1001, 1002, 1003, 1004, -1005]
    results = await asyncio.gather(*(bot.send_message(chats[i % 5], f"m{i}") for i in range(200)))
    assert len(tg.calls("sendMessage")) == 200 and all(c.status == 200 for c in tg.calls())
    assert sorted(m.text or "" for m in results) == sorted(f"m{i}" for i in range(200))
    for chat in chats:
        recorded = [c.result["message_id"] for c in tg.sent_messages(chat)]
        assert recorded == list(range(1, 41))  # increasing in arrival order, no gaps, no duplicates
        assert sorted(m.message_id for m in results if m.chat.id == chat) == recorded
    assert (await tg.wait_for(200, method="sendMessage"))[-1].ok  # already reached: returns at once


async def test_wait_for_times_out_with_a_useful_message(bot: Bot, tg: FakeTelegram) -> None:
    await bot.send_message(CHAT, "only one")
    with pytest.raises(TimeoutError, match=r"2 call\(s\) of sendMessage.*sendMessage chat=4242 -> 200"):
        await tg.wait_for(2, timeout=0.2, method="sendMessage")
    with pytest.raises(TimeoutError, match="never true"):
        await tg.wait_for(lambda: False, timeout=0.1, what="never true")


# ---------------------------------------------------------------------- webhook delivery and update builders


@dataclass
class Receiver:
    """A tiny webhook endpoint standing in for the bot's ingress."""

    url: str
    received: list[tuple[dict[str, str], dict[str, Any]]] = field(default_factory=list)
    reply: dict[str, Any] | None = None
    status: int = 200


@pytest.fixture
async def receiver(tg: FakeTelegram) -> AsyncIterator[Receiver]:
    box: list[Receiver] = []

    async def handle(request: web.Request) -> web.Response:
        box[0].received.append((dict(request.headers), await request.json()))
        if box[0].reply is not None:
            return web.json_response(box[0].reply, status=box[0].status)
        return web.Response(status=box[0].status)

    app = web.Application()
    app.router.add_post("/webhook", handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    host, port = runner.addresses[0][:2]
    box.append(Receiver(url=f"http://{host}:{port}/webhook"))
    yield box[0]
    await runner.cleanup()


async def test_deliver_posts_to_the_webhook_with_the_secret(bot: Bot, tg: FakeTelegram, receiver: Receiver) -> None:
    with pytest.raises(RuntimeError, match="no webhook is set"):
        await tg.deliver(message_update(1, CHAT, "hi"))
    await bot.set_webhook(receiver.url, secret_token="the-secret")

    update = tg.user_message(CHAT, "/start")
    assert await tg.deliver(update) == 200
    [(headers, body)] = receiver.received
    assert headers["X-Telegram-Bot-Api-Secret-Token"] == "the-secret"
    assert headers["Content-Type"].startswith("application/json")
    assert body == update
    parsed = Update.model_validate(body)
    assert parsed.message is not None and parsed.message.text == "/start"

    # a webhook may answer with a method call, which Telegram executes
    sent = await bot.send_message(
        CHAT,
        "pick",
        reply_markup=InlineKeyboardMarkup(inline_keyboard=[[InlineKeyboardButton(text="A", callback_data="a")]]),
    )
    press = tg.user_callback(CHAT, "a")
    assert press["callback_query"]["message"]["message_id"] == sent.message_id
    receiver.reply = {
        "method": "answerCallbackQuery",
        "callback_query_id": press["callback_query"]["id"],
        "text": "service is updating",
    }
    assert await tg.deliver(press) == 200
    reply = tg.deliveries[-1].reply
    assert reply is not None and (reply.method, reply.status, reply.source) == (
        "answerCallbackQuery",
        200,
        "webhook-reply",
    )
    assert tg.calls("answerCallbackQuery") == [reply]

    receiver.reply, receiver.status = None, 503
    assert await tg.deliver(tg.user_message(CHAT, "later")) == 503
    info = await bot.get_webhook_info()
    assert info.last_error_message == "Wrong response from the webhook: 503 Service Unavailable"
    assert len(receiver.received) == 3 and [d.status for d in tg.deliveries] == [200, 200, 503]


def test_update_builders_are_real_format() -> None:
    message = Update.model_validate(
        message_update(10, CHAT, "see /help and /buy@trt_fake_bot", user_id=7, language_code="en", first_name="Ann")
    )
    assert message.message is not None and message.message.from_user is not None
    assert (message.message.from_user.id, message.message.from_user.language_code) == (7, "en")
    assert message.message.entities is not None
    assert [(e.type, e.offset, e.length) for e in message.message.entities] == [
        ("bot_command", 4, 5),
        ("bot_command", 14, 17),
    ]
    assert message.message.date.timestamp() > 0 and message.message.chat.type == "private"

    callback = Update.model_validate(callback_update(11, CHAT, "buy:1", message_id=5, language_code="en"))
    query = callback.callback_query
    assert query is not None and query.data == "buy:1" and query.from_user.language_code == "en"
    assert isinstance(query.message, Message) and query.message.message_id == 5 and query.chat_instance

    checkout = Update.model_validate(pre_checkout_update(12, 7, 50, "topup:100"))
    assert checkout.pre_checkout_query is not None and checkout.pre_checkout_query.currency == "XTR"
    paid = Update.model_validate(successful_payment_update(13, CHAT, 50, "topup:100"))
    assert paid.message is not None and paid.message.successful_payment is not None


async def test_user_photo_can_be_fetched_by_the_bot(bot: Bot, tg: FakeTelegram) -> None:
    update, record = tg.user_photo(CHAT, PNG, caption="make it blue")
    parsed = Update.model_validate(update)
    assert parsed.message is not None and parsed.message.photo is not None
    file = await bot.get_file(parsed.message.photo[-1].file_id)
    assert file.file_path == record.file_path
    downloaded = await bot.download_file(file.file_path)
    assert downloaded is not None and downloaded.read() == PNG


async def test_clients_behind_an_as_prefix_are_told_apart_on_one_fake(bot: Bot, tg: FakeTelegram) -> None:
    """Several bot processes share one fake (the soak's instances); each is given the base URL
    <fake>/_as/<name>, and every call it makes, file downloads included, is recorded as its."""
    alpha, beta = make_bot(tg.base_url + "/_as/alpha"), make_bot(tg.base_url + "/_as/beta")
    try:
        await alpha.send_message(CHAT, "from alpha")
        await beta.send_message(CHAT, "from beta")
        await bot.send_message(CHAT, "plain")
        sent = await beta.send_photo(CHAT, BufferedInputFile(PNG, filename="p.png"))
        assert sent.photo is not None
        file = await alpha.get_file(sent.photo[-1].file_id)
        assert file.file_path is not None
        downloaded = await alpha.download_file(file.file_path)
        assert downloaded is not None and downloaded.read() == PNG
    finally:
        await alpha.session.close()
        await beta.session.close()
    assert [(c.text, c.caller) for c in tg.calls("sendMessage")] == [
        ("from alpha", "alpha"), ("from beta", "beta"), ("plain", None)]
    assert [(c.method, c.caller) for c in tg.calls()[3:]] == [("sendPhoto", "beta"), ("getFile", "alpha")]


async def test_aiogram_dispatcher_polls_the_fake(bot: Bot, tg: FakeTelegram) -> None:
    dispatcher = Dispatcher()

    @dispatcher.message(CommandStart())
    async def start(message: Message) -> None:
        await message.answer(f"Hello, {message.from_user.first_name if message.from_user else '?'}!")

    polling = asyncio.create_task(dispatcher.start_polling(bot, handle_signals=False, polling_timeout=5))
    try:
        tg.push_update(tg.user_message(CHAT, "/start", first_name="Ann"))
        [reply] = await tg.wait_for(1, timeout=10, method="sendMessage")
        assert (reply.params["chat_id"], reply.params["text"]) == (CHAT, "Hello, Ann!")
        await tg.wait_for(lambda: not tg.pending_updates, timeout=10, what="the update confirmed by an offset")
    finally:
        await dispatcher.stop_polling()
        await asyncio.wait_for(polling, 10)


async def test_cli_serves_until_sigterm() -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "fakes.telegram_api", "--port", "0", cwd=ROOT, env=env, stdout=asyncio.subprocess.PIPE
    )
    try:
        assert process.stdout is not None
        line = json.loads(await asyncio.wait_for(process.stdout.readline(), 15))
        assert line["event"] == "fake_telegram_listening"
        base_url = line["base_url"]
        async with aiohttp.ClientSession() as session:
            async with session.get(f"{base_url}/bot{TOKEN}/getMe") as response:
                assert (await response.json())["result"]["id"] == 123456789
            async with session.post(f"{base_url}/_fake/updates", json={"chat_id": CHAT, "text": "/start"}) as response:
                assert (await response.json())["queued"] == 1
            async with session.get(f"{base_url}/bot{TOKEN}/getUpdates") as response:
                assert (await response.json())["result"][0]["message"]["text"] == "/start"
            async with session.get(f"{base_url}/_fake/calls", params={"method": "getMe"}) as response:
                assert [c["status"] for c in await response.json()] == [200]
        process.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(process.wait(), 15) == 0
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
