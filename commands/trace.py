"""`python run.py trace <correlation id>`: one update's (u<update_id>) or one job's (j<job_id>) story."""

from __future__ import annotations

from store.database import Database


async def show(database: Database, correlation_id: str) -> int:
    raise NotImplementedError  # filled in by the traces work of issue 13
