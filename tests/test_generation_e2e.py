"""A generation end to end, black box: `run.py serve` as a real process on a real PostgreSQL, the
fake Telegram and the fake KIE as real HTTP servers in the test (TELEGRAM_API_BASE, KIE_API_BASE
and KIE_UPLOAD_BASE point at them), WEBHOOK_BASE_URL at the process itself, so Telegram's updates
and KIE's callbacks both reach it over HTTP. A user, played through the fake Telegram's webhook
deliveries, presses the buttons the bot actually sent (their callback_data read from the received
reply_markup, nonces included) and types or sends what each step asks:

/start -> a family's page -> a model's card -> Start -> every step (optional ones skipped) -> the
confirmation -> Confirm -> the status message -> the result, as the model's kind (a photo also as
its original file) with Again and Menu -> Menu -> Balance (the capture listed) -> History (the job
listed) -> the job opened (the result sent again by the file_id Telegram gave for it).

One test per output kind and per way in: a text-to-image model (photo), a text-to-video model
(video), an image-input model (the user's photo goes to KIE through its upload service, never as
a Telegram file URL), a text-to-speech model (audio). After each: KIE's callback reached the
process, the money invariants (store.invariants) hold and the job has one hold and one capture.
Callback-only, polling-only, 402 and the other KIE faults are the jobs actor's in-process tests
(tests/test_kie_poller.py); the kill -9 cases are tests/test_kie_poller_failover.py.
"""

from __future__ import annotations

import collections
import hashlib
import struct
import zlib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import pytest

from bot import flow, keyboards, texts
from catalog.loader import shipped
from fakes.kie_api import CREATE_PATH, UPLOAD_PATH, FakeKie
from fakes.telegram.wire import SEND_METHODS
from fakes.telegram_api import Call, FakeTelegram
from store import invariants, jobs
from store.database import Database
from tests.procs import FAKE_TOKEN, TrtProcess, eventually, free_port

pytestmark = pytest.mark.timeout(180)
BOT_ID = int(FAKE_TOKEN.split(":")[0])
BONUS = 20_000  # kopecks: 200 ₽, more than any model below costs
LANG = "en"
CATALOG = shipped()
Fakes = tuple[FakeTelegram, FakeKie]
MEDIA = {"photo": "sendPhoto", "video": "sendVideo", "audio": "sendAudio"}


@pytest.fixture
async def fakes() -> AsyncIterator[Fakes]:
    async with FakeTelegram() as telegram, FakeKie(duration=1.0) as kie:
        yield telegram, kie


@pytest.fixture
async def store_db(database_url: str) -> AsyncIterator[Database]:
    database = Database(database_url, "test", pool_size=2)
    await database.connect()
    yield database
    await database.close()


def env(database_url: str, telegram: FakeTelegram, kie: FakeKie, port: int) -> dict[str, str]:
    return {"TELEGRAM_BOT_TOKEN": FAKE_TOKEN, "DATABASE_URL": database_url, "TELEGRAM_API_BASE": telegram.base_url,
            "WEBHOOK_BASE_URL": f"http://127.0.0.1:{port}", "BOT_MODE": "webhook",
            "WEBHOOK_SECRET": "e2e-secret-0123456789", "KIE_API_KEY": "kie-e2e-key", "KIE_API_BASE": kie.base_url,
            "KIE_UPLOAD_BASE": kie.base_url, "DOWNLOAD_TRUSTED_HOSTS": urlsplit(kie.base_url).netloc,
            "WELCOME_BONUS": str(BONUS), "PORT": str(port),
            "TELEGRAM_RATE_GLOBAL": "0", "TELEGRAM_RATE_PER_CHAT": "0", "HEARTBEAT_INTERVAL": "0.5",
            "LOCK_RETRY_INTERVAL": "0.2", "INBOX_SWEEP_INTERVAL": "0.2"}


async def serving(spawn: Any, database_url: str, telegram: FakeTelegram, kie: FakeKie, **extra: str) -> TrtProcess:
    """The service, ACTIVE, driving jobs with callbacks on, its webhook set at the fake Telegram."""
    port = free_port()
    proc: TrtProcess = spawn(env(database_url, telegram, kie, port) | extra)

    async def ready() -> bool:
        body = await proc.health()
        return bool(body["role"] == "ACTIVE" and body["jobs"]["driving"] and body["jobs"]["callbacks"] == "on")
    await proc.wait_healthy()
    await eventually(ready, 60, "ACTIVE and driving jobs")
    await telegram.wait_for(lambda: telegram.webhook_info().get("url"), 30, "the webhook set")
    assert telegram.webhook_info()["url"] == f"{proc.base}/webhook"
    if "CHAOS_TOKEN" not in extra:
        assert (await proc.post("/chaos/dispatcher", {"fault": "crash"}))[0] == 404, "CHAOS_TOKEN must be unset"
    return proc


def png(seed: str, size: int = 32) -> bytes:
    """A valid solid-colour PNG: the user's picture."""
    rgb = hashlib.sha256(seed.encode()).digest()[:3]
    raw = (b"\x00" + rgb * size) * size

    def chunk(tag: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", size, size, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b"")


def data_of(call: Call) -> list[str]:
    """The callback_data of every inline button of a message the bot sent."""
    markup = call.params.get("reply_markup") or {}
    return [b["callback_data"] for row in markup.get("inline_keyboard", []) for b in row if "callback_data" in b]


def labelled(call: Call) -> list[tuple[str, str]]:
    markup = call.params.get("reply_markup") or {}
    return [(b["text"], b["callback_data"]) for row in markup.get("inline_keyboard", []) for b in row
            if "callback_data" in b]


def t(key: str, **values: Any) -> str:
    return texts.t(LANG, key, **values)


def rub(kopecks: int) -> str:
    return texts.money(LANG, kopecks)


def is_screen(call: Call) -> bool:
    """A message the user can answer: a text with buttons, sent or edited into a message (the
    wizard edits its one living message)."""
    return call.method in ("sendMessage", "editMessageText") and bool(data_of(call))


class User:
    """One Telegram user: every action is an update delivered to the bot's webhook as Telegram
    delivers it, then a bounded wait for what the bot sends back to this chat."""

    def __init__(self, telegram: FakeTelegram, chat: int) -> None:
        self.telegram = telegram
        self.chat = chat

    def sent(self) -> list[Call]:
        return self.telegram.sent_messages(self.chat)

    def shown(self) -> list[Call]:
        """What the bot showed this chat: messages sent and texts edited into one."""
        return [c for c in self.telegram.calls(chat_id=self.chat)
                if c.ok and (c.method in SEND_METHODS or c.method == "editMessageText")]

    async def _act(self, update: dict[str, Any], until: Callable[[list[Call]], list[Call] | None], what: str,
                   timeout: float = 30, *, edits: bool = False) -> list[Call]:
        """Deliver `update`; the bot's messages from then on (with `edits`, also the screens
        edited into one), once `until` accepts them."""
        seen = self.shown if edits else self.sent
        before = len(seen())
        assert await self.telegram.deliver(update) == 200, f"the webhook refused the update for {what}"
        return await self.telegram.wait_for(lambda: until(seen()[before:]), timeout, what)

    async def _to_screen(self, update: dict[str, Any], what: str) -> Call:
        """Deliver `update` and return the next screen (a message with buttons) the bot sends."""
        def screen(new: list[Call]) -> list[Call] | None:
            return [c for c in new if is_screen(c)][:1] or None
        [found] = await self._act(update, screen, what, edits=True)
        return found

    async def say(self, text: str) -> Call:
        return await self._to_screen(self.telegram.user_message(self.chat, text, language_code=LANG), f"after {text!r}")

    async def press(self, screen: Call, data: str) -> Call:
        """Press a button `screen` shows; the next screen."""
        assert data in data_of(screen), f"no button {data!r} on the screen: {data_of(screen)}"
        return await self._to_screen(self.press_update(screen, data), f"after pressing {data!r}")

    def press_update(self, screen: Call, data: str) -> dict[str, Any]:
        return self.telegram.user_callback(self.chat, data, message_id=int(screen.result["message_id"]),
                                           language_code=LANG)

    async def send_photo(self, data: bytes) -> tuple[Call, str]:
        """The user sends a picture; the next screen and the picture's Telegram file_id."""
        update, record = self.telegram.user_photo(self.chat, data, language_code=LANG)
        return await self._to_screen(update, "after the photo"), record.file_id

    async def press_for(self, screen: Call, data: str, until: Callable[[list[Call]], list[Call] | None],
                        what: str, timeout: float = 30) -> list[Call]:
        assert data in data_of(screen), f"no button {data!r} on the screen: {data_of(screen)}"
        return await self._act(self.press_update(screen, data), until, what, timeout)


def action(screen: Call, name: str) -> str:
    """A wizard button's data by its action (w:<nonce>:<action>[:arg]), the nonce as sent."""
    found = [d for d in data_of(screen) if d.startswith(keyboards.STEP) and d.split(":")[2] == name]
    assert found, f"no {name!r} button on the screen: {data_of(screen)}"
    return found[0]


def option(screen: Call, label: str | None) -> str:
    """An option button of a wizard step: the one whose text holds `label`, else the first."""
    options = [(text, d) for text, d in labelled(screen)
               if d.startswith(keyboards.STEP) and d.split(":")[2] in ("o", "b")]
    assert options, f"no options on the screen: {labelled(screen)}"
    chosen = [d for text, d in options if label is not None and label in text]
    return chosen[0] if chosen else options[0][1]


@dataclass
class Generation:
    """What one generation left: its job, the result as sent, and the user's photo's file_id."""

    job: jobs.Job
    result: list[Call]
    photo_file_id: str | None


async def open_model(user: User, model_id: str) -> Call:
    """/start -> the model's family (paged until the model shows) -> its card -> Start: the first step."""
    model = CATALOG.model(model_id)
    menu = await user.say("/start")
    assert t("welcome", name="Test") in (menu.text or "")
    page = await user.press(menu, keyboards.family_data(model.family))
    for _ in range(20):
        if keyboards.model_data(model_id) in data_of(page):
            break
        forward = [d for text, d in labelled(page) if text == "▶"]
        assert forward, f"{model_id} not listed in its family {model.family}"
        page = await user.press(page, forward[0])
    card = await user.press(page, keyboards.model_data(model_id))
    return await user.press(card, keyboards.start_data(model_id))


async def generate(user: User, kie: FakeKie, store_db: Database, model_id: str, prompt: str,
                   choices: dict[str, str] | None = None) -> Generation:
    """Every step the model asks, answered (optional ones skipped, options by label or the first),
    then Confirm, then the result delivered and committed."""
    model = CATALOG.model(model_id)
    screen = await open_model(user, model_id)
    photo_file_id = None
    for index, item in enumerate(flow.asked(model)):
        assert t("step_header", model=model.title.get(LANG), step=index + 1, steps=len(flow.asked(model))) \
            in (screen.text or ""), f"step {index + 1} ({item.name}) expected, got {screen.text!r}"
        if not item.required:
            screen = await user.press(screen, action(screen, "skip"))
        elif item.kind in ("prompt", "text"):
            screen = await user.say(prompt)
        elif item.kind in ("enum", "bool"):
            screen = await user.press(screen, option(screen, (choices or {}).get(item.name)))
        elif item.kind == "image":
            screen, photo_file_id = await user.send_photo(png(f"{user.chat}-{model_id}"))
            if item.array:
                assert (screen.text or "").startswith(t("file_received", count=1, most=item.max_items))
                screen = await user.press(screen, action(screen, "done"))
        else:
            raise AssertionError(f"this test does not answer a field of kind {item.kind}")
    assert t("confirm_header") in (screen.text or ""), f"the confirmation expected, got {screen.text!r}"
    assert t("confirm_balance", available=rub(BONUS)) in (screen.text or "")
    assert not [d for d in data_of(screen) if d == keyboards.TOP_UP], "the welcome bonus covers the price"

    def delivered(new: list[Call]) -> list[Call] | None:
        last = [i for i, c in enumerate(new) if any(d.startswith(keyboards.AGAIN) for d in data_of(c))]
        return new if last else None  # the result's last message carries Again and Menu
    sent = await user.press_for(screen, action(screen, "ok"), delivered, "the result", timeout=60)
    status = sent[0]
    queued = {t("status_queued", model=model.title.get(LANG), n=n) for n in range(1, 50)}  # the user's own number
    assert status.method == "sendMessage" and status.text in queued
    result = [c for c in sent if c.method != "sendMessage"]

    async def committed() -> jobs.Job | None:
        [job] = await jobs.user_jobs(store_db, BOT_ID, user.chat, 0, 10)
        return job if job.delivered_at is not None else None
    job = await eventually(committed, 30, "the job captured and marked delivered", interval=0.1)
    assert job.state == "succeeded" and job.paid_with == "money" and job.held == 0
    assert job.kie_task_id is not None and len(kie.tasks) == 1 and job.kie_task_id in kie.tasks
    [callback] = await kie.wait_for_callbacks(1, job.kie_task_id, timeout=30)
    assert callback.status == 200, f"KIE's callback did not reach the process: {callback.status} {callback.error}"
    assert callback.url.startswith(f"{user.telegram.webhook_info()['url'].removesuffix('/webhook')}/kie-callback/")
    return Generation(job, result, photo_file_id)


async def check_money(store_db: Database, job: jobs.Job) -> None:
    problems = await invariants.check(store_db, BOT_ID)
    assert not problems, "\n".join(problems)
    rows = await store_db.require().fetch("SELECT job_id, kind, balance_delta, held_delta FROM ledger "
                                          "WHERE job_id IS NOT NULL")
    kinds = collections.Counter((r["job_id"], r["kind"]) for r in rows)
    assert kinds == {(job.id, "hold"): 1, (job.id, "capture"): 1}, kinds
    captured = [r for r in rows if r["kind"] == "capture"]
    assert captured[0]["balance_delta"] == -job.price


def file_id_of(call: Call, kind: str) -> str:
    """The file_id Telegram answered a send with (a photo's largest size)."""
    sent = call.result[kind]
    return str((sent[-1] if isinstance(sent, list) else sent)["file_id"])


async def balance_and_history(user: User, generation: Generation, kind: str) -> None:
    """Menu (under the result) -> Balance: the capture; -> History: the job; open it: the result
    sent again by the file_id Telegram gave it, nothing generated again."""
    job, result = generation.job, generation.result
    last = result[-1]
    assert keyboards.again_data(job.id) in data_of(last) and keyboards.MENU_OPEN in data_of(last)
    menu = await user.press(last, keyboards.MENU_OPEN)
    balance = await user.press(menu, keyboards.MENU_BALANCE)
    screen = balance.text or ""
    assert screen.startswith(t("balance_header", balance=rub(BONUS - job.price))), screen
    assert t("gen_line_paid", n=job.user_number, model=CATALOG.model(job.model).title.get(LANG),
             amount=rub(-job.price)) in screen, screen
    listing = await user.press(balance, keyboards.MENU_HISTORY)
    assert t("history_header") in (listing.text or "") and f"#{job.user_number} ·" in (listing.text or "")
    assert t("state_succeeded") in (listing.text or "")

    def opened(new: list[Call]) -> list[Call] | None:
        return new if any(is_screen(c) for c in new) else None
    sent = await user.press_for(listing, keyboards.job_data(job.id, 0), opened, "the job opened")
    method = MEDIA[kind]
    [again] = [c for c in sent if c.method == method]
    [first] = [c for c in result if c.method == method]
    assert again.params[kind] == file_id_of(first, kind), "re-sent by the file_id Telegram gave, not uploaded again"
    assert first.uploads and not again.uploads, "the result was uploaded once, and not again"
    if kind == "photo":
        [original] = [c for c in result if c.method == "sendDocument"]
        [original_again] = [c for c in sent if c.method == "sendDocument"]
        assert original_again.params["document"] == file_id_of(original, "document")
    details = sent[-1]
    assert is_screen(details) and keyboards.again_data(job.id) in data_of(details)


async def test_an_image_model_from_start_to_the_photo_the_balance_and_history(
        database_url: str, store_db: Database, fakes: Fakes, spawn: Any) -> None:
    telegram, kie = fakes
    await serving(spawn, database_url, telegram, kie)
    user = User(telegram, 61_001)
    generation = await generate(user, kie, store_db, "seedream/4.5-text-to-image", "a red fox in the snow",
                                {"aspect_ratio": "16:9"})
    job, result = generation.job, generation.result
    assert [c.method for c in result] == ["sendPhoto", "sendDocument"], "the photo, then the original file"
    assert all(c.ok for c in result)
    assert "a red fox in the snow" in (result[0].text or "")
    [create] = kie.calls(CREATE_PATH)
    assert create.json["model"] == "seedream/4.5-text-to-image"
    assert create.json["input"]["prompt"] == "a red fox in the snow" and create.json["input"]["aspect_ratio"] == "16:9"
    assert job.result_file_id == file_id_of(result[0], "photo")
    await check_money(store_db, job)
    await balance_and_history(user, generation, "photo")
    assert len(kie.tasks) == 1, "history re-sends, never generates again"
    await check_money(store_db, job)


async def test_a_video_model_delivers_a_video(
        database_url: str, store_db: Database, fakes: Fakes, spawn: Any) -> None:
    telegram, kie = fakes
    await serving(spawn, database_url, telegram, kie)
    user = User(telegram, 61_002)
    generation = await generate(user, kie, store_db, "wan/2-6-text-to-video", "waves on a beach at sunset")
    job, result = generation.job, generation.result
    assert [c.method for c in result] == ["sendVideo"] and result[0].ok
    [create] = kie.calls(CREATE_PATH)
    assert create.json["input"]["duration"] == "5" and create.json["input"]["resolution"] == "720p", \
        "skipped steps take the model's defaults"
    await check_money(store_db, job)
    await balance_and_history(user, generation, "video")
    assert len(kie.tasks) == 1
    await check_money(store_db, job)


async def test_an_image_input_model_sends_the_users_photo_through_kies_upload_service(
        database_url: str, store_db: Database, fakes: Fakes, spawn: Any) -> None:
    telegram, kie = fakes
    await serving(spawn, database_url, telegram, kie)
    user = User(telegram, 61_003)
    generation = await generate(user, kie, store_db, "google/nano-banana-edit", "make it a watercolor")
    job, result = generation.job, generation.result
    assert [c.method for c in result] == ["sendPhoto", "sendDocument"] and all(c.ok for c in result)
    [upload] = kie.calls(UPLOAD_PATH)
    sent_bytes = len(png(f"{user.chat}-google/nano-banana-edit"))
    assert upload.form is not None and upload.form["file"].startswith(f"<{sent_bytes} bytes"), upload.form
    [create] = kie.calls(CREATE_PATH)
    [url] = create.json["input"]["image_urls"]
    assert url.startswith(f"{kie.base_url}/files/uploads/"), f"not a URL of KIE's upload service: {url}"
    assert "/file/bot" not in str(create.json) and FAKE_TOKEN.split(":")[1] not in str(create.json), \
        "never a Telegram file URL (it holds the bot's token)"
    assert generation.photo_file_id is not None and generation.photo_file_id not in str(create.json)
    assert [c for c in telegram.calls("getFile") if c.params.get("file_id") == generation.photo_file_id]
    await check_money(store_db, job)
    await balance_and_history(user, generation, "photo")
    await check_money(store_db, job)


async def test_an_audio_model_delivers_audio(
        database_url: str, store_db: Database, fakes: Fakes, spawn: Any) -> None:
    telegram, kie = fakes
    await serving(spawn, database_url, telegram, kie)
    user = User(telegram, 61_004)
    generation = await generate(user, kie, store_db, "elevenlabs/text-to-speech-multilingual-v2",
                                "Hello from the end-to-end test.")
    job, result = generation.job, generation.result
    assert [c.method for c in result] == ["sendAudio"] and result[0].ok
    [create] = kie.calls(CREATE_PATH)
    assert create.json["input"]["text"] == "Hello from the end-to-end test."
    await check_money(store_db, job)
    await balance_and_history(user, generation, "audio")
    assert len(kie.tasks) == 1
    await check_money(store_db, job)
