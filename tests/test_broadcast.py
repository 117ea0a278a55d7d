"""Broadcasts in process: the admin's screens fed through the real Dispatcher (tests/wizard_kit.py)
against the fake Telegram over HTTP and a real PostgreSQL, and the broadcaster actor run beside
them with a stand-in for lock_keeper that grants the lease (as tests/test_kie_poller.py does).

Compose -> the exact preview and the count -> Confirm makes one broadcast (twice pressed: still
one); someone not an admin gets none of it; the actor sends each recipient the message once,
waits out 429s, marks 403s, reports progress and the final counts; Pause stops it, Resume carries
on, Cancel ends it with what was not sent; a recipient a dead leader left 'sending' is sent again
and one out of tries is failed. The kill -9 case with real processes is tests/test_broadcast_e2e.py.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from aiogram import Bot

from actors.broadcaster import Broadcaster
from actors.mailbox import Mailbox
from bot import broadcast_view as view
from bot import texts
from bot.conversation import build_dispatcher
from bot.fsm_storage import PostgresStorage
from bot.services import Services
from fakes.telegram_api import Call, FakeTelegram, callback_update, message_update
from ingest.bot_api import make_bot
from ingest.send_limiter import SendLimiter
from messages.broadcast import WakeBroadcast
from messages.roles import CurrentRole, Role, RoleChanged, RoleQuery
from store import accounts, audit, broadcasts
from store.broadcasts import MAX_TRIES, Broadcast, Content
from tests.conftest import Money
from tests.procs import eventually
from tests.wizard_kit import CATALOG, IDS, PNG, TOKEN, USER, Chat, settings_with

pytestmark = pytest.mark.timeout(120)
ADMIN = USER
LANG = "ru"


def t(key: str, **values: Any) -> str:
    return texts.t(LANG, key, **values)


class AdminChat(Chat):
    """The wizard kit's chat, with the broadcaster's wake counted and pressing a given message."""

    def dispatcher(self) -> Any:
        self.broadcaster_wakes = 0
        services = Services(self.money.db, self.settings, CATALOG, wake_jobs=self._wake,
                            wake_broadcaster=self._wake_broadcaster)
        return build_dispatcher(PostgresStorage(self.money.db), services=services)

    def _wake_broadcaster(self) -> None:
        self.broadcaster_wakes += 1

    async def press_on(self, call: Call, data: str) -> None:
        await self.feed(callback_update(next(IDS), self.user, data, message_id=int(call.result["message_id"]),
                                        language_code=self.lang))

    async def formatted(self, text: str, entities: list[dict[str, Any]]) -> None:
        update = message_update(next(IDS), self.user, text, language_code=self.lang)
        update["message"]["entities"] = entities
        await self.feed(update)

    def texts(self) -> list[str]:
        """Every text the bot showed in this chat, sent or edited in, in order."""
        return [c.text or "" for c in self.fake.calls(chat_id=self.user) if c.ok and c.text is not None]


def admin_chat(money: Money, fake: FakeTelegram, bot: Bot, **changes: Any) -> AdminChat:
    settings = settings_with(admin_ids=frozenset({ADMIN}), broadcast_rate=1000.0, **changes)
    return AdminChat(money, fake, bot, settings, user=ADMIN, lang=LANG)


async def seed(money: Money, users: range, *, blocked: tuple[int, ...] = (), banned: tuple[int, ...] = ()) -> None:
    for user in users:
        await accounts.ensure_user(money.db, money.name, money.epoch, money.bot_id, user, "ru", 0)
    for user in blocked:
        await accounts.set_blocked(money.db, money.bot_id, user, True)
    async with money.db.require().acquire() as conn:
        for user in banned:
            await accounts.set_banned(conn, money.bot_id, user, True)


async def compose(chat: AdminChat, text: str = "Скидка 50% сегодня",
                  entities: list[dict[str, Any]] | None = None) -> Call:
    """adm:broadcast -> the message -> the preview; the confirmation screen (count, Confirm, Cancel)."""
    await chat.press(view.PREFIX)
    assert chat.last.text == t("bc_prompt")
    await chat.formatted(text, entities if entities is not None else [{"type": "bold", "offset": 0, "length": 6}])
    return chat.last


def nonce_of(screen: Call) -> str:
    markup = screen.params.get("reply_markup") or {}
    [confirm] = [b["callback_data"] for row in markup.get("inline_keyboard", []) for b in row
                 if b["callback_data"].startswith(view.data(view.CONFIRM, ""))]
    return str(confirm).rsplit(":", 1)[1]


async def the_broadcast(money: Money) -> Broadcast:
    [made] = await broadcasts.recent(money.db, money.bot_id, 10)
    return made


# -- the admin's screens ---------------------------------------------------------------------------


async def test_an_admin_sees_the_exact_preview_and_the_count_and_one_confirm_makes_one_broadcast(
        money: Money, fake: FakeTelegram, bot: Bot) -> None:
    await seed(money, range(8001, 8006), blocked=(8004,), banned=(8005,))
    chat = admin_chat(money, fake, bot)
    bold = [{"type": "bold", "offset": 0, "length": 6}, {"type": "italic", "offset": 7, "length": 3}]
    screen = await compose(chat, "Скидка 50% сегодня", bold)
    preview = chat.screens[-2]
    assert preview.method == "sendMessage" and preview.params["text"] == "Скидка 50% сегодня"
    assert preview.params["entities"] == bold, "the formatting exactly as the admin wrote it"
    assert "parse_mode" not in preview.params or preview.params["parse_mode"] is None
    # the admin and 8001..8003: 8004 blocked the bot, 8005 is banned
    assert screen.text == t("bc_preview", count=4)
    assert await broadcasts.recent(money.db, money.bot_id) == [], "nothing is made before Confirm"

    nonce = nonce_of(screen)
    await chat.press_on(screen, view.data(view.CONFIRM, nonce))
    made = await the_broadcast(money)
    assert (made.state, made.total, made.admin_id, made.admin_chat_id) == ("running", 4, ADMIN, ADMIN)
    assert made.content == Content("text", "Скидка 50% сегодня", bold)
    assert set(await broadcasts.outcomes(money.db, made.id)) == {ADMIN, 8001, 8002, 8003}
    assert chat.broadcaster_wakes == 1
    assert t("bc_started", id=made.id, total=4) in chat.texts()
    [created] = await audit.recent(money.db, money.bot_id, action="broadcast_create")
    assert (created.admin_id, created.target, created.after["total"]) == (ADMIN, f"broadcast:{made.id}", 4)

    await chat.press_on(screen, view.data(view.CONFIRM, nonce))  # a double click, or Telegram's redelivery
    assert [b.id for b in await broadcasts.recent(money.db, money.bot_id)] == [made.id]
    assert chat.texts()[-1] == t("bc_already", id=made.id)
    assert len(await audit.recent(money.db, money.bot_id, action="broadcast_create")) == 1


async def test_a_photo_with_a_formatted_caption_is_previewed_as_the_photo_users_will_get(
        money: Money, fake: FakeTelegram, bot: Bot) -> None:
    chat = admin_chat(money, fake, bot)
    await chat.press(view.PREFIX)
    update, record = fake.user_photo(ADMIN, PNG, caption="New model!", language_code=LANG)
    update["message"]["caption_entities"] = [{"type": "underline", "offset": 4, "length": 5}]
    await chat.feed(update)
    preview, screen = chat.screens[-2:]
    assert preview.method == "sendPhoto" and preview.params["photo"] == record.file_id
    assert preview.params["caption"] == "New model!"
    assert preview.params["caption_entities"] == [{"type": "underline", "offset": 4, "length": 5}]
    await chat.press_on(screen, view.data(view.CONFIRM, nonce_of(screen)))
    made = await the_broadcast(money)
    assert made.content.kind == "photo" and made.content.photo == record.file_id


async def test_a_second_message_replaces_the_preview_and_cancel_sends_nothing(money: Money, fake: FakeTelegram,
                                                                              bot: Bot) -> None:
    chat = admin_chat(money, fake, bot)
    first = await compose(chat, "first try")
    await chat.formatted("second try", [])
    second = chat.last
    assert nonce_of(first) != nonce_of(second)
    await chat.press_on(first, view.data(view.CONFIRM, nonce_of(first)))
    assert chat.texts()[-1] == t("bc_outdated"), "an older preview cannot be confirmed"
    await chat.press_on(second, view.data(view.DROP, nonce_of(second)))
    assert t("bc_dropped") in chat.texts()
    await chat.press_on(second, view.data(view.CONFIRM, nonce_of(second)))
    assert await broadcasts.recent(money.db, money.bot_id) == []


async def test_someone_not_an_admin_gets_no_composer_and_cannot_confirm_or_control(
        money: Money, fake: FakeTelegram, bot: Bot) -> None:
    chat = admin_chat(money, fake, bot)
    screen = await compose(chat)
    other = AdminChat(money, fake, bot, settings_with(admin_ids=frozenset({ADMIN})), user=8101, lang=LANG)
    await other.press(view.PREFIX)
    await other.formatted("spam for everyone", [])
    await other.press(view.data(view.CONFIRM, nonce_of(screen)))
    assert not any(t("bc_prompt") in text for text in other.texts()), "no composer"
    shown = [d for c in other.fake.calls(chat_id=other.user) if c.ok for d in other.data(c)]
    assert not [d for d in shown if d.startswith(view.PREFIX)], "no preview: the text was only a prompt to draw"
    assert await broadcasts.recent(money.db, money.bot_id) == []
    await chat.press_on(screen, view.data(view.CONFIRM, nonce_of(screen)))
    made = await the_broadcast(money)
    await other.press(view.data("cancel", made.id))
    assert (await the_broadcast(money)).state == "running"
    assert await audit.recent(money.db, money.bot_id, action="broadcast_cancel") == []


# -- the broadcaster -------------------------------------------------------------------------------


@dataclasses.dataclass
class Sender:
    money: Money
    box: Mailbox
    actor: Broadcaster
    keeper: asyncio.Task[None] | None = None

    def grant(self, lease: float = 3600.0) -> None:
        self.box.tell_nowait(RoleChanged(Role.ACTIVE, self.money.epoch, "test", time.monotonic() + lease))


@pytest.fixture
async def sender(money: Money, fake: FakeTelegram) -> AsyncIterator[Callable[..., Any]]:
    made: list[Sender] = []

    async def make(rate: float = 1000.0, grant: bool = True, max_retries: int = 5) -> Sender:
        settings = settings_with(broadcast_rate=rate, admin_ids=frozenset({ADMIN}))
        box = Broadcaster.new_mailbox(f"broadcaster-{len(made)}")
        keeper = Mailbox("lock_keeper-stand-in", (RoleQuery, CurrentRole), 1000)
        bot = make_bot(TOKEN, fake.base_url, timeout=10, limiter=SendLimiter(0, 0, max_retries=max_retries))
        actor = Broadcaster(box, settings, money.db, bot, keeper, sweep_interval=0.05, progress_every=0.2,
                            retry_pauses=(0.05, 0.05))
        await actor.start()
        made.append(Sender(money, box, actor))
        if grant:
            made[-1].grant()
        return made[-1]

    yield make
    for s in made:
        await s.actor.stop(10.0)


def copies(fake: FakeTelegram, chat: int, text: str) -> int:
    return len([c for c in fake.sent_messages(chat) if c.params.get("text") == text])


async def ended(money: Money, broadcast_id: int, timeout: float = 60.0) -> Broadcast:
    async def probe() -> Broadcast | None:
        found = await broadcasts.get(money.db, broadcast_id)
        return found if found is not None and found.told_at is not None else None
    return await eventually(probe, timeout, f"broadcast {broadcast_id} ended and reported", interval=0.05)


async def confirmed(chat: AdminChat, text: str) -> Broadcast:
    screen = await compose(chat, text, [])
    await chat.press_on(screen, view.data(view.CONFIRM, nonce_of(screen)))
    return await the_broadcast(chat.money)


async def test_each_recipient_gets_it_once_429s_are_waited_out_403s_marked_and_the_admin_gets_the_counts(
        money: Money, fake: FakeTelegram, bot: Bot, sender: Callable[..., Any]) -> None:
    users = range(8201, 8231)
    await seed(money, users)
    for user in (8203, 8217):
        fake.block(user)
    chat = admin_chat(money, fake, bot)
    made = await confirmed(chat, "Всем привет")
    fake.inject("sendMessage", retry_after=1, count=2)
    s = await sender()
    done = await ended(money, made.id)
    assert (done.state, done.total, done.sent, done.blocked, done.failed) == ("done", 31, 29, 2, 0)
    for user in users:
        assert copies(fake, user, "Всем привет") == (0 if user in (8203, 8217) else 1), user
    assert copies(fake, ADMIN, "Всем привет") == 2, "the preview and the broadcast itself"
    outcomes = await broadcasts.outcomes(money.db, made.id)
    assert outcomes[8203] == ("blocked", 1) and outcomes[8217] == ("blocked", 1)
    assert (await accounts.get_user(money.db, money.bot_id, 8203)).blocked  # type: ignore[union-attr]
    assert await broadcasts.audience(money.db, money.bot_id) == 29, "who blocked the bot is not counted again"
    progress = [c for c in fake.sent_messages(ADMIN)
                if (c.text or "").startswith(f"📣 Рассылка #{made.id}:") and c.params.get("reply_markup")]
    assert len(progress) == 1, "one progress message, edited, not one per user"
    final = view.final_text(LANG, done)
    assert chat.last.text == final
    edits = [c for c in fake.calls("editMessageText", ADMIN) if c.ok]
    assert edits and edits[-1].params["text"] == view.progress_text(LANG, done)
    assert "reply_markup" not in edits[-1].params or not edits[-1].params["reply_markup"], "no buttons at the end"
    health = s.actor.health()
    assert (health["broadcast"], health["state"], health["sent"], health["total"]) == (made.id, "done", 29, 31)
    assert health["counts"]["retry_after"] == 0, "the bot's limiter waited the 429s out itself"


async def test_pause_stops_sending_resume_carries_on_and_cancel_reports_what_was_not_sent(
        money: Money, fake: FakeTelegram, bot: Bot, sender: Callable[..., Any]) -> None:
    users = range(8301, 8341)
    await seed(money, users)
    chat = admin_chat(money, fake, bot)
    made = await confirmed(chat, "Paced")
    await sender(rate=20.0)

    def delivered() -> int:  # to every recipient, the admin's own copy included (not the preview)
        return sum(copies(fake, user, "Paced") for user in users) + copies(fake, ADMIN, "Paced") - 1
    await eventually(lambda: asyncio.sleep(0, delivered() >= 5), 30, "a few sent")
    await chat.press(view.data("pause", made.id))
    paused = await the_broadcast(money)
    assert paused.state == "paused"
    # the screen says paused; its count may be one behind the row (a send in flight at the press)
    assert chat.texts()[-1].splitlines()[0] == view.progress_text(LANG, paused).splitlines()[0]

    async def settled() -> Broadcast | None:  # the actor saw the pause: its in-flight recipient recorded
        rows = await broadcasts.outcomes(money.db, made.id)  # then the counts: nothing changes once none is in flight
        return None if any(state == "sending" for state, _ in rows.values()) else await the_broadcast(money)
    at_pause = await eventually(settled, 30, "no recipient in flight")
    assert at_pause.left > 0
    count = delivered()
    assert count == at_pause.sent, "every send recorded, none after the pause was seen"
    await chat.press(view.PREFIX)  # the composer lists what has not ended, with its buttons
    listed = chat.screens[-2]
    assert listed.text == view.progress_text(LANG, at_pause)
    assert view.data("resume", made.id) in chat.data(listed)
    await chat.press(view.data("resume", made.id))
    await eventually(lambda: asyncio.sleep(0, delivered() >= count + 3), 30, "sending again")
    await chat.press(view.data("cancel", made.id))
    done = await ended(money, made.id)
    assert done.state == "cancelled" and done.left > 0
    assert chat.last.text == view.final_text(LANG, done)
    assert t("bc_final_rest", left=done.left).strip() in (chat.last.text or "")
    for user in users:
        assert copies(fake, user, "Paced") <= 1
    assert delivered() == done.sent
    actions = [a.action for a in reversed(await audit.recent(money.db, money.bot_id))]
    assert actions == ["broadcast_create", "broadcast_pause", "broadcast_resume", "broadcast_cancel"]
    await chat.press(view.data("cancel", made.id))
    assert t("bc_unchanged", id=made.id, state=view.state_word(LANG, "cancelled")) in chat.texts()[-2:]
    assert len(await audit.recent(money.db, money.bot_id, action="broadcast_cancel")) == 1


async def test_a_recipient_left_sending_by_a_dead_leader_is_sent_again_one_out_of_tries_fails_a_banned_one_skipped(
        money: Money, fake: FakeTelegram, bot: Bot, sender: Callable[..., Any]) -> None:
    await seed(money, range(8401, 8405))
    made, _ = await broadcasts.create(money.db, money.name, money.epoch, money.bot_id, nonce="dead-leader",
                                      admin_id=ADMIN, admin_chat_id=ADMIN, admin_lang=LANG,
                                      content=Content("text", "Once"))
    async with money.db.require().acquire() as conn:  # banned after the Confirm: not sent to
        await accounts.set_banned(conn, money.bot_id, 8404, True)
    # the old leader committed its intent for 8401 and died before Telegram answered
    assert await broadcasts.intend(money.db, money.name, money.epoch, made.id, 8401) == 1
    for _ in range(MAX_TRIES):  # 8402's attempts all died without an answer
        await broadcasts.intend(money.db, money.name, money.epoch, made.id, 8402)
    await money.new_leader()
    await sender()
    done = await ended(money, made.id)
    outcomes = await broadcasts.outcomes(money.db, made.id)
    assert outcomes == {8401: ("sent", 2), 8402: ("failed", MAX_TRIES), 8403: ("sent", 1), 8404: ("failed", 0)}
    assert [copies(fake, u, "Once") for u in (8401, 8402, 8403, 8404)] == [1, 0, 1, 0]
    assert (done.sent, done.failed, done.total) == (2, 2, 4)


async def test_a_429_is_waited_out_for_the_same_user_and_no_answer_is_tried_again_then_failed(
        money: Money, fake: FakeTelegram, bot: Bot, sender: Callable[..., Any]) -> None:
    await seed(money, range(8501, 8503))
    made, _ = await broadcasts.create(money.db, money.name, money.epoch, money.bot_id, nonce="flaky",
                                      admin_id=ADMIN, admin_chat_id=ADMIN, admin_lang=LANG,
                                      content=Content("text", "Flaky"))
    await broadcasts.set_progress_message(money.db, money.name, money.epoch, made.id, 999)  # no send before 8501's
    # a bot whose limiter retries nothing: the broadcaster's own handling meets every answer
    fake.inject("sendMessage", retry_after=1, count=1)
    fake.inject("sendMessage", status=500, count=MAX_TRIES)
    s = await sender(max_retries=0)
    done = await ended(money, made.id)
    outcomes = await broadcasts.outcomes(money.db, made.id)
    assert outcomes == {8501: ("failed", MAX_TRIES), 8502: ("sent", 1)}
    assert copies(fake, 8501, "Flaky") == 0 and copies(fake, 8502, "Flaky") == 1
    assert (done.sent, done.failed) == (1, 1)
    assert s.actor.health()["counts"]["retry_after"] == 1, "the 429 was not a try: the same try went on"


async def test_nothing_is_sent_outside_the_lease(money: Money, fake: FakeTelegram, bot: Bot,
                                                 sender: Callable[..., Any]) -> None:
    await seed(money, range(8601, 8604))
    made, _ = await broadcasts.create(money.db, money.name, money.epoch, money.bot_id, nonce="no-lease",
                                      admin_id=ADMIN, admin_chat_id=ADMIN, admin_lang=LANG,
                                      content=Content("text", "Leased"))
    s = await sender(grant=False)
    s.box.tell_nowait(WakeBroadcast())
    s.grant(lease=0.0)  # ACTIVE, but a lease already over: may not act
    await eventually(lambda: asyncio.sleep(0, s.actor.epoch == money.epoch), 10, "the role taken")
    assert not s.actor.may_act()
    assert fake.sent_messages() == []
    s.grant()
    done = await ended(money, made.id)
    assert done.sent == 3
