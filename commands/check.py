"""`run.py check [health URL]`: the preflight an operator runs before (or instead of) starting the
service, and against a live deployment: one line per check marked ok, warn, FAIL (or -- for a plain
note), exit 1 when anything FAILs.

Every check runs at once under a deadline of its own, so one hung server can neither stop the
others nor keep the report from finishing; every line passes a scrubber, so no token, secret, key
or password reaches the screen (an aiohttp error names the URL, and the Bot API URL holds the token).
"""

from __future__ import annotations

import asyncio
import ipaddress
import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import aiohttp

from config import Settings
from kie.client import KieClient, RetryPolicy
from kie.errors import KieError, Unauthorized
from store import leader, migrations
from store.database import DB_ERRORS, Database, describe_url
from telemetry import logs

DATABASE_SECONDS = 5.0  # each connection's connect and statement timeout
TELEGRAM_SECONDS = 10.0  # each Bot API request, at most (TELEGRAM_TIMEOUT when lower)
KIE_SECONDS = 10.0
HEALTH_SECONDS = 10.0
LOW_CREDITS = 1000  # KIE credits under which an operator should top up soon (about ten long videos)
PENDING_UPDATES_WARN = 100  # updates Telegram holds for us: more means deliveries are not getting through
RECENT_ERROR_SECONDS = 3600.0  # a webhook error younger than this is a warning, an older one a note
_BOT_URL = re.compile(r"bot\d+:[A-Za-z0-9_-]+")
_SECRETISH = re.compile(r"(?=.*\d)(?=.*[A-Za-z])[A-Za-z0-9_:.-]{16,}")


@dataclass(frozen=True)
class Line:
    """One check's verdict: mark is ok, warn, FAIL or -- (a note), details are indented below it."""

    mark: str
    name: str
    text: str
    details: tuple[str, ...] = ()


def _format(line: Line) -> list[str]:
    out = [f"  {line.mark:<4} {line.name:<16} {line.text}"]
    out.extend(f"  {'':<4} {'':<16} - {detail}" for detail in line.details)
    return out


class Scrubber:
    """Masks every configured secret (telemetry.logs.redact), the bot token however it is written,
    and anything shaped like a Bot API URL: the last line of defence before the screen."""

    def __init__(self, settings: Settings) -> None:
        self.secrets = sorted({s for s in [*settings.secrets(), settings.telegram_bot_token] if s},
                              key=len, reverse=True)

    def __call__(self, text: str) -> str:
        text = logs.redact(text)
        for secret in self.secrets:
            text = text.replace(secret, "***")
        return _BOT_URL.sub("bot***", text)


def mask_url(url: str, secrets: list[str]) -> str:
    """A URL fit to print: no user or password, no query, and every path part that holds a known
    secret or looks like one (a long mix of letters and digits, as a token in a webhook path) masked."""
    try:
        parts = urlsplit(url)
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        return "(unreadable URL)"
    path = "/".join("***" if any(s in part for s in secrets) or _SECRETISH.fullmatch(part) else part
                    for part in parts.path.split("/"))
    return f"{parts.scheme}://{parts.hostname or ''}{port}{path}" + ("?***" if parts.query else "")


def is_public(url: str | None) -> bool:
    """A base URL that the Internet reaches (not localhost, a loopback or a private address):
    a deployment, where development conveniences become risks."""
    host = (urlsplit(url).hostname or "") if url else ""
    if not host or host == "localhost" or host.endswith(".localhost") or host.endswith(".local"):
        return False
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return True
    return not (address.is_loopback or address.is_private or address.is_link_local)


def _age(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.1f}s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def environment(settings: Settings, database: Database) -> list[Line]:
    """The configuration in one line, then the settings that are legal but risky where they are."""
    public = is_public(settings.webhook_base_url)
    mode = (f"webhook {mask_url(settings.webhook_url, settings.secrets())}"
            if settings.bot_mode == "webhook" and settings.webhook_url else settings.bot_mode)
    lines = [Line("ok", "config", f"valid; mode {mode}; port {settings.port}; instance {settings.instance_id}; "
                                  f"bot id {settings.bot_id or 'unknown (no token)'}")]
    if settings.bot_mode == "polling":
        lines.append(Line("--", "mode", "polling: for development (no public URL; only the ACTIVE instance polls)"))
    elif not settings.webhook_url:
        lines.append(Line("FAIL", "mode", "BOT_MODE=webhook without WEBHOOK_BASE_URL: Telegram cannot reach us"))
    elif (settings.webhook_url.startswith("http://") and public
          and urlsplit(settings.telegram_api_base).hostname == "api.telegram.org"):
        lines.append(Line("warn", "mode", "the webhook URL is http://: Telegram accepts only HTTPS webhooks"))
    if settings.bot_mode == "webhook" and not settings.auto_set_webhook:
        lines.append(Line("--", "mode", "AUTO_SET_WEBHOOK is off: the webhook is left as it is set at Telegram"))
    if settings.bot_mode == "webhook" and settings.webhook_url and not settings.kie_webhook_hmac_key:
        lines.append(Line("warn", "kie callbacks", "KIE_WEBHOOK_HMAC_KEY is unset: KIE's callbacks are only "
                                                   "wake-ups verified against KIE's task record; turn signing on in "
                                                   "KIE's settings and set the key here to add a check"))
    if settings.bot_mode == "webhook" and settings.download_trusted_hosts:
        lines.append(Line("warn", "result downloads", "DOWNLOAD_TRUSTED_HOSTS is set ("
                                                      f"{', '.join(settings.download_trusted_hosts)}): results may "
                                                      "come over http or from private addresses of those hosts; it "
                                                      "is meant for the demo and tests, leave it unset in production"))
    if database.embedded:
        where = "on a public deployment: data lives and dies with DATA_DIR" if public else "for development"
        lines.append(Line("warn" if public else "--", "embedded db",
                          f"PostgreSQL embedded under {settings.data_dir}, {where}; production sets DATABASE_URL"))
    if settings.chaos_token and public:
        lines.append(Line("warn", "chaos", "CHAOS_TOKEN is set on a public deployment: whoever holds it can crash, "
                                           "hang or slow any actor through POST /chaos"))
    else:
        lines.append(Line("--", "chaos", "enabled (CHAOS_TOKEN set)" if settings.chaos_token else "disabled"))
    if not settings.admin_ids:
        lines.append(Line("--", "admins", "ADMIN_IDS is empty: nobody generates without paying (operators "
                                          "testing in production pay like users)"))
    if (settings.payment_transfer_details or "").strip():
        nobody = "; ADMIN_IDS is empty, so nobody can approve them" if not settings.admin_ids else ""
        lines.append(Line("warn", "bank transfers", "PAYMENT_TRANSFER_DETAILS is set: users may pay by bank "
                                                    "transfer, but Telegram's terms require digital goods to be "
                                                    "sold for Stars only (a bot that does not comply can be hidden "
                                                    f"from the store apps or terminated){nobody}"))
    return lines


async def database_and_leader(settings: Settings, database: Database) -> list[Line]:
    """Reachable and migrated, then the lock: who leads, how fresh the heartbeat, who holds the lock."""
    where = describe_url(database.url) + (" (embedded)" if database.embedded else "")
    started = time.perf_counter()
    try:
        version, todo = await migrations.inspect(database.url, timeout=DATABASE_SECONDS)
    except (*DB_ERRORS, migrations.MigrationError) as exc:
        return [Line("FAIL", "database", f"{where}: {type(exc).__name__}: {exc}"),
                Line("--", "leader", "not checked: the database is unreachable")]
    ms = (time.perf_counter() - started) * 1000
    lines = [Line("ok", "database", f"PostgreSQL {version} at {where}, {ms:.0f} ms")]
    if todo:
        lines.append(Line("warn", "migrations",
                          f"{len(todo)} pending: {', '.join(todo)} (serve applies them at start)"))
    else:
        lines.append(Line("ok", "migrations", f"all {len(migrations.discover())} applied"))
    if not settings.bot_id:
        lines.append(Line("--", "leader", "unknown: the lock's key comes from the bot id in TELEGRAM_BOT_TOKEN"))
        return lines
    try:
        state = await leader.inspect(database.url, settings.bot_id, timeout=DATABASE_SECONDS)
    except DB_ERRORS as exc:
        return [*lines, Line("FAIL", "leader", f"cannot read the lock: {type(exc).__name__}: {exc}")]
    return [*lines, leader_line(state, settings.stale_after)]


def leader_line(state: leader.Leadership, stale_after: float) -> Line:
    """The lock and the leader row read together: only pg_locks says someone leads now, only the
    row says who and how fresh its heartbeat is."""
    lock = f"lock {state.name} (keys {state.keys[0]}, {state.keys[1]})"
    row = state.holder
    if not state.held:
        if not state.migrated:
            return Line("warn", "leader", f"no leader: {lock} is free and the leader tables do not exist yet")
        last = ("no instance has led yet" if row is None else
                f"the last was {row.instance}, epoch {row.epoch}, heartbeat {_age(row.heartbeat_age)} ago")
        return Line("warn", "leader", f"no leader: {lock} is free; {last}")
    backends = ", ".join(str(pid) for pid in state.lock_pids)
    holder = f"held by backend {backends}" + (f" ({state.lock_application})" if state.lock_application else "")
    if row is None or row.backend_pid not in state.lock_pids:
        recorded = "no leader row" if row is None else f"the leader row names {row.instance}, epoch {row.epoch}"
        return Line("warn", "leader", f"{lock} {holder}, but {recorded}: an acquisition under way, "
                                      "or a session that is not TRT's")
    text = f"{row.instance}, epoch {row.epoch}, heartbeat {_age(row.heartbeat_age)} ago; {lock} {holder}"
    if row.heartbeat_age > stale_after:
        return Line("warn", "leader", f"{text}; the heartbeat is older than STALE_AFTER ({stale_after:g}s): "
                                      "a frozen leader a standby will end")
    return Line("ok", "leader", text)


async def _bot_api(session: aiohttp.ClientSession, settings: Settings, method: str) -> tuple[int, Any]:
    """(HTTP status, JSON body or None) of one Bot API call."""
    url = f"{settings.telegram_api_base}/bot{settings.telegram_bot_token}/{method}"
    async with session.get(url, allow_redirects=False) as response:
        try:
            body = await response.json(content_type=None)
        except ValueError:
            body = None
        return response.status, body


async def telegram(settings: Settings) -> list[Line]:
    """getMe (is the token accepted) then getWebhookInfo (where Telegram sends updates and how that goes)."""
    if not settings.telegram_bot_token:
        return [Line("FAIL", "telegram", "TELEGRAM_BOT_TOKEN is not set: serve will refuse to start")]
    seconds = min(settings.telegram_timeout, TELEGRAM_SECONDS)
    where = mask_url(settings.telegram_api_base, settings.secrets())
    try:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=seconds)) as session:
            status, me = await _bot_api(session, settings, "getMe")
            if status == 401:
                return [Line("FAIL", "telegram", f"token rejected (401 Unauthorized) by {where}: "
                                                 "check TELEGRAM_BOT_TOKEN with @BotFather")]
            if not isinstance(me, dict) or not me.get("ok") or not isinstance(me.get("result"), dict):
                said = (f"{me.get('error_code')} {me.get('description')}" if isinstance(me, dict)
                        else "not a Bot API answer")
                return [Line("FAIL", "telegram", f"getMe at {where}: HTTP {status}, {said}")]
            bot = me["result"]
            lines = [Line("ok", "telegram", f"bot @{bot.get('username')} (id {bot.get('id')}) at {where}")]
            status, info = await _bot_api(session, settings, "getWebhookInfo")
    except TimeoutError:
        return [Line("FAIL", "telegram", f"{where} did not answer within {seconds:g}s")]
    except aiohttp.ClientError as exc:
        return [Line("FAIL", "telegram", f"{where} unreachable: {type(exc).__name__}: {exc}")]
    if not isinstance(info, dict) or not info.get("ok") or not isinstance(info.get("result"), dict):
        return [*lines, Line("FAIL", "webhook", f"getWebhookInfo: HTTP {status}, not a Bot API answer")]
    return [*lines, *webhook_lines(settings, info["result"])]


def webhook_lines(settings: Settings, info: dict[str, Any]) -> list[Line]:
    """getWebhookInfo against what this configuration expects, with Telegram's last delivery error."""
    url = str(info.get("url") or "")
    pending = info.get("pending_update_count") or 0
    shown = mask_url(url, settings.secrets()) if url else "none"
    expected = settings.webhook_url if settings.bot_mode == "webhook" else None
    queue = f"{pending} update(s) pending at Telegram"
    if expected is None:
        line = (Line("ok", "webhook", f"none (polling); {queue}") if not url else
                Line("warn", "webhook", f"{shown} is set, but this config polls (the poller deletes it at start); "
                                        f"{queue}"))
    elif url == expected:
        line = Line("ok", "webhook", f"{shown} as configured; {queue}")
    else:
        fix = ("the ACTIVE instance sets it (AUTO_SET_WEBHOOK)" if settings.auto_set_webhook
               else "AUTO_SET_WEBHOOK is off: nothing will set it")
        line = Line("warn" if settings.auto_set_webhook else "FAIL", "webhook",
                    f"{shown}, but this config expects {mask_url(expected, settings.secrets())}: {fix}; {queue}")
    if line.mark == "ok" and isinstance(pending, int) and pending >= PENDING_UPDATES_WARN:
        line = Line("warn", "webhook", f"{line.text}: deliveries are not getting through")
    lines = [line]
    message = info.get("last_error_message")
    if message:
        date = info.get("last_error_date")
        age = time.time() - date if isinstance(date, int | float) else None
        when = (time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(date)) + f", {_age(age)} ago"
                if isinstance(date, int | float) and age is not None else "at an unknown time")
        recent = age is None or age < RECENT_ERROR_SECONDS
        lines.append(Line("warn" if recent else "--", "webhook error", f"{message} ({when})"))
    return lines


async def kie(settings: Settings) -> list[Line]:
    """KIE's credit balance: the key is accepted and there is money for generations."""
    if not settings.kie_api_key:
        return [Line("FAIL", "kie", "KIE_API_KEY is not set: serve starts, but every generation fails "
                                    "with an apology")]
    where = mask_url(settings.kie_api_base, settings.secrets())
    # one try: a preflight reports what it finds, it does not insist (nor log retries into the report)
    client = KieClient(settings.kie_api_key, settings.kie_api_base, settings.kie_upload_base,
                       timeout=KIE_SECONDS, retry=RetryPolicy(attempts=1))
    try:
        async with client:
            credits = await client.credits()
    except Unauthorized:
        return [Line("FAIL", "kie", f"key rejected (401) by {where}: check KIE_API_KEY")]
    except KieError as exc:
        code = f" {exc.code}" if exc.code is not None else ""
        return [Line("FAIL", "kie", f"{where}: {exc.kind}{code}: {exc.message}")]
    if credits <= 0:
        return [Line("FAIL", "kie", f"{credits} credits at {where}: KIE refuses every task (402) until topped up")]
    if credits < LOW_CREDITS:
        return [Line("warn", "kie", f"{credits} credits at {where}: low (under {LOW_CREDITS}), top up soon")]
    return [Line("ok", "kie", f"{credits} credits at {where}")]


async def health(url: str, settings: Settings) -> list[Line]:
    """A running instance's own view: /health's status, role, epoch and problems."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return [Line("FAIL", "health", f"{url!r} is not an http(s) URL")]
    if parts.path in ("", "/"):
        url = url.rstrip("/") + "/health"
    shown = mask_url(url, settings.secrets())
    try:
        async with (aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=HEALTH_SECONDS)) as session,
                    session.get(url, allow_redirects=False) as response):
            status = response.status
            try:
                body = await response.json(content_type=None)
            except ValueError:
                body = None
    except TimeoutError:
        return [Line("FAIL", "health", f"{shown} did not answer within {HEALTH_SECONDS:g}s")]
    except aiohttp.ClientError as exc:
        return [Line("FAIL", "health", f"{shown} unreachable: {type(exc).__name__}: {exc}")]
    if status != 200 or not isinstance(body, dict):
        return [Line("FAIL", "health", f"{shown} answered HTTP {status}" + ("" if isinstance(body, dict)
                                                                             else ", not /health's JSON"))]
    verdict = str(body.get("status"))
    mark = {"pass": "ok", "warn": "warn"}.get(verdict, "FAIL")
    uptime = body.get("uptime_seconds")
    text = (f"{verdict}: {body.get('role')} epoch {body.get('epoch')}, instance {body.get('instance')}"
            + (f", up {_age(float(uptime))}" if isinstance(uptime, int | float) else "") + f" ({shown})")
    problems = body.get("problems")
    details = tuple(str(p) for p in problems) if isinstance(problems, list) else ()
    return [Line(mark, "health", text, details)]


async def _bounded(name: str, seconds: float, check: Callable[[], Awaitable[list[Line]]]) -> list[Line]:
    """The check's lines, or one FAIL line when it overruns its deadline or breaks: a broken check
    must never hide the others."""
    try:
        async with asyncio.timeout(seconds):
            return await check()
    except TimeoutError:
        return [Line("FAIL", name, f"no answer within {seconds:g}s")]
    except Exception as exc:  # anything: the report must still print the other checks
        return [Line("FAIL", name, f"the check broke: {type(exc).__name__}: {exc}")]


async def report(settings: Settings, database: Database, health_url: str | None = None) -> int:
    """Run every check at once, print the report in a fixed order, exit 1 when any check FAILs."""
    telegram_seconds = 2 * min(settings.telegram_timeout, TELEGRAM_SECONDS) + 1
    checks = [
        _bounded("database", 3 * DATABASE_SECONDS + 1, lambda: database_and_leader(settings, database)),
        _bounded("telegram", telegram_seconds, lambda: telegram(settings)),
        _bounded("kie", KIE_SECONDS + 1, lambda: kie(settings)),
    ]
    if health_url is not None:
        checks.append(_bounded("health", HEALTH_SECONDS + 1, lambda: health(health_url, settings)))
    results = await asyncio.gather(*checks)
    lines = [*environment(settings, database), *(line for result in results for line in result)]
    failed = [line.name for line in lines if line.mark == "FAIL"]
    warned = sum(line.mark == "warn" for line in lines)
    verdict = (f"FAILED ({', '.join(dict.fromkeys(failed))})" if failed else "OK") + \
        (f", {warned} warning(s)" if warned else "")
    scrub = Scrubber(settings)
    out = [f"TRT check: instance {settings.instance_id}", *(text for line in lines for text in _format(line)),
           f"result: {verdict}"]
    print("\n".join(scrub(text) for text in out), flush=True)
    return 1 if failed else 0
