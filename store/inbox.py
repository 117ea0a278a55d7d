"""The inbox of Telegram updates: appended before the ack, claimed under the fence, marked done.

Ingress appends in batches (one statement for many concurrent requests); the dispatcher claims
the oldest unfinished updates in update_id order under the leader's epoch, so a woken ex-leader
cannot take work, and marks them done in batches. The janitor trims by age.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from store.database import Database
from store.fence import fenced


@dataclass(frozen=True, slots=True)
class Incoming:
    """An update as ingress (or the poller) validated it."""

    update_id: int
    kind: str
    chat_key: int | None
    payload: str


@dataclass(frozen=True, slots=True)
class Claimed(Incoming):
    """An update the dispatcher now owns under its epoch; `attempts` counts this claim too."""

    attempts: int


async def append_batch(db: Database, bot_id: int, instance: str, rows: Sequence[Incoming]) -> set[int]:
    """Insert the batch in one statement; returns the update_ids that were new (not redeliveries)."""
    records = await db.require().fetch(
        """INSERT INTO inbox (bot_id, update_id, kind, chat_key, payload, received_by)
           SELECT $1, u.update_id, u.kind, u.chat_key, u.payload, $2
             FROM unnest($3::bigint[], $4::text[], $5::bigint[], $6::text[]) AS u(update_id, kind, chat_key, payload)
           ON CONFLICT (bot_id, update_id) DO NOTHING
           RETURNING update_id""",
        bot_id, instance,
        [r.update_id for r in rows], [r.kind for r in rows], [r.chat_key for r in rows], [r.payload for r in rows],
    )
    return {r["update_id"] for r in records}


_TAKE_OVER = "state < 2 AND (state = 0 OR claimed_by IS DISTINCT FROM $4)"
_UNCLAIMED = "state = 0"


def _claim_sql(where: str) -> str:
    return f"""WITH picked AS (
                   SELECT update_id FROM inbox
                    WHERE bot_id = $1 AND {where}
                    ORDER BY update_id
                    LIMIT $2
                    FOR UPDATE
               )
               UPDATE inbox i
                  SET state = 1, claimed_epoch = $3, claimed_by = $4, claimed_at = now(),
                      attempts = i.attempts + 1
                 FROM picked
                WHERE i.bot_id = $1 AND i.update_id = picked.update_id
               RETURNING i.update_id, i.kind, i.chat_key, i.payload, i.attempts"""


# claim()'s statements by `take_over` (store/warmup.py prepares both on every new pool connection)
CLAIM = {True: _claim_sql(_TAKE_OVER), False: _claim_sql(_UNCLAIMED)}


async def claim(db: Database, lock_name: str, epoch: int, bot_id: int, limit: int, session: str, *,
                take_over: bool = True) -> list[Claimed]:
    """Claim up to `limit` unfinished updates, oldest first, fenced by `epoch`, for `session`.

    With `take_over`, updates claimed by any other session are taken over too: the fence proves
    we lead now, so their owner (an earlier leader, or this process before its dispatcher
    restarted) has stopped with them in flight; only the caller's own claims are skipped. A
    session needs that once: after its first claim under the fence no other session can claim
    (theirs would be fenced), so its later claims read only unclaimed rows (`take_over=False`,
    the inbox_unclaimed index) instead of stepping over every update it holds.
    """
    async with fenced(db, lock_name, epoch) as conn:
        records = await conn.fetch(CLAIM[take_over], bot_id, limit, epoch, session)
    out = [Claimed(r["update_id"], r["kind"], r["chat_key"], r["payload"], r["attempts"]) for r in records]
    out.sort(key=lambda c: c.update_id)
    return out


# mark_done()'s statement: its arrays make asyncpg read their types once per connection, which
# store/warmup.py does on every new pool connection. The `= ANY($2)` repeats the join's condition
# for the index: without it, a batch of a couple of hundred marks (a busy minute) on an inbox that
# grew since its last ANALYZE made the planner hash-join the whole bot's inbox, reading every row
# it kept (12,000 rows, 7 ms, growing with the table) where the ids' own entries take 1 ms.
MARK_DONE = """UPDATE inbox SET state = 2, done_at = now(), outcome = u.outcome
                 FROM unnest($2::bigint[], $3::text[]) AS u(update_id, outcome)
                WHERE inbox.bot_id = $1 AND inbox.update_id = ANY($2::bigint[])
                  AND inbox.update_id = u.update_id"""


async def mark_done(db: Database, bot_id: int, done: Sequence[tuple[int, str]]) -> None:
    """Mark (update_id, outcome) pairs done in one statement."""
    await db.require().execute(MARK_DONE, bot_id, [u for u, _ in done], [o for _, o in done])


@dataclass(frozen=True, slots=True)
class Depth:
    pending: int  # unfinished updates
    oldest_age: float  # seconds since the oldest unfinished one arrived (0 when none)
    foreign_claims: int  # claimed by another consuming session than `session`
    foreign_claim_age: float  # seconds the oldest of those has been claimed (0 when none)


async def depth(db: Database, bot_id: int, session: str = "") -> Depth:
    """The inbox's backlog, and the claims held by a session other than `session` (the caller's):
    while the caller consumes, those are taken over at its next sweep, so an old one is stuck work."""
    row = await db.require().fetchrow(
        """SELECT count(*) AS n, COALESCE(EXTRACT(EPOCH FROM now() - min(received_at)), 0) AS age,
                  count(*) FILTER (WHERE state = 1 AND claimed_by IS DISTINCT FROM $2) AS foreign_n,
                  COALESCE(EXTRACT(EPOCH FROM now() - min(claimed_at)
                           FILTER (WHERE state = 1 AND claimed_by IS DISTINCT FROM $2)), 0) AS foreign_age
             FROM inbox WHERE bot_id = $1 AND state < 2""",
        bot_id, session,
    )
    assert row is not None
    return Depth(int(row["n"]), float(row["age"]), int(row["foreign_n"]), float(row["foreign_age"]))


async def trim(db: Database, bot_id: int, older_than_seconds: float) -> tuple[int, int]:
    """Delete this bot's handled updates received before the retention; returns (removed, unfinished).

    Only done rows go: another bot on the same database keeps its own, and an update not yet
    handled is work, not history; `unfinished` counts this bot's older rows left undone, for the
    janitor to report.
    """
    row = await db.require().fetchrow(
        """WITH gone AS (
               DELETE FROM inbox
                WHERE bot_id = $1 AND state = 2 AND received_at < now() - make_interval(secs => $2)
               RETURNING 1
           )
           SELECT (SELECT count(*) FROM gone) AS removed,
                  (SELECT count(*) FROM inbox
                    WHERE bot_id = $1 AND state < 2 AND received_at < now() - make_interval(secs => $2)
                  ) AS unfinished""",
        bot_id, float(older_than_seconds),
    )
    assert row is not None
    return int(row["removed"]), int(row["unfinished"])
