"""The admin panel (issue 18): /admin for ADMIN_IDS only, stats over a seeded database, finding a
user by id and @username, adjusting a balance (once per request, audited, the user told, never
overdrawn), ban and unban, the last errors and their stories, the health summary. Fed through
the real Dispatcher against the fake Telegram and PostgreSQL (tests/wizard_kit.py); the `money`
fixture checks the money invariants after each."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar

import pytest
from aiogram import Bot

from bot import keyboards, texts
from bot.routers.admin_users import AdminInput, parse_adjustment
from bot.services import Services
from fakes.telegram_api import FakeTelegram, message_update
from store import accounts, audit, kie_account, promo, stats, traces
from store.fence import fenced
from store.money_in import money_in
from tests.conftest import Money
from tests.procs import FAKE_TOKEN, TrtProcess, eventually, free_port
from tests.wizard_kit import CATALOG, IDS, Chat, rub, settings_with, t

pytestmark = pytest.mark.timeout(120)

ADMIN = 9001
PLAIN = 7301
PANEL = ["adm:stats", "adm:user", "adm:promo", "adm:rate", "adm:refunds", "adm:broadcast", "adm:errors", "adm:health"]


def pair(money: Money, fake: FakeTelegram, bot: Bot, **changes: Any) -> tuple[Chat, Chat]:
    """An admin's chat and a plain user's, with one configuration."""
    settings = settings_with(admin_ids=frozenset({ADMIN}), welcome_bonus=0, **changes)
    return Chat(money, fake, bot, settings, user=ADMIN), Chat(money, fake, bot, settings, user=PLAIN)


async def audits(money: Money) -> list[audit.Action]:
    return await audit.recent(money.db, money.bot_id, 100)


async def add_job(money: Money, user_id: int, model: str, state: str, *, failure: str | None = None,
                  attempts: int = 1, task: str | None = None, age: str = "0 seconds") -> int:
    """A job as the jobs actor leaves it (paid by an admin: no money held), `age` old."""
    finished = state in ("succeeded", "failed", "timed_out")
    return int(await money.db.require().fetchval(
        """INSERT INTO jobs (bot_id, user_id, chat_id, confirm_nonce, model, sku, input, price, paid_with, held,
                             state, epoch, attempts, kie_task_id, failure, created_at, finished_at)
           VALUES ($1, $2, $2, $3, $4, 'base', '{}', 100, 'admin', 0, $5, 1, $6, $7, $8,
                   now() - $9::text::interval, CASE WHEN $10 THEN now() - $9::text::interval END) RETURNING id""",
        money.bot_id, user_id, f"n{next(IDS)}", model, state, attempts, task, failure, age, finished))


async def pay_stars(money: Money, user_id: int, charge_id: str, stars: int, kopecks: int) -> None:
    """A Stars payment as the Stars screen records it: its row and its one credit."""
    await money.db.require().execute(
        "INSERT INTO star_payments (bot_id, charge_id, user_id, stars, kopecks) VALUES ($1, $2, $3, $4, $5)",
        money.bot_id, charge_id, user_id, stars, kopecks)
    await money_in(money.db, money.name, money.epoch, money.bot_id, user_id, kopecks, source="stars",
                   key=f"stars:{charge_id}")


async def test_a_non_admin_gets_the_fallback_for_every_admin_command_and_button(money: Money, fake: FakeTelegram,
                                                                                bot: Bot) -> None:
    admin, user = pair(money, fake, bot)
    await user.say("/start")
    for text in ("/admin", "/admin stats", f"/admin user {ADMIN}", "/admin trace u1", "/admin health"):
        await user.say(text)
        assert user.last.text == t("fallback"), text
    for data in ("adm:menu", "adm:stats", "adm:user", "adm:errors", "adm:errors:t:u1", "adm:health",
                 f"adm:user:show:{ADMIN}", f"adm:user:adj:{PLAIN}", f"adm:user:ban:{ADMIN}", f"adm:user:unban:{PLAIN}"):
        await user.press(data)
        assert user.last.text == t("fallback"), data
    assert not [c for c in fake.sent_messages(PLAIN) if "adm:" in json.dumps(c.params.get("reply_markup"))]
    assert await audits(money) == []
    assert (await accounts.get_user(money.db, money.bot_id, PLAIN)).banned is False  # type: ignore[union-attr]

    await admin.say("/admin")
    assert admin.last.text == t("adm_menu")
    assert admin.data() == PANEL, "no Transfers while bank transfers are off"
    with_transfers, _ = pair(money, fake, bot, payment_transfer_details="SBP +7 900 000-00-00")
    await with_transfers.say("/admin")
    assert with_transfers.data() == [*PANEL[:2], "adm:transfers", *PANEL[2:]]
    await admin.say("/admin nonsense")
    assert admin.last.text == t("adm_usage")


async def test_stats_match_a_seeded_database(money: Money, fake: FakeTelegram, bot: Bot) -> None:
    admin, _ = pair(money, fake, bot)
    db, bot_id = money.db, money.bot_id
    for uid in (8001, 8002, 8003, 8004, 8005):
        await accounts.ensure_user(db, money.name, money.epoch, bot_id, uid, "ru", 0)
    pool = db.require()
    await pool.execute("UPDATE users SET first_seen = now() - interval '3 days', last_seen = now()"
                       " WHERE user_id = 8001")
    await pool.execute("UPDATE users SET first_seen = now() - interval '10 days', last_seen = now() - interval '2 days'"
                       " WHERE user_id = 8002")
    await pool.execute("UPDATE users SET blocked = true WHERE user_id = 8003")
    await pool.execute("UPDATE users SET banned = true, ban_told = true WHERE user_id = 8004")
    for _ in range(3):
        await add_job(money, 8001, "m-a", "succeeded")
    await add_job(money, 8001, "m-b", "failed", failure="content_policy")
    await add_job(money, 8001, "m-a", "timed_out", failure="timed_out", attempts=1)  # a possible orphan
    await add_job(money, 8002, "m-c", "timed_out", failure="timed_out", attempts=0, task="t-1")  # not an orphan
    await add_job(money, 8001, "m-c", "running")
    await add_job(money, 8002, "m-d", "succeeded", age="10 days")
    await pay_stars(money, 8001, "charge-1", 100, 10_000)
    async with fenced(db, money.name, money.epoch) as conn:  # a promo code redeemed, as store.promo does it
        await promo.create(conn, bot_id, 1, "CODE1", "amount", 500, 5, datetime.now(UTC) + timedelta(days=1))
    await promo.redeem(db, money.name, money.epoch, bot_id, 8001, "CODE1")
    await money_in(db, money.name, money.epoch, bot_id, 8001, -200, source="admin", key="admin:fix-1")
    await kie_account.record_credits(db, money.name, money.epoch, bot_id, 1234)
    await kie_account.pause(db, money.name, money.epoch, bot_id, "KIE said 402")

    await admin.say("/admin")  # the admin: new and active today
    await admin.press("adm:stats")
    today = stats.day_start(admin.settings.zone)
    # a first contact is activity: 8003-8005 and the admin came today, 8001 wrote today, 8002 two days ago
    assert await stats.users(db, bot_id, today) == stats.Users(total=6, new_today=4, new_week=5, active_today=5,
                                                               active_week=6, blocked=1, banned=1)
    gens = await stats.generations(db, bot_id, today)
    assert gens.by_state == {"failed": 1, "running": 1, "succeeded": 4, "timed_out": 2}
    assert (gens.today, gens.week) == (7, 7)
    assert gens.top_models == [("m-a", 4), ("m-c", 2), ("m-b", 1)]
    assert gens.failures == [("timed_out", 2), ("content_policy", 1)]
    assert (gens.orphans, gens.orphans_week) == (1, 1)
    text = admin.last.text or ""
    for line in (t("adm_stats_users", total=6, new_today=4, new_week=5, active_today=5, active_week=6, blocked=1,
                   banned=1),
                 t("adm_stats_jobs", today=7, week=7),
                 t("adm_stats_states", states="сбой 1, выполняется 1, готово 4, истекло время 2"),
                 t("adm_stats_models", models="m-a 4, m-c 2, m-b 1"),
                 t("adm_stats_failures", failures="timed_out 2, content_policy 1"),
                 t("adm_stats_orphans", orphans=1, week=1),
                 f"• {t('adm_source_stars')}: {rub(10_000)} / {rub(10_000)}",
                 f"• {t('adm_source_promo')}: {rub(500)} / {rub(500)}",
                 f"• {t('adm_source_admin')}: {rub(-200)} / {rub(-200)}"):
        assert line in text, f"{line!r} not in\n{text}"
    assert t("adm_stats_kie", credits=1234, at="").split("(")[0] in text
    assert "KIE said 402" in text
    assert admin.data() == ["adm:stats", "adm:menu"]


async def test_an_admin_finds_a_user_by_id_and_by_username(money: Money, fake: FakeTelegram, bot: Bot) -> None:
    admin, user = pair(money, fake, bot)
    await user.feed(message_update(next(IDS), PLAIN, "/start", username="Lena_K"))
    db, bot_id = money.db, money.bot_id
    await accounts.ensure_user(db, money.name, money.epoch, bot_id, 8009, "ru", 0)
    await db.require().execute("INSERT INTO referrals (bot_id, user_id, referrer_id) VALUES ($1, 8009, $2)",
                               bot_id, PLAIN)
    await pay_stars(money, PLAIN, "ch-1", 100, 15_000)
    job = await add_job(money, PLAIN, "m-a", "failed", failure="kie_error")
    header = t("adm_card_header", id=PLAIN, username=" @Lena_K", language="ru")

    await admin.say(f"/admin user {PLAIN}")
    card = admin.last.text or ""
    assert card.startswith(header)
    assert t("adm_card_payments", count=1, stars=100, money=rub(15_000)) in card
    assert t("adm_card_referrals", count=1, paid=0, referrer="—") in card
    assert f"j{job} " in card and "kie_error" in card
    assert admin.data() == [f"adm:user:adj:{PLAIN}", f"adm:user:ban:{PLAIN}", f"adm:user:show:{PLAIN}", "adm:menu"]

    await admin.press("adm:user")
    assert admin.last.text == t("adm_find_ask")
    assert (await admin.state())[0] == AdminInput.find.state
    await admin.say("@nobody")
    assert admin.last.text == t("adm_not_found", query="@nobody")
    await admin.say("@lena_k")
    assert (admin.last.text or "").startswith(header)
    assert (await admin.state())[0] is None, "a card found ends the search"
    await admin.say("/admin user @LENA_K")
    assert (admin.last.text or "").startswith(header)
    await admin.say("/admin user 123456")
    assert admin.last.text == t("adm_not_found", query="123456")
    referred = await accounts.find_user(db, bot_id, "8009")
    assert referred is not None
    await admin.press("adm:user:show:8009")
    assert t("adm_card_referrals", count=0, paid=0, referrer=PLAIN) in (admin.last.text or "")
    await admin.press("adm:user")
    await admin.say("/admin")
    assert admin.last.text == t("adm_menu") and (await admin.state())[0] is None, "a command leaves the search"


def test_an_adjustment_reads_a_signed_amount_in_rubles_and_a_reason() -> None:
    assert parse_adjustment("+150 компенсация за сбой") == (15_000, "компенсация за сбой")
    assert parse_adjustment("-50,5 ошибка") == (-5_050, "ошибка")
    assert parse_adjustment("−12.05 ₽ typographic minus") == (-1_205, "typographic minus")
    assert parse_adjustment("150 рублей за сбой") == (15_000, "рублей за сбой")
    assert parse_adjustment("99 ₽   spaced   reason ") == (9_900, "spaced reason")
    for bad in ("+150", "150", "abc 150", "+0 zero", "+1.234 three decimals", "+10000001 too much", ""):
        assert parse_adjustment(bad) is None, bad


async def test_an_admin_adjusts_a_balance_once_per_request_audited_and_the_user_is_told(
        money: Money, fake: FakeTelegram, bot: Bot) -> None:
    admin, user = pair(money, fake, bot)
    await user.say("/start")
    await admin.say(f"/admin user {PLAIN}")
    await admin.press(admin.find(t("adm_btn_adjust")))
    assert admin.last.text == t("adm_adjust_ask", id=PLAIN, available=rub(0))
    state, data = await admin.state()
    assert state == AdminInput.adjust.state and data["adm_target"] == PLAIN
    await admin.say("no amount here")
    assert admin.last.text == t("adm_adjust_bad", limit=rub(100_000_000))

    told_before = len(user.screens)
    typed = message_update(next(IDS), ADMIN, "+150 компенсация за сбой", language_code="ru")
    await admin.feed(typed)
    [entry] = await accounts.recent_entries(money.db, money.bot_id, PLAIN)
    assert (entry.kind, entry.balance_delta) == ("adjustment", 15_000)
    assert entry.note == f"admin {ADMIN}: компенсация за сбой", "the entry names the admin and the reason"
    assert await money.db.require().fetchval("SELECT source FROM ledger WHERE id = $1", entry.id) == "admin"
    assert user.last.text == (texts.t("ru", "credited_admin", amount=rub(15_000), balance=rub(15_000)) + "\n"
                              + t("credited_reason", reason="компенсация за сбой"))
    assert len(user.screens) == told_before + 1
    assert admin.last.text == t("adm_adjust_done", amount=texts.signed("ru", 15_000), id=PLAIN, entry=entry.id,
                                balance=rub(15_000))
    [done] = await audits(money)
    assert (done.admin_id, done.action, done.target) == (ADMIN, "adjust_balance", f"user:{PLAIN}")
    assert done.before == {"balance": 0, "held": 0}
    assert done.after["balance"] == 15_000 and done.after["reason"] == "компенсация за сбой"
    assert (await admin.state())[0] is None

    # the same message delivered again: the request is over, nothing moves
    await admin.feed(typed)
    assert len(await accounts.recent_entries(money.db, money.bot_id, PLAIN)) == 1
    # a crash after the commit, before the request ended: the replay finds the entry and moves nothing
    context = admin.dp.fsm.get_context(admin.bot, chat_id=ADMIN, user_id=ADMIN)
    await context.set_state(state)
    await context.set_data(data)
    await admin.feed(typed)
    assert len(await accounts.recent_entries(money.db, money.bot_id, PLAIN)) == 1
    assert admin.last.text == t("adm_adjust_again", entry=entry.id, balance=rub(15_000))
    assert len(await audits(money)) == 1
    # the same request sent again as a new message (the admin saw no answer): still once
    await context.set_state(state)
    await context.set_data(data)
    await admin.say("+150 компенсация за сбой")
    assert await user.balance() == accounts.Balance(15_000, 0)

    await admin.press(f"adm:user:adj:{PLAIN}")
    await admin.say("-50 ошибочное начисление")
    assert await user.balance() == accounts.Balance(10_000, 0)
    assert user.last.text == (texts.t("ru", "debited_admin", amount=rub(5_000), balance=rub(10_000)) + "\n"
                              + t("credited_reason", reason="ошибочное начисление"))

    await admin.press(f"adm:user:adj:{PLAIN}")
    await admin.say("-500 больше, чем есть")
    assert admin.last.text == t("adm_adjust_overdraw", amount=rub(50_000), available=rub(10_000))
    assert await user.balance() == accounts.Balance(10_000, 0)
    assert (await admin.state())[0] == AdminInput.adjust.state, "the admin may send a smaller amount"
    await admin.say("/cancel")
    assert (await admin.state())[0] is None
    assert [a.action for a in await audits(money)] == ["adjust_balance", "adjust_balance"]
    assert len(await accounts.recent_entries(money.db, money.bot_id, PLAIN)) == 2


async def test_a_banned_user_gets_one_message_then_silence_and_unban_restores(money: Money, fake: FakeTelegram,
                                                                              bot: Bot) -> None:
    admin, user = pair(money, fake, bot)
    await user.say("/start")
    await admin.say(f"/admin user {PLAIN}")
    await admin.press(admin.find(t("adm_btn_ban")))
    assert t("adm_ban_done", id=PLAIN) in [c.text for c in admin.screens[-2:]]
    assert t("adm_card_banned") in (admin.last.text or "") and f"adm:user:unban:{PLAIN}" in admin.data()

    before = len(user.screens)
    await user.say("/start")
    assert len(user.screens) == before + 1 and user.last.text == t("banned")
    await user.say("/balance")
    await user.press(keyboards.MENU_BALANCE)
    await user.say("hello?")
    assert len(user.screens) == before + 1, "one polite message, then nothing"

    await admin.press(f"adm:user:ban:{PLAIN}")  # pressed again: nothing changes, the user is not told again
    assert admin.screens[-2].text == t("adm_ban_same", id=PLAIN, state=t("adm_state_banned"))
    await user.say("/start")
    assert len(user.screens) == before + 1
    await admin.press(f"adm:user:ban:{ADMIN}")
    assert admin.last.text == t("adm_ban_admin")

    await admin.press(f"adm:user:unban:{PLAIN}")
    assert t("adm_unban_done", id=PLAIN) in [c.text for c in admin.screens[-2:]]
    await user.say("/start")
    assert len(user.screens) == before + 2 and user.last.text != t("banned")
    assert keyboards.MENU_BALANCE in user.data()
    actions = await audits(money)
    assert [(a.action, a.admin_id, a.target, a.before, a.after) for a in actions] == [
        ("unban", ADMIN, f"user:{PLAIN}", {"banned": True}, {"banned": False}),
        ("ban", ADMIN, f"user:{PLAIN}", {"banned": False}, {"banned": True})]


async def test_errors_list_the_last_failures_and_trace_shows_a_story(money: Money, fake: FakeTelegram,
                                                                     bot: Bot) -> None:
    admin, user = pair(money, fake, bot)
    await user.say("/start")
    job = await add_job(money, PLAIN, "m-x", "failed", failure="kie_error")
    await money.db.require().execute(
        """INSERT INTO inbox (bot_id, update_id, kind, chat_key, payload, received_by, state, done_at, outcome)
           VALUES ($1, 555, 'message', $2, '{}', 'test', 2, now(), 'error')""", money.bot_id, PLAIN)
    now = time.time()
    await traces.insert_many(money.db, [
        ("u555", now, "dispatcher", "handler_start", {"kind": "message"}),
        ("u555", now + 0.25, "dispatcher", "handler_end", {"outcome": "error", "level": "error"}),
        (f"j{job}", now, "kie_poller", "failed", {"failure": "kie_error"}),
        *[("u556", now + n, "dispatcher", f"step_{n}", {"note": "x" * 60}) for n in range(200)]])

    await admin.say("/admin errors")
    text = admin.last.text or ""
    assert text.startswith(t("adm_errors_header"))
    assert f"j{job} " in text and "kie_error" in text and "u555 " in text and "error" in text
    assert {f"adm:errors:t:j{job}", "adm:errors:t:u555"} <= set(admin.data())

    await admin.press("adm:errors:t:u555")
    story = admin.last
    assert (story.text or "").startswith("trace u555: 2 events over 0.250 s")
    assert "handler_end" in (story.text or "") and "outcome=error" in (story.text or "")
    assert story.params["entities"][0]["type"] == "pre"
    await admin.say(f"/admin trace j{job}")
    assert (admin.last.text or "").startswith(f"trace j{job}: 1 events")
    await admin.say("/admin trace u556")
    long = admin.last.text or ""
    assert len(long.encode("utf-16-le")) // 2 <= 4096 and long.endswith(t("adm_trace_cut", ref="u556"))
    await admin.say("/admin trace u999")
    assert admin.last.text == t("adm_trace_none", ref="u999")
    await admin.say("/admin trace ' OR 1=1")
    assert admin.last.text == t("adm_trace_none", ref="' OR 1=1")


class HealthChat(Chat):
    """A chat whose services carry a /health body, as the tree's do."""

    body: ClassVar[dict[str, Any]] = {
        "status": "warn", "problems": ["kie_poller: slow"], "instance": "trt-a", "role": "ACTIVE", "epoch": 7,
        "inbox": {"pending": 3, "oldest_pending_seconds": 1.5, "inflight": 1},
        "webhook": {"active": True, "ok": True},
        "jobs": {"driving": 2, "kie_credits": 99},
        "actors": {"dispatcher": {"state": "running", "restarts": 0}, "kie_poller": {"state": "running",
                                                                                   "restarts": 2}}}

    def dispatcher(self) -> Any:
        from bot.conversation import build_dispatcher
        from bot.fsm_storage import PostgresStorage

        async def health() -> dict[str, Any]:
            return self.body

        services = Services(self.money.db, self.settings, CATALOG, wake_jobs=lambda: None, health=health)
        return build_dispatcher(PostgresStorage(self.money.db), services=services)


async def test_health_summarises_role_epoch_actors_inbox_webhook_and_paused(money: Money, fake: FakeTelegram,
                                                                          bot: Bot) -> None:
    settings = settings_with(admin_ids=frozenset({ADMIN}))
    admin = HealthChat(money, fake, bot, settings, user=ADMIN)
    await kie_account.pause(money.db, money.name, money.epoch, money.bot_id, "KIE said 402")
    await admin.press("adm:health")
    text = admin.last.text or ""
    assert text.startswith(t("adm_health_header", status="warn", role="ACTIVE", epoch=7, instance="trt-a"))
    for line in ("• kie_poller: slow", "• dispatcher: running", "• kie_poller: running, restarts 2",
                 t("adm_health_inbox", pending=3, oldest=1.5, inflight=1),
                 t("adm_health_webhook", state="ok", error=""),
                 t("adm_health_jobs", driving=2, credits=99), "KIE said 402"):
        assert line in text, f"{line!r} not in\n{text}"
    plain = Chat(money, fake, bot, settings, user=ADMIN)
    await plain.say("/admin health")
    assert (plain.last.text or "").startswith(t("adm_health_unavailable"))


async def test_a_served_process_gives_its_admin_the_health_summary_of_its_tree(spawn: Any, database_url: str) -> None:
    """The tree builds Services with `health` (commands/tree.py): the admin's summary is the
    process's own /health, role and epoch included."""
    async with FakeTelegram() as telegram:
        port = free_port()
        proc: TrtProcess = spawn({
            "TELEGRAM_BOT_TOKEN": FAKE_TOKEN, "DATABASE_URL": database_url, "TELEGRAM_API_BASE": telegram.base_url,
            "WEBHOOK_BASE_URL": f"http://127.0.0.1:{port}", "BOT_MODE": "webhook", "PORT": str(port),
            "WEBHOOK_SECRET": "admin-secret-0123456789", "ADMIN_IDS": str(ADMIN), "TELEGRAM_RATE_GLOBAL": "0",
            "TELEGRAM_RATE_PER_CHAT": "0", "HEARTBEAT_INTERVAL": "0.5", "LOCK_RETRY_INTERVAL": "0.2",
            "INBOX_SWEEP_INTERVAL": "0.2"})
        await proc.wait_healthy()

        async def active() -> dict[str, Any] | None:
            body = await proc.health()
            return body if body["role"] == "ACTIVE" else None

        body = await eventually(active, 60, "ACTIVE")
        await telegram.wait_for(lambda: telegram.webhook_info().get("url"), 30, "the webhook set")
        await telegram.deliver(telegram.user_message(ADMIN, "/admin health"))
        [summary] = await telegram.wait_for(
            lambda: [c for c in telegram.sent_messages(ADMIN) if (c.text or "").startswith("🩺")] or None, 30,
            "the health summary")
        text = summary.text or ""
        assert f"роль ACTIVE, эпоха {body['epoch']}, экземпляр {body['instance']}" in text, text
        assert "• dispatcher: running" in text and t("adm_running") in text
