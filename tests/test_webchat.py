"""The demo web chat's server side (fakes/webchat) and its page's rendering, without run.py: the
test plays the bot through the fake Telegram's Bot API and keeps the updates its webhook gets.

What the page does must reach the bot as Telegram's own updates (a message with the user's
language, a press of a button the bot sent, a photo the bot can download, a music file or a voice
message with the length its client measured, a paid invoice), only
from the page itself; what the bot sends (HTML formatting, edits, deletions, toasts, invoices,
files) must show as a Telegram client shows it, and nothing anyone wrote may become markup.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from fakes.kie.results import clip
from fakes.webchat import DEFAULT_CHAT, ChatTelegram
from tests.browser import need_chromium, phone_browser
from tests.test_demo_webchat import png
from tests.test_media_length import ogg_opus, wav

pytestmark = pytest.mark.timeout(120)
TOKEN = "4242:webchat-test-token"
SECRET = "webchat-secret"


class Bot:
    """The bot's side: a webhook that keeps what Telegram delivered, and Bot API calls."""

    def __init__(self, telegram: ChatTelegram, session: aiohttp.ClientSession) -> None:
        self.telegram = telegram
        self.session = session
        self.updates: list[dict[str, Any]] = []
        self.secrets: list[str | None] = []

    async def webhook(self, request: web.Request) -> web.Response:
        self.secrets.append(request.headers.get("X-Telegram-Bot-Api-Secret-Token"))
        self.updates.append(await request.json())
        self.telegram.notify()
        return web.Response()

    async def call(self, method: str, **params: Any) -> Any:
        async with self.session.post(f"{self.telegram.base_url}/bot{TOKEN}/{method}", json=params) as response:
            body = await response.json()
        assert body["ok"], body
        return body["result"]

    async def update(self, count: int) -> dict[str, Any]:
        """The `count`-th update the webhook got (1-based), once it came."""
        await self.telegram.wait_for(lambda: len(self.updates) >= count, 10, f"update #{count} at the webhook")
        return self.updates[count - 1]


@pytest.fixture
async def bot() -> AsyncIterator[Bot]:
    async with ChatTelegram() as telegram, aiohttp.ClientSession() as session:
        me = Bot(telegram, session)
        app = web.Application()
        app.router.add_post("/webhook", me.webhook)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = runner.addresses[0][1]
        await me.call("setWebhook", url=f"http://127.0.0.1:{port}/webhook", secret_token=SECRET)
        try:
            yield me
        finally:
            await runner.cleanup()


async def page_post(bot: Bot, path: str, body: Any, origin: str | None = "same") -> tuple[int, dict[str, Any]]:
    headers = {"Origin": bot.telegram.base_url if origin == "same" else origin} if origin else {}
    async with bot.session.post(bot.telegram.base_url + path, json=body, headers=headers) as response:
        return response.status, await response.json()


async def state(bot: Bot, **query: Any) -> dict[str, Any]:
    async with bot.session.get(bot.telegram.base_url + "/demo/api/state",
                               params={"chat": DEFAULT_CHAT, **query}) as response:
        assert response.status == 200
        body: dict[str, Any] = await response.json()
        return body


async def test_a_typed_message_reaches_the_webhook_as_telegrams_update_and_shows_in_the_chat(bot: Bot) -> None:
    status, _ = await page_post(bot, "/demo/api/message", {"chat": DEFAULT_CHAT, "text": "/start", "lang": "en"})
    assert status == 200
    update = await bot.update(1)
    message = update["message"]
    assert message["text"] == "/start" and message["entities"] == [{"type": "bot_command", "offset": 0, "length": 6}]
    assert message["chat"] == {"id": DEFAULT_CHAT, "type": "private", "first_name": "Guest"}
    assert message["from"]["language_code"] == "en" and bot.secrets == [SECRET], "delivered as Telegram does"
    view = await state(bot)
    assert [(m["mine"], m["text"]) for m in view["messages"]] == [(True, "/start")] and view["ready"]
    assert (await asyncio.wait_for(state(bot, digest=view["digest"], wait="nan"), 5))["digest"] == view["digest"]


async def test_a_text_longer_than_a_message_arrives_in_parts_as_a_telegram_client_cuts_it(bot: Bot) -> None:
    words = " ".join(f"word{i}" for i in range(1200))[:5_000]
    status, _ = await page_post(bot, "/demo/api/message", {"chat": DEFAULT_CHAT, "text": words, "lang": "ru"})
    assert status == 200
    first, second = (await bot.update(1))["message"]["text"], (await bot.update(2))["message"]["text"]
    assert len(first) <= 4096 and first.endswith(" ") and first + second == words, "cut after a space, nothing lost"
    assert len(first) > 4000, "as long as a message may be"
    too_long = {"chat": DEFAULT_CHAT, "text": "a " * 9_000}
    assert (await page_post(bot, "/demo/api/message", too_long))[0] == 400


async def test_a_press_is_a_callback_query_on_the_bots_message_and_its_answer_a_toast(bot: Bot) -> None:
    sent = await bot.call("sendMessage", chat_id=DEFAULT_CHAT, text="Pick",
                          reply_markup={"inline_keyboard": [[{"text": "A", "callback_data": "pick:a"}]]})
    first = await state(bot)
    [shown] = first["messages"]
    assert shown["buttons"] == [[{"text": "A", "data": "pick:a"}]] and not shown["mine"]
    status, _ = await page_post(bot, "/demo/api/press", {"chat": DEFAULT_CHAT, "message_id": sent["message_id"],
                                                         "data": "pick:b"})
    assert status == 409, "only a button the message shows can be pressed"
    status, _ = await page_post(bot, "/demo/api/press", {"chat": DEFAULT_CHAT, "message_id": sent["message_id"],
                                                         "data": "pick:a", "lang": "ru"})
    assert status == 200
    query = (await bot.update(1))["callback_query"]
    assert query["data"] == "pick:a" and query["message"]["message_id"] == sent["message_id"]
    assert query["message"]["text"] == "Pick" and query["from"]["language_code"] == "ru"
    waiting = asyncio.create_task(state(bot, calls=first["calls"], digest=first["digest"], wait=10))
    await asyncio.sleep(0)
    assert not waiting.done(), "the long poll waits while nothing changes"
    await bot.call("answerCallbackQuery", callback_query_id=query["id"], text="Chosen: A")
    view = await asyncio.wait_for(waiting, 5)
    assert view["toasts"] == [{"text": "Chosen: A", "alert": False}]
    assert (await state(bot, calls=view["calls"]))["toasts"] == [], "a toast is shown once"


async def test_edits_and_deletions_show_as_the_chat_now_is(bot: Bot) -> None:
    one = await bot.call("sendMessage", chat_id=DEFAULT_CHAT, text="Queued…")
    two = await bot.call("sendMessage", chat_id=DEFAULT_CHAT, text="to be deleted")
    await bot.call("editMessageText", chat_id=DEFAULT_CHAT, message_id=one["message_id"], text="<b>Done</b>",
                   parse_mode="HTML")
    await bot.call("deleteMessage", chat_id=DEFAULT_CHAT, message_id=two["message_id"])
    [shown] = (await state(bot))["messages"]
    assert shown["text"] == "Done" and shown["edited"]
    assert shown["entities"] == [{"type": "bold", "offset": 0, "length": 4}], "Telegram's form: text and entities"


async def test_a_caption_and_a_keyboard_edited_in_place_show_on_the_same_message(bot: Bot) -> None:
    form = aiohttp.FormData()
    form.add_field("chat_id", str(DEFAULT_CHAT))
    form.add_field("caption", "Queued")
    form.add_field("reply_markup", json.dumps({"inline_keyboard": [[{"text": "Cancel", "callback_data": "x"}]]}))
    form.add_field("photo", png(16, 9), filename="p.png", content_type="image/png")
    async with bot.session.post(f"{bot.telegram.base_url}/bot{TOKEN}/sendPhoto", data=form) as response:
        sent = (await response.json())["result"]
    await bot.call("sendMessage", chat_id=DEFAULT_CHAT, text="below")
    await bot.call("editMessageCaption", chat_id=DEFAULT_CHAT, message_id=sent["message_id"], caption="Done")
    await bot.call("editMessageReplyMarkup", chat_id=DEFAULT_CHAT, message_id=sent["message_id"],
                   reply_markup={"inline_keyboard": [[{"text": "Again", "callback_data": "again"}]]})
    first, second = (await state(bot))["messages"]
    assert first["id"] == sent["message_id"] and first["text"] == "Done" and first["edited"]
    assert first["buttons"] == [[{"text": "Again", "data": "again"}]] and first["media"]["kind"] == "photo"
    assert second["text"] == "below", "the edit stays where the message is"
    await bot.call("editMessageReplyMarkup", chat_id=DEFAULT_CHAT, message_id=sent["message_id"])
    assert (await state(bot))["messages"][0]["buttons"] == [], "a keyboard taken away"


async def test_a_photo_from_the_page_is_a_photo_update_whose_file_the_bot_can_download(bot: Bot) -> None:
    picture = png(40, 30)
    form = aiohttp.FormData()
    form.add_field("chat", str(DEFAULT_CHAT))
    form.add_field("lang", "en")
    form.add_field("caption", "my cat")
    form.add_field("file", picture, filename="cat.png", content_type="image/png")
    async with bot.session.post(bot.telegram.base_url + "/demo/api/photo", data=form) as response:
        assert response.status == 200, await response.text()
    message = (await bot.update(1))["message"]
    assert message["caption"] == "my cat" and message["photo"][-1]["width"] == 40
    file = await bot.call("getFile", file_id=message["photo"][-1]["file_id"])
    async with bot.session.get(f"{bot.telegram.base_url}/file/bot{TOKEN}/{file['file_path']}") as response:
        assert await response.read() == picture
    [shown] = (await state(bot))["messages"]
    async with bot.session.get(bot.telegram.base_url + shown["media"]["url"]) as response:
        assert response.content_type == "image/png" and await response.read() == picture

    text = aiohttp.FormData()
    text.add_field("file", b"<html><script>alert(1)</script>", filename="x.png", content_type="image/png")
    async with bot.session.post(bot.telegram.base_url + "/demo/api/photo", data=text) as response:
        assert response.status == 415, "only a picture is a photo"
    assert len(bot.updates) == 1


async def post_sound(bot: Bot, data: bytes, name: str, sent_as: str = "audio", origin: str | None = "same",
                     caption: str | None = None) -> tuple[int, dict[str, Any]]:
    """The page's sound upload: a file from disk as a music file or a voice message."""
    form = aiohttp.FormData()
    form.add_field("chat", str(DEFAULT_CHAT))
    form.add_field("lang", "en")
    form.add_field("as", sent_as)
    if caption is not None:
        form.add_field("caption", caption)
    form.add_field("file", data, filename=name, content_type="application/octet-stream")
    headers = {"Origin": bot.telegram.base_url if origin == "same" else origin} if origin else {}
    async with bot.session.post(bot.telegram.base_url + "/demo/api/audio", data=form, headers=headers) as response:
        return response.status, await response.json()


async def test_a_wav_from_the_page_is_an_audio_message_with_its_measured_length_and_a_file_the_bot_can_download(
        bot: Bot) -> None:
    sound = wav(2.6)
    status, body = await post_sound(bot, sound, "hello.wav", caption="say it")
    assert status == 200, body
    message = (await bot.update(1))["message"]
    audio = message["audio"]
    assert audio["duration"] == 3, "the length measured from the file, rounded to whole seconds"
    assert audio["mime_type"] == "audio/x-wav" and audio["file_name"] == "hello.wav"
    assert audio["file_size"] == len(sound) and message["caption"] == "say it" and "voice" not in message
    file = await bot.call("getFile", file_id=audio["file_id"])
    async with bot.session.get(f"{bot.telegram.base_url}/file/bot{TOKEN}/{file['file_path']}") as response:
        assert await response.read() == sound
    [shown] = (await state(bot))["messages"]
    assert shown["mine"] and shown["media"]["kind"] == "audio" and shown["media"]["duration"] == 3
    async with bot.session.get(bot.telegram.base_url + shown["media"]["url"]) as response:
        assert response.content_type == "audio/x-wav" and await response.read() == sound


async def test_an_ogg_recording_sent_as_a_voice_is_a_voice_message_and_other_sounds_are_not(bot: Bot) -> None:
    recording = ogg_opus(4.4)
    status, body = await post_sound(bot, recording, "note.ogg", sent_as="voice")
    assert status == 200, body
    message = (await bot.update(1))["message"]
    voice = message["voice"]
    assert voice["duration"] == 4 and voice["mime_type"] == "audio/ogg" and "file_name" not in voice
    assert "audio" not in message
    file = await bot.call("getFile", file_id=voice["file_id"])
    async with bot.session.get(f"{bot.telegram.base_url}/file/bot{TOKEN}/{file['file_path']}") as response:
        assert await response.read() == recording
    assert (await state(bot))["messages"][0]["media"]["kind"] == "voice"
    status, _ = await post_sound(bot, wav(2), "hello.wav", sent_as="voice")
    assert status == 415, "a voice message is OGG/Opus, as Telegram's apps record it"
    assert len(bot.updates) == 1


async def test_a_sound_whose_length_cannot_be_read_is_sent_with_duration_0(bot: Bot) -> None:
    status, body = await post_sound(bot, b"OggS" + bytes(200), "broken.ogg")
    assert status == 200, body
    audio = (await bot.update(1))["message"]["audio"]
    assert audio["duration"] == 0 and audio["mime_type"] == "audio/ogg"


async def test_only_sounds_from_the_page_and_within_50_mb_are_sent_as_audio(bot: Bot) -> None:
    assert (await post_sound(bot, b"<html><script>alert(1)</script>", "x.mp3"))[0] == 415, "only a sound is audio"
    assert (await post_sound(bot, png(8, 8), "x.wav"))[0] == 415
    assert (await post_sound(bot, clip(), "x.mp4"))[0] == 415, "a film with its sound is a video, not audio"
    assert (await post_sound(bot, wav(1), "x.wav", origin="https://evil.example"))[0] == 403
    status, body = await post_sound(bot, wav(1) + bytes(50 * 1024 * 1024), "huge.wav")
    assert status == 413, body
    assert bot.updates == []


async def post_file(bot: Bot, data: bytes, name: str, sent_as: str | None = None, content_type: str | None = None,
                    **measured: Any) -> tuple[int, dict[str, Any]]:
    """The page's 📎: any file from disk, ``as`` what the user chose (none: the file decides), with
    what the page's browser measured of a film or a sound."""
    form = aiohttp.FormData()
    form.add_field("chat", str(DEFAULT_CHAT))
    form.add_field("lang", "en")
    if sent_as is not None:
        form.add_field("as", sent_as)
    for key, value in measured.items():
        form.add_field(key, str(value))
    form.add_field("file", data, filename=name, content_type=content_type or "application/octet-stream")
    headers = {"Origin": bot.telegram.base_url}
    async with bot.session.post(bot.telegram.base_url + "/demo/api/file", data=form, headers=headers) as response:
        return response.status, await response.json()


async def downloaded(bot: Bot, file_id: str) -> bytes:
    """The file as the bot gets it: getFile, then its path on the file server."""
    file = await bot.call("getFile", file_id=file_id)
    async with bot.session.get(f"{bot.telegram.base_url}/file/bot{TOKEN}/{file['file_path']}") as response:
        assert response.status == 200
        return await response.read()


async def test_any_file_from_the_page_becomes_the_message_telegram_makes_of_it(bot: Bot) -> None:
    film, sound, picture, pdf = clip(), wav(2.6), png(40, 30), b"%PDF-1.4\n%%EOF\n"
    sent = [(film, "waves.mp4", None, "video/mp4"), (sound, "hello.wav", None, "audio/wav"),
            (picture, "cat.png", None, "image/png"), (pdf, "receipt.pdf", None, "application/pdf"),
            (picture, "cat.png", "document", "image/png"), (ogg_opus(3.2), "note.ogg", "voice", "audio/ogg")]
    for index, (data, name, sent_as, declared) in enumerate(sent, 1):
        status, body = await post_file(bot, data, name, sent_as, declared)
        assert status == 200, (name, body)
        await bot.update(index)
    video, audio, photo, document, uncompressed, voice = (update["message"] for update in bot.updates)

    assert set(video["video"]) == {"file_id", "file_unique_id", "width", "height", "duration", "file_name",
                                   "mime_type", "file_size"}
    assert (video["video"]["width"], video["video"]["height"], video["video"]["duration"]) == (640, 360, 4)
    assert video["video"]["mime_type"] == "video/mp4" and video["video"]["file_name"] == "waves.mp4"
    assert video["video"]["file_size"] == len(film) and await downloaded(bot, video["video"]["file_id"]) == film
    assert audio["audio"]["duration"] == 3 and audio["audio"]["mime_type"] == "audio/x-wav", "measured from the file"
    assert await downloaded(bot, audio["audio"]["file_id"]) == sound
    assert photo["photo"][-1]["width"] == 40 and await downloaded(bot, photo["photo"][-1]["file_id"]) == picture
    assert document["document"]["mime_type"] == "application/pdf" and document["document"]["file_name"] == "receipt.pdf"
    assert "duration" not in document["document"] and await downloaded(bot, document["document"]["file_id"]) == pdf
    assert "photo" not in uncompressed and uncompressed["document"]["mime_type"] == "image/png", "sent as a file"
    assert voice["voice"]["duration"] == 3 and "file_name" not in voice["voice"]

    shown = (await state(bot))["messages"]
    assert [m["media"]["kind"] for m in shown] == ["video", "audio", "photo", "document", "document", "voice"]
    assert shown[0]["media"]["duration"] == 4 and shown[0]["media"]["width"] == 640
    async with bot.session.get(bot.telegram.base_url + shown[0]["media"]["url"]) as response:
        assert response.content_type == "video/mp4" and await response.read() == film, "the page plays it"


async def test_a_films_length_is_read_from_the_file_and_the_pages_measure_counts_only_where_it_cannot_be(
        bot: Bot) -> None:
    status, _ = await post_file(bot, clip(), "waves.mp4", duration=99, width=1, height=1)
    assert status == 200
    video = (await bot.update(1))["message"]["video"]
    assert (video["duration"], video["width"], video["height"]) == (4, 640, 360), "the file's own length, not a claim"
    webm = b"\x1aE\xdf\xa3\x9fB\x86\x81\x01B\xf7\x81\x01B\xf2\x81\x04B\xf3\x81\x08B\x82\x84webm" + bytes(64)
    status, _ = await post_file(bot, webm, "clip.webm", duration=2.6, width=320, height=240)
    assert status == 200
    video = (await bot.update(2))["message"]["video"]
    assert (video["duration"], video["width"], video["height"], video["mime_type"]) == (3, 320, 240, "video/webm"), \
        "a WebM this server cannot read: the length the browser measured"
    assert (await post_file(bot, png(8, 8), "x.mp4", sent_as="video"))[0] == 415, "only a film is a video"


async def test_a_file_over_20_mb_reaches_the_bot_which_cannot_download_it(bot: Bot) -> None:
    big = b"%PDF-1.4\n" + bytes(21 * 1024 * 1024)
    status, body = await post_file(bot, big, "scan.pdf")
    assert status == 200, body
    document = (await bot.update(1))["message"]["document"]
    assert document["file_size"] == len(big), "Telegram tells the bot how big it is"
    async with bot.session.post(f"{bot.telegram.base_url}/bot{TOKEN}/getFile",
                                json={"file_id": document["file_id"]}) as response:
        answer = await response.json()
    assert response.status == 400 and answer["description"] == "Bad Request: file is too big"


async def test_a_clip_the_bot_sends_is_described_as_it_plays(bot: Bot) -> None:
    form = aiohttp.FormData()
    form.add_field("chat_id", str(DEFAULT_CHAT))
    form.add_field("video", clip({"aspect_ratio": "9:16"}), filename="result.mp4", content_type="video/mp4")
    async with bot.session.post(f"{bot.telegram.base_url}/bot{TOKEN}/sendVideo", data=form) as response:
        video = (await response.json())["result"]["video"]
    assert (video["duration"], video["width"], video["height"]) == (4, 360, 640)
    [shown] = (await state(bot))["messages"]
    assert shown["media"]["kind"] == "video" and shown["media"]["duration"] == 4


async def test_only_the_page_acts_and_a_file_never_runs_as_the_page(bot: Bot) -> None:
    body = {"chat": DEFAULT_CHAT, "text": "hi"}
    assert (await page_post(bot, "/demo/api/message", body, origin="https://evil.example"))[0] == 403
    async with bot.session.post(bot.telegram.base_url + "/demo/api/message", data=json.dumps(body),
                                headers={"Content-Type": "text/plain"}) as response:
        assert response.status == 415, "a cross-site form cannot post JSON"
    assert (await page_post(bot, "/demo/api/message", {"chat": -5, "text": "hi"}))[0] == 400
    assert bot.updates == []
    form = aiohttp.FormData()
    form.add_field("chat_id", str(DEFAULT_CHAT))
    form.add_field("document", b"<script>alert(1)</script>", filename="page.html", content_type="text/html")
    async with bot.session.post(f"{bot.telegram.base_url}/bot{TOKEN}/sendDocument", data=form) as response:
        assert response.status == 200
    [shown] = (await state(bot))["messages"]
    async with bot.session.get(bot.telegram.base_url + shown["media"]["url"]) as response:
        assert response.content_type == "application/octet-stream"
        assert response.headers["Content-Disposition"].startswith("attachment")
        assert "sandbox" in response.headers["Content-Security-Policy"]
    async with bot.session.get(bot.telegram.base_url + "/demo") as response:
        policy = response.headers["Content-Security-Policy"]
        assert "script-src 'self'" in policy and "unsafe-inline" not in policy


async def test_an_invoice_is_paid_through_a_pre_checkout_query_the_bot_confirms(bot: Bot) -> None:
    invoice = await bot.call("sendInvoice", chat_id=DEFAULT_CHAT, title="100 credits", description="Top up",
                             payload="topup:100", currency="XTR", prices=[{"label": "Credits", "amount": 50}])

    async def confirm() -> None:
        query = (await bot.update(1))["pre_checkout_query"]
        assert query["total_amount"] == 50 and query["invoice_payload"] == "topup:100"
        await bot.call("answerPreCheckoutQuery", pre_checkout_query_id=query["id"], ok=True)
    confirming = asyncio.create_task(confirm())
    status, _ = await page_post(bot, "/demo/api/pay", {"chat": DEFAULT_CHAT, "message_id": invoice["message_id"]})
    await confirming
    assert status == 200
    paid = (await bot.update(2))["message"]["successful_payment"]
    assert paid["invoice_payload"] == "topup:100" and paid["currency"] == "XTR"
    shown = (await state(bot))["messages"]
    assert shown[0]["invoice"]["total_amount"] == 50 and shown[1]["paid"]["total_amount"] == 50


async def test_the_page_draws_the_bots_formatting_and_keeps_every_text_a_text(bot: Bot, tmp_path: Path) -> None:
    need_chromium()
    hostile = '<img src=x onerror="document.title=1">'
    html = ("<b>bold</b> <i>italic</i> <u>under</u> <s>struck</s> <code>code</code> "
            '<a href="https://example.org/">link</a> <a href="javascript:alert(1)">bad link</a> '
            "<tg-spoiler>secret</tg-spoiler>\n<pre>pre</pre><blockquote>quote</blockquote>"
            f"{hostile.replace('<', '&lt;').replace('>', '&gt;')}")
    await bot.call("sendMessage", chat_id=DEFAULT_CHAT, text=html, parse_mode="HTML")
    await bot.call("sendInvoice", chat_id=DEFAULT_CHAT, title="Top up", description="100 credits",
                   payload="topup:100", currency="XTR", prices=[{"label": "Credits", "amount": 50}])
    form = aiohttp.FormData()
    form.add_field("chat_id", str(DEFAULT_CHAT))
    form.add_field("audio", b"ID3" + bytes(64), filename="song.mp3", content_type="audio/mpeg")
    async with bot.session.post(f"{bot.telegram.base_url}/bot{TOKEN}/sendAudio", data=form) as response:
        assert response.status == 200
    assert (await post_sound(bot, ogg_opus(65), "note.ogg", sent_as="voice"))[0] == 200

    def look() -> dict[str, Any]:
        from selenium.webdriver.support.ui import WebDriverWait

        driver = phone_browser(tmp_path / "profile")
        try:
            driver.get(bot.telegram.base_url + "/demo?lang=en")
            WebDriverWait(driver, 15, 0.1).until(lambda d: len(d.find_elements("css selector", ".msg.bot")) == 3)
            found: dict[str, Any] = driver.execute_script("""
                const text = document.querySelector('.msg.bot .text');
                const tags = (sel) => [...text.querySelectorAll(sel)].map(n => n.textContent);
                return {b: tags('b'), i: tags('i'), u: tags('u'), s: tags('s'), code: tags('code'), pre: tags('pre'),
                        quote: tags('blockquote'), spoiler: tags('.spoiler'),
                        links: [...text.querySelectorAll('a')].map(a => [a.textContent, a.getAttribute('href')]),
                        imgs: document.querySelectorAll('.msg.bot .text img').length, plain: text.textContent,
                        pay: [...document.querySelectorAll('.kb-btn.pay')].map(b => b.textContent),
                        audio: document.querySelectorAll('.msg.bot audio[controls]').length,
                        voice: [...document.querySelectorAll('.msg.mine .media.voice')].map(
                          v => [v.querySelector('.file-name').textContent, v.querySelector('.duration').textContent,
                                Boolean(v.querySelector('audio[controls]'))]),
                        title: document.title, width: document.documentElement.scrollWidth, inner: innerWidth};""")
            return found
        finally:
            driver.quit()

    seen = await asyncio.to_thread(look)
    assert (seen["b"], seen["i"], seen["u"], seen["s"]) == (["bold"], ["italic"], ["under"], ["struck"])
    assert (seen["code"], seen["pre"], seen["quote"], seen["spoiler"]) == (["code"], ["pre"], ["quote"], ["secret"])
    assert seen["links"] == [["link", "https://example.org/"]], "a javascript: link is shown as text only"
    assert seen["imgs"] == 0 and hostile in seen["plain"] and seen["title"] == "TRT demo chat"
    assert seen["pay"] == ["Pay ⭐ 50"] and seen["audio"] == 1
    assert seen["voice"] == [["🎤 Voice message", "1:05", True]], "the user's own voice message, with its length"
    assert seen["width"] <= seen["inner"] == 390


async def test_a_subscription_link_is_paid_as_its_first_recurring_payment(bot: Bot) -> None:
    link = await bot.call("createInvoiceLink", title="Pro", description="A month of Pro", payload="sub:7",
                          currency="XTR", prices=[{"label": "Pro", "amount": 250}], subscription_period=2592000)

    async def confirm() -> None:
        query = (await bot.update(1))["pre_checkout_query"]
        assert query["total_amount"] == 250 and query["invoice_payload"] == "sub:7"
        await bot.call("answerPreCheckoutQuery", pre_checkout_query_id=query["id"], ok=True)
    confirming = asyncio.create_task(confirm())
    status, _ = await page_post(bot, "/demo/api/pay-link", {"chat": DEFAULT_CHAT, "url": link})
    await confirming
    assert status == 200
    paid = (await bot.update(2))["message"]["successful_payment"]
    assert paid["is_recurring"] and paid["is_first_recurring"] and paid["invoice_payload"] == "sub:7"
    assert paid["subscription_expiration_date"] > time.time() + 29 * 86400
    status, body = await page_post(bot, "/demo/api/pay-link", {"chat": DEFAULT_CHAT, "url": "https://t.me/$nope"})
    assert status == 404 and "no such invoice link" in body["description"]


async def test_a_url_in_a_plain_text_message_is_marked_as_telegram_marks_it(bot: Bot) -> None:
    sent = await bot.call("sendMessage", chat_id=DEFAULT_CHAT, text="Ваша ссылка: https://t.me/trt_bot?start=ref_abc.")
    assert sent["entities"] == [{"type": "url", "offset": 13, "length": 34}]


async def test_an_answer_to_a_press_higher_up_says_what_it_answers_and_a_reply_quotes_its_message(bot: Bot) -> None:
    keyboard = {"inline_keyboard": [[{"text": "Again", "callback_data": "again:1"}]]}
    old = await bot.call("sendMessage", chat_id=DEFAULT_CHAT, text="Your picture is ready", reply_markup=keyboard)
    await bot.call("sendMessage", chat_id=DEFAULT_CHAT, text="Something else since")
    status, _ = await page_post(bot, "/demo/api/press", {"chat": DEFAULT_CHAT, "message_id": old["message_id"],
                                                         "data": "again:1", "lang": "en"})
    assert status == 200
    await bot.update(1)
    answer = await bot.call("sendMessage", chat_id=DEFAULT_CHAT, text="Starting again", reply_markup=keyboard)
    later = await bot.call("sendMessage", chat_id=DEFAULT_CHAT, text="Queued")
    shown = {m["id"]: m for m in (await state(bot))["messages"]}
    assert shown[answer["message_id"]]["answers"] == {"id": old["message_id"], "button": "Again",
                                                      "text": "Your picture is ready"}
    assert "answers" not in shown[later["message_id"]], "only the first message answers the press"

    status, _ = await page_post(bot, "/demo/api/press", {"chat": DEFAULT_CHAT, "message_id": answer["message_id"],
                                                         "data": "again:1", "lang": "en"})
    await bot.update(2)
    right_below = await bot.call("sendMessage", chat_id=DEFAULT_CHAT, text="Again, again")
    shown = {m["id"]: m for m in (await state(bot))["messages"]}
    assert "answers" in shown[right_below["message_id"]], "the pressed message is above another one"

    status, _ = await page_post(bot, "/demo/api/press", {"chat": DEFAULT_CHAT, "message_id": right_below["message_id"],
                                                         "data": "again:1", "lang": "en"})
    assert status == 409, "no such button there"
    original = await bot.call("sendMessage", chat_id=DEFAULT_CHAT, text="the original file",
                              reply_parameters={"message_id": old["message_id"]})
    shown = {m["id"]: m for m in (await state(bot))["messages"]}
    assert shown[original["message_id"]]["reply"] == {"id": old["message_id"], "mine": False,
                                                       "text": "Your picture is ready"}


async def test_the_pages_own_words_follow_the_ru_en_switch_and_an_edit_above_is_shown(
        bot: Bot, tmp_path: Path) -> None:
    need_chromium()
    first = await bot.call("sendMessage", chat_id=DEFAULT_CHAT, text="Status: queued")
    for index in range(30):
        await bot.call("sendMessage", chat_id=DEFAULT_CHAT, text=f"line {index}")

    def look() -> dict[str, Any]:
        from selenium.webdriver.common.by import By
        from selenium.webdriver.support.ui import WebDriverWait

        driver = phone_browser(tmp_path / "profile")
        words = ("return {intro: document.getElementById('intro').textContent, start: "
                 "document.getElementById('start').textContent, field: document.getElementById('text').placeholder, "
                 "menu: [...document.querySelectorAll('#attach-menu [data-i18n]')].map(n => n.textContent), "
                 "lang: document.documentElement.lang}")
        try:
            driver.get(bot.telegram.base_url + "/demo?lang=ru")
            wait = WebDriverWait(driver, 15, 0.1)
            wait.until(lambda d: len(d.find_elements(By.CSS_SELECTOR, ".msg.bot")) == 31)
            russian = driver.execute_script(words)
            driver.find_element(By.CSS_SELECTOR, '.lang-btn[data-lang="en"]').click()
            english = driver.execute_script(words)
            hidden_before = driver.find_element(By.ID, "jump").is_displayed()
            asyncio.run_coroutine_threadsafe(bot.call(
                "editMessageText", chat_id=DEFAULT_CHAT, message_id=first["message_id"], text="Status: done"),
                loop).result(10)
            wait.until(lambda d: d.find_element(By.ID, "jump").is_displayed())
            chip = driver.find_element(By.ID, "jump").text
            driver.find_element(By.ID, "jump").click()
            edited = f'.msg[data-message-id="{first["message_id"]}"]'
            wait.until(lambda d: d.execute_script(
                f"const r = document.querySelector('{edited}').getBoundingClientRect();"
                "const l = document.getElementById('log').getBoundingClientRect();"
                "return r.top >= l.top && r.bottom <= l.bottom"))
            flashed = driver.execute_script(f"return document.querySelector('{edited}').className")
            return {"ru": russian, "en": english, "hidden_before": hidden_before, "chip": chip, "flashed": flashed}
        finally:
            driver.quit()

    loop = asyncio.get_running_loop()
    seen = await asyncio.to_thread(look)
    assert seen["ru"]["intro"].startswith("Демо: вы пользователь Telegram") and seen["ru"]["start"] == "ЗАПУСТИТЬ"
    assert seen["ru"]["field"] == "Сообщение" and "Любой файл" in seen["ru"]["menu"] and seen["ru"]["lang"] == "ru"
    assert seen["en"]["intro"].startswith("A demo: you are a Telegram user") and seen["en"]["start"] == "START"
    assert seen["en"]["field"] == "Message" and "Any file" in seen["en"]["menu"] and seen["en"]["lang"] == "en"
    assert not seen["hidden_before"] and seen["chip"] == "✎ A message above was edited: show it"
    assert "flash" in seen["flashed"], "the edited message is highlighted where it is"


async def test_files_from_the_pages_menu_reach_the_bot_as_their_kind_and_a_clip_plays_in_the_page(
        bot: Bot, tmp_path: Path) -> None:
    need_chromium()
    film = tmp_path / "waves.mp4"
    film.write_bytes(clip())
    picture = tmp_path / "cat.png"
    picture.write_bytes(png(40, 30))

    def use() -> dict[str, Any]:
        from selenium.webdriver.common.by import By
        from selenium.webdriver.support.ui import WebDriverWait

        driver = phone_browser(tmp_path / "profile")
        try:
            driver.get(bot.telegram.base_url + "/demo?lang=en")
            wait = WebDriverWait(driver, 20, 0.1)
            driver.find_element(By.ID, "attach").click()
            assert driver.find_element(By.ID, "attach-menu").is_displayed()
            driver.find_element(By.ID, "text").send_keys("my clip")
            driver.find_element(By.ID, "file").send_keys(str(film))
            wait.until(lambda d: len(d.find_elements(By.CSS_SELECTOR, ".msg.mine")) == 1)
            driver.find_element(By.ID, "document").send_keys(str(picture))  # the menu closed: still the page's input
            wait.until(lambda d: len(d.find_elements(By.CSS_SELECTOR, ".msg.mine")) == 2)
            played: float = wait.until(lambda d: d.execute_script(
                "const v = document.querySelector('.msg.mine video.video');"
                "return v && v.readyState >= 1 && v.duration > 0 ? v.duration : 0"))
            return {"played": played, "menu": driver.find_element(By.ID, "attach-menu").is_displayed(),
                    "caption": driver.find_element(By.ID, "text").get_attribute("value")}
        finally:
            driver.quit()

    seen = await asyncio.to_thread(use)
    video, document = ((await bot.update(1))["message"], (await bot.update(2))["message"])
    assert video["video"]["duration"] == 4 and video["caption"] == "my clip" and seen["caption"] == ""
    assert document["document"]["file_name"] == "cat.png" and "photo" not in document
    assert 3.5 < seen["played"] < 4.5 and not seen["menu"], f"the page plays the user's clip: {seen}"


async def test_a_sample_from_the_pages_menu_is_sent_as_the_users_own_file(bot: Bot) -> None:
    for kind in ("video", "photo", "audio"):
        status, body = await page_post(bot, "/demo/api/sample", {"chat": DEFAULT_CHAT, "lang": "en", "kind": kind,
                                                                 "caption": "try this"})
        assert status == 200, body
    video, photo, audio = [(await bot.update(index))["message"] for index in (1, 2, 3)]
    assert (video["video"]["duration"], video["video"]["width"]) == (4, 640) and video["caption"] == "try this"
    assert await downloaded(bot, video["video"]["file_id"]) == clip()
    assert (photo["photo"][-1]["width"], photo["photo"][-1]["height"]) == (960, 1280)
    assert audio["audio"]["duration"] == 2 and audio["audio"]["mime_type"] == "audio/mpeg", "1.5 s, as a client rounds"
    assert (await page_post(bot, "/demo/api/sample", {"chat": DEFAULT_CHAT, "kind": "virus"}))[0] == 400
    assert (await page_post(bot, "/demo/api/sample", {"chat": DEFAULT_CHAT, "kind": "photo"},
                            origin="https://evil.example"))[0] == 403
    assert len(bot.updates) == 3
