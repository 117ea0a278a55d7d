"""The wizard and its confirmation, fed through aiogram's real Dispatcher (build_dispatcher with
PostgresStorage and the product's services) and a real Bot against the fake Telegram over HTTP
(tests/wizard_kit.py): whole paths for an image, a video, an image-input, an audio and an avatar
model; bad input at every step; old buttons; leaving; restarts; Confirm's one job per screen,
its refusals (short balance, paused, free limit, running limit), the free tier and admins; the
64-byte callback data of every screen. The `money` fixture checks the money invariants after each."""

from __future__ import annotations

import asyncio
import dataclasses
from decimal import Decimal
from typing import Any

import pytest
from aiogram import Bot
from aiogram.exceptions import TelegramServerError

from bot import flow, keyboards, texts
from bot.conversation import build_dispatcher
from bot.fsm_storage import PostgresStorage
from bot.inputs import Bad, text_value
from bot.prices import kopecks, lowest, price_range
from bot.services import Services
from catalog.families import Text
from catalog.model import Catalog, Field, Sku
from catalog.payload import file_ref
from fakes.telegram_api import FakeTelegram, callback_update
from kie import CREATE, Limiter, Rate
from store import accounts, grants, jobs, kie_account
from store.fence import fenced
from store.jobs import Order, Succeeded
from tests.conftest import Money
from tests.wizard_kit import CATALOG, IDS, USER, Chat, price_of, rub, settings_with, t, title

pytestmark = pytest.mark.timeout(120)


# --- whole paths --------------------------------------------------------------------------------


async def test_an_image_model_from_the_menu_to_a_created_job(chat: Chat) -> None:
    model_id = "seedream/4.5-text-to-image"
    price = price_of(model_id, {})
    assert price == 700, "6.5 credits x 50 x 2.0 = 650 kopecks, rounded up to whole rubles"
    await chat.say("/start")
    assert (chat.last.text or "").startswith(t("welcome", name="Test"))  # then what the user has (test_first_screen)
    assert keyboards.family_data("text_to_image") in chat.data()
    await chat.top_up(1_000)

    await chat.press(keyboards.family_data("text_to_image"))
    listed = dict((d, text) for text, d in chat.buttons())
    assert listed[keyboards.model_data(model_id)] == "⭐ Seedream 4.5 · от 7 ₽"
    assert listed[keyboards.model_data("z-image")].startswith("🎁 Z-Image · бесплатно")
    models = [d for d in chat.data() if d.startswith(keyboards.MODEL)]
    assert models[:4] == [keyboards.model_data(m.id) for m in CATALOG.in_family("text_to_image")[:4]], "popular first"

    await chat.press(keyboards.model_data(model_id))
    assert "ByteDance" in (chat.last.text or "") and "7 ₽" in (chat.last.text or "")
    await chat.press(keyboards.start_data(model_id))
    assert (chat.last.text or "").startswith(t("step_header", model="Seedream 4.5", step=1, steps=3))
    assert "3000" in (chat.last.text or "")

    await chat.say("a red fox in the snow")
    assert t("ask_choice", title=title(model_id, "aspect_ratio")) in (chat.last.text or "")
    assert "✓ 1:1 квадрат" in [text for text, _ in chat.buttons()], "the default is marked"
    await chat.press(chat.find("16:9"))
    await chat.press(chat.find("Высокое"))

    confirmation = chat.last
    assert t("confirm_header") in (confirmation.text or "")
    assert "«a red fox in the snow»" in (confirmation.text or "")
    assert "16:9 горизонтально" in (confirmation.text or "") and t("confirm_price", price="7 ₽") in (confirmation.text
                                                                                                    or "")
    assert t("confirm_balance", available="10 ₽") in (confirmation.text or "")
    ok = chat.action("ok")
    await chat.press(ok)

    [job] = await chat.jobs()
    assert (job.state, job.model, job.paid_with, job.price, job.held) == ("created", model_id, "money", 700, 700)
    assert job.input == {"prompt": "a red fox in the snow", "aspect_ratio": "16:9", "quality": "high",
                         "nsfw_checker": True}
    assert job.nonce == f"{USER}:{ok.split(':')[1]}", "the job is keyed by the confirmation's nonce"
    status = chat.last
    assert status.text == t("status_queued", model="Seedream 4.5", n=job.user_number)
    assert job.status_message_id == status.result["message_id"], "the status message is recorded on the job"
    assert chat.wakes == 1
    assert await chat.balance() == accounts.Balance(1_000, 700)
    assert await chat.state() == (None, {}), "the wizard is over"


async def test_a_video_model_priced_by_its_options(chat: Chat) -> None:
    model_id = "kling-2.6/text-to-video"
    await chat.top_up(100_000)
    await chat.open_model(model_id)
    await chat.say("waves on a beach at sunset")
    await chat.press(chat.find("9:16"))
    options = [text for text, _ in chat.buttons()]
    assert any(text.startswith("10") and rub(price_of(model_id, {"duration": "10"})) in text for text in options), \
        "options that change the price show it"
    await chat.press(chat.find("10"))
    await chat.press(chat.find(t("yes")))
    expected = price_of(model_id, {"duration": "10", "sound": True})
    assert expected == 22_000
    assert t("confirm_price", price=rub(expected)) in (chat.last.text or "")
    await chat.press(chat.action("ok"))
    [job] = await chat.jobs()
    assert job.input["duration"] == "10" and job.input["sound"] is True and job.held == expected
    assert job.sku == "duration=10,sound=True"


async def test_an_image_input_model_takes_photos_and_refuses_what_does_not_fit(chat: Chat) -> None:
    model_id = "google/nano-banana-edit"
    await chat.top_up(10_000)
    await chat.open_model(model_id)
    step = chat.last
    assert "JPG, PNG, WEBP" in (step.text or "") and "10 МБ" in (step.text or "")
    await chat.send("document", {"file_id": "pdf-1", "file_unique_id": "u1", "file_name": "cv.pdf",
                                 "mime_type": "application/pdf", "file_size": 1000})
    assert (chat.last.text or "").startswith(t("bad_file_kind", want="image"))
    assert chat.data() == chat.data(step), "the same step again, its buttons still valid"
    await chat.send("document", {"file_id": "gif-1", "file_unique_id": "u2", "file_name": "a.gif",
                                 "mime_type": "image/gif", "file_size": 1000})
    assert (chat.last.text or "").startswith(t("bad_mime", allowed="JPG, PNG, WEBP"))
    await chat.send("document", {"file_id": "big-1", "file_unique_id": "u3", "file_name": "big.png",
                                 "mime_type": "image/png", "file_size": 12_000_000})
    assert (chat.last.text or "").startswith(t("bad_too_big", size="12", limit="10"))
    await chat.say("a cat")
    assert (chat.last.text or "").startswith(t("text_kept_image")), "a text before the file is kept as the prompt"
    await chat.send("sticker", {"file_id": "s", "file_unique_id": "s", "type": "regular", "width": 1, "height": 1,
                                "is_animated": False, "is_video": False})
    assert (chat.last.text or "").startswith(t("send_file_image"))
    assert not [d for d in chat.data() if ":done" in d], "no Done before a file"

    photo = await chat.photo(size=80_000)
    assert (chat.last.text or "").startswith(t("file_received", count=1, most=10))
    await chat.send("document", {"file_id": "png-1", "file_unique_id": "u4", "file_name": "ref.png",
                                 "mime_type": "image/png", "file_size": 2_000})  # a document that fits is fine
    assert (chat.last.text or "").startswith(t("file_received", count=2, most=10))
    await chat.press(chat.action("done"))
    assert t("ask_choice", title=title(model_id, "image_size")) in (chat.last.text or ""), \
        "the prompt typed before the files is not asked again"
    await chat.press(chat.action("back"))
    assert "5000" in (chat.last.text or "") and "«a cat»" in (chat.last.text or ""), "the kept prompt, its limit"
    await chat.say("make it a watercolor")
    await chat.press(chat.find("Авто"))
    assert t("value_files", count=2) in (chat.last.text or "")
    await chat.press(chat.action("ok"))
    [job] = await chat.jobs()
    assert job.input["image_urls"] == [file_ref(photo, "image/jpeg", 80_000), file_ref("png-1", "image/png", 2_000)]
    assert job.input["prompt"] == "make it a watercolor"


async def test_an_audio_model_priced_by_the_characters_typed(chat: Chat) -> None:
    model_id = "elevenlabs/text-to-speech-multilingual-v2"
    await chat.top_up(10_000)
    await chat.open_model(model_id)
    text = "Привет! " * 150  # 1200 characters
    await chat.say(text)
    await chat.press(chat.data()[1])  # the second voice
    model = CATALOG.model(model_id)
    voice = model.field("voice").options[1].value
    expected = kopecks(chat.settings, model.credits({"text": text.strip(), "voice": voice}))
    assert t("confirm_price", price=rub(expected)) in (chat.last.text or "")
    await chat.press(chat.action("ok"))
    [job] = await chat.jobs()
    assert job.price == expected and job.input["voice"] == voice and job.sku == "base/1000_chars"


async def test_a_talking_avatar_takes_a_voice_message_priced_by_its_length(chat: Chat) -> None:
    model_id = "kling/ai-avatar-standard"
    await chat.top_up(100_000)
    await chat.open_model(model_id)
    await chat.photo()
    assert "MP3" in (chat.last.text or "")
    await chat.send("voice", {"file_id": "long", "file_unique_id": "v1", "duration": 20, "mime_type": "audio/ogg",
                              "file_size": 9_000})
    assert (chat.last.text or "").startswith(t("bad_too_long_media", got=20, limit=15))
    await chat.send("document", {"file_id": "doc-mp3", "file_unique_id": "v2", "file_name": "a.mp3",
                                 "mime_type": "audio/mpeg", "file_size": 9_000})
    assert (chat.last.text or "").startswith(t("bad_no_length")), "a length-priced file needs its length"
    await chat.send("voice", {"file_id": "voice-1", "file_unique_id": "v3", "duration": 7, "mime_type": "audio/ogg",
                              "file_size": 9_000})
    await chat.say("smile and speak calmly")
    model = CATALOG.model(model_id)
    expected = kopecks(chat.settings, model.credits({}, {"audio_url": 7}))
    assert t("confirm_price", price=rub(expected)) in (chat.last.text or "")
    assert t("value_files_seconds", count=1, seconds=7) in (chat.last.text or ""), "the seconds the price counts"
    await chat.press(chat.action("ok"))
    [job] = await chat.jobs()
    assert job.input["audio_url"] == file_ref("voice-1", "audio/ogg", 9_000, 7.0) and job.price == expected


async def test_a_file_declared_0_seconds_for_a_per_second_price_asks_for_another_never_0_rubles(
        chat: Chat) -> None:
    """Telegram's duration is the sender's word: 0 s (or a negative one) is an unknown length, and a
    per-second price cannot be shown for it; a declared 1 s still prices 1 s here (the jobs actor
    measures the bytes before anything goes to KIE)."""
    model_id = "kling/ai-avatar-standard"
    await chat.top_up(100_000)
    await chat.open_model(model_id)
    await chat.photo()
    step = chat.last
    for key, obj in [
        ("voice", {"file_id": "v0", "file_unique_id": "v0", "duration": 0, "mime_type": "audio/ogg",
                   "file_size": 9_000}),
        ("audio", {"file_id": "a0", "file_unique_id": "a0", "duration": 0, "mime_type": "audio/mpeg",
                   "file_size": 9_000}),
        ("voice", {"file_id": "vn", "file_unique_id": "vn", "duration": -5, "mime_type": "audio/ogg",
                   "file_size": 9_000}),
    ]:
        await chat.send(key, obj)
        assert (chat.last.text or "").startswith(t("bad_unknown_length")), (key, obj["duration"])
        assert chat.data() == chat.data(step), "the same step again"
    assert not [c for c in chat.screens if t("confirm_header") in (c.text or "")], "no confirmation, no 0 ₽"
    await chat.send("voice", {"file_id": "v1", "file_unique_id": "v1", "duration": 1, "mime_type": "audio/ogg",
                              "file_size": 9_000})
    await chat.say("speak")
    one_second = kopecks(chat.settings, CATALOG.model(model_id).credits({}, {"audio_url": 1}))
    assert one_second > 0 and t("confirm_price", price=rub(one_second)) in (chat.last.text or "")
    await chat.press(chat.action("ok"))
    [job] = await chat.jobs()
    assert job.price == one_second and job.input["audio_url"]["seconds"] == 1.0


async def test_a_video_declared_0_seconds_is_unknown_metered_or_not(money: Money, fake: FakeTelegram,
                                                                     bot: Bot) -> None:
    """A per-second video field asks for another file; a field not priced by length takes it, its
    length unknown (no limit is checked against a 0 the sender declared)."""
    base = CATALOG.model("kling/ai-avatar-standard")
    clip = Field(name="video_url", kind="video", title=Text("Видео", "Video"), required=True, max_seconds=15,
                 max_bytes=10_000_000, mime=("video/mp4",))
    metered = dataclasses.replace(base, id="test/per-second-video", fields=(clip,),
                                  skus=(Sku(when={}, credits=Decimal(3), unit="second", of="video_url"),))
    flat = dataclasses.replace(metered, id="test/flat-video", skus=(Sku(when={}, credits=Decimal(30)),))
    chat = CatalogChat(money, fake, bot, Catalog((*CATALOG.models, metered, flat)))
    await chat.top_up(100_000)
    zero = {"file_id": "clip-0", "file_unique_id": "c0", "duration": 0, "width": 1, "height": 1,
            "mime_type": "video/mp4", "file_size": 9_000}
    for model_id, expected in [(metered.id, "unknown"), (flat.id, "confirmation")]:
        await chat.say("/start")
        await chat.press(keyboards.model_data(model_id))
        await chat.press(keyboards.start_data(model_id))
        await chat.send("video", zero)
        if expected == "unknown":
            assert (chat.last.text or "").startswith(t("bad_unknown_length"))
        else:
            assert t("confirm_price", price=rub(kopecks(chat.settings, Decimal(30)))) in (chat.last.text or "")
            assert (await chat.state())[1]["v"]["video_url"]["seconds"] is None, "unknown, not 0"


# --- bad input, old buttons, leaving, restarting ------------------------------------------------


async def test_bad_input_at_every_step_gets_its_reason_and_the_same_step(chat: Chat) -> None:
    await chat.top_up(10_000)
    await chat.open_model("z-image")
    prompt_step = chat.last
    await chat.say("x" * 1001)
    assert (chat.last.text or "").startswith(t("bad_too_long_text", got=1001, limit=1000))
    assert (chat.last.text or "").endswith(prompt_step.text or ""), "the reason, then the same step"
    assert chat.data() == chat.data(prompt_step)
    await chat.photo()
    assert (chat.last.text or "").startswith(t("send_text"))
    await chat.say("   ")
    assert (chat.last.text or "").startswith(t("bad_empty"))
    await chat.say("y" * 1000)  # exactly the limit is fine, counted in characters
    ratio_step = chat.last
    assert t("ask_choice", title=title("z-image", "aspect_ratio")) in (ratio_step.text or "")
    await chat.say("16:9")
    assert (chat.last.text or "").startswith(t("use_buttons")) and chat.data() == chat.data(ratio_step)
    await chat.press(chat.find("16:9"))
    await chat.say("a lighthouse")  # a text at the confirmation is its new prompt (bot/routers/intake.retyped)
    assert t("confirm_header") in (chat.last.text or "") and "«a lighthouse»" in (chat.last.text or "")
    await chat.send("sticker", {"file_id": "s", "file_unique_id": "s", "type": "regular", "width": 1, "height": 1,
                                "is_animated": False, "is_video": False})
    assert (chat.last.text or "").startswith(t("use_buttons"))
    assert await chat.jobs() == []
    assert (await chat.state())[0] == flow.Wizard.step.state
    await chat.photo()  # a photo this model does not take: a new start, what to do with it (bot/routers/intake.py)
    assert (chat.last.text or "") == t("offer_image") and await chat.jobs() == []


async def test_an_old_button_is_outdated_in_a_toast_and_the_current_step_stays_where_it_is(chat: Chat) -> None:
    await chat.open_model("z-image")
    first = chat.last
    await chat.say("a lighthouse")
    current = chat.last
    sent = chat.sent_count
    await chat.press(chat.action("back", first))
    assert chat.toasts == [t("outdated")] and chat.last.text == current.text and chat.data() == chat.data(current)
    await chat.press("w:zzzzzzzz:o:0")  # a nonce never shown
    assert chat.toasts[-1] == t("outdated") and chat.data() == chat.data(current)
    await chat.press(chat.action("o", current).rsplit(":", 1)[0] + ":99")  # an option the step has not got
    assert chat.toasts[-1] == t("outdated") and chat.data() == chat.data(current)
    assert chat.sent_count == sent, "no screen sent again"
    await chat.say("/cancel")
    assert "reply_markup" not in chat.message(chat.showing(chat.action("o", current))), \
        "/cancel took the wizard's buttons away"
    await chat.press(chat.action("o", current))  # a press racing the retirement
    assert chat.toasts[-1] == t("outdated")


async def test_back_cancel_and_menu_work_on_every_step(chat: Chat) -> None:
    await chat.open_model("flux-2/pro-text-to-image")
    await chat.say("a bridge")
    await chat.press(chat.action("back"))
    assert "5000" in (chat.last.text or "") and t("current_value", value="«a bridge»") in (chat.last.text or "")
    await chat.press(chat.action("keep"))
    await chat.press(chat.find("3:2"))
    await chat.press(chat.find("2K"))
    assert t("confirm_header") in (chat.last.text or "")
    await chat.press(chat.action("back"))
    assert t("ask_choice", title=title("flux-2/pro-text-to-image", "resolution")) in (chat.last.text or "")
    assert "✓ 2K" in " ".join(text for text, _ in chat.buttons())
    await chat.press(chat.action("cancel"))
    assert chat.last.text == t("cancelled") and await chat.state() == (None, {})
    await chat.press(keyboards.start_data("flux-2/pro-text-to-image"))
    assert keyboards.MENU_OPEN in chat.data()
    await chat.press(keyboards.MENU_OPEN)
    assert chat.last.text == t("menu") and await chat.state() == (None, {})
    await chat.press(keyboards.start_data("flux-2/pro-text-to-image"))
    await chat.press(chat.action("back"))  # back from the first step: the model's card, the wizard over
    assert chat.data()[0] == keyboards.start_data("flux-2/pro-text-to-image") and await chat.state() == (None, {})


async def test_cancel_and_start_leave_any_step(chat: Chat) -> None:
    await chat.open_model("z-image")
    await chat.say("a tree")
    await chat.say("/cancel")
    assert chat.last.text == t("cancelled") and await chat.state() == (None, {})
    await chat.open_model("z-image")
    await chat.say("/start")
    assert (chat.last.text or "").startswith(t("welcome", name="Test")) and await chat.state() == (None, {})
    await chat.open_model("z-image")
    await chat.say("/balance")  # a command inside a step is the command, not the prompt
    assert (chat.last.text or "").startswith(t("balance_header", balance="0 ₽"))
    assert (await chat.state())[0] == flow.Wizard.step.state


async def test_a_restart_mid_wizard_keeps_the_step(chat: Chat) -> None:
    await chat.top_up(1_000)
    await chat.open_model("flux-2/pro-text-to-image")
    await chat.say("a castle")
    ratio = chat.last
    chat.restart()
    await chat.press(chat.find("3:4", ratio))
    chat.restart()
    await chat.press(chat.find("1K"))
    assert "«a castle»" in (chat.last.text or "")
    chat.restart()
    await chat.press(chat.action("ok"))
    [job] = await chat.jobs()
    assert job.input["aspect_ratio"] == "3:4" and job.input["prompt"] == "a castle"


async def test_change_from_the_confirmation_and_a_combination_the_model_refuses(chat: Chat) -> None:
    model_id = "hailuo/2-3-image-to-video-pro"
    model = CATALOG.model(model_id)
    await chat.top_up(100_000)
    await chat.open_model(model_id)
    await chat.photo()
    for item in flow.asked(model)[1:]:
        if item.kind in ("prompt", "text"):
            await chat.say("the cat walks")
        elif item.name == "duration":
            await chat.press(chat.find("10"))
        elif item.name == "resolution":
            assert not any("1080" in text for text, _ in chat.buttons()), "10 s at 1080P is not offered"
            await chat.press(chat.data()[0])
        else:
            await chat.press(chat.data()[0])
    assert t("confirm_header") in (chat.last.text or "")
    await chat.press(chat.action("chg"))
    assert chat.last.text == t("change_what")
    await chat.press(chat.find(model.field("duration").title.get("ru")))  # type: ignore[union-attr]
    await chat.press(chat.find("6"))
    assert t("confirm_header") in (chat.last.text or ""), "a field opened from Change goes back to the confirmation"
    await chat.press(chat.action("chg"))
    await chat.press(chat.find(model.field("resolution").title.get("ru")))  # type: ignore[union-attr]
    await chat.press(chat.find("1080"))
    await chat.press(chat.action("chg"))
    await chat.press(chat.find(model.field("duration").title.get("ru")))  # type: ignore[union-attr]
    assert not any(text.startswith("10") for text, _ in chat.buttons()), "10 s is not offered at 1080P"
    await chat.press(chat.find("6"))
    await chat.press(chat.action("ok"))
    [job] = await chat.jobs()
    assert (job.input["duration"], job.input["resolution"]) == ("6", "1080P")


# --- Confirm ------------------------------------------------------------------------------------


async def test_a_double_click_and_a_replay_make_one_job(chat: Chat) -> None:
    await chat.top_up(1_000)
    await chat.open_model("google/nano-banana")
    await chat.say("a bird")
    await chat.press(chat.data()[0])
    ok = chat.action("ok")
    update = callback_update(next(IDS), USER, ok)
    await chat.press(ok)
    await chat.press(ok)  # the double click
    await chat.feed(update)
    await chat.feed(update)  # the same update again, as after a crash
    [job] = await chat.jobs()
    assert await chat.balance() == accounts.Balance(1_000, job.price)
    assert chat.toasts == [t("already_confirmed", id=job.user_number)], "the double click: a toast, not a message"
    assert len([c for c in chat.screens if c.text == t("status_queued", model="Nano Banana", n=job.user_number)]) == 1


async def test_a_replayed_confirm_after_a_crash_still_records_the_status_message(chat: Chat) -> None:
    """The job committed, then the process died before the status message: the replay finds the
    job by its nonce, sends the status message and records it (and holds nothing more)."""
    await chat.top_up(1_000)
    await chat.open_model("google/nano-banana")
    await chat.say("a bird")
    await chat.press(chat.data()[0])
    ok = chat.action("ok")
    chat.fake.inject("sendMessage", status=500, count=3)
    with pytest.raises(TelegramServerError):
        await chat.press(ok)
    [job] = await chat.jobs()
    assert job.status_message_id is None and (await chat.state())[0] == flow.Wizard.step.state
    await chat.press(ok)
    [job] = await chat.jobs()
    # the jobs actor was told right after the commit (createTask does not wait for the status
    # message), and again by the replay, which finds the job and gives it its status message
    assert job.status_message_id == chat.last.result["message_id"] and chat.wakes == 2
    assert await chat.balance() == accounts.Balance(1_000, job.price)


@pytest.mark.parametrize("crash", ["before the status message", "before the wizard ended"])
@pytest.mark.parametrize("paid_with", ["free", "admin", "money"])
async def test_a_confirm_replayed_after_its_commit_says_it_is_accepted_for_every_way_of_paying(
        money: Money, fake: FakeTelegram, bot: Bot, paid_with: str, crash: str) -> None:
    """The job committed (the day's last free generation, say), then the process died with the
    wizard still at the confirmation and the update came again: the replay finds the job and says
    so (its status message if it had none, else "already running"), never a new paid confirmation
    because the free generation the job itself used is gone."""
    settings = settings_with(free_daily_limit=1, admin_ids=frozenset({USER}) if paid_with == "admin" else frozenset())
    chat = Chat(money, fake, bot, settings)
    await chat.top_up(1_000)
    model_id = "z-image" if paid_with != "money" else "google/nano-banana"
    await chat.open_model(model_id)
    await chat.say("a lamp")
    await chat.press(chat.data()[0])
    ok = chat.action("ok")
    if crash == "before the status message":
        chat.fake.inject("sendMessage", status=500, count=3)
        with pytest.raises(TelegramServerError):
            await chat.press(ok)
    else:
        context = chat.dp.fsm.get_context(chat.bot, chat_id=USER, user_id=USER)
        kept = await chat.state()
        await chat.press(ok)
        await context.set_state(kept[0])
        await context.set_data(kept[1])
    [job] = await chat.jobs()
    assert job.paid_with == paid_with and (await chat.state())[0] == flow.Wizard.step.state
    await chat.press(ok)
    queued = t("status_queued", model=CATALOG.model(model_id).title.ru, n=job.user_number)
    assert chat.last.text == queued
    if crash == "before the wizard ended":
        assert chat.toasts == [t("already_confirmed", id=job.user_number)], "said in a toast, not a message"
    assert not [c for c in chat.screens if t("terms_changed") in (c.text or "")], "no new confirmation"
    assert len([c for c in chat.screens if c.text == queued]) == 1
    [job] = await chat.jobs()
    assert job.status_message_id is not None and await chat.state() == (None, {}), "the wizard is over"
    assert await chat.balance() == accounts.Balance(1_000, job.held)


async def test_a_short_balance_keeps_the_confirmation_and_the_same_confirm_works_after_a_top_up(
        chat: Chat) -> None:
    model_id = "flux-2/pro-text-to-image"
    await chat.say("/start")
    await chat.top_up(300)
    await chat.open_model(model_id)
    await chat.say("a dragon")
    await chat.press(chat.data()[0])
    await chat.press(chat.find("1K"))
    price = price_of(model_id, {"resolution": "1K"})
    confirmation = chat.last
    assert t("confirm_short", short=rub(price - 300)) in (confirmation.text or "")
    assert keyboards.TOP_UP in chat.data(confirmation)
    ok = chat.action("ok")
    await chat.press(ok)
    assert (chat.last.text or "").startswith(t("insufficient"))
    assert t("confirm_short", short=rub(price - 300)) in (chat.last.text or "") and chat.action("ok") == ok
    assert await chat.jobs() == [] and await chat.balance() == accounts.Balance(300, 0)

    await chat.press(keyboards.TOP_UP)
    assert "st:custom" in chat.data()  # the Stars packs (tests/test_stars.py)
    back = chat.find(t("btn_back_to_confirmation"))
    await chat.top_up(10_000, key="payment")  # what the payments issue will do
    await chat.press(back)
    assert t("confirm_short", short="x") not in (chat.last.text or "") and chat.action("ok") == ok
    await chat.press(ok)  # the very first Confirm button
    [job] = await chat.jobs()
    assert job.held == price and await chat.balance() == accounts.Balance(10_300, price)


async def test_paused_generations_apologise_at_confirm_and_hold_nothing(chat: Chat) -> None:
    money = chat.money
    await chat.top_up(1_000)
    await chat.open_model("google/nano-banana")
    await chat.say("a bird")
    await chat.press(chat.data()[0])
    ok = chat.action("ok")
    await kie_account.pause(money.db, money.name, money.epoch, money.bot_id, "402 from KIE")
    await chat.press(ok)
    assert (chat.last.text or "").startswith(t("paused")) and chat.action("ok") == ok
    assert await chat.jobs() == [] and await chat.balance() == accounts.Balance(1_000, 0) and chat.wakes == 0
    await kie_account.resume(money.db, money.name, money.epoch, money.bot_id)
    await chat.press(ok)
    assert len(await chat.jobs()) == 1


async def test_the_free_tier_and_its_daily_limit(money: Money, fake: FakeTelegram, bot: Bot) -> None:
    chat = Chat(money, fake, bot, settings_with(free_daily_limit=1))
    await chat.top_up(1_000)
    await chat.open_model("z-image")
    await chat.say("a lamp")
    await chat.press(chat.data()[0])
    assert t("confirm_free", left=1, limit=1) in (chat.last.text or "")
    assert chat.buttons()[0][0] == t("btn_confirm", price=t("price_free"))
    await chat.press(chat.action("ok"))
    [free] = await chat.jobs()
    assert (free.paid_with, free.held, free.free_day) == ("free", 0, jobs.local_day(chat.settings.zone))

    await chat.open_model("z-image")
    await chat.say("a second lamp")
    await chat.press(chat.data()[0])
    price = price_of("z-image", {})
    assert t("confirm_free_used_up", limit=1) in (chat.last.text or "")
    assert t("confirm_price", price=rub(price)) in (chat.last.text or "")
    await chat.press(chat.action("ok"))
    paid = (await chat.jobs())[0]
    assert (paid.paid_with, paid.held) == ("money", price)


async def test_a_full_price_confirm_reads_no_terms_and_one_a_promo_overtook_is_shown_again(
        chat: Chat, monkeypatch: pytest.MonkeyPatch) -> None:
    """Money at the full price is committed without reading the terms again (the commit checks
    them itself, sql/024); a promo generation given after the screen was shown makes that commit
    refuse, and the confirmation shown again offers the promo."""
    money = chat.money
    reads: list[int] = []
    read = grants.standing

    async def counted(*args: Any, **kwargs: Any) -> grants.Standing:
        reads.append(args[2])
        return await read(*args, **kwargs)

    monkeypatch.setattr(grants, "standing", counted)
    await chat.top_up(1_000)
    await chat.open_model("google/nano-banana")
    await chat.say("a bird")
    await chat.press(chat.data()[0])
    ok = chat.action("ok")
    async with fenced(money.db, money.name, money.epoch) as conn:
        assert await grants.grant(conn, money.bot_id, USER, 1, key="promo:late", epoch=money.epoch)
    reads.clear()
    await chat.press(ok)
    assert (chat.last.text or "").startswith(t("terms_changed")) and chat.action("ok") != ok
    assert await chat.jobs() == [] and await chat.balance() == accounts.Balance(1_000, 0)
    assert reads == [USER], "read once, for the confirmation shown again"
    await chat.press(chat.action("ok"))
    [promo] = await chat.jobs()
    assert (promo.paid_with, promo.held) == ("grant", 0)

    await chat.open_model("google/nano-banana")
    await chat.say("a second bird")
    await chat.press(chat.data()[0])
    reads.clear()
    await chat.press(chat.action("ok"))
    paid = (await chat.jobs())[0]
    assert (paid.paid_with, paid.held) == ("money", paid.price) and paid.price > 0
    assert reads == [], "the Confirm read no terms"


async def test_a_paid_confirm_commits_createtasks_intent_with_a_free_slot_and_a_refused_one_gives_its_slot_back(
        chat: Chat) -> None:
    """sql/025: a Confirm at the full price whose input goes as it is takes a free createTask slot
    and makes its job 'submitting', handing the slot to the jobs actor; a refused Confirm gives its
    slot back; with no slot free now, the job is made 'created' as before (the jobs actor commits
    the intent once a slot is its own)."""
    chat.slots = Limiter({CREATE: Rate(2, 60.0)})
    model_id = "flux-2/pro-text-to-image"
    price = price_of(model_id, {"resolution": "1K"})
    await chat.say("/start")
    await chat.top_up(price + price // 2)

    async def confirm(prompt: str) -> None:
        await chat.open_model(model_id)
        await chat.say(prompt)
        await chat.press(chat.data()[0])
        await chat.press(chat.find("1K"))
        await chat.press(chat.action("ok"))

    await confirm("a dragon")
    [first] = await chat.jobs()
    assert (first.state, first.attempts, first.intent_epoch) == ("submitting", 1, chat.money.epoch)
    assert [job_id for job_id, _ in chat.driven] == [first.id] and chat.driven[0][1] is not None
    assert chat.slots.taken(CREATE) == 1

    await confirm("a second dragon")  # short of money: refused, its slot given back
    assert (chat.last.text or "").startswith(t("insufficient"))
    assert len(await chat.jobs()) == 1 and chat.slots.taken(CREATE) == 1 and len(chat.driven) == 1

    await chat.top_up(2 * price, key="more")
    await chat.press(chat.action("ok"))  # the same Confirm after the top-up
    await confirm("a third dragon")
    third, second, _ = await chat.jobs()
    assert (second.state, second.intent_epoch) == ("submitting", chat.money.epoch)
    assert (third.state, third.attempts, third.intent_epoch) == ("created", 0, None), "no slot free now"
    assert [slot is None for _, slot in chat.driven] == [False, False, True] and chat.slots.taken(CREATE) == 2


async def test_a_confirmation_whose_free_generation_went_meanwhile_is_shown_again(
        money: Money, fake: FakeTelegram, bot: Bot) -> None:
    chat = Chat(money, fake, bot, settings_with(free_daily_limit=1))
    await chat.top_up(1_000)
    await chat.open_model("z-image")
    await chat.say("a lamp")
    await chat.press(chat.data()[0])
    ok = chat.action("ok")
    other = Order(user_id=USER, chat_id=USER, nonce="elsewhere", model="z-image", sku="base", input={"prompt": "p"},
                  price=100, paid_with="free", day=jobs.local_day(chat.settings.zone))
    await jobs.confirm(money.db, money.name, money.epoch, money.bot_id, other, free_daily_limit=1, max_active=3)
    await chat.press(ok)
    assert (chat.last.text or "").startswith(t("terms_changed"))
    assert t("confirm_free_used_up", limit=1) in (chat.last.text or "") and chat.action("ok") != ok
    assert len(await chat.jobs()) == 1, "nothing paid that the screen had not shown"


async def test_an_admin_generates_for_free(money: Money, fake: FakeTelegram, bot: Bot) -> None:
    chat = Chat(money, fake, bot, settings_with(admin_ids=frozenset({USER})))
    await chat.open_model("flux-2/pro-text-to-image")
    await chat.say("a crown")
    await chat.press(chat.data()[0])
    await chat.press(chat.find("2K"))
    price = price_of("flux-2/pro-text-to-image", {"resolution": "2K"})
    assert t("confirm_admin", price=rub(price)) in (chat.last.text or "")
    await chat.press(chat.action("ok"))
    [job] = await chat.jobs()
    assert (job.paid_with, job.held, job.price) == ("admin", 0, price)
    assert await chat.balance() == accounts.Balance(0, 0)


async def test_too_many_running_generations_keep_the_confirmation(money: Money, fake: FakeTelegram,
                                                                   bot: Bot) -> None:
    chat = Chat(money, fake, bot, settings_with(max_active_jobs_per_user=1))
    await chat.top_up(10_000)
    for attempt in range(2):
        await chat.open_model("google/nano-banana")
        await chat.say(f"bird {attempt}")
        await chat.press(chat.data()[0])
        await chat.press(chat.action("ok"))
    assert (chat.last.text or "").startswith(t("too_many_active", active=1, limit=1))
    assert len(await chat.jobs()) == 1 and chat.action("ok")


async def test_a_task_field_offers_the_users_earlier_results(chat: Chat) -> None:
    money = chat.money
    await chat.say("/start")
    await chat.open_model("grok-imagine/upscale")
    assert t("no_task_sources", models="Grok Imagine Video") in (chat.last.text or ""), "says which model makes them"
    order = Order(user_id=USER, chat_id=USER, nonce="video-1", model="grok-imagine/text-to-video", sku="base",
                  input={"prompt": "p"}, price=100, paid_with="admin", day=jobs.local_day(chat.settings.zone))
    created = await jobs.confirm(money.db, money.name, money.epoch, money.bot_id, order, free_daily_limit=5,
                                 max_active=3)
    assert isinstance(created, jobs.Created)
    await jobs.finish(money.db, money.name, money.epoch, created.job.id, Succeeded({"urls": ["u"]}))
    await chat.say("/models")
    await chat.open_model("grok-imagine/upscale")
    pick = chat.find(t("gen_no", n=created.job.user_number))
    await chat.press(pick.rsplit(":", 1)[0] + ":999999")  # a job that is not theirs (or does not exist)
    assert chat.toasts[-1] == t("outdated") and pick in chat.data(), "a toast, the step as it was"
    await chat.press(pick)
    assert t("value_result", id=created.job.user_number) in (chat.last.text or ""), "the user's own number"
    await chat.top_up(10_000)
    await chat.press(chat.action("ok"))
    upscale, _ = await chat.jobs()
    assert upscale.input["task_id"] == {"job_id": created.job.id, "n": created.job.user_number}


# --- callback data ------------------------------------------------------------------------------


async def test_every_keyboard_fits_telegrams_64_bytes(chat: Chat) -> None:
    """Every screen of every model (the longest ids among them), confirmation and change list
    included, and the history and balance keyboards with the largest ids."""
    longest = 0

    def check(markup: Any) -> None:
        nonlocal longest
        for row in markup.inline_keyboard:
            for b in row:
                size = len(b.callback_data.encode())
                longest = max(longest, size)
                assert size <= 64, b.callback_data

    await chat.say("/start")
    ctx = flow.Ctx(chat.bot, USER, USER, "ru", Services(chat.money.db, chat.settings, CATALOG, lambda: None),
                   chat.dp.fsm.get_context(chat.bot, chat_id=USER, user_id=USER))
    for lang in ("ru", "en"):
        check(keyboards.main_menu(lang))
        for family in CATALOG.families():
            models = CATALOG.in_family(family)
            check(keyboards.model_list(lang, family.id, [(m.title.ru, m.id) for m in models], 99, 100))
            for model in models:
                check(keyboards.model_card(lang, model.id, family.id, 99))
        check(keyboards.history_list(lang, [("x", 2**63 - 1)], 99_999, True))
        check(keyboards.history_job(lang, 2**63 - 1, 99_999, repeat=True))
        check(keyboards.balance(lang, keyboards.step_data(flow.new_nonce(), "show")))
        check(keyboards.top_up(lang, keyboards.step_data(flow.new_nonce(), "show")))
    for model in CATALOG.models:
        wiz = flow.Wiz(model=model.id, nonce=flow.new_nonce())
        for index, _ in enumerate(flow.asked(model)):
            wiz.index = index
            check((await flow.field_screen(ctx, model, wiz)).markup)
        check(flow.change_screen(ctx, model, wiz).markup)
        check(flow.confirm_screen(ctx, model, wiz, flow.Terms("money", 10**9, None, 0)).markup)
    assert len(keyboards.step_data(flow.new_nonce(), "t", 2**63 - 1)) <= 64
    assert len(keyboards.again_data(2**63 - 1)) <= 64
    assert longest > 40, "the longest model ids were among them"


def test_prices_on_screens_are_the_pricing_rule() -> None:
    settings = settings_with()
    avatar = CATALOG.model("kling/ai-avatar-standard")
    r = price_range(settings, avatar, {})
    assert (r.low, r.high) == (kopecks(settings, avatar.credits({}, {"audio_url": 1})),
                               kopecks(settings, avatar.max_credits({})))
    assert lowest(settings, CATALOG.model("z-image")).free
    kling = CATALOG.model("kling-2.6/text-to-video")
    assert lowest(settings, kling).low == kopecks(settings, Decimal(55))
    assert texts.money("ru", 123_450) == "1\u00a0234,50 ₽" and texts.money("en", 123_400) == "1,234 ₽"
    assert texts.signed("en", -3_600) == "−36 ₽" and texts.signed("ru", 100) == "+1 ₽"


async def test_the_wizard_state_is_small_json(chat: Chat) -> None:
    await chat.open_model("google/nano-banana-edit")
    await chat.photo()
    state, data = await chat.state()
    assert state == flow.Wizard.step.state and set(data) == {"m", "n", "at", "i", "v", "ed", "col", "terms", "msg"}
    assert len(str(data)) < 500
    assert flow.Wiz.load(data) is not None and flow.Wiz.load({"m": 1}) is None
    older = {k: v for k, v in data.items() if k != "msg"}  # written before the wizard knew its message
    assert (loaded := flow.Wiz.load(older)) is not None and loaded.shown is None
    assert flow.Wiz.load({**data, "msg": "7"}) is None


async def test_a_wizard_of_a_model_taken_out_of_the_catalog_ends_cleanly(chat: Chat) -> None:
    await chat.open_model("z-image")
    context = chat.dp.fsm.get_context(chat.bot, chat_id=USER, user_id=USER)
    await context.update_data({"m": "no-such/model"})
    await chat.send("sticker", {"file_id": "s", "file_unique_id": "s", "type": "regular", "width": 1, "height": 1,
                                "is_animated": False, "is_video": False})  # a text would now be a new prompt
    assert chat.last.text == t("fallback") and await chat.state() == (None, {})


async def test_concurrent_first_contacts_and_a_confirm_race_move_money_once(money: Money, fake: FakeTelegram,
                                                                           bot: Bot) -> None:
    """Two dispatchers (two instances over one database) handle the same Confirm at once: one job."""
    chat = Chat(money, fake, bot)
    await chat.top_up(1_000)
    await chat.open_model("google/nano-banana")
    await chat.say("a bird")
    await chat.press(chat.data()[0])
    ok = chat.action("ok")
    twin = Chat(money, fake, bot)
    await asyncio.gather(chat.press(ok), twin.press(ok))
    [job] = await chat.jobs()
    assert await chat.balance() == accounts.Balance(1_000, job.price)


def test_typed_answers_are_checked_against_their_field() -> None:
    whole = Field(name="steps", kind="int", title=None, minimum=1, maximum=50)
    ratio = Field(name="cfg", kind="float", title=None, minimum=0.5, maximum=2)
    assert text_value(whole, " 30 ") == 30 and text_value(ratio, "1,5") == 1.5
    refused = Bad("bad_number", {"low": 1, "high": 50})
    assert [text_value(whole, v) for v in ("0", "51", "2.5", "x", "nan")] == [refused] * 5
    link = CATALOG.model("sora-watermark-remover").field("video_url")
    assert text_value(link, "https://example.com/v") == Bad("bad_pattern")
    assert text_value(link, " https://sora.chatgpt.com/p/s_1 ") == "https://sora.chatgpt.com/p/s_1"
    prompt = CATALOG.model("z-image").field("prompt")
    assert text_value(prompt, "🐈" * 1000) == "🐈" * 1000, "characters are counted, not bytes"


# --- typed numbers: bounds before conversion ----------------------------------------------------

HOSTILE_NUMBERS = ["1e1000000", "-1e1000000", "1e-1000000", "NaN", "-sNaN", "Infinity", "-inf", "9" * 5000,
                   "1." + "0" * 5000, "0." + "0" * 4999 + "1"]


@pytest.mark.timeout(10)  # the old code spent ~25 s of CPU on int(Decimal("1e1000000")) alone
@pytest.mark.parametrize("kind", ["int", "float"])
def test_absurd_numbers_get_the_bounds_refusal_without_being_converted(kind: str) -> None:
    bounded = Field(name="steps", kind=kind, title=None, minimum=0, maximum=50)
    refused = Bad("bad_number", {"low": 0, "high": 50})
    assert [text_value(bounded, v) for v in HOSTILE_NUMBERS] == [refused] * len(HOSTILE_NUMBERS)
    free = Field(name="seed", kind=kind, title=None)  # no bounds: still no absurd magnitudes
    unbounded = Bad("bad_number", {"low": None, "high": None})
    assert [text_value(free, v) for v in HOSTILE_NUMBERS] == [unbounded] * len(HOSTILE_NUMBERS)
    assert text_value(free, "123456789012345678") == (123456789012345678 if kind == "int" else 1.2345678901234568e17)
    assert text_value(bounded, "1e1") == 10 and text_value(bounded, " 0 ") == 0
    assert text_value(Field(name="cfg", kind=kind, title=None, minimum=0.5, maximum=2), "2") == 2


class CatalogChat(Chat):
    """A chat whose bot sells `catalog` (a model the shipped catalog has not got)."""

    def __init__(self, money: Money, fake: FakeTelegram, bot: Bot, catalog: Catalog) -> None:
        self.catalog = catalog
        super().__init__(money, fake, bot)

    def dispatcher(self) -> Any:
        services = Services(self.money.db, self.settings, self.catalog, wake_jobs=self._wake)
        return build_dispatcher(PostgresStorage(self.money.db), services=services)


@pytest.mark.timeout(10)  # the old code spent ~25 s on each of the first two
async def test_a_huge_number_typed_into_an_int_field_gets_the_fields_bounds_message(
        money: Money, fake: FakeTelegram, bot: Bot) -> None:
    base = CATALOG.model("z-image")
    steps = Field(name="steps", kind="int", title=Text("Шаги", "Steps"), required=True, minimum=1, maximum=50)
    model = dataclasses.replace(base, id="test/z-image-steps", fields=(steps, *base.fields))
    chat = CatalogChat(money, fake, bot, Catalog((*CATALOG.models, model)))
    await chat.say("/start")
    await chat.press(keyboards.model_data(model.id))
    await chat.press(keyboards.start_data(model.id))
    step = chat.last
    for typed in HOSTILE_NUMBERS:
        await chat.say(typed)
        assert (chat.last.text or "").startswith(t("bad_number", low=1, high=50)), typed
        assert chat.data() == chat.data(step), "the same step again"
    await chat.say("30")
    assert t("ask_text", title=title("z-image", "prompt"), limit=1000) in (chat.last.text or "")
    assert (await chat.state())[1]["v"] == {"steps": 30}
