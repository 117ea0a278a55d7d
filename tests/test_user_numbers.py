"""Generation numbers as a user counts them (issue 19): a user's first generation is №1 whatever
the global job ids, numbers are unique and gapless per user even when one user's confirmations
race, a replayed Confirm keeps its number, and sql/015_user_numbers.sql numbers the jobs that
existed before it (by id, per user) and can be applied again. On a real PostgreSQL; the `money`
fixture checks the money invariants after each test."""

from __future__ import annotations

import asyncio
from pathlib import Path

import asyncpg
import pytest

from store import jobs, migrations
from store.jobs import Created, Existing
from tests.conftest import Money
from tests.test_jobs import confirm, created, order, user_with

pytestmark = pytest.mark.timeout(60)
SQL = Path(migrations.SQL_DIR)
USER_NUMBERS = (SQL / "015_user_numbers.sql").read_text()


@pytest.fixture
def before_015(tmp_path: Path) -> Path:
    """The migrations as they were before sql/015_user_numbers.sql."""
    for path in sorted(SQL.glob("*.sql")):
        if path.name < "015":
            (tmp_path / path.name).write_text(path.read_text())
    return tmp_path


async def test_a_users_first_generation_is_number_one_whatever_came_before(money: Money) -> None:
    await user_with(money, 10_000, user=3001)
    await user_with(money, 10_000, user=3002)
    for n in range(3):
        await created(money, order(f"a{n}", user=3001), max_active=10)
    first = await created(money, order("b0", user=3002))
    assert first.id > 3 and first.user_number == 1
    second = await created(money, order("b1", user=3002))
    assert second.user_number == 2
    assert [j.user_number for j in await jobs.user_jobs(money.db, money.bot_id, 3001)] == [3, 2, 1]
    assert (await jobs.job(money.db, second.id)).user_number == 2  # type: ignore[union-attr]


async def test_a_replayed_confirm_keeps_its_number_and_takes_none(money: Money) -> None:
    await user_with(money, 10_000, user=3003)
    job = await created(money, order("r", user=3003))
    again = await confirm(money, order("r", user=3003))
    assert isinstance(again, Existing) and again.job.user_number == job.user_number == 1
    assert (await created(money, order("s", user=3003))).user_number == 2, "no number skipped"


async def test_one_users_concurrent_confirmations_get_distinct_gapless_numbers(money: Money) -> None:
    await user_with(money, 100_000, user=3004)
    await user_with(money, 100_000, user=3005)
    results = await asyncio.gather(*(confirm(money, order(f"c{n}", user=3004 + n % 2), max_active=20)
                                     for n in range(16)))
    assert all(isinstance(r, Created) for r in results), results
    for user in (3004, 3005):
        numbers = sorted(j.user_number for j in await jobs.user_jobs(money.db, money.bot_id, user, 0, 100))
        assert numbers == list(range(1, 9))


async def test_an_insert_that_leaves_the_number_out_gets_the_next_one(money: Money) -> None:
    await user_with(money, 10_000, user=3006)
    job = await created(money, order("x", user=3006))
    number = await money.db.require().fetchval(
        """INSERT INTO jobs (bot_id, user_id, chat_id, confirm_nonce, model, sku, input, price, paid_with, held, epoch)
           SELECT bot_id, user_id, chat_id, 'by-hand', model, sku, input, price, 'admin', 0, epoch
             FROM jobs WHERE id = $1 RETURNING user_number""", job.id)
    assert number == 2
    await money.db.require().execute("DELETE FROM jobs WHERE confirm_nonce = 'by-hand'")


async def test_the_migration_numbers_existing_jobs_per_user_by_id_and_can_run_again(
        database_url: str, before_015: Path) -> None:
    conn = await asyncpg.connect(database_url)
    try:
        await migrations.apply(conn, before_015)
        for user in (1, 2):
            await conn.execute("INSERT INTO users (bot_id, user_id) VALUES (9, $1)", user)
            await conn.execute("INSERT INTO accounts (bot_id, user_id) VALUES (9, $1)", user)
        for n, user in enumerate((1, 2, 1, 1, 2)):
            await conn.execute(
                """INSERT INTO jobs (bot_id, user_id, chat_id, confirm_nonce, model, sku, input, price, paid_with,
                                     held, epoch) VALUES (9, $1, $1, $2, 'm', 's', '{}', 0, 'admin', 0, 1)""",
                user, f"n{n}")
        await migrations.apply(conn)
        rows = await conn.fetch("SELECT user_id, user_number FROM jobs ORDER BY id")
        assert [(r["user_id"], r["user_number"]) for r in rows] == [(1, 1), (2, 1), (1, 2), (1, 3), (2, 2)]
        await conn.execute(USER_NUMBERS)  # idempotent: nothing changes
        again = await conn.fetch("SELECT user_id, user_number FROM jobs ORDER BY id")
        assert again == rows
        with pytest.raises(asyncpg.UniqueViolationError):
            await conn.execute("UPDATE jobs SET user_number = 1 WHERE user_id = 1 AND user_number = 2")
    finally:
        await conn.close()
