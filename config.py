"""All settings, read from the environment and validated in one place.

Every problem is collected and reported together, one clear line each, so an operator fixes a
broken deploy in one round instead of one restart per mistake.

Each default is stated once: in its setting(...) line of Settings, or in load() for those derived
from something else (the token, the base URL, the host, the working directory, the worker count)
and for ADMIN_IDS, which is checked item by item.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import re
import socket
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

T = TypeVar("T")

LEGACY_VARIABLES = {
    "USE_PTB": "python-telegram-bot is gone: TRT runs on aiogram 3; remove USE_PTB",
    "POLLING_MODE": "POLLING_MODE was replaced by BOT_MODE=polling|webhook; remove POLLING_MODE",
    "LOCAL_LOCK_FILE": "leadership is a PostgreSQL advisory lock now; remove LOCAL_LOCK_FILE",
}

TOKEN_RE = re.compile(r"^(\d{1,20}):[A-Za-z0-9_-]{20,}$")
# demo brings its own token; migrate and check have work to do without one
TOKENLESS_COMMANDS = ("demo", "migrate", "check", "trace")
# every handler holding a turn may hold a connection at once, plus ingress's group commits, the
# claim pump, done marks, the actors and the handlers' queries made without a turn: a first
# contact's commit above all, which /start's throughput needs a dozen of at once (4 turns with a
# pool of 12 made /start 0.8x; with 16, 0.97x and 0.96x for known users, over 8 pairs each of
# bench.e2e against 8 turns: issue 21).
# Not one per dispatch worker: in a burst, PostgreSQL on the same cores runs more queries at once
# no faster (a pool of 48: the first createTasks of 50 Confirms later, bench.generation)
POOL_HEADROOM = 12
PLANS_FILE = Path(__file__).resolve().parent / "catalog" / "plans.yaml"
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


class ConfigError(Exception):
    """Raised with every configuration problem found, one per line."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


class _Invalid(Exception):
    """A parser refuses a raw value; its message continues the variable's name into one problem line."""


# Parsers get the stripped, non-empty raw value: an unset or blank variable means the default.


def _number(lo: float, hi: float) -> Callable[[str], float]:
    def parse(raw: str) -> float:
        try:
            value = float(raw)
        except ValueError:
            raise _Invalid(f"must be a number, got {raw!r}") from None
        if not lo <= value <= hi:
            raise _Invalid(f"must be between {lo:g} and {hi:g}, got {raw}")
        return value

    return parse


def _integer(lo: float, hi: float) -> Callable[[str], int]:
    """A bounded number truncated to int, so "2.5" reads as 2 as it always has."""
    number = _number(lo, hi)
    return lambda raw: int(number(raw))


def _whole(lo: int, hi: int) -> Callable[[str], int]:
    """A whole number, refused rather than truncated: a money setting must say exactly what it means."""

    def parse(raw: str) -> int:
        if not re.fullmatch(r"[0-9]{1,12}", raw) or not lo <= int(raw) <= hi:
            raise _Invalid(f"must be a whole number from {lo} to {hi}, got {raw!r}")
        return int(raw)

    return parse


def _flag(raw: str) -> bool:
    value = raw.lower()
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off"):
        return False
    raise _Invalid(f"must be 0 or 1, got {value!r}")


def _choice(*allowed: str) -> Callable[[str], str]:
    """One of `allowed`, any case accepted: the value is folded to the case the choices are written in."""

    def parse(raw: str) -> str:
        value = raw.lower() if allowed[0].islower() else raw.upper()
        if value not in allowed:
            raise _Invalid(f"must be one of {', '.join(allowed)}, got {raw!r}")
        return value

    return parse


def _url(*schemes: str) -> Callable[[str], str]:
    def parse(raw: str) -> str:
        value = raw.rstrip("/")
        expected = f"must be a URL starting with {' or '.join(s + '://' for s in schemes)}"
        try:
            parts = urlsplit(value)
            host, _ = parts.hostname, parts.port  # both raise ValueError on a malformed netloc
        except ValueError as exc:
            raise _Invalid(f"{expected} ({exc})") from None
        # a PostgreSQL URL may name no host: libpq then reads it from ?host=/socket/dir
        needs_host = not parts.scheme.startswith("postgres")
        if parts.scheme not in schemes or (needs_host and not host):
            raise _Invalid(expected)
        return value

    return parse


def _tcp_port(raw: str) -> int:
    if re.fullmatch(r"[0-9]{1,5}", raw) and 1 <= int(raw) <= 65535:  # ASCII digits only: "²" is a digit too
        return int(raw)
    raise _Invalid(f"must be an integer from 1 to 65535, got {raw!r}")


def _log_level(raw: str) -> str:
    value = raw.upper()
    if value not in LOG_LEVELS:
        raise _Invalid(f"must be DEBUG, INFO, WARNING, ERROR or CRITICAL, got {value!r}")
    return value


def _chaos_token(raw: str) -> str:
    if len(raw) < 8:
        raise _Invalid("must be at least 8 characters")
    return raw


def _webhook_secret(raw: str) -> str:
    if not re.fullmatch(r"[A-Za-z0-9_-]{1,256}", raw):
        raise _Invalid("may hold only A-Z, a-z, 0-9, _ and - (1 to 256 characters)")
    return raw


def _host_list(raw: str) -> tuple[str, ...]:
    """Comma-separated ``host`` or ``host:port`` entries ([v6]:port for IPv6), lower-cased; blanks skipped."""
    hosts: list[str] = []
    for part in raw.split(","):
        entry = part.strip().lower()
        if not entry:
            continue
        try:
            parts = urlsplit("//" + entry)
            host, _ = parts.hostname, parts.port  # both raise ValueError on a malformed netloc
        except ValueError:
            host = None
        if (not host or parts.path or parts.query or parts.fragment or "@" in parts.netloc
                or not re.fullmatch(r"[a-z0-9.:\[\]_-]+", entry)):
            raise _Invalid(f"must be comma-separated host or host:port entries (no scheme, no path), "
                           f"{part.strip()!r} is not one")
        hosts.append(entry.rstrip("."))
    return tuple(hosts)


def _whole_list(lo: int, hi: int) -> Callable[[str], tuple[int, ...]]:
    """Comma-separated whole numbers within [lo, hi], in the order given, without repeats."""
    def parse(raw: str) -> tuple[int, ...]:
        values: list[int] = []
        for part in raw.split(","):
            item = part.strip()
            if not re.fullmatch(r"[0-9]{1,12}", item) or not lo <= int(item) <= hi:
                raise _Invalid(f"must be comma-separated whole numbers from {lo} to {hi}, {item!r} is not one")
            if int(item) not in values:
                values.append(int(item))
        return tuple(values)

    return parse


def _timezone(raw: str) -> str:
    """An IANA time zone this system can load (the free tier's day begins at its midnight)."""
    try:
        ZoneInfo(raw)
    except (ValueError, KeyError, OSError):
        raise _Invalid(f"must be an IANA time zone such as Europe/Moscow, got {raw!r}") from None
    return raw


def _read(problems: list[str], name: str, raw: str | None, parse: Callable[[str], T], default: T) -> T:
    """`raw` parsed, or `default` when it is unset or blank, or refused (the refusal joins `problems`)."""
    text = (raw or "").strip()
    if not text:
        return default
    try:
        return parse(text)
    except _Invalid as exc:
        problems.append(f"{name} {exc}")
        return default


@dataclass(frozen=True)
class _Variable:
    """Where load() finds a Settings field: the environment variable and the parser of its value."""

    name: str
    parse: Callable[[str], Any]


def setting(name: str, default: T, parse: Callable[[str], T]) -> T:
    """A Settings field read from variable `name`; typed as the field, so mypy checks default and parser."""
    return field(default=default, metadata={"variable": _Variable(name, parse)})


@dataclass(frozen=True, kw_only=True)
class Settings:
    """The validated configuration of one process.

    A field declared with setting() is read by load() from that variable, with that default; a
    field without one is derived or cross-checked in load(). Keyword-only, so both kinds can keep
    their places side by side.
    """

    command: str
    telegram_bot_token: str
    bot_id: int
    database_url: str | None = setting("DATABASE_URL", None, _url("postgres", "postgresql"))
    webhook_base_url: str | None
    webhook_secret: str
    bot_mode: str
    telegram_api_base: str = setting("TELEGRAM_API_BASE", "https://api.telegram.org", _url("https", "http"))
    kie_api_key: str = setting("KIE_API_KEY", "", str)
    kie_api_base: str = setting("KIE_API_BASE", "https://api.kie.ai", _url("https", "http"))
    # KIE's file upload service is another host than its API
    kie_upload_base: str = setting("KIE_UPLOAD_BASE", "https://kieai.redpandaai.co", _url("https", "http"))
    # set when KIE signs callbacks (an HMAC key in KIE's settings): unsigned or badly signed ones are refused
    kie_webhook_hmac_key: str | None = setting("KIE_WEBHOOK_HMAC_KEY", None, str)
    # hosts a result or input file may be downloaded from over plain http or at a private address (the
    # demo's and the tests' fake KIE); every other download is https to a public address (kie/download.py)
    download_trusted_hosts: tuple[str, ...] = setting("DOWNLOAD_TRUSTED_HOSTS", (), _host_list)
    # the user's price: KIE credits x kopecks per credit x markup, rounded up to whole rubles (catalog/pricing.py)
    price_kopecks_per_credit: int = setting("PRICE_KOPECKS_PER_CREDIT", 50, _whole(1, 100_000))
    price_markup: float = setting("PRICE_MARKUP", 2.0, _number(1, 100))
    # kopecks credited once to each new user; free generations of a free-tier SKU per user per day in
    # BOT_TIMEZONE (ADMIN_IDS generate for free, without that limit); generations one user runs at once
    welcome_bonus: int = setting("WELCOME_BONUS", 0, _whole(0, 100_000_000))
    free_daily_limit: int = setting("FREE_DAILY_LIMIT", 5, _whole(0, 10_000))
    bot_timezone: str = setting("BOT_TIMEZONE", "Europe/Moscow", _timezone)
    max_active_jobs_per_user: int = setting("MAX_ACTIVE_JOBS_PER_USER", 3, _whole(1, 1_000))
    # money in (issue 18): kopecks one Star credits (admins may change it; the rate at an order's
    # creation applies), the Star packs offered and the bounds of a custom amount, how long an
    # invoice stays payable; the referrer's bonus; the bank transfer, off unless its details are set
    stars_rate: int = setting("STARS_RATE", 150, _whole(1, 100_000))
    stars_presets: tuple[int, ...] = setting("STARS_PRESETS", (50, 100, 250, 500, 1000), _whole_list(1, 100_000))
    stars_min: int = setting("STARS_MIN", 10, _whole(1, 100_000))
    stars_max: int = setting("STARS_MAX", 10_000, _whole(1, 100_000))
    stars_order_ttl: float = setting("STARS_ORDER_TTL", 86_400.0, _number(60, 30 * 86_400))
    referral_bonus: int = setting("REFERRAL_BONUS", 1000, _whole(0, 100_000_000))
    payment_transfer_details: str | None = setting("PAYMENT_TRANSFER_DETAILS", None, str)
    transfer_min: int = setting("TRANSFER_MIN", 10_000, _whole(100, 100_000_000))
    transfer_max: int = setting("TRANSFER_MAX", 5_000_000, _whole(100, 1_000_000_000))
    # the texts of /paysupport, /terms and /privacy (Telegram's terms require them); unset: the defaults
    paysupport_text: str | None = setting("PAYSUPPORT_TEXT", None, str)
    terms_text: str | None = setting("TERMS_TEXT", None, str)
    privacy_text: str | None = setting("PRIVACY_TEXT", None, str)
    # the subscription plans (a YAML beside the catalog); messages a broadcast sends per second
    subscription_plans: str = setting("SUBSCRIPTION_PLANS", str(PLANS_FILE), str)
    broadcast_rate: float = setting("BROADCAST_RATE", 25.0, _number(0.1, 1000))
    port: int = setting("PORT", 10000, _tcp_port)
    admin_ids: frozenset[int]
    instance_id: str
    passive_mode: str = setting("PASSIVE_MODE", "HOLD", _choice("HOLD", "REJECT"))
    chaos_token: str | None = setting("CHAOS_TOKEN", None, _chaos_token)
    data_dir: Path
    log_format: str = setting("LOG_FORMAT", "json", _choice("json", "text"))
    log_level: str = setting("LOG_LEVEL", "INFO", _log_level)
    heartbeat_interval: float = setting("HEARTBEAT_INTERVAL", 2.0, _number(0.1, 60))
    lock_retry_interval: float = setting("LOCK_RETRY_INTERVAL", 1.0, _number(0.05, 60))
    stale_after: float = setting("STALE_AFTER", 15.0, _number(0.5, 3600))
    lock_wait_seconds: float = setting("LOCK_WAIT_SECONDS", 0.0, _number(0, 3600))
    lock_mode: str = setting("LOCK_MODE", "wait_then_passive", _choice("wait_then_passive"))
    auto_set_webhook: bool = setting("AUTO_SET_WEBHOOK", True, _flag)
    webhook_verify_interval: float = setting("WEBHOOK_VERIFY_INTERVAL", 600.0, _number(1, 86400))
    webhook_max_connections: int = setting("WEBHOOK_MAX_CONNECTIONS", 40, _integer(1, 100))
    webhook_cycle_deadline: float = setting("WEBHOOK_CYCLE_DEADLINE", 5.0, _number(0.1, 60))
    dispatch_concurrency: int = setting("DISPATCH_CONCURRENCY", 32, _integer(1, 1000))
    # of those, how many run at once; one waiting on Telegram gives its turn away (ingest/turns.py)
    dispatch_turns: int = setting("DISPATCH_TURNS", 4, _integer(1, 1000))
    database_pool_size: int
    update_deadline: float = setting("UPDATE_DEADLINE", 30.0, _number(0.1, 600))
    inbox_retention_days: float = setting("INBOX_RETENTION_DAYS", 7.0, _number(0.001, 365))
    max_body_bytes: int = setting("MAX_BODY_BYTES", 1024 * 1024, _integer(1024, 64 * 1024 * 1024))
    restart_backoff_min: float = setting("RESTART_BACKOFF_MIN", 0.05, _number(0, 60))
    restart_backoff_max: float = setting("RESTART_BACKOFF_MAX", 10.0, _number(0, 600))
    shutdown_timeout: float = setting("SHUTDOWN_TIMEOUT", 10.0, _number(0.1, 300))
    health_restart_window: float = setting("HEALTH_RESTART_WINDOW", 10.0, _number(0, 3600))
    telegram_timeout: float = setting("TELEGRAM_TIMEOUT", 30.0, _number(1, 300))
    telegram_rate_global: float = setting("TELEGRAM_RATE_GLOBAL", 30.0, _number(0, 100_000))
    telegram_rate_per_chat: float = setting("TELEGRAM_RATE_PER_CHAT", 1.0, _number(0, 10_000))
    inbox_sweep_interval: float = setting("INBOX_SWEEP_INTERVAL", 0.5, _number(0.05, 10))
    extra: Mapping[str, str] = field(default_factory=dict)

    def secrets(self) -> list[str]:
        """Every value that must never appear in logs, health, metrics or user-visible text."""
        values = [self.telegram_bot_token, self.webhook_secret, self.kie_api_key, self.kie_webhook_hmac_key or "",
                  self.chaos_token or "", self.kie_callback_secret]
        if self.database_url:
            password = urlsplit(self.database_url).password
            if password:
                values.append(password)
        return [v for v in values if v and len(v) >= 6]

    @property
    def zone(self) -> ZoneInfo:
        """BOT_TIMEZONE: where a day of free generations begins and ends."""
        return ZoneInfo(self.bot_timezone)

    @property
    def kie_callback_secret(self) -> str:
        """The secret in KIE's callback URLs, derived from WEBHOOK_SECRET so every instance of this
        bot agrees on it, and never the bot token itself: a callback URL is seen by KIE."""
        return hmac.new(self.webhook_secret.encode(), b"kie-callback", hashlib.sha256).hexdigest()[:40]

    def kie_callback_token(self, job_id: int) -> str:
        """The token in job `job_id`'s callback URL: an HMAC of the job id under the callback
        secret. Intermediaries log paths, so a URL that leaks opens its own job and no other; the
        secret itself never appears in a URL (nor opens anything at the route)."""
        return hmac.new(self.kie_callback_secret.encode(), b"job:" + str(job_id).encode(),
                        hashlib.sha256).hexdigest()[:40]

    def kie_callback_url(self, job_id: int) -> str | None:
        """Where KIE posts the end of job `job_id`'s task; None without a public base URL (then
        the jobs actor only polls)."""
        if not self.webhook_base_url:
            return None
        return f"{self.webhook_base_url}/kie-callback/{self.kie_callback_token(job_id)}/{job_id}"

    @property
    def webhook_url(self) -> str | None:
        """Where Telegram is told to post updates; None when no public base URL is known (polling)."""
        return f"{self.webhook_base_url}/webhook" if self.webhook_base_url else None


def default_instance_id() -> str:
    """Unique per process yet readable: the host, the pid, and a few random hex digits against pid reuse."""
    return f"{socket.gethostname()[:24]}-{os.getpid()}-{uuid.uuid4().hex[:6]}"


def load(command: str = "serve", env: Mapping[str, str] | None = None) -> Settings:
    """Read and validate the environment; raise ConfigError listing every problem."""
    env = os.environ if env is None else env
    problems = [f"{name} is set: {why}" for name, why in LEGACY_VARIABLES.items() if name in env]

    token = env.get("TELEGRAM_BOT_TOKEN", "").strip()
    bot_id = 0
    if token:
        match = TOKEN_RE.match(token)
        if match:
            bot_id = int(match.group(1))
        else:
            problems.append("TELEGRAM_BOT_TOKEN is malformed: expected <digits>:<secret> as issued by @BotFather")
    elif command not in TOKENLESS_COMMANDS:
        problems.append("TELEGRAM_BOT_TOKEN is required (get one from @BotFather), or run `python run.py demo`")

    declared: dict[str, Any] = {}
    for spec in fields(Settings):
        variable = spec.metadata.get("variable")
        if isinstance(variable, _Variable):
            declared[spec.name] = _read(problems, variable.name, env.get(variable.name), variable.parse, spec.default)

    base = env.get("WEBHOOK_BASE_URL") or env.get("RENDER_EXTERNAL_URL")
    webhook_base_url = _read(problems, "WEBHOOK_BASE_URL", base, _url("https", "http"), None)

    bot_mode = _read(problems, "BOT_MODE", env.get("BOT_MODE"), _choice("webhook", "polling"),
                     "webhook" if webhook_base_url else "polling")
    if bot_mode == "webhook" and not webhook_base_url and command == "serve" and "BOT_MODE" in env:
        problems.append("BOT_MODE=webhook needs WEBHOOK_BASE_URL (or RENDER_EXTERNAL_URL)")

    secret = _read(problems, "WEBHOOK_SECRET", env.get("WEBHOOK_SECRET"), _webhook_secret,
                   hashlib.sha256(f"trt-webhook:{token}".encode()).hexdigest()[:48])

    admin_ids: set[int] = set()
    for part in env.get("ADMIN_IDS", "").split(","):
        part = part.strip()
        if not part:
            continue
        if re.fullmatch(r"-?\d{1,20}", part):
            admin_ids.add(int(part))
        else:
            problems.append(f"ADMIN_IDS must be comma-separated Telegram user ids, {part!r} is not an integer")

    # validated even when generated: a host name may hold what INSTANCE_ID may not
    instance_id = env.get("INSTANCE_ID", "").strip() or default_instance_id()
    if not re.fullmatch(r"[\w.@:-]{1,64}", instance_id):
        problems.append("INSTANCE_ID may hold letters, digits and ._@:- (at most 64 characters)")

    heartbeat, stale = declared["heartbeat_interval"], declared["stale_after"]
    if stale <= heartbeat + max(1.0, heartbeat):  # a heartbeat may take up to max(1 s, its interval)
        problems.append(f"STALE_AFTER must be more than HEARTBEAT_INTERVAL plus a heartbeat's timeout "
                        f"({heartbeat + max(1.0, heartbeat):g}s), or standbys take the lock from a healthy leader; "
                        f"got {stale:g}")

    if declared["stars_min"] > declared["stars_max"]:
        problems.append(f"STARS_MIN ({declared['stars_min']}) must not exceed STARS_MAX ({declared['stars_max']})")
    if declared["transfer_min"] > declared["transfer_max"]:
        problems.append(f"TRANSFER_MIN ({declared['transfer_min']}) must not exceed TRANSFER_MAX "
                        f"({declared['transfer_max']})")

    pool_size = _read(problems, "DATABASE_POOL_SIZE", env.get("DATABASE_POOL_SIZE"), _integer(2, 1000),
                      declared["dispatch_turns"] + POOL_HEADROOM)

    settings = Settings(
        command=command,
        telegram_bot_token=token,
        bot_id=bot_id,
        webhook_base_url=webhook_base_url,
        webhook_secret=secret,
        bot_mode=bot_mode,
        admin_ids=frozenset(admin_ids),
        instance_id=instance_id,
        data_dir=Path(env.get("DATA_DIR", "").strip() or "./.data").resolve(),
        database_pool_size=pool_size,
        **declared,
    )
    if problems:
        raise ConfigError(problems)
    return settings
