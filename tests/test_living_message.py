"""One living message per flow (issue 19): the wizard edits the message whose button was pressed
(choices, Back, Change, refusals) instead of stacking new ones; a typed answer brings the flow
down to a new message and takes the old screen's buttons away; a finished confirmation keeps no
Confirm; "already running" and "outdated" are toasts, and a stale button never puts another
model's Confirm under the thumb. Every query is answered exactly once, even when its handler
fails. Fed through the real Dispatcher and the fake Telegram (tests/wizard_kit.py)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from aiogram import Bot
from aiogram.types import CallbackQuery, Update

from bot import keyboards
from bot.middlewares import AnswerCallbackFirst
from fakes.telegram_api import FakeTelegram, callback_update
from ingest.send_gate import SendGate
from tests.wizard_kit import IDS, USER, Chat, t

pytestmark = pytest.mark.timeout(120)


def steps_live(chat: Chat) -> list[dict[str, Any]]:
    """The bot's messages with a live wizard button (w:...), oldest first."""
    return [m for m in chat.live()
            if any(b.get("callback_data", "").startswith(keyboards.STEP)
                   for row in m["reply_markup"]["inline_keyboard"] for b in row)]


def labels(message: dict[str, Any]) -> list[str]:
    return [b["text"] for row in (message.get("reply_markup") or {}).get("inline_keyboard", []) for b in row]


async def test_choices_back_keep_and_change_edit_the_flows_message_instead_of_sending_new_ones(
        chat: Chat) -> None:
    await chat.top_up(10_000)
    await chat.open_model("flux-2/pro-text-to-image")
    await chat.say("a bridge")
    sent = chat.sent_count
    await chat.press(chat.action("back"))
    assert "5000" in (chat.last.text or "")
    await chat.press(chat.action("keep"))
    await chat.press(chat.find("3:2"))
    await chat.press(chat.find("2K"))
    assert t("confirm_header") in (chat.last.text or "")
    await chat.press(chat.action("back"))
    await chat.press(chat.find("1K"))
    await chat.press(chat.action("chg"))
    assert chat.last.text == t("change_what")
    await chat.press(chat.data()[1])  # the second field
    await chat.press(chat.data()[0])  # its first option
    assert t("confirm_header") in (chat.last.text or "")
    await chat.press(chat.action("chg"))
    await chat.press(chat.action("back"))
    assert t("confirm_header") in (chat.last.text or "")
    assert chat.sent_count == sent, "every screen after a press edits the pressed message"
    assert len(steps_live(chat)) == 1, "one living wizard message"
    assert all(chat.answers(q) == 1 for q in chat.queries), "every press answered exactly once"


async def test_a_choice_leaves_no_old_keyboard_with_its_tick_live(chat: Chat) -> None:
    await chat.open_model("z-image")
    await chat.say("a lighthouse")
    assert "✓ 1:1 квадрат" in [text for text, _ in chat.buttons()]
    await chat.press(chat.find("16:9"))
    assert not [m for m in chat.live() if any("✓ 1:1" in label for label in labels(m))], "no stale tick left live"
    [living] = steps_live(chat)
    assert t("confirm_header") in living["text"]


async def test_a_typed_answer_moves_the_flow_down_and_takes_the_old_steps_buttons_away(chat: Chat) -> None:
    await chat.open_model("z-image")
    asked = chat.showing(chat.action("cancel"))
    assert asked is not None
    sent = chat.sent_count
    await chat.say("a lighthouse")
    assert chat.sent_count == sent + 1, "the next step under the user's answer"
    assert "reply_markup" not in chat.message(asked), "the answered step keeps no buttons"
    [living] = steps_live(chat)
    assert living["message_id"] == chat.showing(chat.action("cancel")) != asked


async def test_an_error_on_a_typed_answer_is_one_message_and_the_old_step_loses_its_buttons(chat: Chat) -> None:
    await chat.open_model("z-image")
    asked = chat.showing(chat.action("cancel"))
    assert asked is not None
    sent = chat.sent_count
    await chat.say("x" * 1001)
    assert chat.sent_count == sent + 1, "the reason and the step again in one message"
    assert (chat.last.text or "").startswith(t("bad_too_long_text", got=1001, limit=1000))
    assert "reply_markup" not in chat.message(asked)
    assert len(steps_live(chat)) == 1


async def test_a_finished_confirmation_keeps_no_confirm_and_the_status_follows(chat: Chat) -> None:
    await chat.top_up(1_000)
    await chat.open_model("google/nano-banana")
    await chat.say("a bird")
    await chat.press(chat.data()[0])
    ok = chat.action("ok")
    confirmation = chat.showing(ok)
    assert confirmation is not None
    sent = chat.sent_count
    await chat.press(ok)
    [job] = await chat.jobs()
    summary = chat.message(confirmation)
    assert "reply_markup" not in summary, "no Confirm, no Change under a finished confirmation"
    assert summary["text"].startswith(t("confirmed_header")) and "«a bird»" in summary["text"]
    assert chat.sent_count == sent + 1 and chat.last.text == t("status_queued", model="Nano Banana", n=job.user_number)
    assert job.status_message_id == chat.last.result["message_id"]
    assert steps_live(chat) == []


async def test_a_double_confirm_makes_one_job_and_a_toast_not_a_message(chat: Chat) -> None:
    await chat.top_up(1_000)
    await chat.open_model("google/nano-banana")
    await chat.say("a bird")
    await chat.press(chat.data()[0])
    ok = chat.action("ok")
    await chat.press(ok)
    sent = chat.sent_count
    await chat.press(ok)
    [job] = await chat.jobs()
    assert chat.sent_count == sent, "no second status, no message"
    assert chat.toasts == [t("already_confirmed", id=job.user_number)]


async def test_a_twin_confirm_that_waited_behind_the_first_puts_already_running_under_the_summary(
        chat: Chat) -> None:
    """In production a double click's second query waits behind the first and the dispatcher
    answers it early: no toast is possible, so the notice goes on the summary, not in a message."""
    await chat.top_up(1_000)
    await chat.open_model("google/nano-banana")
    await chat.say("a bird")
    await chat.press(chat.data()[0])
    ok = chat.action("ok")
    confirmation = chat.showing(ok)
    as_pressed = chat.message(confirmation)
    await chat.press(ok)
    sent = chat.sent_count
    twin = await chat.press(ok, confirmation, message=as_pressed, pre_answered=True)
    [job] = await chat.jobs()
    summary = chat.message(confirmation)
    assert summary["text"].startswith(t("confirmed_header"))
    assert summary["text"].endswith(t("already_confirmed", id=job.user_number)) and "reply_markup" not in summary
    assert chat.sent_count == sent and chat.toasts == [] and chat.answers(twin) == 0


async def test_a_twin_choice_that_waited_behind_the_first_leaves_the_next_screen_alone(chat: Chat) -> None:
    await chat.open_model("z-image")
    await chat.say("a lighthouse")
    step = chat.showing(chat.action("cancel"))
    as_pressed = chat.message(step)
    wide = next(b["callback_data"] for row in as_pressed["reply_markup"]["inline_keyboard"] for b in row
                if "16:9" in b["text"])
    await chat.press(wide)
    confirmation = chat.message(step)
    sent = chat.sent_count
    await chat.press(wide, step, message=as_pressed, pre_answered=True)
    assert chat.message(step) == confirmation, "the confirmation the first press led to, untouched"
    assert chat.sent_count == sent and await chat.jobs() == []


async def test_a_stale_confirm_of_another_model_gets_a_toast_and_never_the_current_confirm(chat: Chat) -> None:
    await chat.top_up(10_000)
    await chat.open_model("z-image")
    await chat.say("a lamp")
    await chat.press(chat.data()[0])
    old_ok = chat.action("ok")
    old = chat.showing(old_ok)
    await chat.open_model("google/nano-banana")
    await chat.say("a bird")
    await chat.press(chat.data()[0])
    current_ok = chat.action("ok")
    sent = chat.sent_count
    await chat.press(old_ok, on=old)
    assert chat.toasts == [t("outdated")]
    assert chat.sent_count == sent, "no screen sent for a stale button"
    showing_current = [m for m in chat.live() if current_ok in [b.get("callback_data") for row in
                                                               m["reply_markup"]["inline_keyboard"] for b in row]]
    assert len(showing_current) == 1, "the current Confirm only where it was"
    stale = chat.message(old or 0)
    assert not [b for row in (stale.get("reply_markup") or {}).get("inline_keyboard", []) for b in row
                if b.get("callback_data", "").startswith(keyboards.STEP) and b["callback_data"].endswith(":ok")]
    assert await chat.jobs() == []


async def test_continue_on_an_outdated_menu_brings_the_current_step_down(chat: Chat) -> None:
    await chat.open_model("z-image")
    old_cancel = chat.action("cancel")
    old = chat.showing(old_cancel)
    # another model opened from /models' list, not by /start (which would retire the old screen)
    await chat.say("/models")
    await chat.press(keyboards.family_data("text_to_image"), on=chat.last.result["message_id"])
    await chat.press(keyboards.model_data("google/nano-banana"))
    await chat.press(keyboards.start_data("google/nano-banana"))
    current = chat.showing(chat.action("cancel"))
    await chat.press(old_cancel, on=old)
    note = chat.message(old or 0)
    assert note["text"] == t("outdated") and labels(note) == [t("living_continue", model="Nano Banana")]
    sent = chat.sent_count
    await chat.press(note["reply_markup"]["inline_keyboard"][0][0]["callback_data"], on=old)
    assert chat.sent_count == sent + 1 and "Nano Banana" in (chat.last.text or "")
    assert "reply_markup" not in chat.message(current or 0) and "reply_markup" not in chat.message(old or 0)
    assert len(steps_live(chat)) == 1


# --- answering queries ----------------------------------------------------------------------------


def query(bot: Bot, chat_id: int = USER) -> CallbackQuery:
    update = Update.model_validate(callback_update(next(IDS), chat_id, "x", query_id=f"q{next(IDS)}"),
                                   context={"bot": bot})
    assert update.callback_query is not None
    return update.callback_query


def answers(fake: FakeTelegram, event: CallbackQuery) -> list[str | None]:
    return [c.params.get("text") for c in fake.calls("answerCallbackQuery")
            if c.ok and c.params.get("callback_query_id") == event.id]


async def test_a_query_is_answered_exactly_once_even_when_its_handler_raises(fake: FakeTelegram, bot: Bot) -> None:
    middleware = AnswerCallbackFirst()

    async def failing(event: Any, data: dict[str, Any]) -> None:
        raise RuntimeError("handler broke")

    async def toasting_then_failing(event: Any, data: dict[str, Any]) -> None:
        assert await data["toast"]("done already")
        assert not await data["toast"]("a second answer"), "a query takes one answer"
        raise RuntimeError("handler broke after its toast")

    plain, toasted = query(bot), query(bot)
    with pytest.raises(RuntimeError):
        await middleware(failing, plain, {})
    with pytest.raises(RuntimeError):
        await middleware(toasting_then_failing, toasted, {})
    assert answers(fake, plain) == [None]
    assert answers(fake, toasted) == ["done already"]


async def test_a_query_the_dispatcher_answered_early_gets_no_second_answer_and_no_toast(
        fake: FakeTelegram, bot: Bot) -> None:
    told: list[bool] = []

    async def handler(event: Any, data: dict[str, Any]) -> None:
        told.append(await data["toast"]("too late"))

    event = query(bot)
    await AnswerCallbackFirst()(handler, event, {"pre_answered": True})
    assert told == [False] and answers(fake, event) == []


async def test_a_slow_handler_does_not_leave_the_button_spinning(fake: FakeTelegram, bot: Bot) -> None:
    """Past the middleware's patience the query is answered empty while the handler still runs
    (here the patience is 0, and the handler waits for that answer); nothing is answered twice."""
    told: list[bool] = []
    event = query(bot)

    async def slow(event: Any, data: dict[str, Any]) -> None:
        await fake.wait_for(1, method="answerCallbackQuery")
        told.append(await data["toast"]("too late"))

    await AnswerCallbackFirst(patience=0)(slow, event, {})
    assert answers(fake, event) == [None] and told == [False]


async def test_a_handler_cancelled_by_a_stop_stays_cancelled_when_the_gate_refuses_its_answer(
        fake: FakeTelegram, bot: Bot) -> None:
    """A stop (the lease lost) cancels the handler while the send gate already refuses: the answer
    the middleware tries on the way out is refused, and that refusal must not replace the
    cancellation. It once did: the dispatcher then took the refusal for "run again" and the
    cancelled worker went back to its loop (soak seed 2117's 5 s stall)."""
    acting = True
    bot.session.middleware(SendGate(lambda: acting))
    started = asyncio.Event()

    async def waiting(event: Any, data: dict[str, Any]) -> None:
        started.set()
        await asyncio.Event().wait()

    event = query(bot)
    handling = asyncio.create_task(AnswerCallbackFirst(patience=60)(waiting, event, {}))
    await asyncio.wait_for(started.wait(), 10)
    acting = False  # the demotion clears the lease, then the stop cancels
    handling.cancel()
    await asyncio.wait({handling}, timeout=10)
    assert handling.cancelled(), f"the stop's cancellation was replaced: {handling.exception()!r}"
    assert answers(fake, event) == [], "a refused answer sends nothing"
