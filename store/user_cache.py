"""The users rows the leader has read in its epoch, so a known user's update costs no round trip.

Every update reads its sender's row (banned? blocked? which language?) before any handler runs,
and for a user met before that read almost always returns what the last one did. Every writer of
those columns is in store/ and runs in the leader, the one process that handles the user's
updates, so the row can be kept if each writer forgets it:

- an entry serves only readers of the epoch it was read in: a new leader, or this one leading
  again, reads afresh whatever another leader wrote meanwhile (the cache is dropped with the epoch);
- a writer forgets the user after its write, however the write ends, and a read that began before
  a forget of its user is not kept: a row read just before a ban committed never outlives the ban;
- an entry is at most `ttl` seconds old, which bounds what a write from outside the program (psql
  by hand) leaves unseen;
- at most `size` users are kept, the least recently used going first.

One cache per Database (per process's pool): a test's fresh database never sees another's rows.
"""

from __future__ import annotations

import time
import weakref
from collections import OrderedDict
from collections.abc import Callable
from typing import Generic, TypeVar

from store.database import Database

Row = TypeVar("Row")
Key = tuple[int, int]  # (bot_id, user_id)

SIZE = 20_000
TTL = 60.0


class UserCache(Generic[Row]):
    def __init__(self, size: int = SIZE, ttl: float = TTL, clock: Callable[[], float] = time.monotonic) -> None:
        self.size, self.ttl, self.clock = size, ttl, clock
        self.epoch = 0  # the newest epoch seen; rows of older ones are dropped
        self.rows: OrderedDict[Key, tuple[int, float, Row]] = OrderedDict()  # key -> (epoch, read at, row)
        self.forgets = 0  # forgets so far: a read remembers the count it began at
        self.forgotten: dict[Key, int] = {}  # key -> the count at its last forget
        self.floor = 0  # reads begun before this count are not kept (`forgotten` was cleared then)

    def get(self, bot_id: int, user_id: int, epoch: int) -> Row | None:
        key = (bot_id, user_id)
        kept = self.rows.get(key)
        if kept is None or kept[0] != epoch:
            return None
        if self.clock() - kept[1] > self.ttl:
            del self.rows[key]
            return None
        self.rows.move_to_end(key)
        return kept[2]

    def begin(self) -> int:
        """Call before reading a row from the database; pass the result to put()."""
        return self.forgets

    def put(self, bot_id: int, user_id: int, epoch: int, row: Row, began: int) -> None:
        """Keep `row`, read under `epoch` by a read that began at `began`, unless a forget of this
        user came since or the epoch is no longer the newest."""
        key = (bot_id, user_id)
        if began < self.floor or self.forgotten.get(key, -1) > began or epoch < self.epoch:
            return
        if epoch > self.epoch:
            self.epoch = epoch
            self.rows.clear()
        self.rows[key] = (epoch, self.clock(), row)
        self.rows.move_to_end(key)
        if len(self.rows) > self.size:
            self.rows.popitem(last=False)

    def forget(self, bot_id: int, user_id: int) -> None:
        """A writer changed (or may have changed) the user's row."""
        key = (bot_id, user_id)
        self.rows.pop(key, None)
        self.forgets += 1
        if len(self.forgotten) >= self.size:
            self.forgotten.clear()
            self.floor = self.forgets
        self.forgotten[key] = self.forgets


_CACHES: weakref.WeakKeyDictionary[Database, UserCache[object]] = weakref.WeakKeyDictionary()


def of(db: Database) -> UserCache[object]:
    """The cache of `db` (made on first use)."""
    cache = _CACHES.get(db)
    if cache is None:
        cache = _CACHES[db] = UserCache()
    return cache
