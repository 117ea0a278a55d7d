"""One group commit per Database and event loop, for a statement many callers can share.

Callers of the same statement at the same moment (the updates in flight) each await their own
result, and the rows go in one round trip (store/group_commit.py): the client's side of a
statement, the pool's acquire and release, asyncpg's messages and the socket's system calls, is
paid once per batch on the dispatcher's thread, whose CPU is the process's ceiling. asyncio's
primitives belong to the loop that first used them, so a batcher is kept per loop; it holds its
Database only weakly (the handle is the dictionary's key).
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar

from store.database import Database, DatabaseUnavailable
from store.group_commit import GroupCommit

T = TypeVar("T")
R = TypeVar("R")

_KEPT: weakref.WeakKeyDictionary[Database, dict[str, tuple[asyncio.AbstractEventLoop, GroupCommit[Any, Any]]]] = (
    weakref.WeakKeyDictionary())


def shared(db: Database, name: str, flush: Callable[[Database, Sequence[T]], Awaitable[Sequence[R]]], *,
           max_batch: int = 100, parallel: int = 2) -> GroupCommit[T, R]:
    """The batcher `name` of `db` on the running loop: `flush(db, items)` answers each item."""
    loop = asyncio.get_running_loop()
    kept = _KEPT.setdefault(db, {})
    found = kept.get(name)
    if found is None or found[0] is not loop:
        ref = weakref.ref(db)

        async def run(items: Sequence[T]) -> Sequence[R]:
            database = ref()
            if database is None:
                raise DatabaseUnavailable("the database handle is gone")
            return await flush(database, items)

        found = kept[name] = (loop, GroupCommit(run, max_batch=max_batch, parallel=parallel))
    batcher: GroupCommit[T, R] = found[1]
    return batcher


def stats(db: Database, name: str) -> dict[str, int]:
    """Batches and items through `name` so far on its loop (for tests and benches)."""
    found = _KEPT.get(db, {}).get(name)
    return {"batches": 0, "items": 0} if found is None else {"batches": found[1].batches, "items": found[1].items}
