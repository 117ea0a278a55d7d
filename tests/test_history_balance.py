"""History (My generations: list, open, re-send by file_id, repeat through the confirmation) and
Balance (money, held, free generations left, ledger entries, Top up), and the account a first
contact opens, fed through the real Dispatcher against the fake Telegram (tests/wizard_kit.py).
The `money` fixture checks the money invariants after each."""

from __future__ import annotations

import pytest
from aiogram import Bot

from bot import keyboards, texts
from fakes.telegram_api import FakeTelegram
from store import accounts, jobs
from store.jobs import Order, Succeeded
from tests.conftest import Money
from tests.wizard_kit import PNG, USER, Chat, rub, settings_with, t

pytestmark = pytest.mark.timeout(120)


async def test_first_contact_opens_an_account_with_the_welcome_bonus(money: Money, fake: FakeTelegram,
                                                                     bot: Bot) -> None:
    chat = Chat(money, fake, bot, settings_with(welcome_bonus=5_000), user=7101, lang="en")
    await chat.say("/start")
    await chat.say("/start")
    assert await chat.balance() == accounts.Balance(5_000, 0)
    [entry] = await accounts.recent_entries(money.db, money.bot_id, 7101)
    assert entry.kind == "bonus"
    await chat.press(keyboards.MENU_BALANCE)
    assert (chat.last.text or "").startswith(texts.t("en", "balance_header", balance="50 ₽"))


async def test_history_lists_opens_resends_and_repeats(chat: Chat) -> None:
    money = chat.money
    await chat.say("/history")
    assert chat.last.text == t("history_empty")
    await chat.top_up(10_000)
    await chat.open_model("google/nano-banana")
    await chat.say("an owl")
    await chat.press(chat.find("9:16"))
    await chat.press(chat.action("ok"))
    [job] = await chat.jobs()
    photo = chat.fake.add_file(PNG, kind="photo")
    result = {"urls": ["https://kie.example/owl.png"], "kind": "photo",
              "sent": [{"as": "photo", "file_id": photo.file_id, "document_file_id": None}]}
    await jobs.finish(money.db, money.name, money.epoch, job.id, Succeeded(result))
    await jobs.mark_delivered(money.db, money.name, money.epoch, job.id, photo.file_id)

    await chat.say("/history")
    listing = chat.last
    assert t("history_header") in (listing.text or "") and f"№{job.user_number} ·" in (listing.text or "")
    assert job.user_number == 1 and f"#{job.id}" not in (listing.text or ""), "the user's own number, not the id"
    assert t("state_succeeded") in (listing.text or "") and rub(job.price) in (listing.text or "")
    await chat.press(keyboards.job_data(job.id, 0))
    resent, details = chat.screens[-2:]
    assert resent.method == "sendPhoto" and resent.params["photo"] == photo.file_id, "re-sent by file_id"
    assert "«an owl»" in (details.text or "") and "9:16" in (details.text or "")
    assert keyboards.again_data(job.id) in chat.data(details)
    calls_before = len(chat.fake.calls())

    await chat.press(keyboards.again_data(job.id))  # also the jobs actor's button under a result
    assert t("confirm_header") in (chat.last.text or "") and "«an owl»" in (chat.last.text or "")
    assert not [c for c in chat.fake.calls()[calls_before:] if c.method == "sendPhoto"]
    await chat.press(chat.action("ok"))
    again, first = await chat.jobs()
    assert again.input == first.input and again.id != first.id and again.state == "created"

    other = Chat(money, chat.fake, chat.bot, user=7201)
    await other.press(keyboards.job_data(job.id, 0))
    assert other.last.text == t("job_not_found"), "another user's generation is not shown"
    await other.press(keyboards.again_data(job.id))
    assert other.last.text == t("job_not_found")


async def test_history_pages_newest_first(chat: Chat) -> None:
    money = chat.money
    await chat.say("/start")
    for n in range(7):
        order = Order(user_id=USER, chat_id=USER, nonce=f"n{n}", model="z-image", sku="base",
                      input={"prompt": f"p{n}", "aspect_ratio": "1:1"}, price=100, paid_with="admin",
                      day=jobs.local_day(chat.settings.zone))
        await jobs.confirm(money.db, money.name, money.epoch, money.bot_id, order, free_daily_limit=5, max_active=100)
    ids = [j.id for j in await chat.jobs()]
    await chat.press(keyboards.MENU_HISTORY)
    first = [d for d in chat.data() if d.startswith(keyboards.JOB)]
    assert first == [keyboards.job_data(i, 0) for i in ids[:5]]
    await chat.press(keyboards.history_data(1))
    assert [d for d in chat.data() if d.startswith(keyboards.JOB)] == [keyboards.job_data(i, 1) for i in ids[5:]]
    assert keyboards.history_data(0) in chat.data()


async def test_the_balance_screen(chat: Chat) -> None:
    money = chat.money
    await chat.say("/start")
    await chat.top_up(12_345)
    await chat.open_model("google/nano-banana")
    await chat.say("a fish")
    await chat.press(chat.data()[0])
    await chat.press(chat.action("ok"))
    [job] = await chat.jobs()
    await chat.say("/balance")
    screen = chat.last.text or ""
    assert screen.startswith(t("balance_header", balance=rub(12_345)))
    assert t("balance_held", held=rub(job.price), available=rub(12_345 - job.price)) in screen
    assert t("balance_free_left", left=5, limit=5) in screen
    line = dict(n=job.user_number, model="Nano Banana", amount=rub(-job.price), zero=rub(0))
    assert f"{t('ledger_top_up')}: +{rub(12_345)}" in screen and t("gen_line_reserved", **line) in screen
    assert chat.data()[0] == keyboards.TOP_UP
    await jobs.finish(money.db, money.name, money.epoch, job.id, Succeeded({"urls": []}))
    await chat.press(keyboards.MENU_BALANCE)
    assert t("gen_line_paid", **line) in (chat.last.text or "")
    assert t("gen_line_reserved", **line) not in (chat.last.text or ""), "a paid generation is one line, not two"
    assert (chat.last.text or "").count(rub(-job.price)) == 1
    await chat.press(keyboards.TOP_UP)
    assert (chat.last.text or "").startswith(t("stars_screen", rate=rub(chat.settings.stars_rate)))
    assert chat.data()[-2:] == [keyboards.MENU_BALANCE, keyboards.MENU_OPEN] and "st:custom" in chat.data()


async def test_the_balance_history_tells_each_generation_once_reserved_then_paid_or_returned(chat: Chat) -> None:
    """Issue 19: "Резерв под генерацию #2: −18 ₽" and "Оплата генерации #2: −18 ₽" read as a
    double charge; a generation is one line by the user's own number, whatever the global ids."""
    money = chat.money
    other = Chat(money, chat.fake, chat.bot, user=7202)
    await other.top_up(10_000)
    for n in range(3):  # another user's generations take the first global ids
        await other.open_model("google/nano-banana")
        await other.say(f"owl {n}")
        await other.press(other.find("1:1"))
        await other.press(other.action("ok"))
    await chat.say("/start")
    await chat.top_up(10_000)
    for prompt in ("a fox", "a wolf", "a bear"):
        await chat.open_model("google/nano-banana")
        await chat.say(prompt)
        await chat.press(chat.find("1:1"))
        await chat.press(chat.action("ok"))
    bear, wolf, fox = await chat.jobs()
    assert (fox.user_number, wolf.user_number, bear.user_number) == (1, 2, 3) and fox.id > 3
    await jobs.finish(money.db, money.name, money.epoch, fox.id, Succeeded({"urls": []}))
    await jobs.finish(money.db, money.name, money.epoch, wolf.id, jobs.Failed("rejected"))
    await chat.press(keyboards.MENU_BALANCE)
    screen = chat.last.text or ""
    price = rub(-fox.price)
    assert t("gen_line_paid", n=1, model="Nano Banana", amount=price) in screen, screen
    assert t("gen_line_returned", n=2, model="Nano Banana", zero=rub(0)) in screen, screen
    assert t("gen_line_reserved", n=3, model="Nano Banana", amount=price) in screen, screen
    assert screen.count(price) == 2, "the paid one and the running one; the returned one took nothing"
    assert t("ledger_hold") not in screen and t("ledger_capture") not in screen and t("ledger_release") not in screen
    assert f"#{fox.id}" not in screen and f"№{fox.id}" not in screen, "never the global id"
    body = screen.split(t("balance_recent"))[1]
    assert body.index("№3") < body.index("№2") < body.index("№1") < body.index(t("ledger_top_up")), "newest first"

    await chat.say("/history")
    listing = chat.last.text or ""
    assert all(f"№{n} ·" in listing for n in (1, 2, 3)) and f"#{fox.id}" not in listing
    en = Chat(money, chat.fake, chat.bot, user=7202, lang="en")
    await en.say("/balance")
    assert texts.t("en", "gen_line_reserved", n=3, model="Nano Banana", amount=texts.money("en", -fox.price)) \
        in (en.last.text or ""), en.last.text


async def test_history_resends_a_text_result_from_its_kept_words_not_silence(chat: Chat) -> None:
    money = chat.money
    await chat.top_up(10_000)
    await chat.open_model("suno-lyrics/generate")
    await chat.say("a song about the sea")
    if t("confirm_header") not in (chat.last.text or ""):
        await chat.press(chat.action("ok"))
    await chat.press(chat.action("ok"))
    [job] = await chat.jobs()
    result = {"urls": [], "kind": "text", "texts": [{"title": "Sea (1)", "text": "[Verse]\nwaves"},
                                                    {"title": "Sea (2)", "text": "[Verse]\ntides"}],
              "sent": []}
    await jobs.finish(money.db, money.name, money.epoch, job.id, Succeeded(result))
    await jobs.mark_delivered(money.db, money.name, money.epoch, job.id, None)
    await chat.press(keyboards.job_data(job.id, 0))
    sent = [c.text or "" for c in chat.screens if c.method == "sendMessage"]
    assert any("Sea (1)" in s and "waves" in s for s in sent) and any("Sea (2)" in s and "tides" in s for s in sent)
