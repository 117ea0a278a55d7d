"""`run.py serve` (the default): build the tree, run it until SIGTERM / SIGINT or until the root
supervisor gives up, then stop it within SHUTDOWN_TIMEOUT."""

from __future__ import annotations

import asyncio
import signal
import time
from typing import Any

from actors.actor import ExitKind
from commands.tree import build
from config import Settings
from ingest.intake_loop import IntakeLoop
from store.database import Database, describe_url
from supervisor import StartFailed
from telemetry import heap, logs
from telemetry.loopwatch import LoopWatch
from telemetry.metrics import METRICS

log = logs.get("main")


async def serve(settings: Settings, database: Database, t0: float) -> int:
    loop = asyncio.get_running_loop()
    watch = LoopWatch(loop)
    watch.start()
    heap.watch_pauses()
    # webhook mode: /webhook's acks on a loop of their own (ingest/intake_loop.py), started by ingress
    intake_loop = IntakeLoop() if settings.bot_mode == "webhook" else None
    app = build(settings, database, watch, intake_loop)
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
        await _end(intake_loop)
        watch.stop()
        return 1
    log.info("started", extra={"instance": settings.instance_id, "port": settings.port,
                               "startup_seconds": round(time.monotonic() - t0, 3),
                               "mode": settings.bot_mode, "database": describe_url(database.url),
                               **heap.freeze_startup_heap()})
    waiter = asyncio.ensure_future(stop.wait())
    either: list[asyncio.Future[Any]] = [waiter, app.root.done]
    await asyncio.wait(either, return_when=asyncio.FIRST_COMPLETED)
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
    await _end(intake_loop)
    watch.stop()
    return code


async def _end(intake_loop: IntakeLoop | None) -> None:
    """The intake loop outlives ingress (stopped with the tree): its thread ends last."""
    if intake_loop is not None and not await intake_loop.join(2.0):
        log.warning("intake_loop_not_stopped", extra={"seconds": 2.0})
