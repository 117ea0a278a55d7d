"""All settings, read from the environment and validated in one place.

Every problem is collected and reported together, one clear line each, so an operator fixes a
broken deploy in one round instead of one restart per mistake.
"""

from __future__ import annotations

import hashlib
import os
import re
import socket
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

LEGACY_VARIABLES = {
    "USE_PTB": "python-telegram-bot is gone: TRT runs on aiogram 3; remove USE_PTB",
    "POLLING_MODE": "POLLING_MODE was replaced by BOT_MODE=polling|webhook; remove POLLING_MODE",
    "LOCAL_LOCK_FILE": "leadership is a PostgreSQL advisory lock now; remove LOCAL_LOCK_FILE",
}

TOKEN_RE = re.compile(r"^(\d{1,20}):[A-Za-z0-9_-]{20,}$")


class ConfigError(Exception):
    """Raised with every configuration problem found, one per line."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


@dataclass(frozen=True)
class Settings:
    """The validated configuration of one process."""

    command: str
    telegram_bot_token: str
    bot_id: int
    database_url: str | None
    webhook_base_url: str | None
    webhook_secret: str
    bot_mode: str
    telegram_api_base: str
    kie_api_key: str
    kie_api_base: str
    port: int
    admin_ids: frozenset[int]
    instance_id: str
    passive_mode: str
    chaos_token: str | None
    data_dir: Path
    log_format: str
    log_level: str
    heartbeat_interval: float = 2.0
    lock_retry_interval: float = 1.0
    stale_after: float = 15.0
    lock_wait_seconds: float = 0.0
    lock_mode: str = "wait_then_passive"
    auto_set_webhook: bool = True
    webhook_verify_interval: float = 600.0
    webhook_max_connections: int = 40
    webhook_cycle_deadline: float = 5.0
    dispatch_concurrency: int = 32
    database_pool_size: int = 40
    update_deadline: float = 30.0
    inbox_retention_days: float = 7.0
    max_body_bytes: int = 1024 * 1024
    restart_backoff_min: float = 0.05
    restart_backoff_max: float = 10.0
    shutdown_timeout: float = 10.0
    health_restart_window: float = 10.0
    telegram_timeout: float = 30.0
    telegram_rate_global: float = 30.0
    telegram_rate_per_chat: float = 1.0
    inbox_sweep_interval: float = 0.5
    extra: Mapping[str, str] = field(default_factory=dict)

    def secrets(self) -> list[str]:
        """Every value that must never appear in logs, health, metrics or user-visible text."""
        values = [self.telegram_bot_token, self.webhook_secret, self.kie_api_key, self.chaos_token or ""]
        if self.database_url:
            password = urlsplit(self.database_url).password
            if password:
                values.append(password)
        return [v for v in values if v and len(v) >= 6]

    @property
    def webhook_url(self) -> str | None:
        return f"{self.webhook_base_url}/webhook" if self.webhook_base_url else None


def _url(problems: list[str], name: str, value: str | None, schemes: tuple[str, ...]) -> str | None:
    if value is None or value.strip() == "":
        return None
    value = value.strip().rstrip("/")
    parts = urlsplit(value)
    # a PostgreSQL URL may name no host: libpq then reads it from ?host=/socket/dir
    needs_host = not parts.scheme.startswith("postgres")
    if parts.scheme not in schemes or (needs_host and not parts.hostname):
        problems.append(f"{name} must be a URL starting with {' or '.join(s + '://' for s in schemes)}")
        return None
    return value


def _number(
    problems: list[str], env: Mapping[str, str], name: str, default: float, lo: float, hi: float
) -> float:
    raw = env.get(name, "").strip()
    if raw == "":
        return default
    try:
        value = float(raw)
    except ValueError:
        problems.append(f"{name} must be a number, got {raw!r}")
        return default
    if not lo <= value <= hi:
        problems.append(f"{name} must be between {lo:g} and {hi:g}, got {raw}")
        return default
    return value


def _flag(problems: list[str], env: Mapping[str, str], name: str, default: bool) -> bool:
    raw = env.get(name, "").strip().lower()
    if raw == "":
        return default
    if raw in ("1", "true", "yes", "on"):
        return True
    if raw in ("0", "false", "no", "off"):
        return False
    problems.append(f"{name} must be 0 or 1, got {raw!r}")
    return default


def _choice(problems: list[str], env: Mapping[str, str], name: str, default: str, allowed: tuple[str, ...]) -> str:
    raw = env.get(name, "").strip()
    if raw == "":
        return default
    value = raw.lower() if default.islower() else raw.upper()
    if value not in allowed:
        problems.append(f"{name} must be one of {', '.join(allowed)}, got {raw!r}")
        return default
    return value


def default_instance_id() -> str:
    return f"{socket.gethostname()[:24]}-{os.getpid()}-{uuid.uuid4().hex[:6]}"


def load(command: str = "serve", env: Mapping[str, str] | None = None) -> Settings:
    """Read and validate the environment; raise ConfigError listing every problem."""
    env = os.environ if env is None else env
    problems: list[str] = []

    for name, why in LEGACY_VARIABLES.items():
        if name in env:
            problems.append(f"{name} is set: {why}")

    token = env.get("TELEGRAM_BOT_TOKEN", "").strip()
    bot_id = 0
    if token:
        match = TOKEN_RE.match(token)
        if match:
            bot_id = int(match.group(1))
        else:
            problems.append("TELEGRAM_BOT_TOKEN is malformed: expected <digits>:<secret> as issued by @BotFather")
    elif command not in ("demo", "migrate", "check"):
        problems.append("TELEGRAM_BOT_TOKEN is required (get one from @BotFather), or run `python run.py demo`")

    database_url = _url(problems, "DATABASE_URL", env.get("DATABASE_URL"), ("postgres", "postgresql"))
    base = env.get("WEBHOOK_BASE_URL") or env.get("RENDER_EXTERNAL_URL")
    webhook_base_url = _url(problems, "WEBHOOK_BASE_URL", base, ("https", "http"))

    bot_mode = _choice(problems, env, "BOT_MODE", "webhook" if webhook_base_url else "polling",
                       ("webhook", "polling"))
    if bot_mode == "webhook" and not webhook_base_url and command == "serve" and "BOT_MODE" in env:
        problems.append("BOT_MODE=webhook needs WEBHOOK_BASE_URL (or RENDER_EXTERNAL_URL)")

    secret = env.get("WEBHOOK_SECRET", "").strip()
    if secret and not re.fullmatch(r"[A-Za-z0-9_-]{1,256}", secret):
        problems.append("WEBHOOK_SECRET may hold only A-Z, a-z, 0-9, _ and - (1 to 256 characters)")
    if not secret:
        secret = hashlib.sha256(f"trt-webhook:{token}".encode()).hexdigest()[:48]

    telegram_api_base = _url(problems, "TELEGRAM_API_BASE", env.get("TELEGRAM_API_BASE"), ("https", "http"))
    kie_api_base = _url(problems, "KIE_API_BASE", env.get("KIE_API_BASE"), ("https", "http"))

    port = 10000
    raw_port = env.get("PORT", "").strip()
    if raw_port:
        if raw_port.isdigit() and 1 <= int(raw_port) <= 65535:
            port = int(raw_port)
        else:
            problems.append(f"PORT must be an integer from 1 to 65535, got {raw_port!r}")

    admin_ids: set[int] = set()
    for part in env.get("ADMIN_IDS", "").split(","):
        part = part.strip()
        if not part:
            continue
        if re.fullmatch(r"-?\d{1,20}", part):
            admin_ids.add(int(part))
        else:
            problems.append(f"ADMIN_IDS must be comma-separated Telegram user ids, {part!r} is not an integer")

    chaos_token = env.get("CHAOS_TOKEN", "").strip() or None
    if chaos_token is not None and len(chaos_token) < 8:
        problems.append("CHAOS_TOKEN must be at least 8 characters")

    log_level = env.get("LOG_LEVEL", "INFO").strip().upper() or "INFO"
    if log_level not in ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"):
        problems.append(f"LOG_LEVEL must be DEBUG, INFO, WARNING, ERROR or CRITICAL, got {log_level!r}")
        log_level = "INFO"

    instance_id = env.get("INSTANCE_ID", "").strip() or default_instance_id()
    if not re.fullmatch(r"[\w.@:-]{1,64}", instance_id):
        problems.append("INSTANCE_ID may hold letters, digits and ._@:- (at most 64 characters)")

    dispatch_concurrency = int(_number(problems, env, "DISPATCH_CONCURRENCY", 32, 1, 1000))
    settings = Settings(
        command=command,
        telegram_bot_token=token,
        bot_id=bot_id,
        database_url=database_url,
        webhook_base_url=webhook_base_url,
        webhook_secret=secret,
        bot_mode=bot_mode,
        telegram_api_base=telegram_api_base or "https://api.telegram.org",
        kie_api_key=env.get("KIE_API_KEY", "").strip(),
        kie_api_base=kie_api_base or "https://api.kie.ai",
        port=port,
        admin_ids=frozenset(admin_ids),
        instance_id=instance_id,
        passive_mode=_choice(problems, env, "PASSIVE_MODE", "HOLD", ("HOLD", "REJECT")),
        chaos_token=chaos_token,
        data_dir=Path(env.get("DATA_DIR", "").strip() or "./.data").resolve(),
        log_format=_choice(problems, env, "LOG_FORMAT", "json", ("json", "text")),
        log_level=log_level,
        heartbeat_interval=_number(problems, env, "HEARTBEAT_INTERVAL", 2.0, 0.1, 60),
        lock_retry_interval=_number(problems, env, "LOCK_RETRY_INTERVAL", 1.0, 0.05, 60),
        stale_after=_number(problems, env, "STALE_AFTER", 15.0, 0.5, 3600),
        lock_wait_seconds=_number(problems, env, "LOCK_WAIT_SECONDS", 0.0, 0, 3600),
        lock_mode=_choice(problems, env, "LOCK_MODE", "wait_then_passive", ("wait_then_passive",)),
        auto_set_webhook=_flag(problems, env, "AUTO_SET_WEBHOOK", True),
        webhook_verify_interval=_number(problems, env, "WEBHOOK_VERIFY_INTERVAL", 600.0, 1, 86400),
        webhook_max_connections=int(_number(problems, env, "WEBHOOK_MAX_CONNECTIONS", 40, 1, 100)),
        webhook_cycle_deadline=_number(problems, env, "WEBHOOK_CYCLE_DEADLINE", 5.0, 0.1, 60),
        dispatch_concurrency=dispatch_concurrency,
        # every dispatch worker may hold a connection at once, plus ingress's group commits, the
        # claim pump, done marks and the janitor: fewer and workers queue for the pool
        database_pool_size=int(_number(problems, env, "DATABASE_POOL_SIZE", dispatch_concurrency + 8, 2, 1000)),
        update_deadline=_number(problems, env, "UPDATE_DEADLINE", 30.0, 0.1, 600),
        inbox_retention_days=_number(problems, env, "INBOX_RETENTION_DAYS", 7.0, 0.001, 365),
        max_body_bytes=int(_number(problems, env, "MAX_BODY_BYTES", 1024 * 1024, 1024, 64 * 1024 * 1024)),
        restart_backoff_min=_number(problems, env, "RESTART_BACKOFF_MIN", 0.05, 0, 60),
        restart_backoff_max=_number(problems, env, "RESTART_BACKOFF_MAX", 10.0, 0, 600),
        shutdown_timeout=_number(problems, env, "SHUTDOWN_TIMEOUT", 10.0, 0.1, 300),
        health_restart_window=_number(problems, env, "HEALTH_RESTART_WINDOW", 10.0, 0, 3600),
        telegram_timeout=_number(problems, env, "TELEGRAM_TIMEOUT", 30.0, 1, 300),
        telegram_rate_global=_number(problems, env, "TELEGRAM_RATE_GLOBAL", 30.0, 0, 100_000),
        telegram_rate_per_chat=_number(problems, env, "TELEGRAM_RATE_PER_CHAT", 1.0, 0, 10_000),
        inbox_sweep_interval=_number(problems, env, "INBOX_SWEEP_INTERVAL", 0.5, 0.05, 10),
    )
    if problems:
        raise ConfigError(problems)
    return settings
