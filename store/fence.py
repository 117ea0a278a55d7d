"""Fenced transactions: work that must not happen twice across leaders.

Every fenced transaction starts with `SELECT 1 FROM leader WHERE name = $1 AND epoch = $2 FOR
SHARE`. A new leader's epoch bump (an UPDATE of that row) waits for such open transactions, and
once it has committed no old-epoch transaction can start: a frozen ex-leader that wakes up
finds itself fenced instead of acting. Telegram and KIE calls cannot check an epoch, so callers
commit an idempotency key under the fence first and call afterwards.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from contextvars import ContextVar

import asyncpg

from store.database import Database

CHECK = "SELECT 1 FROM leader WHERE name = $1 AND epoch = $2 FOR SHARE"  # (store/warmup.py prepares it)


class Fenced(Exception):
    """Our epoch is no longer the leader's: treat as demotion."""


# fenced transactions committed in this context (one update's handling), or None when nobody counts:
# a deadline that fires after one of them committed an intent means "run the update again", not
# "failed", because the intent's idempotency key lets the next run carry on where this one stopped
_commits: ContextVar[list[int] | None] = ContextVar("fenced_commits", default=None)


@contextmanager
def counting_commits() -> Iterator[list[int]]:
    """Collect the epochs of the fenced transactions committed inside this block (same task)."""
    commits: list[int] = []
    token = _commits.set(commits)
    try:
        yield commits
    finally:
        _commits.reset(token)


@asynccontextmanager
async def fenced(db: Database, name: str, epoch: int) -> AsyncIterator[asyncpg.Connection]:
    """A transaction that commits only while `epoch` is the current leader epoch."""
    async with db.require().acquire() as conn:
        async with conn.transaction():
            ok = await conn.fetchval(CHECK, name, epoch)
            if ok is None:
                raise Fenced(f"epoch {epoch} is no longer the leader of {name}")
            yield conn
        commits = _commits.get()
        if commits is not None:  # reached only when the transaction committed
            commits.append(epoch)


FENCED_SQLSTATE = "TRTF1"  # raised by SQL functions that check the fence themselves (sql/019, 020, 021)


@contextmanager
def fence_checked_in_sql(name: str, epoch: int) -> Iterator[None]:
    """Around one call of a SQL function that checks the fence itself: its refusal is Fenced."""
    try:
        yield
    except asyncpg.PostgresError as exc:
        if getattr(exc, "sqlstate", None) == FENCED_SQLSTATE:
            raise Fenced(f"epoch {epoch} is no longer the leader of {name}") from None
        raise


def committed(epoch: int) -> None:
    """A fenced write committed outside `fenced` (one statement that checked the fence itself)."""
    commits = _commits.get()
    if commits is not None:
        commits.append(epoch)


async def fenced_probe(db: Database, name: str, epoch: int, what: str) -> None:
    """A fenced no-op write (used by /chaos and tests to prove an ex-leader cannot write)."""
    async with fenced(db, name, epoch) as conn:
        await conn.execute("INSERT INTO fenced_writes (name, epoch, what) VALUES ($1, $2, $3)", name, epoch, what)
