"""Keeps the garbage collector from stopping the event loop for long.

Importing aiogram, pydantic and the app leaves about 140,000 objects that live as long as the
process (210,000 when aiogram built all its models at import: ingest/aiogram_on_demand.py), and
a full (generation 2) collection walks every one of them: ~150 ms on the 2-core VM (at 200,000),
a pause that holds every webhook ack and every handler behind it. Once the tree has started they
are collected once and frozen (gc.freeze), so later full collections walk only what was made
since, and young collections run less often. Every collection's pause is a metric, so a
regression shows on the dashboard.
"""

from __future__ import annotations

import gc
import time
from typing import Any

from telemetry.metrics import METRICS

# Python's default (700, 10, 10) collects the young generation every 700 net allocations: the
# objects of updates still in flight survive, are promoted and walked again by the older
# generations' collections. bench.e2e: 0.32 s of generation 0 and 1 pauses per 3,500 updates at
# the default, 0.01 s at these.
THRESHOLDS = (20_000, 20, 20)

_started: list[float] = [0.0]


def _observe(phase: str, info: dict[str, Any]) -> None:
    if phase == "start":
        _started[0] = time.perf_counter()
    else:
        METRICS.gc_pause.labels(str(info.get("generation", "?"))).observe(time.perf_counter() - _started[0])


def watch_pauses() -> None:
    """Time every collection into trt_gc_pause_seconds{generation} (idempotent)."""
    if _observe not in gc.callbacks:
        gc.callbacks.append(_observe)


def freeze_startup_heap() -> dict[str, float]:
    """Collect what startup left as garbage, freeze the rest, set THRESHOLDS; returns what it did for the log."""
    began = time.perf_counter()
    gc.collect()
    collect_ms = (time.perf_counter() - began) * 1000
    gc.freeze()
    gc.set_threshold(*THRESHOLDS)
    frozen = gc.get_freeze_count()
    METRICS.gc_frozen.set(frozen)
    return {"frozen_objects": frozen, "collect_ms": round(collect_ms, 1)}
