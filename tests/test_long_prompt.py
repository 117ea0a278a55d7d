"""A long prompt Telegram split (clients cut a message at 4096 characters and send the rest as the
next one) arrives as one prompt, with no flow open and at the wizard's prompt step; a joined
text over the field's limit is told with its exact length and the limit, never cut to a fragment;
a single long message is taken with "Use as is" (bot/parts.py). Real Dispatcher, fake Telegram
over HTTP, real PostgreSQL (tests/wizard_kit.py)."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
from aiogram import Bot

from bot import flow, parts
from bot.conversation import build_dispatcher
from bot.fsm_storage import PostgresStorage
from bot.services import Services
from catalog.model import Catalog
from fakes.telegram_api import FakeTelegram
from tests.conftest import Money
from tests.wizard_kit import CATALOG, Chat, t, title

pytestmark = pytest.mark.timeout(120)

ROOMY_MODEL = "google/nano-banana"  # here its prompt takes 10,000 characters (KIE's is 5,000)


def sentence_text(length: int) -> str:
    words = " ".join(f"a wide valley with a river number {i}, seen at dawn;" for i in range(length // 20))
    assert len(words) >= length
    return words[:length]


def roomy() -> Catalog:
    models = []
    for model in CATALOG.models:
        if model.id == ROOMY_MODEL:
            fields = tuple(dataclasses.replace(f, max_length=10_000) if f.name == "prompt" else f for f in model.fields)
            model = dataclasses.replace(model, fields=fields)
        models.append(model)
    return Catalog(models=tuple(models))


class RoomyChat(Chat):
    def dispatcher(self) -> Any:
        services = Services(self.money.db, self.settings, roomy(), wake_jobs=self._wake)
        return build_dispatcher(PostgresStorage(self.money.db), services=services)


@pytest.fixture
def roomy_chat(money: Money, fake: FakeTelegram, bot: Bot) -> RoomyChat:
    return RoomyChat(money, fake, bot)


def bot_texts(chat: Chat) -> list[str]:
    return [m.get("text") or "" for m in chat.fake.chat_messages(chat.user) if (m.get("from") or {}).get("is_bot")]


async def wizard(chat: Chat) -> flow.Wiz:
    state, data = await chat.state()
    assert state == flow.Wizard.step.state
    wiz = flow.Wiz.load(data)
    assert wiz is not None
    return wiz


async def test_5000_characters_sent_as_4096_and_904_are_one_prompt_on_the_confirmation(roomy_chat: RoomyChat) -> None:
    chat = roomy_chat
    await chat.top_up(10_000)
    whole = sentence_text(5_000)
    await chat.say(whole[:4096])
    assert chat.last.text == t("part_held", count=4096)
    assert chat.data() == [parts.USE_AS_IS]
    assert (await chat.state())[0] is None, "nothing started from a part"
    await chat.say(whole[4096:])
    assert t("confirm_header") in (chat.last.text or "")
    wiz = await wizard(chat)
    assert wiz.model == ROOMY_MODEL and wiz.values["prompt"] == whole, "one prompt of 5,000, not the 904 tail"
    assert t("part_joined", count=5_000) in bot_texts(chat), "the note says the parts were joined"
    assert parts.KEY not in (await chat.state())[1]
    await chat.press(chat.action("ok"))
    [job] = await chat.jobs()
    assert len(job.input["prompt"]) == 5_000


async def test_the_parts_are_joined_at_the_wizards_prompt_step(roomy_chat: RoomyChat) -> None:
    chat = roomy_chat
    whole = sentence_text(5_000)
    await chat.open_model(ROOMY_MODEL)
    await chat.say(whole[:4096])
    assert chat.last.text == t("part_held", count=4096)
    await chat.say(whole[4096:])
    assert t("ask_choice", title=title(ROOMY_MODEL, "image_size")) in (chat.last.text or ""), "the next step"
    assert (await wizard(chat)).values["prompt"] == whole


async def test_a_joined_text_over_the_limit_is_told_with_its_exact_length_never_cut(chat: Chat) -> None:
    whole = sentence_text(25_000)  # six parts of 4,096 and a tail: over every text-to-image model's limit
    longest = max(f.max_length or 0 for m in CATALOG.in_family("text_to_image") for f in m.fields if f.name == "prompt")
    for start in range(0, len(whole), 4096):
        await chat.say(whole[start:start + 4096])
    assert chat.last.text == t("bad_too_long_text", got=25_000, limit=longest), "the longest limit of the family"
    assert await chat.state() == (None, {}), "no fragment taken, nothing held"

    await chat.open_model("nano-banana-pro")  # 10,000 characters at most
    for piece in (whole[:4096], whole[4096:8192], whole[8192:10_192]):
        await chat.say(piece)
    assert (chat.last.text or "").startswith(t("bad_too_long_text", got=10_192, limit=10_000))
    wiz = await wizard(chat)
    assert wiz.index == 0 and "prompt" not in wiz.values, "the same step, no fragment kept"


async def test_a_single_long_message_is_taken_with_use_as_is(chat: Chat) -> None:
    long = sentence_text(3_950)
    await chat.say(long)
    assert chat.last.text == t("part_held", count=3_950)
    sent = chat.sent_count
    await chat.press(parts.USE_AS_IS)
    assert t("confirm_header") in (chat.last.text or "")
    assert chat.sent_count == sent, "the note became the confirmation"
    wiz = await wizard(chat)
    assert wiz.values["prompt"] == long and wiz.model != "z-image", "a model whose limit takes 3,950 characters"
    await chat.press(parts.USE_AS_IS)
    assert chat.toasts[-1] == t("part_gone")
    assert chat.action("ok"), "an old press never takes the confirmation's buttons away"

    await chat.open_model("nano-banana-pro")
    await chat.say(long)
    await chat.press(parts.USE_AS_IS)
    assert (await wizard(chat)).values["prompt"] == long and (await wizard(chat)).index == 1
