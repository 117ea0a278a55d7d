"""Choosing a model in few taps and not blind (issue 19, items 7 and 8), through the real
Dispatcher and the fake Telegram (tests/wizard_kit.py): a one-model family opens its first step
in one tap; a one-file step takes one file with no Done; a long list sorts by price; page turns
and a card opened from the list edit the list's message, its counter sends nothing; a card says
its typical time and what its resolution words mean, and its sample arrives as a picture (then
by Telegram's file_id); the wording slips are gone.

Buttons are pressed on the bot's latest message as the fake holds it (fake.user_callback), so a
screen that edits the message it was pressed on is seen edited in fake.chat_messages.
"""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest

from bot import delivery_texts, flow, keyboards, samples, texts
from bot.prices import lowest
from bot.services import Services
from fakes.telegram_api import Call
from store import jobs
from store.jobs import Order, Succeeded
from tests.wizard_kit import CATALOG, USER, Chat, t

pytestmark = pytest.mark.timeout(120)

SORT_CHEAPEST = "fam:text_to_video:0:c"  # keyboards.family_data("text_to_video", 0, keyboards.CHEAPEST)
COUNTER = "fam:-"  # keyboards.COUNTER


# --- helpers ------------------------------------------------------------------------------------


async def tap(chat: Chat, data: str, message_id: int | None = None) -> None:
    """A press on the bot's message (`message_id`, default its latest) as Telegram would send it."""
    await chat.feed(chat.fake.user_callback(USER, data, message_id, language_code=chat.lang))


def bot_messages(chat: Chat) -> list[dict[str, Any]]:
    return [m for m in chat.fake.chat_messages(USER) if m.get("from", {}).get("is_bot")]


def shown(chat: Chat) -> dict[str, Any]:
    """The bot's latest message as the chat shows it now (edits included)."""
    return bot_messages(chat)[-1]


def buttons_of(message: dict[str, Any]) -> list[tuple[str, str]]:
    markup = message.get("reply_markup") or {}
    return [(b["text"], b.get("callback_data", "")) for row in markup.get("inline_keyboard", []) for b in row]


def data_of(message: dict[str, Any]) -> list[str]:
    return [d for _, d in buttons_of(message)]


def sends(chat: Chat) -> list[Call]:
    return chat.fake.sent_messages(USER)


def edits(chat: Chat) -> list[Call]:
    return [c for c in chat.fake.calls(chat_id=USER) if c.method.lower().startswith("editmessage") and c.ok]


# --- fewer taps ---------------------------------------------------------------------------------


async def test_a_one_model_family_opens_its_first_step_in_one_tap(chat: Chat) -> None:
    model = CATALOG.model("recraft/remove-background")
    assert [m.id for m in CATALOG.in_family("background_removal")] == [model.id]
    await chat.say("/start")
    await tap(chat, keyboards.family_data("background_removal"))
    text = shown(chat)["text"]
    assert t("step_header", model=model.title.ru, step=1, steps=1) in text, text
    assert model.description.ru in text, "the card's essentials come with the first step"
    assert "Цена: " in text and t("card_any") not in text
    assert not any(d.startswith((keyboards.MODEL, keyboards.START)) for d in data_of(shown(chat)))
    state, data = await chat.state()
    assert state == flow.Wizard.step.state and data["m"] == model.id and data["at"] == flow.FIELD

    await chat.photo()
    assert t("confirm_header") in shown(chat)["text"], "one photo and the confirmation: no Done"


async def test_a_one_file_step_advances_on_its_file_and_never_mentions_done(chat: Chat) -> None:
    model = CATALOG.model("kling-2.6/image-to-video")
    step = flow.asked(model)[0]
    assert step.array and step.max_items == 1
    await chat.open_model(model.id)
    text = chat.last.text or ""
    assert t("step_header", model=model.title.ru, step=1, steps=len(flow.asked(model))) in text
    assert "Готово" not in text and "файлов" not in text, text
    assert not any(d.endswith(":done") for d in chat.data()), "no Done for one file"
    await chat.photo()
    assert t("step_header", model=model.title.ru, step=2, steps=len(flow.asked(model))) in (chat.last.text or "")


@pytest.mark.parametrize("lang", ["ru", "en"])
async def test_every_file_step_mentions_done_only_with_a_done_button(chat: Chat, lang: str) -> None:
    """Every media step of every model, with none, some and all but one of its files received."""
    await chat.say("/start")
    ctx = flow.Ctx(chat.bot, USER, USER, lang, Services(chat.money.db, chat.settings, CATALOG, lambda: None),
                   chat.dp.fsm.get_context(chat.bot, chat_id=USER, user_id=USER))
    done_word = texts.t(lang, "btn_done").split()[-1]
    checked = 0
    for model in CATALOG.models:
        for index, item in enumerate(flow.asked(model)):
            if not item.media:
                continue
            for count in sorted({0, 1, item.max_items - 1} - {item.max_items} if item.max_items > 1 else {0}):
                wiz = flow.Wiz(model=model.id, nonce="n", index=index, collected=[{"file_id": "f"}] * count)
                screen = await flow.field_screen(ctx, model, wiz)
                has_done = any((b.callback_data or "").endswith(":done") for row in screen.markup.inline_keyboard
                               for b in row)
                assert (done_word in screen.text) == has_done, (model.id, item.name, count, screen.text)
                if item.max_items == 1:
                    assert not has_done and texts.t(lang, "ask_files_many", most=1) not in screen.text
                checked += 1
    assert checked > 100


async def test_cheapest_first_lists_a_family_by_price(chat: Chat) -> None:
    await chat.say("/start")
    await tap(chat, keyboards.family_data("text_to_video"))
    assert (t("btn_sort_c"), SORT_CHEAPEST) in buttons_of(shown(chat))
    await tap(chat, SORT_CHEAPEST)
    listed: list[str] = []
    for _ in range(10):
        listed += [d.removeprefix(keyboards.MODEL).rsplit(":", 1)[0] for d in data_of(shown(chat))
                   if d.startswith(keyboards.MODEL)]
        forward = [d for text, d in buttons_of(shown(chat)) if text == "▶"]
        if not forward:
            break
        await tap(chat, forward[0])
    family = CATALOG.in_family("text_to_video")
    assert sorted(listed) == sorted(m.id for m in family), "every model, once"
    prices = [lowest(chat.settings, CATALOG.model(m)).low for m in listed]
    assert prices == sorted(prices), "cheapest first"
    assert listed != [m.id for m in family], "not the popular order"
    assert (t("btn_sort_p"), "fam:text_to_video:0:p") in buttons_of(shown(chat)), "and back to popular first"


async def test_page_turns_and_a_card_edit_the_list_and_the_counter_sends_nothing(chat: Chat) -> None:
    await chat.say("/start")
    await tap(chat, keyboards.family_data("text_to_video"))
    before = len(sends(chat))
    listing = shown(chat)["message_id"]
    await tap(chat, keyboards.family_data("text_to_video", 1))
    assert len(sends(chat)) == before, "a page turn sends nothing new"
    assert shown(chat)["message_id"] == listing and "2/" in "".join(text for text, _ in buttons_of(shown(chat)))
    counter = [d for text, d in buttons_of(shown(chat)) if "/" in text and text[0].isdigit()]
    assert counter == [COUNTER]
    calls = len(chat.fake.calls(chat_id=USER))
    await tap(chat, COUNTER)
    made = [c.method for c in chat.fake.calls(chat_id=USER)[calls:]]
    assert all(m == "answerCallbackQuery" for m in made), made
    model_data = next(d for d in data_of(shown(chat)) if d.startswith(keyboards.MODEL))
    await tap(chat, model_data)
    assert len(sends(chat)) == before and shown(chat)["message_id"] == listing, "the card edits the list"
    back = dict((text, d) for text, d in buttons_of(shown(chat)))[t("btn_back")]
    await tap(chat, back)
    assert "2/" in "".join(text for text, _ in buttons_of(shown(chat))), "Back to the page it came from"
    assert len(sends(chat)) == before


# --- not blind ----------------------------------------------------------------------------------


async def test_a_card_says_its_typical_time_and_what_its_resolutions_mean(chat: Chat) -> None:
    await chat.say("/start")
    await tap(chat, keyboards.model_data("nano-banana-pro"))
    text = shown(chat)["text"]
    assert t("card_time_estimate", time=t("time_seconds", n=40)) in text, text
    for key in ("res_1k", "res_2k", "res_4k"):
        assert t(key) in text
    assert "1024" in t("res_1k")
    await tap(chat, keyboards.model_data("grok-imagine/image-to-video"))
    assert t("res_480p") in shown(chat)["text"] and t("res_720p") in shown(chat)["text"]


async def test_a_card_shows_the_measured_median_once_the_model_has_results(chat: Chat) -> None:
    money = chat.money
    await chat.top_up(100_000)
    for n, seconds in enumerate((100, 200, 300)):
        order = Order(user_id=USER, chat_id=USER, nonce=f"u{n}", model="google/nano-banana", sku="base",
                      input={"prompt": "p"}, price=100, paid_with="money", day=date(2025, 1, 1))
        created = await jobs.confirm(money.db, money.name, money.epoch, money.bot_id, order, free_daily_limit=5,
                                     max_active=100)
        assert isinstance(created, jobs.Created)
        job = created.job
        await money.db.require().execute("UPDATE jobs SET created_at = now() - make_interval(secs => $2) "
                                          "WHERE id = $1", job.id, float(seconds))
        await jobs.finish(money.db, money.name, money.epoch, job.id, Succeeded({}), delivered=True)
    await chat.say("/start")
    await tap(chat, keyboards.model_data("google/nano-banana"))
    assert t("card_time_measured", time=t("time_minutes", n=4)) in shown(chat)["text"], "the median: 200 s"


async def test_the_sample_button_sends_a_picture_then_reuses_its_file_id(chat: Chat) -> None:
    samples.forget()
    await chat.say("/start")
    await tap(chat, keyboards.model_data("nano-banana-pro"))
    sample = dict(buttons_of(shown(chat)))[t("btn_sample")]
    await tap(chat, sample)
    first = sends(chat)[-1]
    assert first.method == "sendPhoto" and "иллюстрация" in (first.params.get("caption") or "")
    assert keyboards.start_data("nano-banana-pro") in data_of(shown(chat)), "Start right under the sample"
    photo = shown(chat)["photo"][-1]["file_id"]
    await tap(chat, sample, message_id=bot_messages(chat)[-2]["message_id"])
    again = sends(chat)[-1]
    assert again is not first and again.method == "sendPhoto" and again.params.get("photo") == photo, \
        "sent again by Telegram's file_id, not uploaded"


async def test_a_hidden_models_card_and_sample_are_not_opened_from_a_forged_button(chat: Chat) -> None:
    """veo/1080p is reached only as an action on a result (its parent fills taskId): a card or
    sample button naming it says the model is gone, as for an id the catalog lacks."""
    assert CATALOG.model("veo/1080p").hidden
    await chat.say("/start")
    for data in (keyboards.model_data("veo/1080p"), keyboards.SAMPLE + "veo/1080p"):
        await tap(chat, data)
        assert t("model_gone") in shown(chat)["text"], data


# --- wording ------------------------------------------------------------------------------------


def test_a_card_with_one_price_says_price_not_any_settings(chat: Chat) -> None:
    from bot.routers.models import card_text

    services = Services(chat.money.db, chat.settings, CATALOG, lambda: None)
    for lang in ("ru", "en"):
        text = card_text(lang, services, CATALOG.model("recraft/remove-background"))
        assert texts.t(lang, "card_any") not in text and texts.t(lang, "card_prices") not in text
        assert texts.t(lang, "card_price_one", price="").strip() in text


def test_the_repeat_button_has_one_name_and_english_quotes_are_english() -> None:
    for lang in ("ru", "en"):
        assert delivery_texts.t(lang, "btn_again") == texts.t(lang, "btn_repeat"), "one word for one action"
    offenders = [key for table in (texts.TEXTS, delivery_texts.TEXTS)
                 for key, text in table["en"].items() if "«" in text or "»" in text]
    assert not offenders
    assert flow.quote("a fox", lang="en") == "“a fox”" and flow.quote("лиса") == "«лиса»"
    assert delivery_texts.caption("Model", "a fox", "en").endswith("“a fox”")
    assert delivery_texts.caption("Модель", "лиса").endswith("«лиса»")


def test_the_new_buttons_fit_telegrams_64_bytes() -> None:
    longest_model = max((m.id for m in CATALOG.models), key=len)
    longest_family = max((f.id for f in CATALOG.families()), key=len)
    for data in (keyboards.model_data(longest_model, keyboards.CHEAPEST), keyboards.sample_data(longest_model),
                 keyboards.family_data(longest_family, 99_999, keyboards.CHEAPEST), keyboards.COUNTER):
        assert len(data.encode()) <= 64, data
