"""Actions on a result (issue 20 part 3): the follow-ups a delivered result offers (extend, 1080p,
a Suno song's extend per file), each a child job through the same confirmation with its own
price and tied to its parent; Repeat of a child acts on the same parent; history shows the chain.

Fed through the real Dispatcher against the fake Telegram and a real PostgreSQL
(tests/wizard_kit.py) with the shipped catalog's Veo and Suno models; the `money` fixture checks
the money invariants after each. The parent jobs are made and finished with the store's own
functions, as the jobs actor leaves them (result.items and result.task_id as delivery records them).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from bot import actions_kit, keyboards, texts
from bot.prices import kopecks
from catalog.payload import build
from store import accounts, jobs
from store.jobs import Created, Order, Succeeded
from tests.wizard_kit import CATALOG, Chat, rub, t

pytestmark = pytest.mark.timeout(120)

VEO, SUNO = "veo/generate/veo3_fast", "suno/generate/V5"
OTHER = 7302


async def finished(chat: Chat, model_id: str, result: dict[str, Any], *, task_id: str = "task-parent-1",
                   prompt: str = "a fox in snow", nonce: str = "p1") -> jobs.Job:
    """A job of `model_id` as the jobs actor leaves it: submitted, succeeded with `result`, delivered."""
    money = chat.money
    model = CATALOG.model(model_id)
    await accounts.ensure_user(money.db, money.name, money.epoch, money.bot_id, chat.user, chat.lang, 0)
    order = Order(user_id=chat.user, chat_id=chat.user, nonce=f"{chat.user}:{nonce}", model=model_id, sku="base",
                  input=build(model, {"prompt": prompt}), price=100, paid_with="admin",
                  day=jobs.local_day(chat.settings.zone), endpoint=model.endpoint)
    made = await jobs.confirm(money.db, money.name, money.epoch, money.bot_id, order, free_daily_limit=5,
                              max_active=100)
    assert isinstance(made, Created)
    job = made.job
    await jobs.mark_submitting(money.db, money.name, money.epoch, job.id)
    await jobs.mark_submitted(money.db, money.name, money.epoch, job.id, task_id)
    sent = chat.fake.add_file(b"\x00" * 64, kind="document")
    result = {**result, "sent": [{"as": "document", "file_id": sent.file_id}]}
    await jobs.finish(money.db, money.name, money.epoch, job.id, Succeeded(result))
    await jobs.mark_delivered(money.db, money.name, money.epoch, job.id, sent.file_id)
    done = await jobs.job(money.db, job.id)
    assert done is not None
    return done


def veo_result() -> dict[str, Any]:
    return {"urls": ["https://kie.example/fox.mp4"], "kind": "video", "task_id": "task-parent-1",
            "items": [{"url": "https://kie.example/fox.mp4", "title": None, "cover": None, "ref": None,
                       "duration": 8}]}


def suno_result() -> dict[str, Any]:
    return {"urls": ["https://kie.example/a.mp3", "https://kie.example/b.mp3"], "kind": "audio",
            "task_id": "suno-task-1",
            "items": [{"url": "https://kie.example/a.mp3", "title": "A", "cover": None, "ref": "audio-a",
                       "duration": 120},
                      {"url": "https://kie.example/b.mp3", "title": "B", "cover": None, "ref": "audio-b",
                       "duration": 118}]}


def buttons(markup: Any) -> list[tuple[str, str]]:
    return [(b.text, b.callback_data) for row in markup.inline_keyboard for b in row]


async def children(chat: Chat, parent: jobs.Job) -> list[jobs.Job]:
    return [j for j in await chat.jobs() if j.parent_id == parent.id]


def test_a_result_offers_its_models_follow_ups_one_per_file_where_per_item() -> None:
    veo = CATALOG.model(VEO)
    offers = actions_kit.offered(veo, build(veo, {"prompt": "p"}))  # 720p: extend, 1080p and 4K
    shown = buttons(keyboards.result_keyboard("ru", 41, offers, files=1))
    assert shown == [(t("btn_action_extend"), "act:41:extend"), (t("btn_action_hd1080"), "act:41:hd1080:0"),
                     (t("btn_action_uhd4k"), "act:41:uhd4k:0"),
                     (t("btn_repeat"), keyboards.again_data(41)), (t("btn_menu"), keyboards.MENU_OPEN)]
    at_1080p = actions_kit.offered(veo, build(veo, {"prompt": "p", "resolution": "1080p"}))
    assert [a.id for a in at_1080p] == ["extend", "uhd4k"], "no 1080p of a 1080p video"
    suno = CATALOG.model(SUNO)
    songs = buttons(keyboards.result_keyboard("en", 42, actions_kit.offered(suno, build(suno, {"prompt": "p"})),
                                              files=2))
    assert songs[:4] == [("⏩ Extend 1", "act:42:extend:0"), ("⏩ Extend 2", "act:42:extend:1"),
                         ("🔀 Another version 1", "act:42:remix:0"), ("🔀 Another version 2", "act:42:remix:1")]
    longest = keyboards.result_keyboard("ru", 9_223_372_036_854_775_807, offers, files=9)
    assert all(len(data.encode()) <= 64 for _, data in buttons(longest))
    assert buttons(keyboards.result_keyboard("ru", 43)) == [(t("btn_repeat"), keyboards.again_data(43)),
                                                            (t("btn_menu"), keyboards.MENU_OPEN)]


async def test_extend_asks_the_prompt_then_confirms_at_its_own_price_and_makes_one_child_job(
        chat: Chat) -> None:
    await chat.top_up(100_000)
    parent = await finished(chat, VEO, veo_result())
    await chat.say("/start")
    await chat.press(keyboards.action_data(parent.id, "extend"))
    extend = CATALOG.model("veo/extend")
    assert t("ask_text", title="Что будет дальше", limit=extend.field("prompt").max_length) in (chat.last.text or "")
    await chat.say("the fox runs on")
    screen = chat.last.text or ""
    price = kopecks(chat.settings, extend.credits({"model": "fast"}))
    assert t("confirm_header") in screen and t("acting_extend", n=parent.user_number) in screen
    assert t("confirm_price", price=rub(price)) in screen
    confirm = chat.action("ok")
    await chat.press(confirm)
    await chat.press(confirm, on=chat.showing(confirm) or None)  # Confirm pressed twice: one job
    [child] = await children(chat, parent)
    assert child.model == "veo/extend" and child.endpoint == "veo" and child.price == price
    assert child.input == {"taskId": "task-parent-1", "prompt": "the fox runs on", "model": "fast"}
    assert (await chat.balance()).held == price, "held once"


async def test_1080p_asks_nothing_and_goes_straight_to_the_confirmation(
        chat: Chat) -> None:
    await chat.top_up(100_000)
    parent = await finished(chat, VEO, veo_result())
    await chat.press(keyboards.action_data(parent.id, "hd1080", 0))
    screen = chat.last.text or ""
    price = kopecks(chat.settings, CATALOG.model("veo/1080p").credits({}))
    assert t("confirm_header") in screen and t("acting_1080p", n=parent.user_number) in screen
    assert t("confirm_price", price=rub(price)) in screen
    offered = [data.rsplit(":", 1)[-1] for data in chat.data(chat.last)]
    assert "chg" not in offered and "back" not in offered and "cancel" in offered, \
        "nothing asked: nothing to change or go back to, only Confirm or Cancel"
    await chat.press(chat.action("ok"))
    [child] = await children(chat, parent)
    assert child.input == {"taskId": "task-parent-1", "index": 0} and child.parent_id == parent.id
    summaries = [c.text or "" for c in chat.screens if t("confirmed_header") in (c.text or "")]
    assert summaries and t("acting_1080p", n=parent.user_number) in summaries[-1], "the summary names it too"
    await chat.press(keyboards.action_data(parent.id, "hd1080", 0))  # the same version again: likely a slip
    assert t("act_made_before", n=child.user_number) in (chat.last.text or ""), "told which one has it already"
    assert t("confirm_header") in (chat.last.text or ""), "and may still confirm"


async def test_a_songs_extend_takes_the_chosen_songs_audio_id(chat: Chat) -> None:
    await chat.top_up(100_000)
    parent = await finished(chat, SUNO, suno_result(), task_id="suno-task-1")
    await chat.press(keyboards.action_data(parent.id, "extend", 1))
    line = t("acting_item", line=t("acting_extend", n=parent.user_number), item=2)
    assert line in (chat.last.text or ""), "the confirmation names the song"
    await chat.press(chat.action("ok"))
    [child] = await children(chat, parent)
    assert child.input == {"audioId": "audio-b", "model": "V5", "defaultParamFlag": False}
    await chat.press(keyboards.action_data(parent.id, "extend", 2))  # a third song it never had
    assert chat.last.text == t("act_gone")
    assert len(await children(chat, parent)) == 1


async def test_another_users_result_cannot_be_acted_on(chat: Chat) -> None:
    parent = await finished(chat, VEO, veo_result())
    thief = Chat(chat.money, chat.fake, chat.bot, user=OTHER)
    await thief.top_up(100_000)
    await thief.press(keyboards.action_data(parent.id, "hd1080", 0))  # forged callback data
    assert thief.last.text == t("job_not_found")
    _, data = await thief.state()
    assert "par" not in data, "no wizard began on another user's result"
    await thief.press("act:x:hd1080")
    assert thief.last.text == t("job_not_found")
    assert not [j for j in await thief.jobs()]


async def test_a_result_older_than_14_days_answers_plainly(chat: Chat) -> None:
    parent = await finished(chat, VEO, veo_result())
    await chat.money.db.require().execute(
        "UPDATE jobs SET submitted_at = now() - interval '14 days 1 minute' WHERE id = $1", parent.id)
    await chat.press(keyboards.action_data(parent.id, "extend"))
    assert chat.last.text == t("act_expired")
    assert chat.data() == [keyboards.MENU_OPEN]
    await chat.press(keyboards.job_data(parent.id, 0))
    assert not [d for d in chat.data() if d.startswith(keyboards.ACTION)], "history offers no action on it"
    assert keyboards.again_data(parent.id) in chat.data()


async def test_a_result_not_delivered_yet_offers_nothing_yet(chat: Chat) -> None:
    money = chat.money
    await accounts.ensure_user(money.db, money.name, money.epoch, money.bot_id, chat.user, chat.lang, 0)
    order = Order(user_id=chat.user, chat_id=chat.user, nonce=f"{chat.user}:run", model=VEO, sku="base",
                  input={"prompt": "p"}, price=100, paid_with="admin", day=jobs.local_day(chat.settings.zone),
                  endpoint="veo")
    running = await jobs.confirm(money.db, money.name, money.epoch, money.bot_id, order, free_daily_limit=5,
                                 max_active=100)
    assert isinstance(running, Created)
    await chat.press(keyboards.action_data(running.job.id, "extend"))
    assert chat.last.text == t("act_not_ready")


async def test_repeat_of_a_child_acts_on_the_same_parent(chat: Chat) -> None:
    await chat.top_up(100_000)
    parent = await finished(chat, VEO, veo_result())
    await chat.press(keyboards.action_data(parent.id, "extend"))
    await chat.say("further")
    await chat.press(chat.action("ok"))
    [child] = await children(chat, parent)
    await chat.press(keyboards.again_data(child.id))
    screen = chat.last.text or ""
    assert t("confirm_header") in screen and t("acting_extend", n=parent.user_number) in screen
    assert "«further»" in screen
    await chat.press(chat.action("ok"))
    first, second = sorted(await children(chat, parent), key=lambda j: j.id)
    assert second.parent_id == parent.id and second.input == first.input and second.id != first.id


async def test_history_shows_the_chain(chat: Chat) -> None:
    await chat.top_up(100_000)
    parent = await finished(chat, VEO, veo_result())
    await chat.press(keyboards.action_data(parent.id, "hd1080", 0))
    await chat.press(chat.action("ok"))
    [child] = await children(chat, parent)

    await chat.say("/history")
    listing = chat.last.text or ""
    assert t("history_acted_on", n=parent.user_number) in listing
    await chat.press(keyboards.job_data(child.id, 0))
    assert t("acting_1080p", n=parent.user_number) in (chat.last.text or "")
    await chat.press(keyboards.job_data(parent.id, 0))
    details = chat.last
    assert t("history_children", items=f"№{child.user_number} Видео Veo в 1080p") in (details.text or "")
    assert keyboards.action_data(parent.id, "extend") in chat.data(details), "a live result offers its actions"


def test_parent_values_read_the_parents_result_and_input() -> None:
    now = datetime.now(UTC)
    base: dict[str, Any] = dict(
        id=5, bot_id=1, user_id=2, chat_id=2, nonce="n", sku="base", price=0, paid_with="admin", held=0,
        free_day=None, state="succeeded", epoch=1, attempts=1, polls=1, failure=None, result_file_id=None,
        status_message_id=None, created_at=now, updated_at=now, submitted_at=now, last_polled_at=None,
        finished_at=now, delivered_at=now)
    song = jobs.Job(model=SUNO, input={"prompt": "p"}, kie_task_id="kie-1", result=suno_result(), **base)
    assert actions_kit.parent_values(CATALOG.model("suno/extend"), song, 0) == {"audioId": "audio-a", "model": "V5"}
    with pytest.raises(actions_kit.Unavailable):
        actions_kit.parent_values(CATALOG.model("suno/extend"), song, 5)
    older = jobs.Job(model="veo/generate/veo2", input={}, kie_task_id="kie-2", result={"urls": ["u"]}, **base)
    with pytest.raises(actions_kit.Unavailable):  # the map names no veo2: KIE would refuse it
        actions_kit.parent_values(CATALOG.model("veo/extend"), older, None)
    assert actions_kit.parent_values(CATALOG.model("veo/1080p"), older, 0) == {"taskId": "kie-2", "index": 0}
    assert not actions_kit.expired(older, now + timedelta(days=13))
    assert actions_kit.expired(older, now + timedelta(days=14))
    assert texts.t("en", "acting_extend", n=3) == "⏩ Extending result #3"
    extended = jobs.Job(model="suno/extend", input={"audioId": "audio-a", "model": "V5_5", "defaultParamFlag": False},
                        kie_task_id="kie-3", result=suno_result(), **base)
    assert [a.id for a in actions_kit.offered(CATALOG.model("suno/extend"), extended.input)] == ["extend", "remix"]
    assert actions_kit.parent_values(CATALOG.model("suno/extend"), extended, 1) == {
        "audioId": "audio-b", "model": "V5_5"}, "an extended song extended again keeps the version it was sent"


async def test_a_hidden_model_starts_only_as_an_action(chat: Chat) -> None:
    await chat.press(keyboards.start_data("veo/extend"))  # forged: no parent, so no taskId to send
    assert chat.last.text == t("model_gone")
    _, data = await chat.state()
    assert "m" not in data, "no wizard for a hidden model without its parent"


async def test_back_from_an_actions_first_step_ends_it(chat: Chat) -> None:
    parent = await finished(chat, VEO, veo_result())
    await chat.press(keyboards.action_data(parent.id, "extend"))
    await chat.press(chat.action("back"))
    assert chat.last.text == t("cancelled")
    assert await chat.state() == (None, {})
