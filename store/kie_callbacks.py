"""KIE's callbacks, kept durably before they are answered and until the leader applied them.

Any instance, ACTIVE or PASSIVE, takes a callback (ingest/kie_callbacks.py) and keeps it here;
only the leader's jobs actor applies it, and a callback only wakes its job (recordInfo decides).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from store.database import Database


@dataclass(frozen=True, slots=True)
class Callback:
    id: int
    job_id: int | None
    task_id: str | None
    body: str
    received_at: datetime


async def store_callback(db: Database, bot_id: int, instance: str, body: str, *, job_id: int | None = None,
                         task_id: str | None = None) -> int:
    """Keep a KIE callback durably before answering it. Not fenced: any instance, ACTIVE or
    PASSIVE, takes callbacks; only the leader applies them (finish() is fenced)."""
    callback_id: int = await db.require().fetchval(
        """INSERT INTO kie_callbacks (bot_id, job_id, task_id, body, received_by) VALUES ($1, $2, $3, $4, $5)
           RETURNING id""", bot_id, job_id, task_id, body, instance)
    return callback_id


async def pending_callbacks(db: Database, bot_id: int, limit: int = 100) -> list[Callback]:
    rows = await db.require().fetch(
        """SELECT id, job_id, task_id, body, received_at FROM kie_callbacks
            WHERE bot_id = $1 AND applied_at IS NULL ORDER BY id LIMIT $2""", bot_id, limit)
    return [Callback(r["id"], r["job_id"], r["task_id"], r["body"], r["received_at"]) for r in rows]


async def trim_callbacks(db: Database, bot_id: int, older_than_seconds: float) -> int:
    """Delete this bot's callbacks applied longer ago than the retention; one never applied stays
    (its job may still need it). Returns how many went."""
    status = await db.require().execute(
        """DELETE FROM kie_callbacks WHERE bot_id = $1 AND applied_at IS NOT NULL
              AND applied_at < now() - make_interval(secs => $2)""", bot_id, float(older_than_seconds))
    return int(status.split()[-1])


async def mark_callbacks_applied(db: Database, callback_ids: Sequence[int]) -> None:
    """Not fenced: applying a callback twice changes nothing (finish() is idempotent), so a lost
    mark costs one more no-op."""
    await db.require().execute("UPDATE kie_callbacks SET applied_at = now() WHERE id = ANY($1::bigint[])",
                               list(callback_ids))
