"""aiogram's FSM storage on PostgreSQL (store/fsm.py): a wizard survives restarts and failover.

This is the adapter only: aiogram's key and state types in, the store's plain key out; data must
be a JSON-serialisable dict. `forget` ends a wizard in one statement where aiogram's
FSMContext.clear takes two writes.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from aiogram.exceptions import DataNotDictLikeError
from aiogram.fsm.context import FSMContext
from aiogram.fsm.state import State
from aiogram.fsm.storage.base import BaseStorage, StateType, StorageKey

from store import fsm
from store.database import Database


def _key(key: StorageKey) -> fsm.Key:
    return (key.bot_id, key.chat_id, key.user_id, key.thread_id or 0, key.business_connection_id or "",
            key.destiny)


def _dict(data: Mapping[str, Any], kind: type = dict) -> dict[str, Any]:
    """aiogram's contract: set_data takes a dict, update_data any mapping."""
    if not isinstance(data, kind):
        raise DataNotDictLikeError(f"Data must be a dict or dict-like object, got {type(data).__name__}")
    return dict(data)


class PostgresStorage(BaseStorage):
    """FSM storage in the `fsm` table."""

    def __init__(self, database: Database) -> None:
        self.database = database

    async def set_state(self, key: StorageKey, state: StateType = None) -> None:
        await fsm.set_state(self.database, _key(key), state.state if isinstance(state, State) else state)

    async def get_state(self, key: StorageKey) -> str | None:
        return await fsm.get_state(self.database, _key(key))

    async def set_data(self, key: StorageKey, data: Mapping[str, Any]) -> None:
        await fsm.set_data(self.database, _key(key), _dict(data))

    async def get_data(self, key: StorageKey) -> dict[str, Any]:
        return await fsm.get_data(self.database, _key(key))

    async def update_data(self, key: StorageKey, data: Mapping[str, Any]) -> dict[str, Any]:
        """Merges `data` into the stored dict in one statement (atomic against concurrent updates)."""
        return await fsm.merge_data(self.database, _key(key), _dict(data, Mapping))

    async def clear(self, key: StorageKey) -> str | None:
        """State and data gone in one statement (FSMContext.clear takes two); returns the state it had."""
        return await fsm.clear(self.database, _key(key))

    async def close(self) -> None:
        """Nothing to close: the pool belongs to the Database handle."""


async def forget(state: FSMContext) -> str | None:
    """Ends any wizard: state and data cleared, the state it was in returned."""
    if isinstance(state.storage, PostgresStorage):
        return await state.storage.clear(state.key)
    previous = await state.get_state()
    await state.clear()
    return previous
