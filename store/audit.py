"""The admins' audit trail: every admin action leaves one row (who, what, on whom, before and
after), written in the action's own transaction where it has one, so an action and its record
commit together."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg

from store.database import Database


@dataclass(frozen=True, slots=True)
class Action:
    id: int
    admin_id: int
    action: str
    target: str | None
    before: Any
    after: Any
    at: datetime


def _dump(value: Any) -> str | None:
    return None if value is None else json.dumps(value, ensure_ascii=False, default=str, sort_keys=True)


async def record(conn: asyncpg.Connection | asyncpg.Pool, bot_id: int, admin_id: int, action: str, *,
                 target: str | None = None, before: Any = None, after: Any = None) -> int:
    """Append one action (inside the caller's transaction when given its connection)."""
    return int(await conn.fetchval(
        """INSERT INTO admin_audit (bot_id, admin_id, action, target, before, after)
           VALUES ($1, $2, $3, $4, $5, $6) RETURNING id""",
        bot_id, admin_id, action, target, _dump(before), _dump(after)))


async def recent(db: Database, bot_id: int, limit: int = 20, *, action: str | None = None) -> list[Action]:
    rows = await db.require().fetch(
        """SELECT id, admin_id, action, target, before, after, at FROM admin_audit
            WHERE bot_id = $1 AND ($3::text IS NULL OR action = $3) ORDER BY id DESC LIMIT $2""",
        bot_id, limit, action)
    return [Action(r["id"], r["admin_id"], r["action"], r["target"],
                   None if r["before"] is None else json.loads(r["before"]),
                   None if r["after"] is None else json.loads(r["after"]), r["at"]) for r in rows]
