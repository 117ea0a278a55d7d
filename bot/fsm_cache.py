"""The leader's FSM, kept in memory and written through to PostgreSQL.

Why it exists: every update read its chat's state from the database, and /start cleared a state
that was not there (issue 21: each is a round trip, and round trips are most of an update's
cost). Only the consuming dispatcher handles updates, one at a time per chat, so while it
consumes, every write to a key goes through this object: what it has read or written is what
the table holds, and a read or a clear of a known key needs no statement. It must start empty
whenever this process begins consuming (`reset`, called by the dispatcher with each new claim
session): another instance may have led, and written, meanwhile. Writes still go to the table
first (a restart or a failover loses nothing), and each key's write and cache update happen under
one lock, so two writers of a key (a user's own update and an admin's credit) leave the cache as
the table ends. Bounded: the least recently used keys are forgotten (read again when needed).
"""

from __future__ import annotations

import asyncio
import copy
from collections import OrderedDict
from collections.abc import Mapping
from typing import Any

from aiogram.fsm.state import State
from aiogram.fsm.storage.base import StateType, StorageKey

from bot.fsm_storage import PostgresStorage, _dict, _key
from ingest.turns import away
from store import fsm
from store.database import Database

MAX_KEYS = 50_000
STRIPES = 256  # locks shared by keys: a key's write and its cache update are one step


class CachedStorage(PostgresStorage):
    """PostgresStorage with the leader's read cache (see the module's docstring)."""

    def __init__(self, database: Database, max_keys: int = MAX_KEYS) -> None:
        super().__init__(database)
        self.max_keys = max_keys
        self._known: OrderedDict[fsm.Key, tuple[str | None, dict[str, Any]]] = OrderedDict()
        self._locks = [asyncio.Lock() for _ in range(STRIPES)]
        self.hits = 0
        self.misses = 0

    def reset(self) -> None:
        """Forget everything: this process (re)starts consuming, and the table is the truth."""
        self._known.clear()

    def _lock(self, key: fsm.Key) -> asyncio.Lock:
        return self._locks[hash(key) % STRIPES]

    def _remember(self, key: fsm.Key, state: str | None, data: dict[str, Any]) -> None:
        self._known[key] = (state, data)
        self._known.move_to_end(key)
        while len(self._known) > self.max_keys:
            self._known.popitem(last=False)

    async def _entry(self, key: fsm.Key) -> tuple[str | None, dict[str, Any]]:
        found = self._known.get(key)
        if found is not None:
            self.hits += 1
            self._known.move_to_end(key)
            return found
        self.misses += 1
        async with self._lock(key):
            found = self._known.get(key)  # filled by a writer while we waited
            if found is None:
                # without a turn (ingest/turns.py): a chat's first update reads before any work of
                # its own, and every first contact's does (a Confirm's wizard is kept by then)
                async with away():
                    found = await fsm.get(self.database, key)
                self._remember(key, *found)
            return found

    async def nothing_stored(self, key: StorageKey) -> None:
        """The table holds nothing under `key` (the user's first contact just found so, in the
        same round trip): the key's first read needs no statement. A known key is left as it is."""
        plain = _key(key)
        async with self._lock(plain):
            if plain not in self._known:
                self._remember(plain, None, {})

    async def get_state(self, key: StorageKey) -> str | None:
        return (await self._entry(_key(key)))[0]

    async def get_data(self, key: StorageKey) -> dict[str, Any]:
        return copy.deepcopy((await self._entry(_key(key)))[1])

    async def set_state(self, key: StorageKey, state: StateType = None) -> None:
        plain = _key(key)
        value = state.state if isinstance(state, State) else state
        async with self._lock(plain):
            known = self._known.get(plain)
            if known is not None and known[0] == value:
                return  # the table holds it already
            await fsm.set_state(self.database, plain, value)
            if known is not None:
                self._remember(plain, value, known[1])

    async def set_data(self, key: StorageKey, data: Mapping[str, Any]) -> None:
        plain, value = _key(key), _dict(data)
        async with self._lock(plain):
            await fsm.set_data(self.database, plain, value)
            known = self._known.get(plain)
            if known is not None:
                self._remember(plain, known[0], copy.deepcopy(value))

    async def update_data(self, key: StorageKey, data: Mapping[str, Any]) -> dict[str, Any]:
        plain = _key(key)
        async with self._lock(plain):
            merged = await fsm.merge_data(self.database, plain, _dict(data, Mapping))
            known = self._known.get(plain)
            if known is not None:
                self._remember(plain, known[0], copy.deepcopy(merged))
            return merged

    async def clear(self, key: StorageKey) -> str | None:
        plain = _key(key)
        async with self._lock(plain):
            known = self._known.get(plain)
            if known == (None, {}):
                return None  # nothing there: no statement
            previous = await fsm.clear(self.database, plain)
            self._remember(plain, None, {})
            return previous
