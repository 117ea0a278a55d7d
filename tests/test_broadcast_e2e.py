"""A broadcast across a kill -9, black box: two `run.py serve` processes on one PostgreSQL with
1,000 users, the fake Telegram as a real HTTP server delivering the admin's updates to the webhook
(the standby's URL: the public URL outlives the leader). The admin composes a photo with a
formatted caption, sees the preview, confirms; while the broadcast runs Telegram answers 429
(retry_after) a few times, 50 users have blocked the bot (403), and the leader is killed with -9
while one send is on the wire and unanswered. After the standby takes over and finishes:

* every reachable user got the photo exactly once (successful sendPhoto per chat in the fake):
  the user whose send was cut off is sent again, by the rule that a row left 'sending' is resent;
* every user who blocked the bot got nothing, has the outcome 'blocked' and users.blocked set;
* the admin's progress message was edited by both leaders and the final counts arrived.

The kill is aimed (a send held unanswered by the fake), so "exactly once" is exact: a kill that
fell between Telegram's answer and the recording would legitimately send that one user twice
(store/broadcasts.py says so), which a random kill could not tell apart from a bug.
"""

from __future__ import annotations

import collections
from collections.abc import AsyncIterator
from typing import Any

import pytest

from bot import broadcast_view as view
from bot import texts
from fakes.telegram_api import Call, FakeTelegram
from store import broadcasts, leader
from store.broadcasts import Broadcast
from store.database import Database
from tests.procs import FAKE_TOKEN, TrtProcess, eventually, free_port, one_active

pytestmark = pytest.mark.timeout(300)
BOT_ID = int(FAKE_TOKEN.split(":")[0])
NAME = leader.lock_name(BOT_ID)
ADMIN = 500
USERS = range(100_001, 101_001)  # 1,000
BLOCKED = set(USERS[::20])  # 50 of them blocked the bot
CAPTION = "Новая модель уже в боте!"
ENTITIES = [{"type": "bold", "offset": 0, "length": 12}]
LANG = "en"
PNG = (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x02\x00\x00\x00\x03\x08\x02\x00\x00\x00"
       + b"\x00" * 44)


@pytest.fixture
async def telegram() -> AsyncIterator[FakeTelegram]:
    async with FakeTelegram() as fake:
        yield fake


@pytest.fixture
async def store_db(database_url: str) -> AsyncIterator[Database]:
    database = Database(database_url, "test", pool_size=4)
    await database.connect()
    yield database
    await database.close()


def env(database_url: str, telegram: FakeTelegram, port: int, webhook_port: int) -> dict[str, str]:
    return {"TELEGRAM_BOT_TOKEN": FAKE_TOKEN, "DATABASE_URL": database_url, "TELEGRAM_API_BASE": telegram.base_url,
            "WEBHOOK_BASE_URL": f"http://127.0.0.1:{webhook_port}", "BOT_MODE": "webhook",
            "WEBHOOK_SECRET": "broadcast-secret-0123", "PORT": str(port), "ADMIN_IDS": str(ADMIN),
            "BROADCAST_RATE": "200", "TELEGRAM_RATE_GLOBAL": "0", "TELEGRAM_RATE_PER_CHAT": "0",
            "HEARTBEAT_INTERVAL": "0.5", "LOCK_RETRY_INTERVAL": "0.2", "STALE_AFTER": "3",
            "INBOX_SWEEP_INTERVAL": "0.2", "RESTART_BACKOFF_MIN": "0.05", "RESTART_BACKOFF_MAX": "0.5"}


async def broadcasting(proc: TrtProcess) -> TrtProcess:
    async def probe() -> bool:
        body = await proc.health()
        return body["role"] == "ACTIVE" and bool(body["actors"]["broadcaster"]["driving"])
    await eventually(probe, 60, f"{proc.base} ACTIVE and driving broadcasts")
    return proc


async def seed(db: Database) -> None:
    """1,000 users, as their first /start left them (a row and an empty account each)."""
    await db.require().execute(
        """INSERT INTO users (bot_id, user_id, language) SELECT $1, g, 'ru' FROM generate_series($2::bigint, $3) g""",
        BOT_ID, USERS[0], USERS[-1])
    await db.require().execute(
        "INSERT INTO accounts (bot_id, user_id) SELECT $1, g FROM generate_series($2::bigint, $3) g",
        BOT_ID, USERS[0], USERS[-1])


def buttons(call: Call) -> list[str]:
    markup = call.params.get("reply_markup") or {}
    return [b["callback_data"] for row in markup.get("inline_keyboard", []) for b in row if "callback_data" in b]


def photos(telegram: FakeTelegram) -> list[Call]:
    """The broadcast's photos that reached a user (the admin's preview excluded)."""
    return [c for c in telegram.calls("sendPhoto") if c.ok and c.params.get("caption") == CAPTION
            and c.params.get("chat_id") != ADMIN]


async def admin_confirms(telegram: FakeTelegram) -> None:
    """adm:broadcast -> a photo with a formatted caption -> the preview and the count -> Confirm."""
    admin = ADMIN

    def sent() -> list[Call]:
        return telegram.sent_messages(admin)

    before = len(sent())
    assert await telegram.deliver(telegram.user_callback(admin, view.PREFIX, language_code=LANG)) == 200
    await telegram.wait_for(lambda: any(c.text == texts.t(LANG, "bc_prompt") for c in sent()[before:]), 30,
                            "the composer's prompt")
    update, record = telegram.user_photo(admin, PNG, caption=CAPTION, language_code=LANG)
    update["message"]["caption_entities"] = ENTITIES
    before = len(sent())
    assert await telegram.deliver(update) == 200

    def screen() -> Call | None:
        found = [c for c in sent()[before:] if any(d.startswith(view.data(view.CONFIRM, "")) for d in buttons(c))]
        return found[0] if found else None
    confirmation = await telegram.wait_for(screen, 30, "the preview and its confirmation")
    [preview] = [c for c in sent()[before:] if c.method == "sendPhoto"]
    assert preview.params["photo"] == record.file_id and preview.params["caption_entities"] == ENTITIES
    # the 1,000 and the admin (who opened an account by writing)
    assert confirmation.text == texts.t(LANG, "bc_preview", count=len(USERS) + 1)
    [ok] = [d for d in buttons(confirmation) if d.startswith(view.data(view.CONFIRM, ""))]
    press = telegram.user_callback(admin, ok, message_id=int(confirmation.result["message_id"]), language_code=LANG)
    assert await telegram.deliver(press) == 200


async def the_broadcast(db: Database) -> Broadcast:
    async def probe() -> Broadcast | None:
        found = await broadcasts.recent(db, BOT_ID, 1)
        return found[0] if found else None
    return await eventually(probe, 30, "the broadcast confirmed")


async def test_a_broadcast_to_1000_users_reaches_each_reachable_one_once_across_a_kill_9_of_the_leader(
        database_url: str, store_db: Database, telegram: FakeTelegram, spawn: Any) -> None:
    first_port, second_port = free_port(), free_port()
    first: TrtProcess = spawn(env(database_url, telegram, first_port, second_port), name="a")
    await broadcasting(first)
    second: TrtProcess = spawn(env(database_url, telegram, second_port, second_port), name="b")
    await second.wait_healthy()
    assert await one_active([first, second]) is first
    await telegram.wait_for(lambda: telegram.webhook_info().get("url"), 30, "the webhook set")
    await seed(store_db)
    for user in BLOCKED:
        telegram.block(user)

    await admin_confirms(telegram)
    made = await the_broadcast(store_db)
    assert made.total == len(USERS) + 1

    await telegram.wait_for(lambda: len(photos(telegram)) >= 100, 60, "the broadcast under way")
    telegram.inject("sendPhoto", retry_after=1, count=3)  # Telegram's flood control, waited out
    await telegram.wait_for(lambda: len(photos(telegram)) >= 400, 60, "the broadcast past 400")
    telegram.inject("sendPhoto", hang=True)  # the next send stays on the wire, unanswered

    def hung() -> Call | None:
        found = [c for c in telegram.calls("sendPhoto") if c.status is None and c.params.get("caption") == CAPTION]
        return found[0] if found else None
    cut_off = await telegram.wait_for(hung, 30, "a send on the wire")
    first.kill()
    await broadcasting(second)

    async def ended() -> Broadcast | None:
        found = await broadcasts.get(store_db, made.id)
        return found if found is not None and found.told_at is not None else None
    done = await eventually(ended, 120, "the broadcast finished and reported", interval=0.2)

    reachable = [u for u in USERS if u not in BLOCKED]
    assert (done.state, done.sent, done.blocked, done.failed) == ("done", len(reachable) + 1, len(BLOCKED), 0)
    per_chat = collections.Counter(c.params["chat_id"] for c in photos(telegram))
    twice = {u: n for u, n in per_chat.items() if n != 1}
    assert not twice, f"users who got it more than once: {twice}"
    assert set(per_chat) == set(reachable), "every reachable user got it, no blocked one did"
    assert per_chat[cut_off.params["chat_id"]] == 1, "the user cut off by the kill got it from the new leader"
    outcomes = await broadcasts.outcomes(store_db, made.id)
    assert {u for u, (state, _) in outcomes.items() if state == "blocked"} == BLOCKED
    assert all(outcomes[u][0] == "sent" for u in reachable) and outcomes[ADMIN][0] == "sent"
    marked = await store_db.require().fetch(
        "SELECT user_id FROM users WHERE bot_id = $1 AND blocked", BOT_ID)
    assert {r["user_id"] for r in marked} == BLOCKED
    resent = [line for line in second.log_lines() if line.get("event") == "broadcast_resend"]
    assert [line.get("user_id") for line in resent] == [cut_off.params["chat_id"]]
    retried = [c for c in telegram.calls("sendPhoto") if c.status == 429]
    assert len(retried) == 3

    progress_id = done.progress_message_id
    edits = [c for c in telegram.calls("editMessageText", ADMIN) if c.ok and c.params.get("message_id") == progress_id]
    assert edits and edits[-1].params["text"] == view.progress_text(LANG, done)
    assert len(edits) < 100, "the progress message is edited every few seconds, not per user"
    assert telegram.sent_messages(ADMIN)[-1].text == view.final_text(LANG, done)
