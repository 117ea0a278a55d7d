"""What the first screen says of a user: their available kopecks and the free generations they
used today, read in one round trip, shared with the users whose first screen is read at the same
moment (store/batching.py). /start is most of the traffic, and for a known user this is its one
statement."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date

from store import batching
from store.database import Database
from store.jobs import COUNTS_AS_FREE

# read()'s statement (store/warmup.py prepares it on every new pool connection)
STANDING = f"""SELECT COALESCE((SELECT balance - held FROM accounts WHERE bot_id = $1 AND user_id = $2), 0)
                          AS available,
                      (SELECT count(*) FROM jobs WHERE bot_id = $1 AND user_id = $2 AND free_day = $3
                          AND {COUNTS_AS_FREE}) AS used"""


# many users' standing at once: one row per user of $2
STANDINGS = f"""SELECT u.user_id,
                       COALESCE((SELECT balance - held FROM accounts a
                                  WHERE a.bot_id = $1 AND a.user_id = u.user_id), 0) AS available,
                       (SELECT count(*) FROM jobs j
                         WHERE j.bot_id = $1 AND j.user_id = u.user_id AND j.free_day = $3
                           AND {COUNTS_AS_FREE}) AS used
                  FROM unnest($2::bigint[]) AS u(user_id)"""
BATCHER = "standing"


async def read(db: Database, bot_id: int, user_id: int, day: date) -> tuple[int, int]:
    """The user's available kopecks and the free generations used on `day`. A read that began
    after a write committed sees it, alone or batched."""
    return await batching.shared(db, BATCHER, _standings).submit((bot_id, user_id, day))


async def _standings(db: Database, asked: Sequence[tuple[int, int, date]]) -> list[tuple[int, int]]:
    found: dict[tuple[int, int, date], tuple[int, int]] = {}
    groups: dict[tuple[int, date], list[int]] = {}
    for bot_id, user_id, day in asked:
        users = groups.setdefault((bot_id, day), [])
        if user_id not in users:
            users.append(user_id)
    for (bot_id, day), users in groups.items():
        if len(users) == 1:
            row = await db.require().fetchrow(STANDING, bot_id, users[0], day)
            assert row is not None
            found[bot_id, users[0], day] = (int(row["available"]), int(row["used"]))
            continue
        for row in await db.require().fetch(STANDINGS, bot_id, users, day):
            found[bot_id, row["user_id"], day] = (int(row["available"]), int(row["used"]))
    return [found[key] for key in asked]
