"""bot/fsm_storage.py (and bot/fsm_cache.py over it) over store/fsm.py on a real PostgreSQL: aiogram's
storage contract, atomic merges, restarts, and what the leader's cache saves and forgets."""

from __future__ import annotations

import asyncio

import pytest
from aiogram.exceptions import DataNotDictLikeError
from aiogram.fsm.context import FSMContext
from aiogram.fsm.state import State, StatesGroup
from aiogram.fsm.storage.base import StorageKey

from bot.fsm_cache import CachedStorage
from bot.fsm_storage import PostgresStorage
from ingest.turns import Turns
from store.database import Database
from tests.conftest import until_one_waits_on_a_lock

pytestmark = pytest.mark.timeout(60)


@pytest.fixture(params=[PostgresStorage, CachedStorage], ids=["table", "leader-cache"])
def storage_class(request: pytest.FixtureRequest) -> type[PostgresStorage]:
    """Every contract test runs against the table alone and the leader's cache over it."""
    cls: type[PostgresStorage] = request.param
    return cls
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


async def test_state_set_read_and_cleared(storage_class: type[PostgresStorage], db: Database) -> None:
    storage = storage_class(db)
    assert await storage.get_state(KEY) is None
    await storage.set_state(KEY, "wizard:prompt")
    assert await storage.get_state(KEY) == "wizard:prompt"
    await storage.set_state(KEY, Wizard.confirm)
    assert await storage.get_state(KEY) == "Wizard:confirm"
    await storage.set_state(KEY, None)
    assert await storage.get_state(KEY) is None
    assert await rows(db) == 0, "a key with no state and no data leaves no row behind"


async def test_data_set_merged_and_replaced(storage_class: type[PostgresStorage], db: Database) -> None:
    storage = storage_class(db)
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


async def test_clearing_one_half_keeps_the_other_and_the_last_half_takes_the_row(
        storage_class: type[PostgresStorage], db: Database) -> None:
    storage = storage_class(db)
    await storage.set_state(KEY, "wizard:prompt")
    await storage.set_data(KEY, {"model": "flux"})
    await storage.set_state(KEY, None)
    assert await storage.get_data(KEY) == {"model": "flux"} and await rows(db) == 1
    await storage.set_data(KEY, {})
    assert await rows(db) == 0
    await storage.set_state(KEY, None)  # nothing there: still nothing, no error
    await storage.set_data(KEY, {})
    assert await rows(db) == 0


async def test_clear_takes_state_and_data_and_says_what_state_it_was(
        storage_class: type[PostgresStorage], db: Database) -> None:
    storage = storage_class(db)
    other = StorageKey(bot_id=1, chat_id=11, user_id=100)
    await storage.set_state(KEY, "wizard:confirm")
    await storage.set_data(KEY, {"price": 150})
    await storage.set_data(other, {"keep": 1})
    assert await storage.clear(KEY) == "wizard:confirm"
    assert await storage.get_state(KEY) is None and await storage.get_data(KEY) == {}
    assert await storage.clear(KEY) is None, "a second clear finds nothing"
    assert await storage.get_data(other) == {"keep": 1} and await rows(db) == 1


async def test_update_data_creates_the_row(storage_class: type[PostgresStorage], db: Database) -> None:
    storage = storage_class(db)
    assert await storage.update_data(KEY, {"a": 1}) == {"a": 1}
    assert await storage.get_state(KEY) is None and await storage.get_data(KEY) == {"a": 1}


async def test_an_empty_update_leaves_no_row(storage_class: type[PostgresStorage], db: Database) -> None:
    storage = storage_class(db)
    assert await storage.update_data(KEY, {}) == {}
    assert await rows(db) == 0
    await FSMContext(storage=storage, key=KEY).update_data()
    assert await rows(db) == 0
    await storage.set_data(KEY, {"a": 1})
    assert await storage.update_data(KEY, {}) == {"a": 1}


async def test_concurrent_update_data_loses_nothing(storage_class: type[PostgresStorage], db: Database) -> None:
    storage = storage_class(db)
    await asyncio.gather(*(storage.update_data(KEY, {f"k{i}": i}) for i in range(50)))
    assert await storage.get_data(KEY) == {f"k{i}": i for i in range(50)}


async def test_every_part_of_the_key_isolates(storage_class: type[PostgresStorage], db: Database) -> None:
    storage = storage_class(db)
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


async def test_non_dicts_are_refused(storage_class: type[PostgresStorage], db: Database) -> None:
    storage = storage_class(db)
    with pytest.raises(DataNotDictLikeError):
        await storage.set_data(KEY, [("a", 1)])  # type: ignore[arg-type]
    with pytest.raises(DataNotDictLikeError):
        await storage.update_data(KEY, "text")  # type: ignore[arg-type]


async def test_unicode_and_nested_values_round_trip(storage_class: type[PostgresStorage], db: Database) -> None:
    storage = storage_class(db)
    value = {"prompt": "Кот в космосе 🚀 \"quoted\" \\ back", "opts": {"list": [1, 2.5, None, True], "empty": {}}}
    await storage.set_data(KEY, value)
    assert await storage.get_data(KEY) == value


async def test_state_and_data_survive_a_new_process_handle(
        storage_class: type[PostgresStorage], db: Database, database_url: str) -> None:
    await storage_class(db).set_state(KEY, "wizard:prompt")
    await storage_class(db).set_data(KEY, {"model": "flux"})
    await db.close()  # the "restart": a brand-new pool and storage
    again = await open_database(database_url)
    try:
        storage = storage_class(again)
        assert await storage.get_state(KEY) == "wizard:prompt"
        assert await storage.get_data(KEY) == {"model": "flux"}
    finally:
        await again.close()


async def test_the_storage_follows_a_replaced_pool(storage_class: type[PostgresStorage], db: Database) -> None:
    storage = storage_class(db)
    await storage.set_state(KEY, "before")
    await db.connect()  # what the db actor does when it restarts: a new pool in the same handle
    assert await storage.get_state(KEY) == "before"


async def test_fsm_context_end_to_end(storage_class: type[PostgresStorage], db: Database) -> None:
    context = FSMContext(storage=storage_class(db), key=KEY)
    await context.set_state(Wizard.prompt)
    await context.update_data(model="flux")
    await context.update_data(prompt="a cat")
    assert await context.get_state() == Wizard.prompt.state
    assert await context.get_data() == {"model": "flux", "prompt": "a cat"}
    await context.clear()
    assert await context.get_state() is None and await context.get_data() == {}
    assert await rows(db) == 0


# -- the leader's cache: what it saves, and when it must forget --


async def test_the_cache_answers_a_known_key_without_the_table_and_starts_empty_again_on_reset(
        db: Database) -> None:
    storage = CachedStorage(db)
    assert await storage.get_state(KEY) is None
    assert storage.misses == 1
    assert await storage.clear(KEY) is None and await storage.get_data(KEY) == {}
    assert storage.misses == 1, "the empty key was known: no read, no DELETE"
    await storage.set_state(KEY, "wizard:prompt")
    other = PostgresStorage(db)  # another leader, while this process did not consume
    await other.set_state(KEY, "wizard:confirm")
    assert await storage.get_state(KEY) == "wizard:prompt", "it trusts itself while it consumes"
    storage.reset()  # what the dispatcher does when this process starts consuming again
    assert await storage.get_state(KEY) == "wizard:confirm", "the table is the truth after a reset"
    assert await other.get_state(KEY) == "wizard:confirm"


async def test_the_cache_ends_as_the_table_when_two_writers_race_on_a_key(db: Database) -> None:
    storage = CachedStorage(db)
    await storage.get_state(KEY)
    await asyncio.gather(*(storage.set_data(KEY, {"n": i}) for i in range(40)),
                         *(storage.update_data(KEY, {f"k{i}": i}) for i in range(40)))
    cached = await storage.get_data(KEY)
    assert cached == await PostgresStorage(db).get_data(KEY), "what it says is what the table holds"


async def test_the_cache_forgets_the_least_recently_used_keys_beyond_its_bound(db: Database) -> None:
    storage = CachedStorage(db, max_keys=3)
    keys = [StorageKey(bot_id=1, chat_id=20 + n, user_id=100) for n in range(5)]
    for key in keys:
        await storage.set_data(key, {"n": key.chat_id})
        await storage.get_state(key)
    assert len(storage._known) == 3
    assert [await storage.get_data(key) for key in keys] == [{"n": key.chat_id} for key in keys]


async def test_a_chats_first_read_waits_without_the_turn_and_a_kept_one_reads_nothing(db: Database) -> None:
    """A chat's first update (every first contact's) reads its state before any work of its own:
    the handler gives its turn away meanwhile (ingest/turns.py). The table is locked, so the read
    waits where we can look; a key the cache keeps is answered with the table still locked."""
    storage = CachedStorage(db)
    turns = Turns(1, patience=30)

    async def first_read() -> str | None:
        async with turns.turn():
            return await storage.get_state(KEY)

    async with db.require().acquire() as locker, locker.transaction():
        await locker.execute("LOCK TABLE fsm IN ACCESS EXCLUSIVE MODE")
        reading = asyncio.create_task(first_read())
        await until_one_waits_on_a_lock(db)
        assert turns.holding == 0
    assert await asyncio.wait_for(reading, 30) is None
    async with db.require().acquire() as locker, locker.transaction():
        await locker.execute("LOCK TABLE fsm IN ACCESS EXCLUSIVE MODE")
        async with turns.turn():
            assert await asyncio.wait_for(storage.get_state(KEY), 10) is None
            assert turns.holding == 1
