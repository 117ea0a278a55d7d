"""Bank transfers (issue 18), through the real Dispatcher against the fake Telegram over HTTP and a
real PostgreSQL (tests/wizard_kit.Chat): the user picks an amount, gets the details and the
request's number, sends a screenshot; admins get it with Approve / Reject; approval credits once
whatever clicks race; rejection tells the user why; the list survives a restart; off when
PAYMENT_TRANSFER_DETAILS is unset. The `money` fixture checks the money invariants after each."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiogram import Bot

from bot import flow, keyboards, texts
from bot.routers import transfer
from bot.routers.admin_transfers import TYPE, WHY
from commands.check import environment
from fakes.telegram_api import FakeTelegram, callback_update, photo_update
from store import accounts, audit, transfers
from store.database import Database
from tests.conftest import Money
from tests.wizard_kit import IDS, PNG, Chat, settings_with

pytestmark = pytest.mark.timeout(120)

DETAILS = "СБП: +7 900 000-00-00, Т-Банк, получатель Иван И. <не забудьте номер заявки>"
ADMIN_A, ADMIN_B = 9001, 9002
USER = 7301
SETTINGS = settings_with(payment_transfer_details=DETAILS, admin_ids=frozenset({ADMIN_A, ADMIN_B}))


@pytest.fixture(autouse=True)
async def transfers_add_up(money: Money) -> AsyncIterator[None]:
    """After each test: every approved request credited once, every transfer credit a request's."""
    yield
    problems = await transfers.invariant_problems(money.db)
    assert not problems, "\n".join(problems)


def tr(lang: str, key: str, **values: Any) -> str:
    return texts.t(lang, key, **values)


def rub(lang: str, kopecks: int) -> str:
    return texts.money(lang, kopecks)


def people(money: Money, fake: FakeTelegram, bot: Bot, *, user_lang: str = "ru",
           settings: Any = SETTINGS) -> tuple[Chat, Chat, Chat]:
    return (Chat(money, fake, bot, settings, user=USER, lang=user_lang),
            Chat(money, fake, bot, settings, user=ADMIN_A), Chat(money, fake, bot, settings, user=ADMIN_B, lang="en"))


async def screenshot(user: Chat) -> str:
    """The user sends a photo the fake Telegram knows (so admins can get it by file_id)."""
    update, record = user.fake.user_photo(user.user, PNG, language_code=user.lang)
    await user.feed(update)
    return record.file_id


async def requested(user: Chat, amount: int = 50_000) -> transfers.Request:
    """Balance -> Bank transfer -> a preset: the request row, as the details message names it."""
    await user.press(keyboards.MENU_BALANCE)
    await user.press(user.find(tr(user.lang, "btn_transfer")))
    await user.press(f"{transfer.AMOUNT}{amount}")
    request = await transfers.open_request(user.money.db, user.money.bot_id, user.user)
    assert request is not None and request.amount == amount
    return request


async def under_review(user: Chat) -> tuple[transfers.Request, str]:
    request = await requested(user)
    file_id = await screenshot(user)
    found = await transfers.get(user.money.db, user.money.bot_id, request.id)
    assert found is not None and found.under_review and found.screenshot == file_id
    return found, file_id


def card_of(admin: Chat, request_id: int) -> Any:
    cards = [c for c in admin.screens if c.method in ("sendPhoto", "sendDocument")
             and f"{transfer.APPROVE}{request_id}" in admin.data(c)]
    assert cards, f"admin {admin.user} got no card for #{request_id}: {[c.method for c in admin.screens]}"
    return cards[-1]


def texts_to(chat: Chat) -> list[str]:
    return [c.text or "" for c in chat.screens]


async def transfer_entries(money: Money, request_id: int) -> int:
    return int(await money.db.require().fetchval(
        "SELECT count(*) FROM ledger WHERE bot_id = $1 AND idempotency_key = $2", money.bot_id,
        f"transfer:{request_id}"))


async def test_the_whole_flow_approved_credits_once_and_tells_the_user(money: Money, fake: FakeTelegram,
                                                                      bot: Bot) -> None:
    user, admin_a, admin_b = people(money, fake, bot)
    await admin_b.say("/start")  # admin B speaks English: their card is in English
    await user.say("/start")
    before = await user.balance()
    await user.press(keyboards.MENU_BALANCE)
    assert keyboards.TRANSFER in user.data(), "Balance offers the bank transfer when its details are set"
    await user.press(keyboards.TRANSFER)
    choose = user.last
    assert (choose.text or "").startswith(tr("ru", "tr_choose", min=rub("ru", SETTINGS.transfer_min),
                                             max=rub("ru", SETTINGS.transfer_max)))
    assert f"{transfer.AMOUNT}50000" in user.data(choose) and transfer.OWN in user.data(choose)
    await user.press(f"{transfer.AMOUNT}50000")
    request = await transfers.open_request(money.db, money.bot_id, USER)
    assert request is not None and request.awaiting_screenshot, "the row is written before the details are shown"
    details = user.last.text or ""
    assert DETAILS in details, "the details verbatim"
    assert f"№{request.id}" in details and rub("ru", 50_000) in details
    assert f"{transfer.SCREENSHOT_HOURS} ч" in details, "the user is told how long the request waits"

    await user.say("перевёл, проверьте")
    assert user.last.text == tr("ru", "tr_need_screenshot", id=request.id), "text instead of a screenshot: a hint"
    file_id = await screenshot(user)
    assert user.last.text == tr("ru", "tr_received", id=request.id, amount=rub("ru", 50_000))
    assert await user.state() == (None, {}), "the flow ended"
    for admin, lang in ((admin_a, "ru"), (admin_b, "en")):
        card = card_of(admin, request.id)
        assert card.method == "sendPhoto" and card.params["photo"] == file_id, "the screenshot by its file_id"
        caption = card.params["caption"]
        number = f"№{request.id}" if lang == "ru" else f"#{request.id}"
        assert number in caption and rub(lang, 50_000) in caption and str(USER) in caption

    await admin_a.press(f"{transfer.APPROVE}{request.id}")
    after = await user.balance()
    assert after.balance == before.balance + 50_000
    assert await transfer_entries(money, request.id) == 1
    assert user.last.text == tr("ru", "credited_transfer", amount=rub("ru", 50_000),
                                balance=rub("ru", after.available)), "the user is told amount and balance"
    assert admin_a.last.text == tr("ru", "tr_adm_approved", id=request.id, amount=rub("ru", 50_000), user=str(USER),
                                   balance=rub("ru", after.balance))
    decided = await transfers.get(money.db, money.bot_id, request.id)
    assert decided is not None and decided.status == "approved" and decided.decided_by == ADMIN_A
    assert decided.told_at is not None

    told = len(user.screens)
    await admin_a.press(f"{transfer.APPROVE}{request.id}")  # a double click
    await admin_b.press(f"{transfer.APPROVE}{request.id}")  # the other admin, late
    assert await user.balance() == after and await transfer_entries(money, request.id) == 1
    assert len(user.screens) == told, "the user is told once"
    assert admin_a.last.text == tr("ru", "tr_adm_already", id=request.id, status=tr("ru", "tr_status_approved"),
                                   who=str(ADMIN_A))
    assert admin_b.last.text == tr("en", "tr_adm_already", id=request.id, status=tr("en", "tr_status_approved"),
                                   who=str(ADMIN_A)), "the second admin is told who decided"
    [row] = await audit.recent(money.db, money.bot_id, action="transfer_approve")
    assert row.admin_id == ADMIN_A and row.target == f"transfer:{request.id}"
    assert row.before == {"status": "pending", "user_id": USER, "amount": 50_000}
    assert row.after["status"] == "approved" and row.after["credited"] is True


async def test_two_admins_approving_at_once_credit_once(money: Money, fake: FakeTelegram, bot: Bot) -> None:
    user, admin_a, admin_b = people(money, fake, bot)
    await user.say("/start")
    before = await user.balance()
    request, _ = await under_review(user)
    data = f"{transfer.APPROVE}{request.id}"
    await asyncio.gather(admin_a.press(data), admin_b.press(data), admin_a.press(data), admin_b.press(data))
    assert (await user.balance()).balance == before.balance + 50_000
    assert await transfer_entries(money, request.id) == 1
    assert len(await audit.recent(money.db, money.bot_id, action="transfer_approve")) == 1
    credited = [t for t in texts_to(user) if t.startswith("✅")]
    assert len(credited) == 1, credited
    decided = await transfers.get(money.db, money.bot_id, request.id)
    assert decided is not None and decided.decided_by in (ADMIN_A, ADMIN_B)
    winner = admin_a if decided.decided_by == ADMIN_A else admin_b
    approved = [t for t in texts_to(winner) if t.startswith("✅")]
    already = [t for a in (admin_a, admin_b) for t in texts_to(a) if str(request.id) in t and "✅" not in t
               and (t.startswith("Заявка") or t.startswith("Request"))]
    assert len(approved) == 1 and len(already) == 3, (approved, already)


async def test_a_rejection_with_a_preset_reason_tells_the_user_why_in_their_language(
        money: Money, fake: FakeTelegram, bot: Bot) -> None:
    user, admin_a, admin_b = people(money, fake, bot, user_lang="en")
    await user.say("/start")
    before = await user.balance()
    request, _ = await under_review(user)
    await admin_a.press(f"{transfer.REJECT}{request.id}")
    assert admin_a.last.text == tr("ru", "tr_adm_why", id=request.id, amount=rub("ru", 50_000))
    await admin_a.press(f"{WHY}{request.id}:sum")
    reason = tr("en", "tr_reason_sum")
    assert user.last.text == tr("en", "tr_rejected", id=request.id, amount=rub("en", 50_000), reason=reason)
    assert admin_a.last.text == tr("ru", "tr_adm_rejected", id=request.id, reason=reason)
    assert await user.balance() == before and await transfer_entries(money, request.id) == 0
    await admin_b.press(f"{transfer.APPROVE}{request.id}")
    assert await user.balance() == before, "a rejected request is never credited"
    assert admin_b.last.text == tr("en", "tr_adm_already", id=request.id, status=tr("en", "tr_status_rejected"),
                                   who=str(ADMIN_A))
    [row] = await audit.recent(money.db, money.bot_id, action="transfer_reject")
    assert row.admin_id == ADMIN_A and row.after == {"status": "rejected", "reason": reason}
    assert not await audit.recent(money.db, money.bot_id, action="transfer_approve")


async def test_an_admin_can_type_the_reason(money: Money, fake: FakeTelegram, bot: Bot) -> None:
    user, admin_a, _ = people(money, fake, bot)
    await user.say("/start")
    request, _ = await under_review(user)
    await admin_a.press(f"{transfer.REJECT}{request.id}")
    await admin_a.press(f"{TYPE}{request.id}")
    assert admin_a.last.text == tr("ru", "tr_adm_type_now", id=request.id, limit=300)
    await admin_a.photo()
    assert admin_a.last.text == tr("ru", "tr_adm_reason_text"), "a reason is text"
    await admin_a.say("деньги пришли с другой карты, напишите в поддержку")
    assert user.last.text == tr("ru", "tr_rejected", id=request.id, amount=rub("ru", 50_000),
                                reason="деньги пришли с другой карты, напишите в поддержку")
    assert await admin_a.state() == (None, {}), "the admin's prompt ended"
    decided = await transfers.get(money.db, money.bot_id, request.id)
    assert decided is not None and decided.status == "rejected" and decided.decided_by == ADMIN_A


async def test_off_when_the_details_are_unset_no_button_and_old_buttons_do_nothing(
        money: Money, fake: FakeTelegram, bot: Bot) -> None:
    off = settings_with(admin_ids=frozenset({ADMIN_A}))
    assert off.payment_transfer_details is None
    user = Chat(money, fake, bot, off, user=USER)
    await user.say("/start")
    await user.press(keyboards.MENU_BALANCE)
    assert not [d for d in user.data() if d.startswith(transfer.PREFIX)], "no Bank transfer button"
    for data in (keyboards.TRANSFER, f"{transfer.AMOUNT}50000", transfer.OWN):
        await user.press(data)
        assert user.last.text == tr("ru", "fallback"), "an old button gets the menu back"
    await user.say("500")  # with no flow open, a text is a prompt to draw (bot/routers/intake.py), never an amount
    assert not await money.db.require().fetchval("SELECT count(*) FROM transfer_requests")
    assert (await user.state())[0] in (None, flow.Wizard.step.state)


async def test_the_pending_list_survives_a_restart_and_decides_from_there(money: Money, fake: FakeTelegram,
                                                                         bot: Bot) -> None:
    user, admin_a, _ = people(money, fake, bot)
    await user.say("/start")
    before = await user.balance()
    request, file_id = await under_review(user)
    other = Chat(money, fake, bot, SETTINGS, user=USER + 1)
    await other.say("/start")
    waiting = await requested(other, 100_000)  # no screenshot yet: counted, not listed

    admin_a.restart()
    user.restart()
    await admin_a.press(transfer.ADMIN)
    listing = admin_a.last
    assert listing.text == tr("ru", "tr_adm_list", review=1, waiting=1)
    assert f"{transfer.SHOW}{request.id}" in admin_a.data(listing)
    assert f"{transfer.SHOW}{waiting.id}" not in admin_a.data(listing)
    await admin_a.press(f"{transfer.SHOW}{request.id}")
    card = admin_a.last
    assert card.method == "sendPhoto" and card.params["photo"] == file_id
    await admin_a.press(admin_a.data(card)[0])  # Approve
    assert (await user.balance()).balance == before.balance + 50_000
    await admin_a.press(transfer.ADMIN)
    assert admin_a.last.text == tr("ru", "tr_adm_list_empty", waiting=1)


async def test_a_non_admin_can_neither_list_nor_decide(money: Money, fake: FakeTelegram, bot: Bot) -> None:
    user, _, _ = people(money, fake, bot)
    await user.say("/start")
    before = await user.balance()
    request, _ = await under_review(user)
    for data in (transfer.ADMIN, f"{transfer.APPROVE}{request.id}", f"{transfer.REJECT}{request.id}",
                 f"{WHY}{request.id}:nf", f"{transfer.SHOW}{request.id}"):
        await user.press(data)
        assert user.last.text == tr("ru", "fallback"), data
    assert await user.balance() == before
    still = await transfers.get(money.db, money.bot_id, request.id)
    assert still is not None and still.under_review
    assert not await audit.recent(money.db, money.bot_id)


async def test_a_typed_amount_is_checked_and_a_good_one_makes_the_request(money: Money, fake: FakeTelegram,
                                                                         bot: Bot) -> None:
    user = Chat(money, fake, bot, SETTINGS, user=USER, lang="en")
    await user.say("/start")
    await user.press(keyboards.TRANSFER)
    await user.press(transfer.OWN)
    bounds = {"min": rub("en", SETTINGS.transfer_min), "max": rub("en", SETTINGS.transfer_max)}
    assert user.last.text == tr("en", "tr_ask_amount", **bounds)
    await user.say("five hundred")
    assert user.last.text == tr("en", "tr_bad_amount", text="five hundred", **bounds)
    await user.say("10")
    assert user.last.text == tr("en", "tr_out_of_range", amount=rub("en", 1_000), **bounds)
    await user.press(f"{transfer.AMOUNT}1")  # a forged preset
    assert user.last.text == tr("en", "tr_out_of_range", amount=rub("en", 1), **bounds)
    assert not await transfers.open_request(money.db, money.bot_id, USER)
    await user.say("1 500,50 ₽")
    request = await transfers.open_request(money.db, money.bot_id, USER)
    assert request is not None and request.amount == 150_050
    assert DETAILS in (user.last.text or "") and f"#{request.id}" in (user.last.text or "")
    await user.press(keyboards.TRANSFER)
    assert (user.last.text or "").startswith(tr("en", "tr_resumed", id=request.id, amount=rub("en", 150_050))), \
        "one open request: a second Bank transfer resumes it"
    assert await money.db.require().fetchval("SELECT count(*) FROM transfer_requests") == 1


def test_amounts_parse_as_rubles() -> None:
    assert transfer.parse_amount("500") == 50_000
    assert transfer.parse_amount("750,5") == 75_050
    assert transfer.parse_amount("1\u00a0500.25 руб.") == 150_025
    assert transfer.parse_amount("-5") is None and transfer.parse_amount("5e3") is None
    assert transfer.parse_amount("1.234") is None and transfer.parse_amount("") is None
    assert transfer.presets(10_000, 5_000_000) == [50_000, 100_000, 200_000, 500_000]
    assert transfer.presets(10_000, 20_000) == [10_000, 20_000]


async def test_the_user_can_cancel_and_a_cancelled_request_is_never_credited(money: Money, fake: FakeTelegram,
                                                                            bot: Bot) -> None:
    user, admin_a, _ = people(money, fake, bot)
    await user.say("/start")
    before = await user.balance()
    request, _ = await under_review(user)
    await user.press(f"{transfer.CANCEL}{request.id}")
    assert user.last.text == tr("ru", "tr_cancelled", id=request.id)
    await admin_a.press(f"{transfer.APPROVE}{request.id}")
    assert admin_a.last.text == tr("ru", "tr_adm_already", id=request.id, status=tr("ru", "tr_status_cancelled"),
                                   who=tr("ru", "tr_adm_by_user"))
    assert await user.balance() == before
    await user.press(f"{transfer.CANCEL}{request.id}")
    assert user.last.text == tr("ru", "tr_cannot_cancel", id=request.id, status=tr("ru", "tr_status_cancelled"))
    stranger = Chat(money, fake, bot, SETTINGS, user=USER + 5)
    fresh = await requested(user)
    await stranger.press(f"{transfer.CANCEL}{fresh.id}")
    assert stranger.last.text == tr("ru", "tr_no_request"), "nobody cancels another user's request"
    still = await transfers.get(money.db, money.bot_id, fresh.id)
    assert still is not None and still.status == "pending"


async def test_a_request_without_a_screenshot_expires(money: Money, fake: FakeTelegram, bot: Bot) -> None:
    user, admin_a, _ = people(money, fake, bot)
    await user.say("/start")
    request = await requested(user)
    await money.db.require().execute(  # its time is up (time moved, not waited for)
        "UPDATE transfer_requests SET expires_at = now() - interval '1 second' WHERE id = $1", request.id)
    assert await transfers.open_request(money.db, money.bot_id, USER) is None
    await screenshot(user)
    assert user.last.text == tr("ru", "tr_expired", id=request.id)
    assert not card_sent(admin_a)
    fresh = await requested(user)
    assert fresh.id != request.id
    old = await transfers.get(money.db, money.bot_id, request.id)
    assert old is not None and old.status == "expired"


def card_sent(admin: Chat) -> bool:
    return any(c.method in ("sendPhoto", "sendDocument") for c in admin.screens)


async def test_an_image_file_is_a_screenshot_and_other_files_are_not(money: Money, fake: FakeTelegram,
                                                                    bot: Bot) -> None:
    user, admin_a, _ = people(money, fake, bot)
    await user.say("/start")
    request = await requested(user)
    pdf = fake.add_file(b"%PDF-1.4", kind="document", file_name="receipt.pdf", mime_type="application/pdf")
    await user.send("document", {"file_id": pdf.file_id, "file_unique_id": pdf.file_unique_id,
                                 "file_name": "receipt.pdf", "mime_type": "application/pdf"})
    assert user.last.text == tr("ru", "tr_need_screenshot", id=request.id)
    image = fake.add_file(PNG, kind="document", file_name="shot.png", mime_type="image/png")
    await user.send("document", {"file_id": image.file_id, "file_unique_id": image.file_unique_id,
                                 "file_name": "shot.png", "mime_type": "image/png"})
    assert user.last.text == tr("ru", "tr_received", id=request.id, amount=rub("ru", 50_000))
    card = card_of(admin_a, request.id)
    assert card.method == "sendDocument" and card.params["document"] == image.file_id


async def test_a_confirmation_left_for_a_transfer_is_resumed_and_offered_again(money: Money, fake: FakeTelegram,
                                                                              bot: Bot) -> None:
    user, admin_a, _ = people(money, fake, bot)
    await user.say("/start")
    await user.open_model("google/nano-banana")
    await user.say("an owl")
    await user.press(user.find("9:16"))
    kept = await user.state()
    assert kept[0] is not None and kept[0].startswith("Wizard")
    request, _ = await under_review(user)
    assert await user.state() == kept, "the wizard is back where it was, its data untouched"
    await admin_a.press(f"{transfer.APPROVE}{request.id}")
    assert tr("ru", "confirmation_again") in (user.last.text or ""), "one tap runs the kept confirmation"


async def test_check_warns_when_transfers_are_on(money: Money) -> None:
    database = Database("postgresql://127.0.0.1:1/none", "check")
    on = {line.name: line for line in environment(SETTINGS, database)}
    assert on["bank transfers"].mark == "warn" and "Stars only" in on["bank transfers"].text
    assert DETAILS not in on["bank transfers"].text
    nobody = environment(settings_with(payment_transfer_details=DETAILS), database)
    assert "nobody can approve" in next(line.text for line in nobody if line.name == "bank transfers")
    assert "bank transfers" not in {line.name for line in environment(settings_with(), database)}


async def test_admins_unreachable_still_find_the_request_in_the_list(money: Money, fake: FakeTelegram,
                                                                    bot: Bot) -> None:
    user, admin_a, admin_b = people(money, fake, bot)
    fake.blocked.add(ADMIN_B)
    await user.say("/start")
    request, _ = await under_review(user)
    assert card_sent(admin_a) and not card_sent(admin_b)
    fake.blocked.discard(ADMIN_B)
    await admin_b.press(transfer.ADMIN)
    assert f"{transfer.SHOW}{request.id}" in admin_b.data()
    got = await accounts.balance(money.db, money.bot_id, USER)
    assert got.balance >= 0


async def test_an_approval_run_again_after_a_crash_tells_the_user_once(money: Money, fake: FakeTelegram,
                                                                       bot: Bot) -> None:
    """The approving update committed and the process died before the user was told: the same
    update run again tells them (once); another click does not."""
    user, admin_a, _ = people(money, fake, bot)
    await user.say("/start")
    before = await user.balance()
    request, _ = await under_review(user)
    data = f"{transfer.APPROVE}{request.id}"
    done = await transfers.approve(money.db, money.name, money.epoch, money.bot_id, request.id, ADMIN_A,
                                   query_id="q-crash", referral_bonus=0)
    assert isinstance(done, transfers.Decided)
    told = len(user.screens)
    await admin_a.feed(callback_update(next(IDS), ADMIN_A, data, query_id="q-crash"))
    assert len(user.screens) == told + 1
    assert user.last.text == tr("ru", "credited_transfer", amount=rub("ru", 50_000),
                                balance=rub("ru", before.balance + 50_000))
    await admin_a.feed(callback_update(next(IDS), ADMIN_A, data, query_id="q-crash"))
    await admin_a.press(data)
    assert len(user.screens) == told + 1, "told once"
    assert (await user.balance()).balance == before.balance + 50_000
    assert await transfer_entries(money, request.id) == 1


async def test_a_screenshot_update_run_again_reaches_admins_not_yet_reached_once(
        money: Money, fake: FakeTelegram, bot: Bot) -> None:
    """The screenshot was stored and the process died before the admins got it: the same update
    run again (the flow still waits for it) sends the card; once more, nothing new."""
    user, admin_a, admin_b = people(money, fake, bot)
    await user.say("/start")
    request = await requested(user)
    record = fake.add_file(PNG, kind="photo")
    stored = await transfers.attach_screenshot(money.db, money.name, money.epoch, money.bot_id, USER,
                                               record.file_id, "photo")
    assert isinstance(stored, transfers.Attached) and stored.fresh
    update = photo_update(next(IDS), USER, record.file_id, record.file_unique_id)
    await user.feed(update)
    assert [c.params["photo"] for c in admin_a.screens if c.method == "sendPhoto"] == [record.file_id]
    assert len([c for c in admin_b.screens if c.method == "sendPhoto"]) == 1
    assert user.last.text == tr("ru", "tr_received", id=request.id, amount=rub("ru", 50_000))
    context = user.dp.fsm.get_context(user.bot, chat_id=USER, user_id=USER)
    await context.set_state(transfer.TransferFlow.proof)  # a crash after the admins were reached, before the end
    await user.feed(update)
    assert len([c for c in admin_a.screens if c.method == "sendPhoto"]) == 1, "the admins got it once"
    assert user.last.text == tr("ru", "tr_received", id=request.id, amount=rub("ru", 50_000))
    assert await user.state() == (None, {})


async def test_two_presses_at_once_make_one_request(money: Money, fake: FakeTelegram, bot: Bot) -> None:
    user = Chat(money, fake, bot, SETTINGS, user=USER)
    await user.say("/start")
    await asyncio.gather(user.press(f"{transfer.AMOUNT}50000"), user.press(f"{transfer.AMOUNT}100000"))
    rows = await money.db.require().fetch("SELECT id, amount FROM transfer_requests WHERE user_id = $1", USER)
    assert len(rows) == 1, "one open request per user"
    details = [c.text or "" for c in user.screens if DETAILS in (c.text or "")]
    assert len(details) == 2 and all(f"№{rows[0]['id']}" in text for text in details), "both show the one request"


async def test_the_transfer_invariants_see_an_approval_without_its_credit(money: Money, fake: FakeTelegram,
                                                                         bot: Bot) -> None:
    user = Chat(money, fake, bot, SETTINGS, user=USER)
    await user.say("/start")
    request, _ = await under_review(user)
    assert await transfers.invariant_problems(money.db) == []
    await money.db.require().execute(  # what a bug would leave: approved, nothing credited
        "UPDATE transfer_requests SET status = 'approved', decided_by = $2 WHERE id = $1", request.id, ADMIN_A)
    [problem] = await transfers.invariant_problems(money.db, money.bot_id)
    assert f"transfer #{request.id}" in problem and "credited 0 times" in problem
    await money.db.require().execute("UPDATE transfer_requests SET status = 'rejected' WHERE id = $1", request.id)
