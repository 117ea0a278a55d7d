"""webhook_setter against the fake Telegram Bot API, in real processes on one database.

The setter only calls setWebhook when getWebhookInfo (or the secret hash it recorded) differs
from what it wants, only on the ACTIVE instance, and a Telegram that errors or hangs costs a
cycle deadline and a backoff, never a blocked /health.
"""

from __future__ import annotations

import itertools
import signal

import aiohttp
import pytest

from fakes.telegram_api import FakeTelegram, message_update
from ingest.bot_api import ALLOWED_UPDATES
from tests.procs import FAKE_TOKEN, TrtProcess, eventually, one_active

pytestmark = pytest.mark.timeout(120)
URL = "https://bot.example.com"
SECRET = "webhook-secret-for-tests_1"


async def bot_api(fake: FakeTelegram, method: str, **params: object) -> dict:
    """Call the fake as another Bot API client would (someone changing the webhook behind our back)."""
    async with aiohttp.ClientSession() as session, \
            session.post(f"{fake.base_url}/bot{FAKE_TOKEN}/{method}", json=params) as response:
        return await response.json()


def env(database_url: str, fake: FakeTelegram, **extra: str) -> dict[str, str]:
    base = {"TELEGRAM_BOT_TOKEN": FAKE_TOKEN, "DATABASE_URL": database_url, "TELEGRAM_API_BASE": fake.base_url,
            "WEBHOOK_BASE_URL": URL, "BOT_MODE": "webhook", "WEBHOOK_SECRET": SECRET,
            "WEBHOOK_VERIFY_INTERVAL": "1", "WEBHOOK_CYCLE_DEADLINE": "1",
            "HEARTBEAT_INTERVAL": "0.5", "LOCK_RETRY_INTERVAL": "0.2", "STALE_AFTER": "3",
            "RESTART_BACKOFF_MIN": "0.05", "RESTART_BACKOFF_MAX": "0.5"}
    base.update(extra)
    return base


async def webhook_health(proc: TrtProcess) -> dict:
    return (await proc.health())["webhook"]


async def settled(proc: TrtProcess) -> dict:
    """Wait for a verification cycle that ended well, and return the webhook section."""
    async def probe() -> dict | None:
        section = await webhook_health(proc)
        return section if section["last_ok_at"] is not None and section["webhook_error"] is None else None
    return await eventually(probe, 30, "a successful webhook verification")


async def verifications(fake: FakeTelegram, more_than: int) -> None:
    await fake.wait_for(more_than + 1, method="getWebhookInfo", timeout=15, what="more getWebhookInfo calls")


async def test_sets_once_then_only_verifies_and_a_restart_does_not_set_again(database_url, fake, spawn) -> None:
    first = spawn(env(database_url, fake))
    await first.wait_healthy()
    section = await settled(first)
    [call] = fake.calls("setWebhook")
    assert call.params["url"] == f"{URL}/webhook"
    assert call.params["secret_token"] == SECRET
    assert sorted(call.params["allowed_updates"]) == sorted(ALLOWED_UPDATES)
    assert call.params["max_connections"] == 40
    assert call.params.get("drop_pending_updates") in (False, None)
    info = fake.webhook_info()
    assert info["url"] == f"{URL}/webhook" and sorted(info["allowed_updates"]) == sorted(ALLOWED_UPDATES)
    assert section["sets"] == 1 and section["active"] is True
    assert section["telegram"]["url"] == f"{URL}/webhook"

    # WEBHOOK_VERIFY_INTERVAL=1: a few more cycles find nothing to change
    await verifications(fake, len(fake.calls("getWebhookInfo")) + 2)
    assert len(fake.calls("setWebhook")) == 1

    first.signal(signal.SIGTERM)
    assert await first.wait_exit(20) == 0
    seen = len(fake.calls("getWebhookInfo"))
    second = spawn(env(database_url, fake), name="second")
    await second.wait_healthy()
    await verifications(fake, seen + 1)
    assert (await settled(second))["sets"] == 0
    assert len(fake.calls("setWebhook")) == 1, "an identical webhook was set again after a restart"
    assert SECRET not in second.log_text() and FAKE_TOKEN.split(":")[1] not in second.log_text()


@pytest.mark.parametrize("change", ["url", "max_connections", "allowed_updates", "secret"])
async def test_a_difference_is_set_exactly_once(database_url, fake, spawn, change) -> None:
    proc = spawn(env(database_url, fake))
    await proc.wait_healthy()
    await settled(proc)
    assert len(fake.calls("setWebhook")) == 1
    extra: dict[str, str] = {}
    if change == "secret":  # the secret cannot be read back: the recorded hash is what differs
        proc.signal(signal.SIGTERM)
        assert await proc.wait_exit(20) == 0
        extra = {"WEBHOOK_SECRET": "another-secret"}
        proc = spawn(env(database_url, fake, **extra), name="again")
    else:  # someone changed the webhook behind our back, through the Bot API itself
        wanted = {"url": ("https://elsewhere.example.com/hook", 40, ALLOWED_UPDATES),
                   "max_connections": (f"{URL}/webhook", 7, ALLOWED_UPDATES),
                   "allowed_updates": (f"{URL}/webhook", 40, ["message"])}[change]
        url, max_connections, allowed = wanted
        assert (await bot_api(fake, "setWebhook", url=url, max_connections=max_connections,
                              allowed_updates=allowed, secret_token=SECRET))["ok"]
    await fake.wait_for(3 if change != "secret" else 2, method="setWebhook", timeout=20, what="the webhook set again")
    calls = [c for c in fake.calls("setWebhook") if c.source == "http" and c.params.get("url") == f"{URL}/webhook"]
    last = calls[-1]
    assert last.params["max_connections"] == 40
    assert sorted(last.params["allowed_updates"]) == sorted(ALLOWED_UPDATES)
    assert last.params["secret_token"] == extra.get("WEBHOOK_SECRET", SECRET)
    # and it stays set: more verification cycles change nothing
    await settled(proc)
    count = len(fake.calls("setWebhook"))
    await verifications(fake, len(fake.calls("getWebhookInfo")) + 2)
    assert len(fake.calls("setWebhook")) == count


@pytest.mark.parametrize("fault", ["429", "500", "hang"])
async def test_telegram_failing_backs_off_reports_and_recovers(database_url, fake, spawn, fault) -> None:
    failing = 2
    if fault == "429":
        fake.inject("getWebhookInfo", retry_after=2, count=failing)
    elif fault == "500":
        fake.inject("getWebhookInfo", status=500, description="Internal Server Error", count=failing)
    else:
        fake.inject("getWebhookInfo", hang=True, count=failing)
    proc = spawn(env(database_url, fake, WEBHOOK_VERIFY_INTERVAL="60"))  # the backoff is capped by it
    await proc.wait_healthy()

    async def error_shown() -> dict | None:
        section = await webhook_health(proc)  # /health answers while Telegram misbehaves
        return section if section["webhook_error"] else None
    section = await eventually(error_shown, 30, "the webhook error in /health")
    expected = {"429": "retry after 2", "500": "Internal Server Error", "hang": "deadline"}[fault]
    assert expected in section["webhook_error"], section
    assert section["next_attempt_in_seconds"] is not None
    status, text = await proc.get("/metrics")
    assert status == 200
    assert "trt_webhook_ok 0.0" in text or "trt_webhook_ok 0" in text

    section = await settled(proc)
    assert section["sets"] == 1 and len(fake.calls("setWebhook")) == 1
    info_calls = fake.calls("getWebhookInfo")
    assert len(info_calls) >= failing + 1
    if fault == "429":  # retry_after is honoured: the next try is not earlier than Telegram asked
        assert info_calls[1].at - info_calls[0].at >= 2 - 0.05
    else:  # backoff (1 s then 2 s, jitter 20 %): the pause before a retry grows with the streak
        gaps = [b.at - a.at for a, b in itertools.pairwise(info_calls[:failing + 1])]
        assert gaps[1] > gaps[0], gaps
    failed = [line for line in proc.log_lines() if line.get("event") == "webhook_cycle_failed"]
    assert len(failed) == failing and [f["failures"] for f in failed] == [1, 2]
    body = await proc.health()
    assert body["status"] == "pass", body["problems"]


async def test_auto_set_off_verifies_and_reports_only(database_url, fake, spawn) -> None:
    proc = spawn(env(database_url, fake, AUTO_SET_WEBHOOK="0"))
    await proc.wait_healthy()

    async def error_shown() -> dict | None:
        section = await webhook_health(proc)
        return section if section["webhook_error"] else None
    section = await eventually(error_shown, 30, "the difference reported")
    assert "AUTO_SET_WEBHOOK=0" in section["webhook_error"] and "url" in section["webhook_error"]
    assert section["auto_set"] is False
    await verifications(fake, 2)
    assert fake.calls("setWebhook") == []


async def test_telegram_reports_its_delivery_error_and_pending_count(database_url, fake, spawn) -> None:
    fake.push_update(message_update(fake.next_update_id(), 42, "/start"))
    fake.set_webhook_error("Wrong response from the webhook: 502 Bad Gateway")
    proc = spawn(env(database_url, fake))
    await proc.wait_healthy()

    async def reported() -> dict | None:
        section = await webhook_health(proc)
        return section if section["telegram"].get("last_error_message") else None
    section = await eventually(reported, 30, "Telegram's last_error_message in /health")
    assert section["telegram"]["last_error_message"].startswith("Wrong response")
    _, text = await proc.get("/metrics")
    assert "trt_webhook_pending_updates 1.0" in text


async def test_only_the_active_instance_sets_and_a_new_leader_only_verifies(database_url, fake, spawn) -> None:
    procs = [spawn(env(database_url, fake), name=f"p{i}") for i in range(2)]
    for proc in procs:
        await proc.wait_healthy()
    active = await eventually(lambda: one_active(procs), 30, "one ACTIVE instance")
    passive = next(p for p in procs if p is not active)
    await settled(active)
    await verifications(fake, len(fake.calls("getWebhookInfo")) + 2)
    assert len(fake.calls("setWebhook")) == 1
    standby = await webhook_health(passive)
    assert standby["active"] is False and standby["sets"] == 0 and standby["last_ok_at"] is None

    active.kill()
    seen = len(fake.calls("getWebhookInfo"))

    async def took_over() -> bool:
        return (await passive.health())["role"] == "ACTIVE"
    await eventually(took_over, 30, "the standby to become ACTIVE")
    await verifications(fake, seen)  # verifies at once after becoming ACTIVE
    section = await settled(passive)
    assert section["active"] is True and section["sets"] == 0
    assert len(fake.calls("setWebhook")) == 1, "the new leader set a webhook that was already right"
