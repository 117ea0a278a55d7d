"""The commands behind run.py, imported once the dependencies are known to be installed."""

from __future__ import annotations

import asyncio
import signal
import sys
import time
from collections.abc import Coroutine
from typing import Any

import asyncpg

import config
import heap
import logs
from actors.base import ExitKind
from app import build
from loopwatch import LoopWatch
from metrics import METRICS
from store import embedded, migrations
from store.database import Database, describe_url
from supervisor import StartFailed

log = logs.get("main")


def execute(command: str, t0: float) -> int:
    try:
        settings = config.load(command)
    except config.ConfigError as exc:
        print("TRT cannot start, the configuration has problems:", file=sys.stderr)
        for problem in exc.problems:
            print(f"  - {problem}", file=sys.stderr)
        return 2
    logs.setup(settings.log_format, settings.log_level, settings.secrets())
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
    database = Database(url, settings.instance_id, embedded=server is not None,
                        pool_size=settings.database_pool_size)
    try:
        if command == "migrate":
            return _run(migrate(database))
        if command == "check":
            return _run(check(settings, database))
        if command == "demo":
            import demo

            return _run(demo.run(settings, database, t0))
        return _run(serve(settings, database, t0))
    finally:
        if server is not None:
            embedded.stop(server)


def _run(main: Coroutine[Any, Any, int]) -> int:
    """asyncio.run, except that a task ignoring cancellation cannot keep the process alive."""
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    try:
        return loop.run_until_complete(main)
    finally:
        pending = [t for t in asyncio.all_tasks(loop) if not t.done()]
        for task in pending:
            task.cancel()
        if pending:
            loop.run_until_complete(asyncio.wait(pending, timeout=2.0))
        loop.close()


async def serve(settings: config.Settings, database: Database, t0: float) -> int:
    loop = asyncio.get_running_loop()
    watch = LoopWatch(loop)
    watch.start()
    heap.watch_pauses()
    app = build(settings, database, watch)
    METRICS.set_source("tree", app.observer.collect)
    stop = asyncio.Event()
    received: list[str] = []

    def on_signal(sig: signal.Signals) -> None:
        received.append(sig.name)
        stop.set()

    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, on_signal, sig)
    try:
        await app.root.start()
    except StartFailed as exc:
        log.critical("start_failed", extra={"reason": str(exc)})
        watch.stop()
        return 1
    log.info("started", extra={"instance": settings.instance_id, "port": settings.port,
                               "startup_seconds": round(time.monotonic() - t0, 3),
                               "mode": settings.bot_mode, "database": describe_url(database.url),
                               **heap.freeze_startup_heap()})
    waiter = asyncio.create_task(stop.wait())
    await asyncio.wait({waiter, app.root.done}, return_when=asyncio.FIRST_COMPLETED)
    waiter.cancel()
    code = 0
    if app.root.done.done():
        exit = app.root.done.result()
        code = 1 if exit.kind is ExitKind.ABNORMAL else 0
        log.critical("root_failed", extra={"reason": str(exit)})
    else:
        log.info("stopping", extra={"signal": received[0] if received else None,
                                    "timeout": settings.shutdown_timeout})
        began = time.monotonic()
        await app.root.stop(settings.shutdown_timeout)
        log.info("stopped", extra={"seconds": round(time.monotonic() - began, 3)})
    watch.stop()
    return code


async def migrate(database: Database) -> int:
    try:
        conn = await asyncpg.connect(database.url, timeout=10)
    except (OSError, TimeoutError, asyncpg.PostgresError) as exc:
        print(f"migrate: cannot reach the database at {describe_url(database.url)}: {exc}", file=sys.stderr)
        return 1
    try:
        names, fresh = await migrations.apply(conn)
    except migrations.MigrationError as exc:
        print(f"migrate: {exc}", file=sys.stderr)
        return 1
    finally:
        await conn.close()
    print(f"migrate: {len(names)} migrations, {len(fresh)} applied now: {', '.join(fresh) or 'none'}")
    return 0


async def check(settings: config.Settings, database: Database) -> int:
    """A readable report for operators; exit 0 when everything needed to serve is in order."""
    from checks import report

    return await report(settings, database)
