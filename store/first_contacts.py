"""Concurrent first contacts share one round trip.

A first contact is one statement (sql/021), but the client's side of a statement (the pool's
acquire and release, asyncpg's messages, the socket's system calls) cost the dispatcher's thread
64-125 µs of CPU on this machine, ten users in one statement 17-24 µs each. It was the largest
single cost of a newcomer's /start left on that thread (py-spy: 9% of the process's samples in
bench.profile). Newcomers come in bursts (a post that spread, a broadcast's replies), so the
updates in flight meet their users at once: while one statement is out the next ones gather, and
go together as trt_first_contacts (sql/022), which runs trt_first_contact for each user in turn.

Each user is met exactly as alone: the same fence, the same bonus keyed by the user, the same
answer. A user twice in one batch (two updates at once) is met once; the first caller gets the
statement's answer and the other one "not created", as when the two statements ran one after the
other. What fails fails only its own callers:
- a refused fence, a connection or server gone, a deadline: every user of that statement, as
  one statement alone would (they share its epoch and its connection);
- anything else a statement of several users meets (one user's row breaks a constraint) is
  tried again user by user, so one bad row never fails the others.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import asyncpg

from store import batching
from store.database import DB_UNAVAILABLE, Database
from store.fence import FENCED_SQLSTATE

USER_COLUMNS = "user_id, language, first_seen, blocked, banned, ban_told, username, last_seen, lang"
# one user (store/warmup.py prepares both on every new pool connection)
FIRST_CONTACT = (f"SELECT {USER_COLUMNS}, created, chat_clear "
                 "FROM trt_first_contact($1, $2, $3, $4, $5, $6, $7, $8)")
FIRST_CONTACTS = (f"SELECT {USER_COLUMNS}, created, chat_clear "
                  "FROM trt_first_contacts($1, $2, $3, $4::bigint[], $5::text[], $6::text[], $7, $8::text[])")
MAX_BATCH = 100  # users in one statement: a few ms of the server's time at most
PARALLEL = 2  # statements out at once: while one is, the next batch gathers
Group = tuple[str, int, int, int]  # lock, epoch, bot, bonus: what one statement shares


@dataclass(frozen=True, slots=True)
class Newcomer:
    """One meeting: the user, what to create them with, and under which leader epoch."""

    lock_name: str
    epoch: int
    bot_id: int
    user_id: int
    language: str | None
    username: str | None
    bonus: int
    key: str  # the welcome bonus's idempotency key

    @property
    def group(self) -> Group:
        """What the users of one statement share."""
        return self.lock_name, self.epoch, self.bot_id, self.bonus


@dataclass(frozen=True, slots=True)
class Met:
    """The statement's row for the user, and whether this caller came first for them in its batch
    (only the first may take the row's `created`)."""

    row: asyncpg.Record
    first: bool


Outcome = Met | Exception
BATCHER = "first_contacts"


async def meet(db: Database, newcomer: Newcomer) -> Met:
    """The user's row as trt_first_contact returns it, met in a batch with whoever else is being
    met now; raises what its statement raised (store/fence.fence_checked_in_sql maps a refused fence)."""
    outcome = await batching.shared(db, BATCHER, _flush, max_batch=MAX_BATCH, parallel=PARALLEL).submit(newcomer)
    if isinstance(outcome, Exception):
        raise outcome
    return outcome


async def _flush(db: Database, items: Sequence[Newcomer]) -> list[Outcome]:
    """Each item's outcome: one statement per group (normally one), users sorted and each once."""
    groups: dict[Group, dict[int, int]] = {}  # group -> user -> the index of its first caller
    for index, item in enumerate(items):
        groups.setdefault(item.group, {}).setdefault(item.user_id, index)
    rows: dict[tuple[Group, int], asyncpg.Record | Exception] = {}
    for group, firsts in groups.items():
        users = [items[firsts[user]] for user in sorted(firsts)]
        for user, row in zip(sorted(firsts), await _meet_group(db, group, users), strict=True):
            rows[group, user] = row
    out: list[Outcome] = []
    for index, item in enumerate(items):
        row = rows[item.group, item.user_id]
        out.append(row if isinstance(row, Exception) else Met(row, groups[item.group][item.user_id] == index))
    return out


async def _meet_group(db: Database, group: Group, users: list[Newcomer]) -> list[asyncpg.Record | Exception]:
    """The rows of `users` (sorted, distinct) in their order, or for each the error that failed it."""
    lock, epoch, bot, bonus = group
    if len(users) == 1:
        return [await _meet_alone(db, users[0])]
    try:
        found = await db.require().fetch(
            FIRST_CONTACTS, lock, epoch, bot, [u.user_id for u in users], [u.language for u in users],
            [u.username for u in users], bonus, [u.key for u in users])
    except Exception as exc:
        if not _one_of_them(exc):
            return [exc] * len(users)
        return [await _meet_alone(db, user) for user in users]
    by_user = {row["user_id"]: row for row in found}
    missing = RuntimeError("trt_first_contacts returned no row for a user")
    return [by_user.get(user.user_id, missing) for user in users]


async def _meet_alone(db: Database, user: Newcomer) -> asyncpg.Record | Exception:
    try:
        row = await db.require().fetchrow(FIRST_CONTACT, user.lock_name, user.epoch, user.bot_id, user.user_id,
                                          user.language, user.username, user.bonus, user.key)
    except Exception as exc:
        return exc
    return row if row is not None else RuntimeError("trt_first_contact returned no row")


def _one_of_them(exc: Exception) -> bool:
    """Whether a statement's error may be one user's alone (worth trying each alone), rather than
    the statement's: a refused fence, a database gone or a deadline fail each user the same way."""
    if not isinstance(exc, asyncpg.PostgresError) or isinstance(exc, DB_UNAVAILABLE):
        return False
    return getattr(exc, "sqlstate", None) != FENCED_SQLSTATE
