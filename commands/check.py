"""`run.py check`: what an operator wants to know before (or instead of) starting the service."""

from __future__ import annotations

import sys
import time

import aiohttp

from config import Settings
from store import migrations
from store.database import DB_ERRORS, Database, describe_url
from telemetry import logs


def _line(name: str, ok: bool | None, text: str) -> str:
    mark = {True: "ok  ", False: "FAIL", None: "--  "}[ok]
    return f"  {mark} {name:<16} {text}"


async def report(settings: Settings, database: Database, health_url: str | None = None) -> int:
    lines = [f"TRT check: instance {settings.instance_id}"]
    failed = False
    mode = f"{settings.bot_mode}" + (f", webhook {settings.webhook_url}" if settings.webhook_url else "")
    lines.append(_line("config", True, f"valid; mode {mode}; port {settings.port}"))

    started = time.perf_counter()
    try:
        version, todo = await migrations.inspect(database.url)
        where = describe_url(database.url) + (" (embedded)" if database.embedded else "")
        ms = (time.perf_counter() - started) * 1000
        lines.append(_line("database", True, f"PostgreSQL {version} at {where}, {ms:.0f} ms"))
        lines.append(_line("migrations", True, f"{len(todo)} pending" + (f": {', '.join(todo)}" if todo else "")
                           + " (applied at start)" * bool(todo)))
    except (*DB_ERRORS, migrations.MigrationError) as exc:
        failed = True
        lines.append(_line("database", False, logs.redact(f"{describe_url(database.url)}: {exc}")))

    if settings.telegram_bot_token:
        url = f"{settings.telegram_api_base}/bot{settings.telegram_bot_token}/getMe"
        try:
            timeout = aiohttp.ClientTimeout(total=10)
            async with aiohttp.ClientSession(timeout=timeout) as session, session.get(url) as response:
                body = await response.json(content_type=None)
            if body.get("ok"):
                lines.append(_line("telegram", True, f"bot @{body['result'].get('username')} "
                                                     f"(id {body['result'].get('id')})"))
            else:
                failed = True
                lines.append(_line("telegram", False, f"{body.get('error_code')} {body.get('description')}"))
        except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
            failed = True
            lines.append(_line("telegram", False, logs.redact(f"{settings.telegram_api_base}: "
                                                              f"{type(exc).__name__}: {exc}")))
    else:
        failed = True
        lines.append(_line("telegram", False, "TELEGRAM_BOT_TOKEN is not set: serve will refuse to start"))
    lines.append(_line("chaos", None, "enabled (CHAOS_TOKEN set)" if settings.chaos_token else "disabled"))
    lines.append("result: " + ("FAILED" if failed else "OK"))
    print(logs.redact("\n".join(lines)), file=sys.stdout if not failed else sys.stderr)
    return 1 if failed else 0
