"""Runs one command of run.py once the dependencies are known to be installed: settings, logs,
the embedded database when DATABASE_URL is unset, then the command's own module."""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import Coroutine
from typing import Any

import catalog
import config
from catalog import plans
from commands.check import report
from commands.migrate import migrate
from commands.serve import serve
from ingest import aiogram_on_demand
from ingest.intake_loop import close_loop, new_event_loop
from ingest.webhook_intake import POOL_SIZE as INTAKE_POOL_SIZE
from store import embedded, warmup
from store.database import Database
from telemetry import logs

log = logs.get("main")


def execute(command: str, t0: float, args: list[str] | None = None) -> int:
    args = args or []
    try:
        settings = config.load(command)
    except config.ConfigError as exc:
        print("TRT cannot start, the configuration has problems:", file=sys.stderr)
        for problem in exc.problems:
            print(f"  - {problem}", file=sys.stderr)
        return 2
    what = "the catalog (catalog/models/*.yaml)"
    try:
        models = catalog.shipped()  # what the bot sells: a broken catalog must not reach a user as a wrong price
        what = f"the subscription plans ({settings.subscription_plans})"
        plans.load(settings.subscription_plans, models)  # nor a plan naming a model that is gone
    except catalog.CatalogError as exc:
        print(f"TRT cannot start, {what} has problems:", file=sys.stderr)
        for problem in exc.problems:
            print(f"  - {problem}", file=sys.stderr)
        return 2
    logs.setup(settings.log_format, settings.log_level, settings.secrets(), instance=settings.instance_id)
    server = None
    url = settings.database_url
    if url is None:
        started = time.monotonic()
        try:
            server, url = embedded.start(settings.data_dir)
        except embedded.EmbeddedDatabaseError as exc:
            log.critical("embedded_database_failed", extra={"error_text": str(exc)})
            return 1
        log.info("embedded_database_started", extra={"seconds": round(time.monotonic() - started, 3),
                                                      "data_dir": str(settings.data_dir)})
    if command in ("serve", "demo"):
        aiogram_on_demand.warm()  # what every update uses, built before the first one (ingest/aiogram_on_demand.py)
    database = Database(url, settings.instance_id, embedded=server is not None,
                        pool_size=main_pool_size(settings, command),
                        warm=warmup.warm if command in ("serve", "demo") else None, full=command in ("serve", "demo"))
    try:
        if command == "migrate":
            return _run(migrate(database))
        if command == "check":
            return _run(report(settings, database, args[0] if args else None))
        if command == "trace":
            from commands.trace import show

            return _run(show(database, args[0]))
        if command == "demo":
            from commands import demo  # the fakes are loaded only by the demo, never by serve

            return _run(demo.run(settings, database, t0))
        return _run(serve(settings, database, t0))
    finally:
        if server is not None:
            embedded.stop(server)


def main_pool_size(settings: config.Settings, command: str) -> int:
    """DATABASE_POOL_SIZE is the process's total, what an operator sizes PostgreSQL by: a served
    webhook process gives the intake loop's pool (ingest/webhook_intake.POOL_SIZE) its share of it."""
    if command == "serve" and settings.bot_mode == "webhook":
        return max(2, settings.database_pool_size - INTAKE_POOL_SIZE)
    return settings.database_pool_size


def _run(main: Coroutine[Any, Any, int]) -> int:
    """asyncio.run on uvloop (ingest/intake_loop.new_event_loop), except that a task ignoring
    cancellation cannot keep the process alive."""
    loop = new_event_loop()
    asyncio.set_event_loop(loop)
    try:
        return loop.run_until_complete(main)
    finally:
        close_loop(loop)
