"""bench.e2e's production-like anchor (bench/stock_prod_app.py) does what it claims to measure: it
answers /start with the menu through the fake Telegram, and on the way upserts the user and
reads and clears the FSM row in PostgreSQL. If it silently skipped the database, the
"TRT/stock (production-like)" ratio would compare TRT with the bare app under another name."""

from __future__ import annotations

from pathlib import Path

import aiohttp
import asyncpg
import pytest

from bench.harness import HEADERS, stock_prod, update_body
from fakes.telegram_api import FakeTelegram
from tests.procs import FAKE_TOKEN

pytestmark = pytest.mark.timeout(90)

CHAT = 4_100_001
BOT_ID = int(FAKE_TOKEN.split(":")[0])


async def test_the_production_like_stock_app_answers_start_and_keeps_the_user_and_fsm_in_postgres(
        tmp_path: Path, fake: FakeTelegram, database_url: str) -> None:
    async with stock_prod(tmp_path, fake.base_url, database_url) as app:
        conn = await asyncpg.connect(database_url)
        try:
            # a user left in a wizard step: /start must read that state and clear it
            await conn.execute("INSERT INTO fsm (bot_id, chat_id, user_id, state, data) "
                               "VALUES ($1, $2, $2, 'Wiz:prompt', '{\"model\": \"x\"}')", BOT_ID, CHAT)
            async with aiohttp.ClientSession() as session, session.post(
                    app.base + "/webhook", data=update_body(7001, CHAT), headers=HEADERS) as response:
                assert response.status == 200
            sent = await fake.wait_for(1, 30, method="sendMessage", chat_id=CHAT)
            assert sent[0].params.get("reply_markup"), "the menu's keyboard, as the bare stock app sends"

            user = await conn.fetchrow("SELECT username, first_name, language_code FROM users WHERE id = $1", CHAT)
            assert user is not None and user["first_name"] == "Bench" and user["language_code"] == "en"
            row = await conn.fetchrow("SELECT state, data FROM fsm WHERE bot_id = $1 AND chat_id = $2 "
                                      "AND user_id = $2", BOT_ID, CHAT)
            assert row is not None and row["state"] is None and row["data"] == "{}"
        finally:
            await conn.close()
