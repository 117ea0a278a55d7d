"""A talking avatar that speaks a typed text (issue 19, "fewer taps"): at the avatar's audio step
the user may type a text instead of sending audio; the confirmation shows the whole price (the
bot's speech model for the text plus the avatar for the estimated seconds); the job makes the
speech task first, then the avatar task with audio_url = the speech's result, and delivers the
video. A restart between the two tasks follows the speech task it has (never a second one); a
restart between the speech's intent and its answer ends the job released (never a second one);
a failed speech releases the hold and says so.

The wizard through aiogram's real Dispatcher (tests/wizard_kit.py) and the jobs actor in process
(actors/kie_poller.py, as tests/test_kie_poller.py drives it), over a real PostgreSQL, the fake
Telegram and the fake KIE over HTTP. The `money` fixture checks the money invariants after each.
"""

from __future__ import annotations

import dataclasses
import io
import time
import wave
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from aiohttp import web

import config
from actors.kie_poller import KiePoller
from actors.mailbox import Mailbox
from bot import speak
from bot.inputs import Bad
from bot.prices import kopecks
from catalog import payload
from catalog.loader import CatalogError, load
from fakes.kie_api import CREATE_PATH, FakeKie
from fakes.telegram_api import FakeTelegram
from ingest.bot_api import make_bot
from ingest.kie_callbacks import ROUTE, KieCallbackIntake
from kie import KieClient
from messages.jobs import WakeJobs
from messages.roles import CurrentRole, Role, RoleChanged, RoleQuery
from store import accounts, job_parts, jobs
from store.jobs import Created, Job, Order
from tests.conftest import Money
from tests.procs import eventually
from tests.wizard_kit import CATALOG, PNG, TOKEN, USER, Chat, rub, t

pytestmark = pytest.mark.timeout(90)
AVATAR = "kling/ai-avatar-standard"
TTS = "elevenlabs/text-to-speech-multilingual-v2"
TEXT = "Привет! Я говорящий аватар, и этот текст бот озвучил сам."  # 57 characters: 5 s at 14 a second


def summed_price(settings: config.Settings, text: str) -> int:
    """What the confirmation must show: the speech's credits for the text plus the avatar's for
    the estimated seconds (14 characters a second, rounded up), as one price."""
    seconds = -(-len(text) // 14)
    speech = CATALOG.model(TTS).credits({"text": text})
    avatar = CATALOG.model(AVATAR).credits({}, {"audio_url": seconds})
    return kopecks(settings, speech + avatar)


@dataclasses.dataclass
class Driver:
    """The jobs actor over the chat's fake Telegram and a fake KIE; restart() is a new process."""

    money: Money
    tg: FakeTelegram
    kie: FakeKie
    settings: config.Settings
    actor: KiePoller | None = None
    client: KieClient | None = None
    box: Mailbox | None = None
    made: int = 0

    async def start(self) -> None:
        self.made += 1
        self.box = KiePoller.new_mailbox(f"kie_poller-{self.made}")
        self.client = KieClient(self.settings.kie_api_key, self.settings.kie_api_base, self.settings.kie_upload_base,
                                timeout=5.0, download_trusted_hosts=self.settings.download_trusted_hosts)
        keeper = Mailbox("lock_keeper-stand-in", (RoleQuery, CurrentRole), 1000)
        self.actor = KiePoller(self.box, self.settings, self.money.db, make_bot(TOKEN, self.tg.base_url, timeout=10),
                               self.client, CATALOG, keeper, sweep_interval=0.1)
        await self.actor.start()
        self.box.tell_nowait(RoleChanged(Role.ACTIVE, self.money.epoch, "test", time.monotonic() + 3600))

    async def stop(self) -> None:
        if self.actor is not None:
            await self.actor.stop(10.0)
        if self.client is not None:
            await self.client.close()
        self.actor = self.client = None

    async def restart(self) -> None:
        await self.stop()
        await self.start()

    def wake(self) -> None:
        if self.box is not None:
            self.box.tell_nowait(WakeJobs())

    async def told(self, job_id: int, timeout: float = 30.0) -> Job:
        async def probe() -> Job | None:
            job = await jobs.job(self.money.db, job_id)
            return job if job is not None and job.delivered_at is not None else None
        return await eventually(probe, timeout, f"job {job_id} told", interval=0.05)

    def creates(self, model: str) -> list[Any]:
        return [c for c in self.kie.calls(CREATE_PATH) if (c.json or {}).get("model") == model]

    async def ledger(self, user: int) -> list[str]:
        entries = await accounts.recent_entries(self.money.db, self.money.bot_id, user, 100)
        return [e.kind for e in reversed(entries)]


Make = Callable[..., Awaitable[Driver]]


@pytest.fixture
async def driver(money: Money, fake: FakeTelegram, database_url: str) -> AsyncIterator[Make]:
    made: list[tuple[Driver, web.AppRunner]] = []
    kies: list[FakeKie] = []

    async def make(*, kie: dict[str, Any] | None = None) -> Driver:
        fake_kie = FakeKie(**{"duration": 0.3, **(kie or {})})
        await fake_kie.start()
        kies.append(fake_kie)
        holder: list[KieCallbackIntake] = []

        async def route(request: web.Request) -> web.StreamResponse:
            return await holder[0].handle(request)

        app = web.Application()
        app.router.add_post(ROUTE, route)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        port = runner.addresses[0][1]
        settings = config.load("serve", {
            "TELEGRAM_BOT_TOKEN": TOKEN, "DATABASE_URL": database_url, "TELEGRAM_API_BASE": fake.base_url,
            "KIE_API_KEY": "kie-test-key-0123", "KIE_API_BASE": fake_kie.base_url,
            "KIE_UPLOAD_BASE": fake_kie.base_url, "WEBHOOK_SECRET": "avatar-tts-secret-0123",
            "WEBHOOK_BASE_URL": f"http://127.0.0.1:{port}",
            "DOWNLOAD_TRUSTED_HOSTS": urlsplit(fake_kie.base_url).netloc,
            "TELEGRAM_RATE_GLOBAL": "0", "TELEGRAM_RATE_PER_CHAT": "0"})
        d = Driver(money, fake, fake_kie, settings)
        holder.append(KieCallbackIntake(settings, money.db, d.wake))
        made.append((d, runner))
        await d.start()
        return d

    yield make
    for d, runner in made:
        await d.stop()
        await runner.cleanup()
    for fake_kie in kies:
        await fake_kie.stop()


async def photo(chat: Chat, fake: FakeTelegram) -> None:
    update, _ = fake.user_photo(chat.user, PNG)
    await chat.feed(update)


async def a_job(money: Money, fake: FakeTelegram, user: int, text: str = TEXT) -> Job:
    """What Confirm makes for a typed text (the price as the confirmation shows it)."""
    await accounts.ensure_user(money.db, money.name, money.epoch, money.bot_id, user, "en", 0)
    await accounts.credit(money.db, money.name, money.epoch, money.bot_id, user, 100_000, f"seed:{user}")
    picture = fake.add_file(PNG, kind="photo")
    model = CATALOG.model(AVATAR)
    speech = model.field("audio_url").speak
    assert speech is not None
    chosen = {"image_url": payload.file_ref(picture.file_id, "image/jpeg", len(PNG)),
              "audio_url": payload.spoken_ref(speech, text), "prompt": "smile"}
    built = payload.build(model, chosen)
    settings = config.load("serve", {"TELEGRAM_BOT_TOKEN": TOKEN})
    price = kopecks(settings, model.credits(built, payload.media_seconds(model, built)))
    order = Order(user_id=user, chat_id=user, nonce=f"n{user}-{time.monotonic_ns()}", model=AVATAR, sku="base/second",
                  input=built, price=price, paid_with="money", day=date.today())
    created = await jobs.confirm(money.db, money.name, money.epoch, money.bot_id, order, free_daily_limit=5,
                                 max_active=100)
    assert isinstance(created, Created), created
    return created.job


# --- the way through ------------------------------------------------------------------------------


async def test_a_typed_text_is_spoken_then_the_avatar_speaks_it_for_the_summed_price(
        chat: Chat, fake: FakeTelegram, driver: Make) -> None:
    d = await driver()
    await chat.top_up(100_000)
    await chat.open_model(AVATAR)
    await photo(chat, fake)
    await chat.say(TEXT)  # typed at the audio step: the wizard takes it as a text to speak
    await chat.say("smile and speak calmly")
    expected = summed_price(chat.settings, TEXT)
    avatar_alone = kopecks(chat.settings, CATALOG.model(AVATAR).credits({}, {"audio_url": 5}))
    assert expected > avatar_alone, "the speech costs something on top"
    assert t("confirm_price", price=rub(expected)) in (chat.last.text or "")
    await chat.press(chat.action("ok"))
    [job] = await chat.jobs()
    assert job.price == expected and job.input["audio_url"]["speak"] == TEXT
    d.wake()

    done = await d.told(job.id)
    assert done.state == "succeeded", done.failure
    [speech_call] = d.creates(TTS)
    [avatar_call] = d.creates(AVATAR)
    assert speech_call.json["input"] == {"text": TEXT, "voice": CATALOG.model(TTS).field("voice").default}
    assert "callBackUrl" not in speech_call.json, "a speech task is never taken for the avatar's by its callback"
    speech_task = next(task for task in d.kie.tasks.values() if task.model == TTS)
    assert speech_task.state == "success" and speech_task.result_urls
    assert avatar_call.json["input"]["audio_url"] == speech_task.result_urls[0]
    assert avatar_call.json["input"]["image_url"].startswith(d.kie.base_url)
    assert d.kie.calls(CREATE_PATH).index(speech_call) < d.kie.calls(CREATE_PATH).index(avatar_call)
    assert done.kie_task_id == next(task.task_id for task in d.kie.tasks.values() if task.model == AVATAR)
    assert [c for c in fake.calls("sendVideo", USER) if c.ok], "the avatar's video reached the chat"
    assert await d.ledger(USER) == ["top_up", "hold", "capture"]


async def test_typing_at_the_audio_step_through_the_dispatcher_reaches_the_next_step(
        chat: Chat, fake: FakeTelegram) -> None:
    await chat.top_up(100_000)
    await chat.open_model(AVATAR)
    await photo(chat, fake)
    await chat.say(TEXT)
    _, data = await chat.state()
    assert data["v"]["audio_url"]["speak"] == TEXT


async def test_a_text_that_would_play_past_the_limit_is_refused_with_its_numbers() -> None:
    model = CATALOG.model(AVATAR)
    item = model.field("audio_url")
    longest = "a" * 210
    value = speak.spoken_value(model, item, longest)
    assert not isinstance(value, Bad) and value["seconds"] == 15.0, "210 characters: 15 s at 14 a second"
    refused = speak.spoken_value(model, item, longest + "b")
    assert refused == Bad("speak_too_long", {"got": 211, "seconds": 16, "limit": 15, "most": 210})
    assert t("speak_too_long", **refused.values) == (
        "Текст для озвучки слишком длинный: 211 символов — это около 16 с, а здесь можно не больше 15 с "
        "(до 210 символов). Сократите, пожалуйста.")
    assert speak.spoken_value(model, item, "   ") == Bad("bad_empty")
    assert speak.spoken_value(model, model.field("image_url"), "hi") == Bad("send_file_image")


def test_a_spoken_text_is_shown_as_its_words_and_seconds_and_the_step_says_a_text_works() -> None:
    model = CATALOG.model(AVATAR)
    value = speak.spoken_value(model, model.field("audio_url"), TEXT)
    assert speak.shown("ru", value) == f"озвучка текста «{TEXT}», около 5 с"
    assert speak.shown("en", value) == f"your text spoken, “{TEXT}”, about 5 s"
    assert speak.shown("ru", payload.file_ref("f", "audio/ogg", 9, 3.0)) is None, "a file is shown as before"
    assert speak.hint("ru", model.field("audio_url")) == t("ask_speak", most=210)
    assert speak.hint("ru", CATALOG.model("wan/2-2-a14b-speech-to-video-turbo").field("audio_url")) is None


# --- crashes and failures ---------------------------------------------------------------------------


async def test_a_restart_between_the_speech_task_and_the_avatar_task_makes_no_second_speech(
        money: Money, fake: FakeTelegram, driver: Make) -> None:
    d = await driver()
    d.kie.plan(TTS, hold=True, count=1)  # a second speech task, were one made, would end at once
    job = await a_job(money, fake, 7101)
    d.wake()

    async def speech_recorded() -> bool:
        return "speak:audio_url:task" in await job_parts.parts(money.db, job.id)
    await eventually(speech_recorded, 20, "the speech task recorded")
    await d.restart()  # a new process: nothing of the first one's memory
    [speech_task] = [task for task in d.kie.tasks.values() if task.model == TTS]
    d.kie.finish(speech_task.task_id)
    d.wake()
    done = await d.told(job.id)
    assert done.state == "succeeded", done.failure
    assert len(d.creates(TTS)) == 1, "never a second speech task"
    [avatar_call] = d.creates(AVATAR)
    assert speech_task.result_urls and avatar_call.json["input"]["audio_url"] == speech_task.result_urls[0]
    assert await d.ledger(7101) == ["top_up", "hold", "capture"]


async def test_a_restart_between_the_speech_intent_and_its_answer_releases_the_job_without_a_second_speech(
        money: Money, fake: FakeTelegram, driver: Make) -> None:
    d = await driver()
    d.kie.inject(CREATE_PATH, hang=True)  # the speech's createTask never answers
    job = await a_job(money, fake, 7102)
    d.wake()

    async def intent_only() -> bool:
        return "speak:audio_url:1" in await job_parts.parts(money.db, job.id) and len(d.kie.calls(CREATE_PATH)) == 1
    await eventually(intent_only, 20, "the speech's intent committed and its request sent")
    await d.restart()
    done = await d.told(job.id)
    assert (done.state, done.failure) == ("failed", "speech_failed")
    assert len(d.kie.calls(CREATE_PATH)) == 1, "KIE may have that task: never a second one, and no avatar"
    assert await d.ledger(7102) == ["top_up", "hold", "release"]


async def test_a_failed_speech_fails_the_job_and_returns_the_money(
        money: Money, fake: FakeTelegram, driver: Make) -> None:
    d = await driver()
    d.kie.plan(TTS, outcome="fail", fail_code="500", fail_msg="TTS engine crashed")
    job = await a_job(money, fake, 7103)
    d.wake()
    done = await d.told(job.id)
    assert (done.state, done.failure) == ("failed", "speech_failed")
    assert len(d.creates(TTS)) == 1 and not d.creates(AVATAR)
    assert await d.ledger(7103) == ["top_up", "hold", "release"]
    said = [c.params["text"] for c in fake.calls("sendMessage", 7103) if c.ok]
    assert said and "money is back" in said[-1] and "TTS engine" not in said[-1]


async def test_a_speech_far_longer_than_its_estimate_ends_the_job_released_before_the_avatar(
        money: Money, fake: FakeTelegram, driver: Make) -> None:
    """Digits read out play far longer than their characters say: KIE would bill the avatar for
    the real seconds, the user paid for the estimate, so no avatar task is made."""
    d = await driver()
    sound = io.BytesIO()
    with wave.open(sound, "wb") as out:  # 12 s of silence: the estimate of "1000000000000" is 1 s
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(8000)
        out.writeframes(b"\x00\x00" * 8000 * 12)
    d.kie.plan(TTS, result_urls=[d.kie.add_file("speech/long.wav", sound.getvalue(), "audio/wav")])
    job = await a_job(money, fake, 7104, text="1000000000000")
    d.wake()
    done = await d.told(job.id)
    assert (done.state, done.failure) == ("failed", "speech_too_long")
    assert len(d.creates(TTS)) == 1 and not d.creates(AVATAR)
    assert await d.ledger(7104) == ["top_up", "hold", "release"]


# --- the catalog ------------------------------------------------------------------------------------


def test_every_avatar_with_a_length_limit_speaks_text_with_one_speech_model() -> None:
    speaking = [m for m in CATALOG.in_family("avatar") if m.field("audio_url").speak is not None]
    assert {m.id for m in speaking} == {"kling/ai-avatar-standard", "infinitalk/from-audio", "kling/ai-avatar-pro",
                                        "omnihuman-1-5"}
    speeches = {m.field("audio_url").speak for m in speaking}
    assert len({(s.model, s.chars_per_second) for s in speeches if s is not None}) == 1
    only = speaking[0].field("audio_url").speak
    assert only is not None and only.tts is CATALOG.model(TTS) and only.chars_per_second == Decimal(14)


def test_the_catalog_refuses_a_speech_model_that_does_not_speak(tmp_path: Path) -> None:
    source = (Path(__file__).parent.parent / "catalog" / "models")
    for file in source.glob("*.yaml"):
        text = file.read_text(encoding="utf-8")
        if file.name == "avatar.yaml":
            text = text.replace("model: elevenlabs/text-to-speech-multilingual-v2", "model: google/nano-banana")
        (tmp_path / file.name).write_text(text, encoding="utf-8")
    with pytest.raises(CatalogError) as caught:
        load(tmp_path)
    assert any("'google/nano-banana' is not a text-to-speech model" in p for p in caught.value.problems)
