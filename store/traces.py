"""Trace events of updates and generations (the correlation id's story)."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Sequence
from typing import Any

from store.database import Database


async def insert_many(db: Database, events: Sequence[tuple[str, float, str, str, dict[str, Any] | None]]) -> None:
    """Write (correlation_id, unix time, actor, event, data) rows in one COPY."""
    rows = [
        (cid, dt.datetime.fromtimestamp(at, dt.UTC), actor, event, None if data is None else json.dumps(data))
        for cid, at, actor, event, data in events
    ]
    async with db.require().acquire() as conn:
        await conn.copy_records_to_table(
            "traces", records=rows, columns=["correlation_id", "at", "actor", "event", "data"]
        )


async def trim(db: Database, older_than_seconds: float) -> int:
    """Delete events older than the retention; returns how many went."""
    status = await db.require().execute(
        "DELETE FROM traces WHERE at < now() - make_interval(secs => $1)", float(older_than_seconds)
    )
    return int(status.split()[-1])


async def for_correlation(db: Database, correlation_id: str) -> list[dict[str, Any]]:
    rows = await db.require().fetch(
        "SELECT at, actor, event, data FROM traces WHERE correlation_id = $1 ORDER BY at, id", correlation_id
    )
    return [
        {"at": r["at"].timestamp(), "actor": r["actor"], "event": r["event"],
         "data": None if r["data"] is None else json.loads(r["data"])}
        for r in rows
    ]
