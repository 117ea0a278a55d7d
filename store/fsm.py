"""aiogram FSM storage on PostgreSQL: wizard state and data survive restarts and failover.

The pool is reached through the Database handle at every call, because the db actor replaces it
when it restarts. update_data is one statement (a jsonb merge), so two updates of the same key
racing each other both land; aiogram's default read-modify-write would lose one.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from aiogram.exceptions import DataNotDictLikeError
from aiogram.fsm.state import State
from aiogram.fsm.storage.base import BaseStorage, StateType, StorageKey

from store.database import Database

_KEY = "bot_id = $1 AND chat_id = $2 AND user_id = $3 AND thread_id = $4 AND business_id = $5 AND destiny = $6"
_COLUMNS = "bot_id, chat_id, user_id, thread_id, business_id, destiny"


def _key(key: StorageKey) -> tuple[int, int, int, int, str, str]:
    return (key.bot_id, key.chat_id, key.user_id, key.thread_id or 0, key.business_connection_id or "",
            key.destiny)


def _dict(data: Mapping[str, Any]) -> dict[str, Any]:
    if not isinstance(data, dict):
        raise DataNotDictLikeError(f"Data must be a dict or dict-like object, got {type(data).__name__}")
    return data


class PostgresStorage(BaseStorage):
    """FSM storage in the `fsm` table; data must be JSON-serialisable."""

    def __init__(self, database: Database) -> None:
        self.database = database

    async def set_state(self, key: StorageKey, state: StateType = None) -> None:
        value = state.state if isinstance(state, State) else state
        pool = self.database.require()
        if value is None:  # one statement: the row goes when nothing else is left in it
            await pool.execute(
                f"""WITH gone AS (DELETE FROM fsm WHERE {_KEY} AND data = '{{}}'::jsonb RETURNING 1)
                    UPDATE fsm SET state = NULL, updated_at = now()
                     WHERE {_KEY} AND NOT EXISTS (SELECT 1 FROM gone)""", *_key(key))
            return
        await pool.execute(
            f"""INSERT INTO fsm ({_COLUMNS}, state) VALUES ($1, $2, $3, $4, $5, $6, $7)
                ON CONFLICT ({_COLUMNS}) DO UPDATE SET state = EXCLUDED.state, updated_at = now()""",
            *_key(key), value)

    async def get_state(self, key: StorageKey) -> str | None:
        value: str | None = await self.database.require().fetchval(f"SELECT state FROM fsm WHERE {_KEY}", *_key(key))
        return value

    async def set_data(self, key: StorageKey, data: Mapping[str, Any]) -> None:
        payload = json.dumps(_dict(data), ensure_ascii=False)
        pool = self.database.require()
        if not data:
            await pool.execute(
                f"""WITH gone AS (DELETE FROM fsm WHERE {_KEY} AND state IS NULL RETURNING 1)
                    UPDATE fsm SET data = '{{}}', updated_at = now()
                     WHERE {_KEY} AND NOT EXISTS (SELECT 1 FROM gone)""", *_key(key))
            return
        await pool.execute(
            f"""INSERT INTO fsm ({_COLUMNS}, data) VALUES ($1, $2, $3, $4, $5, $6, $7::jsonb)
                ON CONFLICT ({_COLUMNS}) DO UPDATE SET data = EXCLUDED.data, updated_at = now()""",
            *_key(key), payload)

    async def get_data(self, key: StorageKey) -> dict[str, Any]:
        raw = await self.database.require().fetchval(f"SELECT data::text FROM fsm WHERE {_KEY}", *_key(key))
        return {} if raw is None else dict(json.loads(raw))

    async def update_data(self, key: StorageKey, data: Mapping[str, Any]) -> dict[str, Any]:
        """Merges `data` into the stored dict in one statement (atomic against concurrent updates)."""
        if not isinstance(data, Mapping):
            raise DataNotDictLikeError(f"Data must be a dict or dict-like object, got {type(data).__name__}")
        if not data:  # nothing to merge: read, so that an empty key still leaves no row
            return await self.get_data(key)
        payload = json.dumps(dict(data), ensure_ascii=False)
        raw = await self.database.require().fetchval(
            f"""INSERT INTO fsm ({_COLUMNS}, data) VALUES ($1, $2, $3, $4, $5, $6, $7::jsonb)
                ON CONFLICT ({_COLUMNS}) DO UPDATE SET data = fsm.data || EXCLUDED.data, updated_at = now()
                RETURNING data::text""",
            *_key(key), payload)
        return dict(json.loads(raw))

    async def clear(self, key: StorageKey) -> str | None:
        """State and data gone in one statement (FSMContext.clear takes two); returns the state it had."""
        previous: str | None = await self.database.require().fetchval(
            f"DELETE FROM fsm WHERE {_KEY} RETURNING state", *_key(key))
        return previous

    async def close(self) -> None:
        """Nothing to close: the pool belongs to the Database handle."""
