"""Every bad setting gives its own clear message and a non-zero exit, never a traceback."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

import config
from tests.procs import FAKE_TOKEN, ROOT

pytestmark = pytest.mark.timeout(60)

GOOD = {"TELEGRAM_BOT_TOKEN": FAKE_TOKEN}


def problems(env: dict[str, str], command: str = "serve") -> list[str]:
    try:
        config.load(command, env)
    except config.ConfigError as exc:
        return exc.problems
    return []


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({}, "TELEGRAM_BOT_TOKEN is required"),
        ({"TELEGRAM_BOT_TOKEN": "not-a-token"}, "TELEGRAM_BOT_TOKEN is malformed"),
        ({**GOOD, "WEBHOOK_BASE_URL": "ftp://example.com"}, "WEBHOOK_BASE_URL must be a URL"),
        ({**GOOD, "WEBHOOK_BASE_URL": "https://"}, "WEBHOOK_BASE_URL must be a URL"),
        ({**GOOD, "DATABASE_URL": "mysql://db/x"}, "DATABASE_URL must be a URL"),
        ({**GOOD, "TELEGRAM_API_BASE": "localhost:8081"}, "TELEGRAM_API_BASE must be a URL"),
        ({**GOOD, "ADMIN_IDS": "1, 2, abc"}, "'abc' is not an integer"),
        ({**GOOD, "PORT": "70000"}, "PORT must be an integer from 1 to 65535"),
        ({**GOOD, "PORT": "http"}, "PORT must be an integer from 1 to 65535"),
        ({**GOOD, "USE_PTB": "1"}, "USE_PTB is set"),
        ({**GOOD, "POLLING_MODE": "1"}, "POLLING_MODE is set"),
        ({**GOOD, "LOCAL_LOCK_FILE": "/tmp/x"}, "LOCAL_LOCK_FILE is set"),
        ({**GOOD, "PASSIVE_MODE": "maybe"}, "PASSIVE_MODE must be one of HOLD, REJECT"),
        ({**GOOD, "BOT_MODE": "carrier-pigeon"}, "BOT_MODE must be one of webhook, polling"),
        ({**GOOD, "BOT_MODE": "webhook"}, "BOT_MODE=webhook needs WEBHOOK_BASE_URL"),
        ({**GOOD, "LOG_FORMAT": "xml"}, "LOG_FORMAT must be one of json, text"),
        ({**GOOD, "LOG_LEVEL": "LOUD"}, "LOG_LEVEL must be"),
        ({**GOOD, "CHAOS_TOKEN": "short"}, "CHAOS_TOKEN must be at least 8"),
        ({**GOOD, "HEARTBEAT_INTERVAL": "fast"}, "HEARTBEAT_INTERVAL must be a number"),
        ({**GOOD, "STALE_AFTER": "0"}, "STALE_AFTER must be between"),
        ({**GOOD, "AUTO_SET_WEBHOOK": "perhaps"}, "AUTO_SET_WEBHOOK must be 0 or 1"),
        ({**GOOD, "WEBHOOK_SECRET": "has spaces!"}, "WEBHOOK_SECRET may hold only"),
        ({**GOOD, "INSTANCE_ID": "a b"}, "INSTANCE_ID may hold"),
        ({**GOOD, "DATABASE_POOL_SIZE": "1"}, "DATABASE_POOL_SIZE must be between"),
        ({**GOOD, "PORT": "²"}, "PORT must be an integer from 1 to 65535"),
        ({**GOOD, "TELEGRAM_API_BASE": "http://[x"}, "TELEGRAM_API_BASE must be a URL"),
        ({**GOOD, "KIE_API_BASE": "https://kie.example:99999"}, "KIE_API_BASE must be a URL"),
        ({**GOOD, "KIE_UPLOAD_BASE": "kieai.redpandaai.co"}, "KIE_UPLOAD_BASE must be a URL"),
        # standbys would take the lock from a leader whose heartbeat is merely in flight
        ({**GOOD, "HEARTBEAT_INTERVAL": "2", "STALE_AFTER": "4"}, "STALE_AFTER must be more than"),
        ({**GOOD, "HEARTBEAT_INTERVAL": "0.5", "STALE_AFTER": "1.5"}, "STALE_AFTER must be more than"),
        # money settings are refused, never truncated or rounded
        ({**GOOD, "PRICE_KOPECKS_PER_CREDIT": "0"}, "PRICE_KOPECKS_PER_CREDIT must be a whole number from 1"),
        ({**GOOD, "PRICE_KOPECKS_PER_CREDIT": "50.5"}, "PRICE_KOPECKS_PER_CREDIT must be a whole number"),
        ({**GOOD, "PRICE_KOPECKS_PER_CREDIT": "-5"}, "PRICE_KOPECKS_PER_CREDIT must be a whole number"),
        ({**GOOD, "PRICE_MARKUP": "0.9"}, "PRICE_MARKUP must be between 1 and 100"),
        ({**GOOD, "PRICE_MARKUP": "101"}, "PRICE_MARKUP must be between 1 and 100"),
        ({**GOOD, "PRICE_MARKUP": "double"}, "PRICE_MARKUP must be a number"),
        ({**GOOD, "WELCOME_BONUS": "-100"}, "WELCOME_BONUS must be a whole number from 0"),
        ({**GOOD, "WELCOME_BONUS": "99.5"}, "WELCOME_BONUS must be a whole number"),
        ({**GOOD, "FREE_DAILY_LIMIT": "2.5"}, "FREE_DAILY_LIMIT must be a whole number"),
        ({**GOOD, "MAX_ACTIVE_JOBS_PER_USER": "0"}, "MAX_ACTIVE_JOBS_PER_USER must be a whole number from 1"),
        ({**GOOD, "BOT_TIMEZONE": "MSK+3"}, "BOT_TIMEZONE must be an IANA time zone"),
        ({**GOOD, "BOT_TIMEZONE": "../../etc/passwd"}, "BOT_TIMEZONE must be an IANA time zone"),
        ({**GOOD, "BOT_TIMEZONE": "Europe"}, "BOT_TIMEZONE must be an IANA time zone"),
    ],
)
def test_each_bad_setting_is_named(env: dict[str, str], expected: str) -> None:
    found = problems(env)
    assert any(expected in p for p in found), found


def test_all_problems_are_reported_together() -> None:
    found = problems({"PORT": "0", "ADMIN_IDS": "x", "USE_PTB": "1"})
    assert len(found) == 4, found


def test_good_settings_and_defaults() -> None:
    s = config.load("serve", {**GOOD, "ADMIN_IDS": "1,-100200", "RENDER_EXTERNAL_URL": "https://trt.onrender.com/"})
    assert s.bot_id == 123456789
    assert s.admin_ids == {1, -100200}
    assert s.webhook_url == "https://trt.onrender.com/webhook"
    assert s.bot_mode == "webhook"
    assert s.port == 10000 and s.passive_mode == "HOLD" and s.log_format == "json"
    assert s.webhook_secret and s.webhook_secret not in FAKE_TOKEN
    assert FAKE_TOKEN in s.secrets() and s.webhook_secret in s.secrets()
    signed = config.load("serve", {**GOOD, "KIE_WEBHOOK_HMAC_KEY": "kie-hmac-secret", "KIE_UPLOAD_BASE": "http://up:9/"})
    assert signed.kie_webhook_hmac_key in signed.secrets() and signed.kie_upload_base == "http://up:9"
    unix = config.load("serve", {**GOOD, "DATABASE_URL": "postgresql://postgres:@/postgres?host=/tmp/x"})
    assert unix.database_url is not None
    assert config.load("demo", {}).telegram_bot_token == ""
    assert config.load("serve", GOOD).bot_mode == "polling"
    assert s.dispatch_concurrency == 32 and s.dispatch_turns == 4 and s.database_pool_size == 16
    wide = config.load("serve", {**GOOD, "DISPATCH_TURNS": "100"})
    assert wide.database_pool_size == 112, "the pool follows the turns unless set"
    assert config.load("serve", {**GOOD, "DISPATCH_CONCURRENCY": "100"}).database_pool_size == 16, "not the workers"
    assert config.load("serve", {**GOOD, "DATABASE_POOL_SIZE": "12"}).database_pool_size == 12
    priced = config.load("serve", {**GOOD, "PRICE_KOPECKS_PER_CREDIT": "75", "PRICE_MARKUP": "1.5"})
    assert priced.price_kopecks_per_credit == 75 and priced.price_markup == 1.5
    product = config.load("serve", {**GOOD, "WELCOME_BONUS": "5000", "FREE_DAILY_LIMIT": "0",
                                    "BOT_TIMEZONE": "Asia/Vladivostok", "MAX_ACTIVE_JOBS_PER_USER": "1"})
    assert (product.welcome_bonus, product.free_daily_limit, product.max_active_jobs_per_user) == (5000, 0, 1)
    assert product.zone.key == "Asia/Vladivostok"


def test_documented_defaults() -> None:
    """Only the token set: every default the README's Configuration section promises is what load() gives."""
    s = config.load("serve", GOOD)
    # the table
    assert s.database_url is None, "unset: the embedded PostgreSQL"
    assert s.webhook_base_url is None and s.webhook_url is None and s.bot_mode == "polling"
    assert s.webhook_secret == config.load("serve", GOOD).webhook_secret, "derived from the token"
    other = config.load("serve", {"TELEGRAM_BOT_TOKEN": "987654321:" + FAKE_TOKEN.split(":")[1]})
    assert other.webhook_secret != s.webhook_secret and s.webhook_secret not in FAKE_TOKEN
    assert s.telegram_api_base == "https://api.telegram.org"
    assert s.kie_api_key == "" and s.kie_api_base == "https://api.kie.ai"
    assert s.kie_upload_base == "https://kieai.redpandaai.co" and s.kie_webhook_hmac_key is None
    assert s.price_kopecks_per_credit == 50 and s.price_markup == 2.0
    assert s.welcome_bonus == 0 and s.free_daily_limit == 5 and s.max_active_jobs_per_user == 3
    assert s.bot_timezone == "Europe/Moscow" and s.zone.key == "Europe/Moscow"
    assert s.port == 10000
    assert s.admin_ids == frozenset()
    assert (s.stars_rate, s.stars_presets, s.stars_min, s.stars_max) == (150, (50, 100, 250, 500, 1000), 10, 10_000)
    assert s.stars_order_ttl == 86_400 and s.referral_bonus == 1000 and s.broadcast_rate == 25
    assert s.payment_transfer_details is None, "bank transfers off"
    assert (s.paysupport_text, s.terms_text, s.privacy_text) == (None, None, None), "the built-in texts"
    assert Path(s.subscription_plans) == Path(config.__file__).resolve().parent / "catalog" / "plans.yaml"
    host, pid, suffix = s.instance_id.rsplit("-", 2)
    assert host == socket.gethostname()[:24] and pid == str(os.getpid()) and len(suffix) == 6
    assert s.passive_mode == "HOLD"
    assert s.chaos_token is None
    assert s.data_dir == Path("./.data").resolve()
    assert s.log_format == "json" and s.log_level == "INFO"
    # "Tuning, beyond the table"
    assert s.database_pool_size == s.dispatch_turns + 12
    assert s.shutdown_timeout == 10 and s.health_restart_window == 10
    assert s.auto_set_webhook is True
    assert s.webhook_verify_interval == 600 and s.webhook_cycle_deadline == 5 and s.webhook_max_connections == 40
    assert s.telegram_timeout == 30 and s.telegram_rate_global == 30 and s.telegram_rate_per_chat == 1
    assert s.inbox_sweep_interval == 0.5 and s.heartbeat_interval == 2
    # blank counts as unset
    assert config.load("serve", {**GOOD, "PORT": " ", "LOG_LEVEL": "", "PASSIVE_MODE": "  "}).port == 10000


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({"PORT": "99999"}, "PORT must be an integer from 1 to 65535"),
        ({"USE_PTB": "true"}, "USE_PTB is set"),
        ({"ADMIN_IDS": "12,abc"}, "'abc' is not an integer"),
        ({"WEBHOOK_BASE_URL": "not a url"}, "WEBHOOK_BASE_URL must be a URL"),
    ],
)
def test_process_exits_with_the_message_and_no_traceback(tmp_path, env: dict[str, str], expected: str) -> None:
    full = {"PATH": "/usr/bin:/bin", "TELEGRAM_BOT_TOKEN": FAKE_TOKEN, "DATA_DIR": str(tmp_path), **env}
    done = subprocess.run([sys.executable, str(ROOT / "run.py"), "serve"], env=full, capture_output=True,
                          text=True, timeout=30)
    assert done.returncode == 2
    assert expected in done.stderr
    assert "Traceback" not in done.stderr + done.stdout
    assert FAKE_TOKEN not in done.stderr + done.stdout


def test_missing_token_outside_demo_exits_nonzero(tmp_path) -> None:
    done = subprocess.run([sys.executable, str(ROOT / "run.py")], env={"PATH": "/usr/bin:/bin",
                          "DATA_DIR": str(tmp_path)}, capture_output=True, text=True, timeout=30)
    assert done.returncode == 2
    assert "TELEGRAM_BOT_TOKEN is required" in done.stderr
    assert "Traceback" not in done.stderr


def test_unknown_command_is_refused() -> None:
    done = subprocess.run([sys.executable, str(ROOT / "run.py"), "sevre"], capture_output=True, text=True,
                          timeout=30)
    assert done.returncode == 2 and "unknown command 'sevre'" in done.stderr


def test_money_settings_are_checked_together() -> None:
    with pytest.raises(config.ConfigError) as caught:
        config.load("serve", {**GOOD, "STARS_MIN": "500", "STARS_MAX": "100", "STARS_PRESETS": "50,abc",
                              "TRANSFER_MIN": "900000", "TRANSFER_MAX": "1000"})
    problems = "\n".join(caught.value.problems)
    assert "STARS_PRESETS must be comma-separated whole numbers from 1 to 100000, 'abc' is not one" in problems
    assert "STARS_MIN (500) must not exceed STARS_MAX (100)" in problems
    assert "TRANSFER_MIN (900000) must not exceed TRANSFER_MAX (1000)" in problems
    assert config.load("serve", {**GOOD, "STARS_PRESETS": "100, 50,100"}).stars_presets == (100, 50)


def test_the_webhook_intakes_pool_is_counted_in_database_pool_size() -> None:
    """An operator sizes PostgreSQL by DATABASE_POOL_SIZE: a served webhook process opens no more
    than that in all, its intake loop's own pool included."""
    from commands.main import main_pool_size
    from ingest.webhook_intake import POOL_SIZE

    base = {"TELEGRAM_BOT_TOKEN": FAKE_TOKEN, "WEBHOOK_SECRET": "s" * 20, "DATABASE_POOL_SIZE": "20"}
    webhook = config.load("serve", {**base, "BOT_MODE": "webhook", "WEBHOOK_BASE_URL": "https://bot.example.com"})
    polling = config.load("serve", {**base, "BOT_MODE": "polling"})
    assert main_pool_size(webhook, "serve") + POOL_SIZE == 20
    assert main_pool_size(polling, "serve") == 20
    assert main_pool_size(webhook, "migrate") == 20
