"""Trace events of updates and generations (the correlation id's story), a row per story per batch.

A batch's events are grouped by correlation id into one `trace_parts` row each, its steps a JSON
array in emitted order (sql/023): an update's five or more steps cost one row, one json encoding
and one entry in each index, where a row per event cost five or more of each. A story written
across batches has several parts; a reader puts them back in order. `traces` (a row per event,
before 023) is still read and trimmed until its rows have aged out.
"""

from __future__ import annotations

import datetime as dt
import json
import math
from collections.abc import Sequence
from typing import Any

import orjson

from store.database import Database

Event = tuple[str, float, str, str, dict[str, Any] | None]  # correlation id, unix time, actor, event, data


async def insert_many(db: Database, events: Sequence[Event]) -> int:
    """Write the events in one COPY, a row per correlation id; returns how many rows."""
    parts: dict[str, list[tuple[float, str, str, dict[str, Any] | None]]] = {}
    for cid, at, actor, event, data in events:
        steps = parts.get(cid)
        if steps is None:
            parts[cid] = steps = []
        steps.append((at, actor, event, data))
    rows = [(cid, dt.datetime.fromtimestamp(steps[0][0], dt.UTC), _json(steps)) for cid, steps in parts.items()]
    async with db.require().acquire() as conn:
        await conn.copy_records_to_table("trace_parts", records=rows, columns=["correlation_id", "at", "steps"])
    return len(rows)


def _json(steps: list[tuple[float, str, str, dict[str, Any] | None]]) -> str:
    """orjson: the standard library's encoder cost ~4 µs an event under load, most of what a trace
    step costs. A value neither takes is written as its text, a NaN as null (PostgreSQL's json
    refuses NaN), rather than failing the whole batch."""
    try:
        return orjson.dumps(steps, default=str, option=orjson.OPT_NON_STR_KEYS).decode()
    except orjson.JSONEncodeError:  # an int past 64 bits: the standard library takes it
        return json.dumps(_finite(steps), default=str)


def _finite(value: Any) -> Any:
    """NaN and the infinities as null, as orjson writes them; keys as text."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {str(k): _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value


async def trim(db: Database, older_than_seconds: float) -> int:
    """Delete events older than the retention (parts by their first step); returns how many rows went."""
    removed = 0
    for table in ("trace_parts", "traces"):
        status = await db.require().execute(
            f"DELETE FROM {table} WHERE at < now() - make_interval(secs => $1)", float(older_than_seconds))
        removed += int(status.split()[-1])
    return removed


async def for_correlation(db: Database, correlation_id: str) -> list[dict[str, Any]]:
    """One story's steps in the order they happened: {at (unix time), actor, event, data}."""
    pool = db.require()
    steps: list[dict[str, Any]] = [
        {"at": r["at"].timestamp(), "actor": r["actor"], "event": r["event"],
         "data": None if r["data"] is None else json.loads(r["data"])}
        for r in await pool.fetch(
            "SELECT at, actor, event, data FROM traces WHERE correlation_id = $1 ORDER BY at, id", correlation_id)
    ]
    for part in await pool.fetch(
            "SELECT steps FROM trace_parts WHERE correlation_id = $1 ORDER BY at", correlation_id):
        steps.extend({"at": at, "actor": actor, "event": event, "data": data}
                     for at, actor, event, data in json.loads(part["steps"]))
    steps.sort(key=lambda step: step["at"])  # stable: a part's steps keep their emitted order
    return steps
