"""`run.py check [health URL]`, black box: the command runs as a subprocess against a real
PostgreSQL, the fake Telegram and the fake KIE (real HTTP servers in the test), and a real
`run.py serve` when a leader is wanted. Every run's whole output (stdout and stderr) is searched
for each secret the configuration holds; none may appear."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import aiohttp
import asyncpg
import pytest

from commands.check import leader_line, mask_url
from fakes.kie_api import FakeKie
from fakes.telegram_api import FakeTelegram
from store import leader, migrations
from tests.procs import FAKE_TOKEN, ROOT, TrtProcess, eventually, free_port

pytestmark = pytest.mark.timeout(120)
BOT_ID = int(FAKE_TOKEN.split(":")[0])
WEBHOOK_SECRET = "check-webhook-secret-0123"
KIE_KEY = "kie-check-key-4567"
CHAOS_TOKEN = "chaos-check-token-89"
DB_PASSWORD = "pw-check-secret-9"
SECRETS = (FAKE_TOKEN, FAKE_TOKEN.split(":")[1], WEBHOOK_SECRET, KIE_KEY, CHAOS_TOKEN, DB_PASSWORD)


@dataclass
class Report:
    code: int
    text: str

    def line(self, name: str) -> tuple[str, str]:
        """(mark, text) of the first line of check `name`."""
        for row in self.text.splitlines():
            if row.startswith("  ") and row[7:23].strip() == name:
                return row[2:6].strip(), row[24:]
        raise AssertionError(f"no {name!r} line in:\n{self.text}")


async def check(env: dict[str, str], *args: str, timeout: float = 60) -> Report:
    """`run.py check` with exactly `env`; the report, after making sure no secret is in it."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable, str(ROOT / "run.py"), "check", *args, cwd=ROOT, env={"PATH": "/usr/bin:/bin", **env},
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(proc.communicate(), timeout)
    text = out.decode() + err.decode()
    for secret in SECRETS:
        assert secret not in text, f"a secret ({secret[:3]}...) is in the output:\n{text}"
    assert "Traceback" not in text, text
    assert proc.returncode is not None
    return Report(proc.returncode, text)


@pytest.fixture
async def telegram() -> AsyncIterator[FakeTelegram]:
    async with FakeTelegram() as fake:
        yield fake


@pytest.fixture
async def kie() -> AsyncIterator[FakeKie]:
    async with FakeKie(api_key=KIE_KEY) as fake:
        yield fake


def base_env(database_url: str, telegram: FakeTelegram, kie: FakeKie, tmp_path: Any) -> dict[str, str]:
    return {"TELEGRAM_BOT_TOKEN": FAKE_TOKEN, "DATABASE_URL": database_url, "TELEGRAM_API_BASE": telegram.base_url,
            "WEBHOOK_SECRET": WEBHOOK_SECRET, "KIE_API_KEY": KIE_KEY, "KIE_API_BASE": kie.base_url,
            "KIE_UPLOAD_BASE": kie.base_url, "ADMIN_IDS": "1", "DATA_DIR": str(tmp_path / "data")}


async def test_a_healthy_deployment_passes_and_the_report_names_its_leader(
        database_url: str, telegram: FakeTelegram, kie: FakeKie, spawn: Any, tmp_path: Any) -> None:
    port = free_port()
    env = {**base_env(database_url, telegram, kie, tmp_path), "WEBHOOK_BASE_URL": f"http://127.0.0.1:{port}",
           "BOT_MODE": "webhook"}
    proc: TrtProcess = spawn({**env, "PORT": str(port), "HEARTBEAT_INTERVAL": "0.5", "LOCK_RETRY_INTERVAL": "0.2"})
    await proc.wait_healthy(status="pass")

    async def active() -> bool:
        return bool((await proc.health())["role"] == "ACTIVE")
    await eventually(active, 60, "the instance ACTIVE")
    await telegram.wait_for(lambda: telegram.webhook_info().get("url"), 30, "the webhook set")

    report = await check({**env, "INSTANCE_ID": "checker"}, f"{proc.base}/health")
    assert report.code == 0, report.text
    assert report.text.rstrip().splitlines()[-1].startswith("result: OK"), report.text
    mark, text = report.line("leader")
    assert mark == "ok" and text.startswith(f"trt-{port}, epoch 1, heartbeat "), report.text
    assert f"lock {leader.lock_name(BOT_ID)}" in text and f"(trt-lock:trt-{port})" in text
    assert report.line("health") == ("ok", f"pass: ACTIVE epoch 1, instance trt-{port}, up "
                                           + report.line("health")[1].split(", up ")[1])
    assert report.line("database")[0] == "ok" and report.line("migrations")[0] == "ok"
    assert report.line("telegram") == ("ok", f"bot @trt_fake_bot (id {BOT_ID}) at {telegram.base_url}")
    mark, text = report.line("webhook")
    assert mark == "ok" and text.startswith(f"http://127.0.0.1:{port}/webhook as configured; "), text
    assert report.line("kie")[0] == "ok" and report.line("kie")[1].startswith(f"{kie.credits} credits at ")
    assert report.line("config")[1].startswith(f"valid; mode webhook http://127.0.0.1:{port}/webhook; ")


async def test_webhook_info_shows_the_last_error_pending_updates_and_a_masked_foreign_url(
        database_url: str, telegram: FakeTelegram, tmp_path: Any) -> None:
    async with FakeKie(api_key=KIE_KEY, credits=250) as kie, aiohttp.ClientSession() as session:
        foreign = f"https://old.example.com/hook/{FAKE_TOKEN}"  # an old deployment's URL with the token in it
        async with session.post(f"{telegram.base_url}/bot{FAKE_TOKEN}/setWebhook",
                                json={"url": foreign, "secret_token": WEBHOOK_SECRET}) as response:
            assert response.status == 200
        for text in ("one", "two", "three"):
            telegram.push_update(telegram.user_message(7, text))
        telegram.set_webhook_error("Wrong response from the webhook: 502 Bad Gateway")
        env = {**base_env(database_url, telegram, kie, tmp_path), "WEBHOOK_BASE_URL": "https://bot.example.com",
               "CHAOS_TOKEN": CHAOS_TOKEN, "DOWNLOAD_TRUSTED_HOSTS": "127.0.0.1:8082"}
        report = await check(env)
    assert report.code == 0, report.text  # warnings only
    mark, text = report.line("webhook")
    assert mark == "warn", report.text
    assert text.startswith("https://old.example.com/hook/***, but this config expects "
                           "https://bot.example.com/webhook: the ACTIVE instance sets it"), text
    assert text.endswith("3 update(s) pending at Telegram"), text
    mark, text = report.line("webhook error")
    assert mark == "warn" and text.startswith("Wrong response from the webhook: 502 Bad Gateway ("), text
    assert report.line("kie") == ("warn", f"250 credits at {kie.base_url}: low (under 1000), top up soon")
    assert report.line("chaos")[0] == "warn" and "public deployment" in report.line("chaos")[1]
    assert report.line("migrations")[0] == "warn", "a fresh database: serve applies them"
    mark, text = report.line("kie callbacks")
    assert mark == "warn" and "KIE_WEBHOOK_HMAC_KEY is unset" in text and "wake-ups" in text, text
    mark, text = report.line("result downloads")
    assert mark == "warn" and "127.0.0.1:8082" in text and "unset in production" in text, text
    mark, text = report.line("leader")
    assert mark == "warn" and text.startswith("no leader: "), text


async def test_a_token_telegram_rejects_fails_with_a_readable_line(
        database_url: str, kie: FakeKie, tmp_path: Any) -> None:
    async with FakeTelegram(tokens=["987654321:AAH-another-bots-token-000000000"]) as telegram:
        report = await check(base_env(database_url, telegram, kie, tmp_path))
    assert report.code == 1, report.text
    mark, text = report.line("telegram")
    assert mark == "FAIL" and text.startswith("token rejected (401 Unauthorized)"), report.text
    assert report.line("kie")[0] == "ok" and report.line("database")[0] == "ok", "the other checks still ran"
    assert report.text.rstrip().splitlines()[-1].startswith("result: FAILED (telegram)"), report.text


async def test_an_unreachable_database_fails_and_every_other_check_still_reports(
        telegram: FakeTelegram, tmp_path: Any) -> None:
    dead = f"postgresql://trt:{DB_PASSWORD}@127.0.0.1:{free_port()}/trt"
    env = {"TELEGRAM_BOT_TOKEN": FAKE_TOKEN, "DATABASE_URL": dead, "TELEGRAM_API_BASE": telegram.base_url,
           "DATA_DIR": str(tmp_path / "data")}  # and no KIE_API_KEY
    report = await check(env, f"http://127.0.0.1:{free_port()}/health")
    assert report.code == 1, report.text
    mark, text = report.line("database")
    assert mark == "FAIL" and text.startswith(f"postgresql://127.0.0.1:{dead.rsplit(':', 1)[1]}: "), text
    assert report.line("leader") == ("--", "not checked: the database is unreachable")
    assert report.line("telegram")[0] == "ok"
    assert report.line("kie") == ("FAIL", "KIE_API_KEY is not set: serve starts, but every generation fails "
                                          "with an apology")
    mark, text = report.line("health")
    assert mark == "FAIL" and "unreachable" in text, text
    assert report.text.rstrip().splitlines()[-1].startswith("result: FAILED (database, kie, health)")


async def test_a_hung_telegram_and_a_rejected_kie_key_each_fail_within_their_own_deadline(
        database_url: str, telegram: FakeTelegram, tmp_path: Any) -> None:
    telegram.inject("getMe", hang=True)
    async with FakeKie(api_key="a-key-that-is-not-ours") as kie:
        report = await check({**base_env(database_url, telegram, kie, tmp_path), "TELEGRAM_TIMEOUT": "1"})
    assert report.code == 1, report.text
    assert report.line("telegram") == ("FAIL", f"{telegram.base_url} did not answer within 1s")
    assert report.line("kie") == ("FAIL", f"key rejected (401) by {kie.base_url}: check KIE_API_KEY")
    assert report.line("database")[0] == "ok"


async def test_describe_reads_who_holds_the_lock_and_how_fresh_its_heartbeat_is(database_url: str) -> None:
    name, keys = leader.lock_name(BOT_ID), leader.lock_keys(leader.lock_name(BOT_ID))
    holder = await asyncpg.connect(database_url, server_settings={"application_name": "trt-lock:holder"})
    try:
        assert (await leader.inspect(database_url, BOT_ID)).migrated is False
        await migrations.apply(holder)
        empty = await leader.inspect(database_url, BOT_ID)
        assert (empty.held, empty.holder) == (False, None)
        assert await leader.try_lock(holder, keys)
        epoch = await leader.bump_epoch(holder, name, "holder", 1)
        state = await leader.inspect(database_url, BOT_ID)
        assert state.lock_pids == (holder.get_server_pid(),) and state.lock_application == "trt-lock:holder"
        assert state.holder is not None and (state.holder.instance, state.holder.epoch) == ("holder", epoch)
        assert leader_line(state, stale_after=15).mark == "ok"
        assert leader_line(state, stale_after=-1).mark == "warn", "a heartbeat older than STALE_AFTER"
        assert await leader.unlock(holder, keys)
        freed = await leader.inspect(database_url, BOT_ID)
        line = leader_line(freed, stale_after=15)
        assert line.mark == "warn" and line.text.startswith(f"no leader: lock {name} "), line.text
        assert f"the last was holder, epoch {epoch}" in line.text
    finally:
        await holder.close()


def test_printed_urls_lose_credentials_queries_and_secret_looking_path_parts() -> None:
    url = f"https://user:pw@example.com:8443/hook/{FAKE_TOKEN}/webhook?token=abc"
    assert mask_url(url, []) == "https://example.com:8443/hook/***/webhook?***"
    assert mask_url("https://example.com/x/short-secret", ["short-secret"]) == "https://example.com/x/***"
    assert mask_url("https://example.com/kie-callback/webhook", []) == "https://example.com/kie-callback/webhook"
