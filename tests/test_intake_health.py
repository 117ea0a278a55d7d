"""/health tells the truth about the webhook intake: a stuck group commit makes it `warn`.

A real process on a real PostgreSQL; the commit is made to hang by holding a lock on the inbox
table that conflicts with INSERT, as a stalled disk or a long migration would.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import aiohttp
import asyncpg
import pytest

from fakes.telegram_api import message_update
from tests.procs import FAKE_TOKEN, TrtProcess, eventually

pytestmark = pytest.mark.timeout(90)
SECRET = "intake-health-secret_01"
BOT_ID = int(FAKE_TOKEN.split(":")[0])


async def post(proc: TrtProcess, update: dict[str, Any]) -> int:
    headers = {"X-Telegram-Bot-Api-Secret-Token": SECRET, "Content-Type": "application/json"}
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=20)) as session, \
            session.post(proc.base + "/webhook", data=json.dumps(update).encode(), headers=headers) as response:
        return response.status


async def test_a_commit_stuck_past_the_ack_timeout_makes_health_warn_with_the_intake_as_reason(
        database_url, fake, spawn) -> None:
    proc = spawn({"TELEGRAM_BOT_TOKEN": FAKE_TOKEN, "DATABASE_URL": database_url, "TELEGRAM_API_BASE": fake.base_url,
                  "WEBHOOK_BASE_URL": "https://bot.example.com", "BOT_MODE": "webhook", "WEBHOOK_SECRET": SECRET,
                  "HEALTH_RESTART_WINDOW": "1"})
    body = await proc.wait_healthy(status="pass")
    assert body["intake"]["problems"] == [] and body["intake"]["free_slots"] == body["intake"]["slots"]
    assert await post(proc, message_update(1, 10, "/start")) == 200

    blocker = await asyncpg.connect(database_url)
    try:
        transaction = blocker.transaction()
        await transaction.start()
        await blocker.execute("LOCK TABLE inbox IN SHARE MODE")  # INSERT waits; health's own reads do not
        ack = asyncio.ensure_future(post(proc, message_update(2, 10, "/help")))

        async def intake_stuck() -> dict[str, Any] | None:
            body = await proc.health()
            reasons = [p for p in body["problems"] if p.startswith("ingress intake:")]
            return body if body["status"] == "warn" and reasons else None

        body = await eventually(intake_stuck, 30, "/health warn naming the stuck intake")
        assert body["intake"]["oldest_pending_seconds"] > 5 and body["intake"]["batches"] >= 1
        assert await ack == 503, "the ack gave up after COMMIT_TIMEOUT"
        await transaction.rollback()
    finally:
        await blocker.close()

    async def intake_clear() -> dict[str, Any] | None:
        body = await proc.health()
        return body if not body["intake"]["problems"] and body["intake"]["oldest_pending_seconds"] == 0 else None

    body = await eventually(intake_clear, 30, "the intake's problem gone once the commit went through")
    assert not [p for p in body["problems"] if "intake" in p]
    conn = await asyncpg.connect(database_url)
    try:  # the stuck commit was not lost: it went through once the lock was gone
        assert await conn.fetchval("SELECT count(*) FROM inbox WHERE bot_id = $1 AND update_id = 2", BOT_ID) == 1
    finally:
        await conn.close()
