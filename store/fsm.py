"""The `fsm` table: wizard state and data of one (bot, chat, user, thread, business, destiny) key.

Every write is one statement: update_data is a jsonb merge, so two updates of the same key
racing each other both land (aiogram's default read-modify-write would lose one), and a row
that becomes empty (no state, no data) is deleted in the same statement that empties it. The
pool is reached through the Database handle at every call, because the db actor replaces it when
it restarts. bot/fsm_storage.py adapts this to aiogram's storage interface.
"""

from __future__ import annotations

import json
from typing import Any

from store.database import Database

# bot_id, chat_id, user_id, thread_id (0 for none), business_connection_id ('' for none), destiny
Key = tuple[int, int, int, int, str, str]

_KEY = "bot_id = $1 AND chat_id = $2 AND user_id = $3 AND thread_id = $4 AND business_id = $5 AND destiny = $6"
_COLUMNS = "bot_id, chat_id, user_id, thread_id, business_id, destiny"
# the statements of every wizard press: read first, cleared when a job is confirmed (store/warmup.py
# prepares both on every new pool connection)
READ = f"SELECT state, data::text FROM fsm WHERE {_KEY}"
CLEAR = f"DELETE FROM fsm WHERE {_KEY} RETURNING state"


async def set_state(database: Database, key: Key, state: str | None) -> None:
    pool = database.require()
    if state is None:  # one statement: the row goes when nothing else is left in it
        await pool.execute(
            f"""WITH gone AS (DELETE FROM fsm WHERE {_KEY} AND data = '{{}}'::jsonb RETURNING 1)
                UPDATE fsm SET state = NULL, updated_at = now()
                 WHERE {_KEY} AND NOT EXISTS (SELECT 1 FROM gone)""", *key)
        return
    await pool.execute(
        f"""INSERT INTO fsm ({_COLUMNS}, state) VALUES ($1, $2, $3, $4, $5, $6, $7)
            ON CONFLICT ({_COLUMNS}) DO UPDATE SET state = EXCLUDED.state, updated_at = now()""",
        *key, state)


async def get_state(database: Database, key: Key) -> str | None:
    value: str | None = await database.require().fetchval(f"SELECT state FROM fsm WHERE {_KEY}", *key)
    return value


async def set_data(database: Database, key: Key, data: dict[str, Any]) -> None:
    pool = database.require()
    if not data:
        await pool.execute(
            f"""WITH gone AS (DELETE FROM fsm WHERE {_KEY} AND state IS NULL RETURNING 1)
                UPDATE fsm SET data = '{{}}', updated_at = now()
                 WHERE {_KEY} AND NOT EXISTS (SELECT 1 FROM gone)""", *key)
        return
    await pool.execute(
        f"""INSERT INTO fsm ({_COLUMNS}, data) VALUES ($1, $2, $3, $4, $5, $6, $7::jsonb)
            ON CONFLICT ({_COLUMNS}) DO UPDATE SET data = EXCLUDED.data, updated_at = now()""",
        *key, json.dumps(data, ensure_ascii=False))


async def get(database: Database, key: Key) -> tuple[str | None, dict[str, Any]]:
    """State and data in one read (a cache fills both halves at once)."""
    row = await database.require().fetchrow(READ, *key)
    return (None, {}) if row is None else (row["state"], dict(json.loads(row["data"])))


async def get_data(database: Database, key: Key) -> dict[str, Any]:
    raw = await database.require().fetchval(f"SELECT data::text FROM fsm WHERE {_KEY}", *key)
    return {} if raw is None else dict(json.loads(raw))


async def merge_data(database: Database, key: Key, data: dict[str, Any]) -> dict[str, Any]:
    """Merges `data` into the stored dict in one statement (atomic against concurrent merges)."""
    if not data:  # nothing to merge: read, so that an empty key still leaves no row
        return await get_data(database, key)
    raw = await database.require().fetchval(
        f"""INSERT INTO fsm ({_COLUMNS}, data) VALUES ($1, $2, $3, $4, $5, $6, $7::jsonb)
            ON CONFLICT ({_COLUMNS}) DO UPDATE SET data = fsm.data || EXCLUDED.data, updated_at = now()
            RETURNING data::text""",
        *key, json.dumps(data, ensure_ascii=False))
    return dict(json.loads(raw))


async def clear(database: Database, key: Key) -> str | None:
    """State and data gone in one statement; returns the state it had."""
    previous: str | None = await database.require().fetchval(CLEAR, *key)
    return previous
