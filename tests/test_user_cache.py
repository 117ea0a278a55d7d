"""The users rows kept by the leader (store/user_cache.py): what is served, to whom, for how long,
and that every writer of the row makes the next read see the write, on a real PostgreSQL."""

from __future__ import annotations

import asyncio

import asyncpg
import pytest

from store import accounts, admin_ops, broadcasts, user_cache
from store.accounts import User
from store.database import Database
from store.user_cache import UserCache
from tests.conftest import Money
from tests.procs import eventually

pytestmark = pytest.mark.timeout(60)

USER = 7001


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_a_row_is_served_only_to_readers_of_the_epoch_it_was_read_in() -> None:
    cache: UserCache[str] = UserCache()
    cache.put(1, USER, 5, "row", cache.begin())
    assert cache.get(1, USER, 5) == "row"
    assert cache.get(1, USER, 6) is None and cache.get(1, USER, 4) is None
    assert cache.get(2, USER, 5) is None, "another bot's user of the same id"


def test_a_read_that_began_before_a_forget_of_its_user_is_not_kept_but_one_of_another_user_is() -> None:
    cache: UserCache[str] = UserCache()
    began = cache.begin()
    cache.forget(1, USER)  # a ban committed while the read was in flight
    cache.put(1, USER, 5, "read before the ban", began)
    assert cache.get(1, USER, 5) is None
    cache.put(1, USER + 1, 5, "other", began)
    assert cache.get(1, USER + 1, 5) == "other"
    cache.put(1, USER, 5, "read after the ban", cache.begin())
    assert cache.get(1, USER, 5) == "read after the ban"


def test_a_forget_drops_the_kept_row_at_once() -> None:
    cache: UserCache[str] = UserCache()
    cache.put(1, USER, 5, "row", cache.begin())
    cache.forget(1, USER)
    assert cache.get(1, USER, 5) is None


def test_a_row_older_than_the_ttl_is_read_again() -> None:
    clock = Clock()
    cache: UserCache[str] = UserCache(ttl=60.0, clock=clock)
    cache.put(1, USER, 5, "row", cache.begin())
    clock.now += 60.0
    assert cache.get(1, USER, 5) == "row"
    clock.now += 0.5
    assert cache.get(1, USER, 5) is None and not cache.rows


def test_at_most_size_users_are_kept_the_least_recently_used_going_first() -> None:
    cache: UserCache[int] = UserCache(size=3)
    for user in (1, 2, 3):
        cache.put(1, user, 5, user, cache.begin())
    assert cache.get(1, 1, 5) == 1  # used: 2 is now the least recently used
    cache.put(1, 4, 5, 4, cache.begin())
    assert [cache.get(1, u, 5) for u in (1, 2, 3, 4)] == [1, None, 3, 4]


def test_when_the_forgets_are_cleared_reads_begun_before_are_not_kept() -> None:
    cache: UserCache[str] = UserCache(size=2)
    began = cache.begin()
    cache.forget(1, USER)
    cache.forget(1, USER + 1)
    cache.forget(1, USER + 2)  # over `size` remembered forgets: they are cleared, USER's among them
    cache.put(1, USER, 5, "read before its forget", began)
    assert cache.get(1, USER, 5) is None
    cache.put(1, USER, 5, "read after", cache.begin())
    assert cache.get(1, USER, 5) == "read after"


def test_a_newer_epoch_drops_every_row_and_a_stale_leaders_read_is_not_kept() -> None:
    cache: UserCache[str] = UserCache()
    cache.put(1, USER, 5, "old", cache.begin())
    cache.put(1, USER + 1, 6, "new", cache.begin())
    assert list(cache.rows) == [(1, USER + 1)]
    cache.put(1, USER, 5, "late read of the deposed epoch", cache.begin())
    assert cache.get(1, USER, 5) is None and list(cache.rows) == [(1, USER + 1)]


async def holding_users_locked(db: Database) -> asyncpg.Connection:
    """A transaction that holds the users table: any read of it waits until it ends."""
    conn = await asyncpg.connect(db.url)
    await conn.execute("BEGIN")
    await conn.execute("LOCK TABLE users IN ACCESS EXCLUSIVE MODE")
    return conn


async def waiting_on_a_lock(db: Database) -> bool:
    return bool(await db.require().fetchval(
        """SELECT count(*) FROM pg_stat_activity
            WHERE datname = current_database() AND wait_event_type = 'Lock' AND query LIKE '%trt_first_contact%'"""))


async def test_a_known_users_next_update_in_the_epoch_reads_nothing_and_a_new_epoch_reads_again(
        money: Money) -> None:
    first, new = await accounts.ensure_user(money.db, money.name, money.epoch, money.bot_id, USER, "ru", 0)
    assert new
    locker = await holding_users_locked(money.db)
    try:
        async with asyncio.timeout(10):  # served from the leader's copy: the lock is never met
            again, new = await accounts.ensure_user(money.db, money.name, money.epoch, money.bot_id, USER, "ru", 0)
        assert again == first and not new
        reading = asyncio.create_task(
            accounts.ensure_user(money.db, money.name, money.epoch + 1, money.bot_id, USER, "ru", 0))
        await eventually(lambda: waiting_on_a_lock(money.db), 10, "the next epoch's read waiting on the table")
        assert not reading.done()
    finally:
        await locker.execute("ROLLBACK")
        await locker.close()
    assert (await reading)[0] == first


async def known(money: Money) -> User:
    user, _ = await accounts.ensure_user(money.db, money.name, money.epoch, money.bot_id, USER, "ru", 0)
    return user


async def test_every_writer_of_the_users_row_is_seen_by_the_next_read(money: Money) -> None:
    db, bot = money.db, money.bot_id
    assert (await known(money)).banned is False
    assert await admin_ops.set_ban(db, money.name, money.epoch, bot, 1, USER, True) is False
    assert (await known(money)).banned is True, "a ban holds from the user's next update"
    assert await accounts.ban_told(db, bot, USER)
    assert (await known(money)).ban_told is True
    await admin_ops.set_ban(db, money.name, money.epoch, bot, 1, USER, False)
    assert (await known(money)).banned is False
    await accounts.set_blocked(db, bot, USER, True)
    assert (await known(money)).blocked is True
    await accounts.set_blocked(db, bot, USER, False)
    assert (await known(money)).blocked is False
    await accounts.choose_lang(db, bot, USER, "en")
    assert (await known(money)).lang == "en"
    await accounts.set_language(db, bot, USER, "de")
    assert (await known(money)).language == "de"
    await accounts.seen(db, bot, USER, "newname")
    assert (await known(money)).username == "newname"


async def test_a_broadcast_that_finds_the_user_blocked_is_seen_by_the_next_read(money: Money) -> None:
    assert (await known(money)).blocked is False
    broadcast = await money.db.require().fetchval(
        """INSERT INTO broadcasts (bot_id, nonce, admin_id, admin_chat_id, content, epoch)
           VALUES ($1, 'n1', 1, 1, '{"kind": "text", "text": "hi"}', $2) RETURNING id""", money.bot_id, money.epoch)
    await money.db.require().execute("UPDATE broadcasts SET total = 1 WHERE id = $1", broadcast)
    await money.db.require().execute(
        "INSERT INTO broadcast_recipients (broadcast_id, user_id) VALUES ($1, $2)", broadcast, USER)
    assert await broadcasts.record(money.db, money.name, money.epoch, money.bot_id, broadcast, USER, "blocked")
    assert (await known(money)).blocked is True


async def test_a_write_that_fails_still_forgets_the_row(money: Money) -> None:
    await known(money)
    with pytest.raises(RuntimeError), accounts.forgetting(money.db, money.bot_id, USER):
        raise RuntimeError("the write's answer was lost: it may have committed")
    assert user_cache.of(money.db).get(money.bot_id, USER, money.epoch) is None


async def test_each_database_has_its_own_rows(money: Money) -> None:
    await known(money)
    other = Database(money.db.url, "other")
    assert user_cache.of(other) is not user_cache.of(money.db)
    assert user_cache.of(other).get(money.bot_id, USER, money.epoch) is None
