"""bot/fsm_storage.py over store/fsm.py on a real PostgreSQL: aiogram's storage contract, atomic merges, restarts."""

from __future__ import annotations

import asyncio

import pytest
from aiogram.exceptions import DataNotDictLikeError
from aiogram.fsm.context import FSMContext
from aiogram.fsm.state import State, StatesGroup
from aiogram.fsm.storage.base import StorageKey

from bot.fsm_storage import PostgresStorage
from store.database import Database

pytestmark = pytest.mark.timeout(60)
KEY = StorageKey(bot_id=1, chat_id=10, user_id=100)


class Wizard(StatesGroup):
    prompt = State()
    confirm = State()


async def open_database(url: str) -> Database:
    db = Database(url, "fsm-test", pool_size=4)
    await db.connect()
    return db


async def rows(db: Database) -> int:
    count: int = await db.require().fetchval("SELECT count(*) FROM fsm")
    return count


async def test_state_set_read_and_cleared(db: Database) -> None:
    storage = PostgresStorage(db)
    assert await storage.get_state(KEY) is None
    await storage.set_state(KEY, "wizard:prompt")
    assert await storage.get_state(KEY) == "wizard:prompt"
    await storage.set_state(KEY, Wizard.confirm)
    assert await storage.get_state(KEY) == "Wizard:confirm"
    await storage.set_state(KEY, None)
    assert await storage.get_state(KEY) is None
    assert await rows(db) == 0, "a key with no state and no data leaves no row behind"


async def test_data_set_merged_and_replaced(db: Database) -> None:
    storage = PostgresStorage(db)
    assert await storage.get_data(KEY) == {}
    await storage.set_data(KEY, {"model": "flux", "n": 1})
    assert await storage.update_data(KEY, {"n": 2, "ratio": "16:9"}) == {"model": "flux", "n": 2, "ratio": "16:9"}
    assert await storage.get_value(KEY, "ratio") == "16:9"
    assert await storage.get_value(KEY, "missing", "dflt") == "dflt"
    await storage.set_data(KEY, {"only": True})
    assert await storage.get_data(KEY) == {"only": True}
    got = await storage.get_data(KEY)
    got["changed"] = 1
    assert await storage.get_data(KEY) == {"only": True}, "get_data hands out a copy"
    await storage.set_state(KEY, "wizard:prompt")
    await storage.set_data(KEY, {})
    assert await storage.get_state(KEY) == "wizard:prompt", "clearing data keeps the state"
    await storage.set_state(KEY, None)
    assert await rows(db) == 0


async def test_clearing_one_half_keeps_the_other_and_the_last_half_takes_the_row(db: Database) -> None:
    storage = PostgresStorage(db)
    await storage.set_state(KEY, "wizard:prompt")
    await storage.set_data(KEY, {"model": "flux"})
    await storage.set_state(KEY, None)
    assert await storage.get_data(KEY) == {"model": "flux"} and await rows(db) == 1
    await storage.set_data(KEY, {})
    assert await rows(db) == 0
    await storage.set_state(KEY, None)  # nothing there: still nothing, no error
    await storage.set_data(KEY, {})
    assert await rows(db) == 0


async def test_clear_takes_state_and_data_and_says_what_state_it_was(db: Database) -> None:
    storage = PostgresStorage(db)
    other = StorageKey(bot_id=1, chat_id=11, user_id=100)
    await storage.set_state(KEY, "wizard:confirm")
    await storage.set_data(KEY, {"price": 150})
    await storage.set_data(other, {"keep": 1})
    assert await storage.clear(KEY) == "wizard:confirm"
    assert await storage.get_state(KEY) is None and await storage.get_data(KEY) == {}
    assert await storage.clear(KEY) is None, "a second clear finds nothing"
    assert await storage.get_data(other) == {"keep": 1} and await rows(db) == 1


async def test_update_data_creates_the_row(db: Database) -> None:
    storage = PostgresStorage(db)
    assert await storage.update_data(KEY, {"a": 1}) == {"a": 1}
    assert await storage.get_state(KEY) is None and await storage.get_data(KEY) == {"a": 1}


async def test_an_empty_update_leaves_no_row(db: Database) -> None:
    storage = PostgresStorage(db)
    assert await storage.update_data(KEY, {}) == {}
    assert await rows(db) == 0
    await FSMContext(storage=storage, key=KEY).update_data()
    assert await rows(db) == 0
    await storage.set_data(KEY, {"a": 1})
    assert await storage.update_data(KEY, {}) == {"a": 1}


async def test_concurrent_update_data_loses_nothing(db: Database) -> None:
    storage = PostgresStorage(db)
    await asyncio.gather(*(storage.update_data(KEY, {f"k{i}": i}) for i in range(50)))
    assert await storage.get_data(KEY) == {f"k{i}": i for i in range(50)}


async def test_every_part_of_the_key_isolates(db: Database) -> None:
    storage = PostgresStorage(db)
    variants = [KEY, StorageKey(2, 10, 100), StorageKey(1, 11, 100), StorageKey(1, 10, 101),
                StorageKey(1, 10, 100, thread_id=5), StorageKey(1, 10, 100, business_connection_id="biz"),
                StorageKey(1, 10, 100, destiny="other")]
    for number, key in enumerate(variants):
        await storage.set_state(key, f"s{number}")
        await storage.set_data(key, {"n": number})
    for number, key in enumerate(variants):
        assert await storage.get_state(key) == f"s{number}"
        assert await storage.get_data(key) == {"n": number}
    assert await rows(db) == len(variants)


async def test_non_dicts_are_refused(db: Database) -> None:
    storage = PostgresStorage(db)
    with pytest.raises(DataNotDictLikeError):
        await storage.set_data(KEY, [("a", 1)])  # type: ignore[arg-type]
    with pytest.raises(DataNotDictLikeError):
        await storage.update_data(KEY, "text")  # type: ignore[arg-type]


async def test_unicode_and_nested_values_round_trip(db: Database) -> None:
    storage = PostgresStorage(db)
    value = {"prompt": "Кот в космосе 🚀 \"quoted\" \\ back", "opts": {"list": [1, 2.5, None, True], "empty": {}}}
    await storage.set_data(KEY, value)
    assert await storage.get_data(KEY) == value


async def test_state_and_data_survive_a_new_process_handle(db: Database, database_url: str) -> None:
    await PostgresStorage(db).set_state(KEY, "wizard:prompt")
    await PostgresStorage(db).set_data(KEY, {"model": "flux"})
    await db.close()  # the "restart": a brand-new pool and storage
    again = await open_database(database_url)
    try:
        storage = PostgresStorage(again)
        assert await storage.get_state(KEY) == "wizard:prompt"
        assert await storage.get_data(KEY) == {"model": "flux"}
    finally:
        await again.close()


async def test_the_storage_follows_a_replaced_pool(db: Database) -> None:
    storage = PostgresStorage(db)
    await storage.set_state(KEY, "before")
    await db.connect()  # what the db actor does when it restarts: a new pool in the same handle
    assert await storage.get_state(KEY) == "before"


async def test_fsm_context_end_to_end(db: Database) -> None:
    context = FSMContext(storage=PostgresStorage(db), key=KEY)
    await context.set_state(Wizard.prompt)
    await context.update_data(model="flux")
    await context.update_data(prompt="a cat")
    assert await context.get_state() == Wizard.prompt.state
    assert await context.get_data() == {"model": "flux", "prompt": "a cat"}
    await context.clear()
    assert await context.get_state() is None and await context.get_data() == {}
    assert await rows(db) == 0
