"""The stock aiogram 3 webhook app as people run it in production: the second anchor of bench.e2e.

    .venv/bin/python -m bench.stock_prod_app --port 8091 --api-base http://127.0.0.1:8081 --secret S \
        --database-url postgresql://...

bench/stock_app.py is the bare minimum (MemoryStorage, no database): what aiogram costs. A real
bot also keeps its users and its FSM somewhere that survives a restart, and pays for it on every
update. This one is the same dispatcher and routers (the same /start answer, the same menu), plus
what the typical production bot adds:

* an asyncpg pool (asyncpg's defaults, 10 connections), its tables created on start;
* an outer middleware on every update that upserts the user (INSERT ... ON CONFLICT DO UPDATE of
  username, language and last_seen, RETURNING the row for the handlers as `db_user`);
* the FSM in PostgreSQL: a small BaseStorage over asyncpg, one row per (bot_id, chat_id, user_id),
  so /start's "leave any wizard" reads the state and clears it (aiogram's FSMContext.clear: two
  writes), after aiogram's own FSM middleware has read the state once.

Like the bare app it acknowledges before handling (handle_in_background=True): an acknowledged
update is lost if the process dies. The comparison shows what TRT's architecture is worth beside
what people actually deploy, not only beside the bare minimum.
"""

from __future__ import annotations

import argparse
import asyncio
import json
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import asyncpg
from aiogram import BaseMiddleware, Bot
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer
from aiogram.exceptions import DataNotDictLikeError
from aiogram.fsm.state import State
from aiogram.fsm.storage.base import BaseStorage, StateType, StorageKey
from aiogram.types import TelegramObject, User
from aiogram.webhook.aiohttp_server import SimpleRequestHandler, setup_application
from aiohttp import web

from bot.conversation import build_dispatcher
from tests.procs import FAKE_TOKEN

SCHEMA = """
CREATE TABLE IF NOT EXISTS users (
    id            bigint PRIMARY KEY,
    username      text,
    first_name    text NOT NULL DEFAULT '',
    language_code text,
    created_at    timestamptz NOT NULL DEFAULT now(),
    last_seen     timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE IF NOT EXISTS fsm (
    bot_id  bigint NOT NULL,
    chat_id bigint NOT NULL,
    user_id bigint NOT NULL,
    state   text,
    data    jsonb NOT NULL DEFAULT '{}',
    PRIMARY KEY (bot_id, chat_id, user_id)
);
"""

UPSERT_USER = """
INSERT INTO users (id, username, first_name, language_code, last_seen)
VALUES ($1, $2, $3, $4, now())
ON CONFLICT (id) DO UPDATE
   SET username = EXCLUDED.username, first_name = EXCLUDED.first_name,
       language_code = EXCLUDED.language_code, last_seen = now()
RETURNING *
"""


class PostgresStorage(BaseStorage):
    """aiogram's FSM in one table, one statement per call, as the storages people write look."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool

    @staticmethod
    def _key(key: StorageKey) -> tuple[int, int, int]:
        return key.bot_id, key.chat_id, key.user_id

    async def set_state(self, key: StorageKey, state: StateType = None) -> None:
        value = state.state if isinstance(state, State) else state
        await self.pool.execute(
            """INSERT INTO fsm (bot_id, chat_id, user_id, state) VALUES ($1, $2, $3, $4)
               ON CONFLICT (bot_id, chat_id, user_id) DO UPDATE SET state = EXCLUDED.state""",
            *self._key(key), value)

    async def get_state(self, key: StorageKey) -> str | None:
        state: str | None = await self.pool.fetchval(
            "SELECT state FROM fsm WHERE bot_id = $1 AND chat_id = $2 AND user_id = $3", *self._key(key))
        return state

    async def set_data(self, key: StorageKey, data: Mapping[str, Any]) -> None:
        if not isinstance(data, dict):
            raise DataNotDictLikeError(f"Data must be a dict or dict-like object, got {type(data).__name__}")
        await self.pool.execute(
            """INSERT INTO fsm (bot_id, chat_id, user_id, data) VALUES ($1, $2, $3, $4::jsonb)
               ON CONFLICT (bot_id, chat_id, user_id) DO UPDATE SET data = EXCLUDED.data""",
            *self._key(key), json.dumps(data))

    async def get_data(self, key: StorageKey) -> dict[str, Any]:
        raw = await self.pool.fetchval(
            "SELECT data FROM fsm WHERE bot_id = $1 AND chat_id = $2 AND user_id = $3", *self._key(key))
        data: dict[str, Any] = json.loads(raw) if raw is not None else {}
        return data

    async def close(self) -> None:
        await self.pool.close()


class UpsertUser(BaseMiddleware):
    """Every update from a user refreshes that user's row (the typical bot's "users" middleware)."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool

    async def __call__(self, handler: Callable[[TelegramObject, dict[str, Any]], Awaitable[Any]],
                       event: TelegramObject, data: dict[str, Any]) -> Any:
        user: User | None = data.get("event_from_user")
        if user is not None:
            data["db_user"] = await self.pool.fetchrow(UPSERT_USER, user.id, user.username, user.first_name,
                                                       user.language_code)
        return await handler(event, data)


async def serve(port: int, api_base: str, secret: str, database_url: str) -> None:
    pool = await asyncpg.create_pool(database_url)
    await pool.execute(SCHEMA)
    bot = Bot(FAKE_TOKEN, session=AiohttpSession(api=TelegramAPIServer.from_base(api_base), timeout=30))
    dp = build_dispatcher(storage=PostgresStorage(pool))
    dp.update.outer_middleware(UpsertUser(pool))  # after aiogram's own: event_from_user is known
    app = web.Application()
    SimpleRequestHandler(dispatcher=dp, bot=bot, secret_token=secret, handle_in_background=True).register(
        app, path="/webhook")
    async def health(_: web.Request) -> web.Response:
        return web.json_response({"status": "pass"})

    app.router.add_get("/health", health)
    setup_application(app, dp, bot=bot)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    try:
        await web.TCPSite(runner, "127.0.0.1", port).start()
        await asyncio.Event().wait()  # served until the process is stopped
    finally:
        await runner.cleanup()
        await pool.close()


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.stock_prod_app")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--api-base", required=True)
    parser.add_argument("--secret", required=True)
    parser.add_argument("--database-url", required=True)
    args = parser.parse_args()
    try:
        asyncio.run(serve(args.port, args.api_base, args.secret, args.database_url))
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
