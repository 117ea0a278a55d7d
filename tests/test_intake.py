"""What a user sends with no flow open, and a message that carries what it says (issue 19): a
typed text is a prompt shown as a confirmation with its price and Change model; a photo, a video
or a voice offers what can be done with it; the 🎲 idea is a prompt too; in the wizard, a caption
fills the prompt with the photo and a text typed before the file is kept. Fed through the real
Dispatcher and the fake Telegram over HTTP (tests/wizard_kit.py), real PostgreSQL."""

from __future__ import annotations

import time

import pytest
from aiogram import Bot

from bot import flow, keyboards, texts
from bot.phrases.intake import IDEAS
from bot.prices import lowest
from bot.routers.intake import INSTRUCTION_WITHIN
from catalog.payload import file_ref
from fakes.telegram_api import FakeTelegram, message_update, photo_update
from tests.conftest import Money
from tests.wizard_kit import CATALOG, IDS, Chat, price_of, rub, t, title

pytestmark = pytest.mark.timeout(120)

VIDEO = {"file_id": "video-1", "file_unique_id": "uv1", "width": 640, "height": 360, "duration": 5,
         "mime_type": "video/mp4", "file_size": 500_000}
VOICE = {"file_id": "voice-1", "file_unique_id": "uvo1", "duration": 4, "mime_type": "audio/ogg", "file_size": 20_000}


async def photo(chat: Chat, caption: str | None = None, size: int = 50_000) -> str:
    file_id = f"photo-{next(IDS)}"
    await chat.feed(photo_update(next(IDS), chat.user, file_id, caption=caption, file_size=size,
                                 language_code=chat.lang, message_id=chat.fake.next_message_id(chat.user)))
    return file_id


async def wizard(chat: Chat) -> flow.Wiz:
    state, data = await chat.state()
    assert state == flow.Wizard.step.state, "a wizard is open"
    wiz = flow.Wiz.load(data)
    assert wiz is not None
    return wiz


def asked_name(wiz: flow.Wiz) -> str:
    return flow.asked(CATALOG.model(wiz.model))[wiz.index].name


def text(chat: Chat) -> str:
    return chat.last.text or ""


# --- a typed prompt -------------------------------------------------------------------------------


async def test_a_text_with_no_flow_open_is_a_confirmation_with_its_price_and_change_model(chat: Chat) -> None:
    await chat.say("/start")
    await chat.say("кот в шляпе")
    assert t("confirm_header") in text(chat) and "«кот в шляпе»" in text(chat)
    assert t("confirm_model", model="Z-Image") in text(chat), "the cheapest popular model for a newcomer: free"
    assert t("confirm_free", left=5, limit=chat.settings.free_daily_limit) in text(chat)
    assert chat.action("ok") and chat.find(t("btn_other_model"))
    assert text(chat) != t("fallback")
    wiz = await wizard(chat)
    assert (wiz.model, wiz.at, wiz.values["prompt"]) == ("z-image", flow.CONFIRM, "кот в шляпе")

    await chat.press(chat.action("ok"))
    [job] = await chat.jobs()
    assert (job.model, job.input["prompt"], job.paid_with) == ("z-image", "кот в шляпе", "free")


async def test_change_model_lists_the_others_cheapest_first_and_keeps_the_prompt(chat: Chat) -> None:
    await chat.top_up(10_000)
    await chat.say("a lighthouse in a storm")
    sent = chat.sent_count
    await chat.press(chat.find(t("btn_other_model")))
    assert text(chat) == t("other_models_title")
    assert chat.sent_count == sent, "the list replaces the confirmation's message"
    picks = [d for d in chat.data() if d.startswith(keyboards.PICK_MODEL)]
    assert 1 < len(picks) <= 8 and all(len(d.encode()) <= 64 for d in chat.data())
    chosen = [CATALOG.model(d.split(":", 3)[3]) for d in picks]
    assert "z-image" not in [m.id for m in chosen], "the current model is not offered again"
    prices = [lowest(chat.settings, m).low for m in chosen]
    assert prices == sorted(prices), "cheapest first (each model's price from)"

    await chat.press(chat.find("FLUX.2 Pro ·"))
    await chat.press(chat.action("chg"))
    await chat.press(chat.find(title("flux-2/pro-text-to-image", "aspect_ratio")))
    await chat.press(chat.find("16:9"))
    assert "16:9" in text(chat)
    await chat.press(chat.find(t("btn_other_model")))
    await chat.press(chat.find("▶"))  # the second page
    await chat.press(chat.find("Seedream 4.5 ·"))
    assert (await wizard(chat)).values["aspect_ratio"] == "16:9", "a choice the new model offers too is kept"
    await chat.press(chat.find(t("btn_other_model")))
    await chat.press(chat.find("Nano Banana ·"))
    assert t("confirm_model", model="Nano Banana") in text(chat) and "«a lighthouse in a storm»" in text(chat)
    assert t("confirm_price", price=rub(price_of("google/nano-banana", {}))) in text(chat)
    assert chat.find(t("btn_other_model")), "the new confirmation offers the others too"
    assert chat.sent_count == sent, "the same message again"
    await chat.press(chat.action("ok"))
    [job] = await chat.jobs()
    assert (job.model, job.input["prompt"]) == ("google/nano-banana", "a lighthouse in a storm")

    await chat.say("a second one")
    assert t("confirm_model", model="Nano Banana") in text(chat), "the user's last text-to-image model"


async def test_a_text_at_the_confirmation_is_the_new_prompt_and_the_old_buttons_are_outdated(chat: Chat) -> None:
    await chat.say("first prompt")
    old = chat.find(t("btn_other_model"))
    on = chat.showing(old)
    await chat.press(old, on=on)
    await chat.press(chat.find("Nano Banana ·"))
    await chat.say("second prompt")
    assert t("confirm_model", model="Nano Banana") in text(chat) and "«second prompt»" in text(chat), \
        "the same model, the new prompt"
    assert text(chat).startswith(t("prompt_replaced")), "the user is told what became of their text"
    await chat.press(old, on=on)
    assert chat.toasts[-1] == t("outdated")
    wiz = await wizard(chat)
    assert (wiz.model, wiz.values["prompt"]) == ("google/nano-banana", "second prompt")
    assert [m for m in chat.live() if m["message_id"] == on] == [], "the old confirmation has no buttons left"


async def test_the_idea_button_is_a_prompt_at_the_confirmation(chat: Chat) -> None:
    await chat.say("/start")
    menu = chat.last
    await chat.press(keyboards.IDEA)
    assert t("idea_notice") in text(chat) and t("confirm_header") in text(chat)
    wiz = await wizard(chat)
    assert wiz.values["prompt"] in IDEAS["ru"] and wiz.at == flow.CONFIRM
    first = wiz.shown
    await chat.press(keyboards.IDEA, on=menu.result["message_id"])  # another idea
    wiz = await wizard(chat)
    assert wiz.values["prompt"] in IDEAS["ru"] and wiz.shown != first
    assert first not in [m["message_id"] for m in chat.live()], "the first idea's confirmation has no buttons left"


# --- a photo, a video, a voice --------------------------------------------------------------------


async def test_a_photo_with_a_caption_is_edited_with_the_caption_as_the_instruction(chat: Chat) -> None:
    await chat.top_up(10_000)
    file_id = await photo(chat, caption="сделай акварелью", size=80_000)
    assert text(chat).startswith(t("offer_image")) and "«сделай акварелью»" in text(chat)
    labels = [label for label, _ in chat.buttons()]
    for key in ("act_image_image_edit", "act_image_image_to_video", "act_image_image_upscale",
                "act_image_background_removal"):
        assert t(key) in labels
    sent = chat.sent_count
    await chat.press(chat.find(t("act_image_image_edit")))
    assert t("confirm_header") in text(chat) and "«сделай акварелью»" in text(chat)
    assert t("value_files", count=1) in text(chat)
    assert chat.sent_count == sent, "the offer became the confirmation"
    await chat.press(chat.action("ok"))
    [job] = await chat.jobs()
    assert CATALOG.model(job.model).family == "image_edit"
    assert job.input["prompt"] == "сделай акварелью"
    assert file_ref(file_id, "image/jpeg", 80_000) in job.input[next(iter(k for k in job.input if "url" in k))]


async def test_a_photo_without_a_caption_offers_and_edit_asks_the_instruction(chat: Chat) -> None:
    await photo(chat)
    assert text(chat) == t("offer_image") and text(chat) != t("fallback")
    await chat.press(chat.find(t("act_image_image_edit")))
    model_id = (await wizard(chat)).model
    assert t("ask_text", title=title(model_id, "prompt"), limit=CATALOG.model(model_id).field("prompt").max_length) \
        in text(chat)
    await chat.say("make it night")
    assert t("confirm_header") in text(chat) and "«make it night»" in text(chat)


async def test_remove_the_background_of_a_photo_goes_straight_to_the_confirmation(chat: Chat) -> None:
    await photo(chat)
    await chat.press(chat.find(t("act_image_background_removal")))
    assert t("confirm_header") in text(chat)
    assert (await wizard(chat)).model == "recraft/remove-background"


async def test_a_photo_too_big_for_the_action_is_told_exactly(chat: Chat) -> None:
    await photo(chat, size=7_000_000)
    await chat.press(chat.find(t("act_image_background_removal")))  # its one model takes 5 MB
    assert text(chat).startswith(t("offer_bad_file", reason=t("bad_too_big", size="7", limit="5")))
    assert chat.find(t("act_image_image_edit")), "the other actions are still offered"


async def test_a_video_is_offered_edit_and_upscale(chat: Chat) -> None:
    await chat.send("video", VIDEO)
    assert text(chat) == t("offer_video")
    labels = [label for label, _ in chat.buttons()]
    assert t("act_video_video_to_video") in labels and t("act_video_video_upscale") in labels
    await chat.press(chat.find(t("act_video_video_upscale")))
    assert t("confirm_header") in text(chat)
    wiz = await wizard(chat)
    assert wiz.model == "topaz/video-upscale" and wiz.values["video_url"]["tg_file_id"] == "video-1"


async def test_a_voice_and_a_video_document_are_offered_what_fits_them(chat: Chat) -> None:
    await chat.send("voice", VOICE)
    assert text(chat) == t("offer_audio")
    labels = [label for label, _ in chat.buttons()]
    assert t("act_audio_avatar") in labels and t("act_audio_audio") in labels
    await chat.press(chat.find(t("act_audio_audio")))
    assert t("confirm_header") in text(chat)
    assert (await wizard(chat)).model == "elevenlabs/audio-isolation"

    await chat.say("/start")
    await chat.send("voice", VOICE)
    await chat.press(chat.find(t("act_audio_avatar")))
    wiz = await wizard(chat)
    assert wiz.values["audio_url"]["tg_file_id"] == "voice-1" and asked_name(wiz) == "image_url"
    await photo(chat)
    assert asked_name(await wizard(chat)) == "prompt", "the voice's step is answered already: not asked again"

    await chat.say("/start")
    await chat.send("document", {"file_id": "doc-1", "file_unique_id": "ud1", "file_name": "clip.mp4",
                                 "mime_type": "video/mp4", "file_size": 300_000})
    assert text(chat) == t("offer_video"), "a document that is a video is a video"


async def test_an_old_offer_is_outdated_never_applied_to_another_file(chat: Chat) -> None:
    await photo(chat)
    old = chat.find(t("act_image_image_edit"))
    on = chat.showing(old)
    await photo(chat)
    await chat.press(old, on=on)
    assert chat.toasts[-1] == t("offer_stale")
    state, data = await chat.state()
    assert state is None and "offer" in data, "the newer photo's offer stands"


async def test_a_text_after_a_photo_is_its_instruction_or_a_new_picture(chat: Chat) -> None:
    first = await photo(chat)
    offer = chat.last
    await chat.say("сделай его зимним")
    assert text(chat).startswith(t("offer_image")) and "«сделай его зимним»" in text(chat)
    assert [m for m in chat.live() if m["message_id"] == chat.showing(chat.find(t("act_draw")))], "the new offer"
    assert not [m for m in chat.live() if m["message_id"] == offer.result["message_id"]], "the old offer has no buttons"
    await chat.press(chat.find(t("act_image_image_edit")))
    wiz = await wizard(chat)
    assert wiz.values["prompt"] == "сделай его зимним" and t("confirm_header") in text(chat)
    assert [f["tg_file_id"] for f in next(v for k, v in wiz.values.items() if "url" in k)] == [first]

    await chat.say("/start")
    await photo(chat)
    await chat.say("a snowy village")
    await chat.press(chat.find(t("act_draw")))
    wiz = await wizard(chat)
    assert CATALOG.model(wiz.model).family == "text_to_image" and wiz.values["prompt"] == "a snowy village"
    assert not [k for k in wiz.values if "image" in k], "a new picture: the photo is not part of it"


async def test_a_text_long_after_a_photo_is_a_prompt_of_its_own(chat: Chat) -> None:
    await photo(chat)
    later = int(time.time()) + INSTRUCTION_WITHIN + 60
    await chat.feed(message_update(next(IDS), chat.user, "a quiet harbour", language_code=chat.lang,
                                   message_id=chat.fake.next_message_id(chat.user), date=later))
    wiz = await wizard(chat)
    assert CATALOG.model(wiz.model).family == "text_to_image" and wiz.values["prompt"] == "a quiet harbour"


async def test_the_photos_of_an_album_are_one_offer_and_go_together(chat: Chat) -> None:
    ids = []
    for caption in ("совмести эти фото", None, None):
        file_id = f"photo-{next(IDS)}"
        update = photo_update(next(IDS), chat.user, file_id, caption=caption, file_size=40_000,
                              language_code=chat.lang, message_id=chat.fake.next_message_id(chat.user))
        update["message"]["media_group_id"] = "album-1"
        await chat.feed(update)
        ids.append(file_id)
    offers = [m for m in chat.fake.chat_messages(chat.user) if (m.get("text") or "").startswith(t("offer_image"))]
    assert len(offers) == 1, "one offer for the album"
    assert t("offer_files", count=3) in text(chat)
    await chat.press(chat.find(t("act_image_image_edit")))
    wiz = await wizard(chat)
    assert [f["tg_file_id"] for f in wiz.values["image_urls"]] == ids and wiz.values["prompt"] == "совмести эти фото"
    assert t("value_files", count=3) in text(chat)


async def test_an_english_user_gets_it_all_in_english(money: Money, fake: FakeTelegram, bot: Bot) -> None:
    chat = Chat(money, fake, bot, lang="en")
    await chat.say("a fox in the snow")
    assert texts.t("en", "confirm_header") in text(chat) and "“a fox in the snow”" in text(chat)
    assert chat.find("🔄 Change model")
    await chat.press(keyboards.IDEA)
    assert (await wizard(chat)).values["prompt"] in IDEAS["en"]
    await photo(chat, caption="make it winter")
    assert text(chat).startswith("What shall I do with this photo?") and "“make it winter”" in text(chat)
    assert chat.find("✏️ Edit it as described") and chat.find("🎨 A new picture from this text")


async def test_a_photo_at_an_edit_confirmation_replaces_the_photo_and_its_caption_the_prompt(chat: Chat) -> None:
    await photo(chat, caption="first idea")
    await chat.press(chat.find(t("act_image_image_edit")))
    model = (await wizard(chat)).model
    second = await photo(chat, caption="second idea")
    wiz = await wizard(chat)
    assert wiz.model == model and wiz.values["prompt"] == "second idea"
    assert [f["tg_file_id"] for f in wiz.values["image_urls"]] == [second]
    assert t("confirm_header") in text(chat) and "«second idea»" in text(chat)
    assert text(chat).startswith(t("file_replaced")), "the user is told the file was replaced"


async def test_a_sticker_still_gets_the_menu(chat: Chat) -> None:
    await chat.send("sticker", {"file_id": "s", "file_unique_id": "s", "type": "regular", "width": 1, "height": 1,
                                "is_animated": False, "is_video": False})
    assert text(chat) == t("fallback")


# --- in the wizard: a caption, a text before the file ---------------------------------------------


async def test_a_caption_at_a_photo_step_fills_the_prompt_and_its_step_is_skipped(chat: Chat) -> None:
    model_id = "qwen2/image-edit"  # image_url, prompt, image_size
    await chat.open_model(model_id)
    await photo(chat, caption="добавь радугу")
    assert t("caption_taken") in text(chat)
    assert t("ask_choice", title=title(model_id, "image_size")) in text(chat), \
        "the prompt step is skipped: the caption said it"
    wiz = await wizard(chat)
    assert wiz.values["prompt"] == "добавь радугу" and wiz.values["image_url"]["mime"] == "image/jpeg"


async def test_a_text_typed_before_the_photo_is_kept_for_the_prompt(chat: Chat) -> None:
    model_id = "qwen2/image-edit"
    await chat.open_model(model_id)
    await chat.say("в стиле Ван Гога")
    assert text(chat).startswith(t("text_kept_image"))
    await photo(chat)
    assert t("ask_choice", title=title(model_id, "image_size")) in text(chat)
    wiz = await wizard(chat)
    assert wiz.values["prompt"] == "в стиле Ван Гога"


async def test_a_photo_with_a_caption_at_the_prompt_step_fills_both(chat: Chat) -> None:
    model_id = "nano-banana-pro"  # prompt, image_input (optional, up to 8), aspect_ratio, resolution
    await chat.open_model(model_id)
    file_id = await photo(chat, caption="this cat as an astronaut")
    wiz = await wizard(chat)
    assert wiz.values["prompt"] == "this cat as an astronaut"
    assert wiz.values["image_input"] == [file_ref(file_id, "image/jpeg", 50_000)]
    assert t("ask_choice", title=title(model_id, "aspect_ratio")) in text(chat), \
        "the photo's step is answered too"


async def test_a_photo_with_a_caption_at_the_prompt_step_of_a_model_without_photos_takes_the_caption(
        chat: Chat) -> None:
    await chat.open_model("google/nano-banana")
    await photo(chat, caption="a red bicycle")
    assert text(chat).startswith(t("file_not_used"))
    assert (await wizard(chat)).values["prompt"] == "a red bicycle"
