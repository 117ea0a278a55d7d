"""Broadcasts and their recipients: what the admin's Confirm commits and what the broadcaster
records, user by user, under the leader's fence.

The exact rule (the generation's rule, "a file is sent twice only if the process dies between
Telegram's answer and the recording"): before each call the recipient's row is set 'sending'
(`intend`, fenced, tries + 1), after Telegram's answer its outcome is recorded (`record`, fenced).
A row found 'sending' by the next leader is sent again, so a user gets the message twice only
if the process died (or lost the lease) between Telegram's answer and `record`, and at most one
user is in that window at a time (the broadcaster sends one at a time). A row that reached
MAX_TRIES intents without an answer is failed instead of tried again.
"""

from __future__ import annotations

import contextlib
import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

import asyncpg

from store import audit
from store.accounts import forgetting
from store.database import Database
from store.fence import fenced

MAX_TRIES = 3
Outcome = Literal["sent", "blocked", "failed"]
Action = Literal["pause", "resume", "cancel"]
# which states an admin's action moves from, and to
MOVES: dict[str, tuple[tuple[str, ...], str]] = {
    "pause": (("running",), "paused"),
    "resume": (("paused",), "running"),
    "cancel": (("running", "paused"), "cancelled"),
}


@dataclass(frozen=True, slots=True)
class Content:
    """The message as users get it: a text with its entities, or a photo (a Telegram file_id) with a
    caption and its entities. Entities are Telegram's MessageEntity objects as JSON dicts: the
    formatting is kept exactly, never re-parsed from markup."""

    kind: Literal["text", "photo"]
    text: str
    entities: list[dict[str, Any]] = field(default_factory=list)
    photo: str | None = None

    def dump(self) -> str:
        return json.dumps({"kind": self.kind, "text": self.text, "entities": self.entities, "photo": self.photo},
                          ensure_ascii=False, sort_keys=True)

    @classmethod
    def load(cls, raw: str | dict[str, Any]) -> Content:
        data = json.loads(raw) if isinstance(raw, str) else raw
        kind: Literal["text", "photo"] = "photo" if data.get("kind") == "photo" else "text"
        return cls(kind, str(data.get("text") or ""), list(data.get("entities") or []), data.get("photo"))


@dataclass(frozen=True, slots=True)
class Broadcast:
    id: int
    bot_id: int
    nonce: str
    admin_id: int
    admin_chat_id: int
    admin_lang: str
    content: Content
    state: str
    total: int
    sent: int
    blocked: int
    failed: int
    progress_message_id: int | None
    epoch: int
    created_at: datetime
    finished_at: datetime | None
    told_at: datetime | None

    @property
    def left(self) -> int:
        """Recipients without an outcome yet."""
        return self.total - self.sent - self.blocked - self.failed

    @property
    def finished(self) -> bool:
        return self.state in ("done", "cancelled")


@dataclass(frozen=True, slots=True)
class Recipient:
    """`banned`: an operator banned the user after the broadcast was confirmed (not sent to them)."""

    user_id: int
    state: str
    tries: int
    banned: bool = False


_COLUMNS = ("id, bot_id, nonce, admin_id, admin_chat_id, admin_lang, content, state, total, sent, blocked, failed, "
            "progress_message_id, epoch, created_at, finished_at, told_at")


def _broadcast(r: asyncpg.Record) -> Broadcast:
    return Broadcast(r["id"], r["bot_id"], r["nonce"], r["admin_id"], r["admin_chat_id"], r["admin_lang"],
                     Content.load(r["content"]), r["state"], r["total"], r["sent"], r["blocked"], r["failed"],
                     r["progress_message_id"], r["epoch"], r["created_at"], r["finished_at"], r["told_at"])


def _summary(b: Broadcast) -> dict[str, Any]:
    """What the audit trail keeps of a broadcast (the text's start, not the whole of it)."""
    return {"id": b.id, "state": b.state, "kind": b.content.kind, "text": b.content.text[:200], "total": b.total,
            "sent": b.sent, "blocked": b.blocked, "failed": b.failed}


async def audience(db: Database, bot_id: int) -> int:
    """How many users a broadcast confirmed now would go to: not blocked (403), not banned."""
    return int(await db.require().fetchval(
        "SELECT count(*) FROM users WHERE bot_id = $1 AND NOT blocked AND NOT banned", bot_id))


async def create(db: Database, lock_name: str, epoch: int, bot_id: int, *, nonce: str, admin_id: int,
                 admin_chat_id: int, admin_lang: str, content: Content) -> tuple[Broadcast, bool]:
    """The broadcast, its recipients (a snapshot of the audience, in one statement) and the audit
    row, in one fenced transaction keyed by the preview's nonce. (broadcast, True) when this call
    made it; (the one made before, False) for a second Confirm of the same preview."""
    async with fenced(db, lock_name, epoch) as conn:
        row = await conn.fetchrow(
            f"""INSERT INTO broadcasts (bot_id, nonce, admin_id, admin_chat_id, admin_lang, content, epoch)
                VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (bot_id, nonce) DO NOTHING RETURNING {_COLUMNS}""",
            bot_id, nonce, admin_id, admin_chat_id, admin_lang, content.dump(), epoch)
        if row is None:
            existing = await conn.fetchrow(f"SELECT {_COLUMNS} FROM broadcasts WHERE bot_id = $1 AND nonce = $2",
                                           bot_id, nonce)
            return _broadcast(existing), False
        broadcast_id = row["id"]
        await conn.execute(
            """INSERT INTO broadcast_recipients (broadcast_id, user_id)
               SELECT $1, user_id FROM users WHERE bot_id = $2 AND NOT blocked AND NOT banned""",
            broadcast_id, bot_id)
        row = await conn.fetchrow(
            f"""UPDATE broadcasts SET total = (SELECT count(*) FROM broadcast_recipients WHERE broadcast_id = $1)
                 WHERE id = $1 RETURNING {_COLUMNS}""", broadcast_id)
        made = _broadcast(row)
        await audit.record(conn, bot_id, admin_id, "broadcast_create", target=f"broadcast:{made.id}",
                           after=_summary(made))
        return made, True


async def get(db: Database, broadcast_id: int) -> Broadcast | None:
    row = await db.require().fetchrow(f"SELECT {_COLUMNS} FROM broadcasts WHERE id = $1", broadcast_id)
    return None if row is None else _broadcast(row)


async def by_nonce(db: Database, bot_id: int, nonce: str) -> Broadcast | None:
    row = await db.require().fetchrow(f"SELECT {_COLUMNS} FROM broadcasts WHERE bot_id = $1 AND nonce = $2",
                                      bot_id, nonce)
    return None if row is None else _broadcast(row)


async def recent(db: Database, bot_id: int, limit: int = 5) -> list[Broadcast]:
    rows = await db.require().fetch(f"SELECT {_COLUMNS} FROM broadcasts WHERE bot_id = $1 ORDER BY id DESC LIMIT $2",
                                    bot_id, limit)
    return [_broadcast(r) for r in rows]


async def open_work(db: Database, bot_id: int) -> list[Broadcast]:
    """What the broadcaster has to do, oldest first: running broadcasts, and finished ones whose
    admin has not been given the final counts."""
    rows = await db.require().fetch(
        f"""SELECT {_COLUMNS} FROM broadcasts
             WHERE bot_id = $1 AND (state = 'running' OR (state IN ('done', 'cancelled') AND told_at IS NULL))
             ORDER BY id""", bot_id)
    return [_broadcast(r) for r in rows]


async def act(db: Database, lock_name: str, epoch: int, bot_id: int, broadcast_id: int, admin_id: int,
              action: Action) -> tuple[Broadcast | None, bool]:
    """An admin pauses, resumes or cancels: (the broadcast after, whether it changed), audited in the
    same fenced transaction when it changed. A move from a state it does not apply to (a second
    click, a finished broadcast) changes nothing."""
    sources, target = MOVES[action]
    async with fenced(db, lock_name, epoch) as conn:
        before = await conn.fetchrow(f"SELECT {_COLUMNS} FROM broadcasts WHERE id = $1 AND bot_id = $2 FOR UPDATE",
                                     broadcast_id, bot_id)
        if before is None:
            return None, False
        old = _broadcast(before)
        if old.state not in sources:
            return old, False
        row = await conn.fetchrow(
            f"""UPDATE broadcasts SET state = $2, epoch = $3,
                       finished_at = CASE WHEN $2 = 'cancelled' THEN now() ELSE finished_at END
                 WHERE id = $1 RETURNING {_COLUMNS}""", broadcast_id, target, epoch)
        new = _broadcast(row)
        await audit.record(conn, bot_id, admin_id, f"broadcast_{action}", target=f"broadcast:{broadcast_id}",
                           before=_summary(old), after=_summary(new))
        return new, True


async def open_recipients(db: Database, broadcast_id: int, after: int, limit: int) -> list[Recipient]:
    """The next recipients without an outcome (pending, or 'sending' left by a leader that died), by user id."""
    rows = await db.require().fetch(
        """SELECT r.user_id, r.state, r.tries, coalesce(u.banned, false) AS banned
             FROM broadcast_recipients r
             JOIN broadcasts b ON b.id = r.broadcast_id
             LEFT JOIN users u ON u.bot_id = b.bot_id AND u.user_id = r.user_id
            WHERE r.broadcast_id = $1 AND r.state IN ('pending', 'sending') AND r.user_id > $2
            ORDER BY r.user_id LIMIT $3""", broadcast_id, after, limit)
    return [Recipient(r["user_id"], r["state"], r["tries"], r["banned"]) for r in rows]


async def intend(db: Database, lock_name: str, epoch: int, broadcast_id: int, user_id: int) -> int | None:
    """The intent before the call: the row 'sending', tries + 1; its tries, or None when the
    broadcast is no longer running (paused, cancelled) or the user has an outcome already."""
    async with fenced(db, lock_name, epoch) as conn:
        tries = await conn.fetchval(
            """UPDATE broadcast_recipients r SET state = 'sending', tries = r.tries + 1, epoch = $3, updated_at = now()
                WHERE r.broadcast_id = $1 AND r.user_id = $2 AND r.state IN ('pending', 'sending')
                  AND EXISTS (SELECT 1 FROM broadcasts b WHERE b.id = $1 AND b.state = 'running')
                RETURNING r.tries""", broadcast_id, user_id, epoch)
    return None if tries is None else int(tries)


async def record(db: Database, lock_name: str, epoch: int, bot_id: int, broadcast_id: int, user_id: int,
                 outcome: Outcome, error: str | None = None) -> bool:
    """A recipient's outcome, once (False: it had one already), counted on the broadcast in the same
    fenced transaction; 'blocked' also marks the user as having blocked the bot, so no later
    broadcast counts them."""
    # the user's row changes with a 'blocked' outcome: the leader's copy goes once that commits
    with forgetting(db, bot_id, user_id) if outcome == "blocked" else contextlib.nullcontext():
        async with fenced(db, lock_name, epoch) as conn:
            done = await conn.fetchval(
                """UPDATE broadcast_recipients SET state = $3, error = $4, epoch = $5, updated_at = now()
                    WHERE broadcast_id = $1 AND user_id = $2 AND state IN ('pending', 'sending') RETURNING 1""",
                broadcast_id, user_id, outcome, error, epoch)
            if done is None:
                return False
            column = {"sent": "sent", "blocked": "blocked", "failed": "failed"}[outcome]  # never a caller's text
            await conn.execute(f"UPDATE broadcasts SET {column} = {column} + 1, epoch = $2 WHERE id = $1",
                               broadcast_id, epoch)
            if outcome == "blocked":
                await conn.execute("UPDATE users SET blocked = true WHERE bot_id = $1 AND user_id = $2",
                                   bot_id, user_id)
            return True


async def set_progress_message(db: Database, lock_name: str, epoch: int, broadcast_id: int, message_id: int) -> None:
    async with fenced(db, lock_name, epoch) as conn:
        await conn.execute("UPDATE broadcasts SET progress_message_id = $2 WHERE id = $1", broadcast_id, message_id)


async def finish(db: Database, lock_name: str, epoch: int, broadcast_id: int) -> Broadcast | None:
    """Every recipient has an outcome: a running broadcast is done (a paused or cancelled one keeps its state)."""
    async with fenced(db, lock_name, epoch) as conn:
        row = await conn.fetchrow(
            f"""UPDATE broadcasts b SET state = 'done', finished_at = now(), epoch = $2
                 WHERE id = $1 AND state = 'running' AND NOT EXISTS (
                       SELECT 1 FROM broadcast_recipients r
                        WHERE r.broadcast_id = $1 AND r.state IN ('pending', 'sending'))
             RETURNING {_COLUMNS}""", broadcast_id, epoch)
    return None if row is None else _broadcast(row)


async def told(db: Database, lock_name: str, epoch: int, broadcast_id: int) -> None:
    """The admin got the final counts."""
    async with fenced(db, lock_name, epoch) as conn:
        await conn.execute("UPDATE broadcasts SET told_at = now() WHERE id = $1 AND told_at IS NULL", broadcast_id)


async def outcomes(db: Database, broadcast_id: int) -> dict[int, tuple[str, int]]:
    """user_id -> (state, tries) of every recipient (tests, operators)."""
    rows = await db.require().fetch(
        "SELECT user_id, state, tries FROM broadcast_recipients WHERE broadcast_id = $1", broadcast_id)
    return {r["user_id"]: (r["state"], r["tries"]) for r in rows}
