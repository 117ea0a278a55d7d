"""Users, accounts and the ledger on a real PostgreSQL: the welcome bonus once, credits once per
key, and the database itself refusing an overdraft and any edit of the ledger. The `money`
fixture checks the invariants (store/invariants.py) after every test."""

from __future__ import annotations

import asyncio

import asyncpg
import pytest

from store import accounts, invariants, migrations
from store.accounts import KeyReused, Overdraft, UnknownUser
from store.fence import Fenced, counting_commits
from tests.conftest import Money

pytestmark = pytest.mark.timeout(60)
USER = 1001


async def test_a_new_user_gets_the_welcome_bonus_once_even_from_concurrent_first_contacts(money: Money) -> None:
    results = await asyncio.gather(*(
        accounts.ensure_user(money.db, money.name, money.epoch, money.bot_id, USER, "ru", 5000) for _ in range(10)))
    assert sum(new for _, new in results) == 1
    assert {user.language for user, _ in results} == {"ru"}
    again, new = await accounts.ensure_user(money.db, money.name, money.epoch, money.bot_id, USER, "en", 5000)
    assert not new and again.language == "ru", "a known user is read, not rewritten"
    assert await accounts.balance(money.db, money.bot_id, USER) == accounts.Balance(5000, 0)
    entries = await accounts.recent_entries(money.db, money.bot_id, USER)
    assert [(e.kind, e.balance_delta, e.key) for e in entries] == [("bonus", 5000, f"welcome:{USER}")]


async def test_no_bonus_means_no_entry_and_a_zero_account(money: Money) -> None:
    user, new = await accounts.ensure_user(money.db, money.name, money.epoch, money.bot_id, USER, None, 0)
    assert new and user.user_id == USER and user.language is None and not user.blocked
    assert await accounts.recent_entries(money.db, money.bot_id, USER) == []
    assert (await accounts.balance(money.db, money.bot_id, USER)).available == 0
    await accounts.set_language(money.db, money.bot_id, USER, "en")
    await accounts.set_blocked(money.db, money.bot_id, USER, True)
    seen = await accounts.get_user(money.db, money.bot_id, USER)
    assert seen is not None and seen.language == "en" and seen.blocked


async def test_the_same_user_on_another_bot_is_another_account(money: Money) -> None:
    await accounts.ensure_user(money.db, money.name, money.epoch, money.bot_id, USER, "ru", 100)
    other_bot = money.bot_id + 1
    _, new = await accounts.ensure_user(money.db, money.name, money.epoch, other_bot, USER, "ru", 300)
    assert new
    assert (await accounts.balance(money.db, money.bot_id, USER)).balance == 100
    assert (await accounts.balance(money.db, other_bot, USER)).balance == 300


async def test_a_top_up_moves_money_once_per_key_even_concurrently(money: Money) -> None:
    await accounts.ensure_user(money.db, money.name, money.epoch, money.bot_id, USER, "ru", 0)
    posted = await asyncio.gather(*(accounts.credit(money.db, money.name, money.epoch, money.bot_id, USER, 10_000,
                                                    "charge:abc") for _ in range(10)))
    assert sum(p.fresh for p in posted) == 1
    assert len({p.entry.id for p in posted}) == 1
    await accounts.credit(money.db, money.name, money.epoch, money.bot_id, USER, 2_500, "charge:def", note="second")
    assert await accounts.balance(money.db, money.bot_id, USER) == accounts.Balance(12_500, 0)
    with pytest.raises(KeyReused):  # one key, two different intents: a bug, never a silent no-op
        await accounts.credit(money.db, money.name, money.epoch, money.bot_id, USER, 999, "charge:abc")
    assert (await accounts.balance(money.db, money.bot_id, USER)).balance == 12_500


async def test_credit_refuses_nonsense_and_unknown_users(money: Money) -> None:
    with pytest.raises(UnknownUser):
        await accounts.credit(money.db, money.name, money.epoch, money.bot_id, USER, 100, "k1")
    await accounts.ensure_user(money.db, money.name, money.epoch, money.bot_id, USER, "ru", 0)
    for amount, kind in ((0, "top_up"), (-5, "top_up"), (-5, "bonus"), (-5, "refund"), (0, "adjustment")):
        with pytest.raises(ValueError):
            await accounts.credit(money.db, money.name, money.epoch, money.bot_id, USER, amount, "k2",
                                  kind=kind)
    with pytest.raises(ValueError):
        await accounts.credit(money.db, money.name, money.epoch, money.bot_id, USER, 5, "k3",
                              kind="capture")  # only jobs capture
    assert await accounts.recent_entries(money.db, money.bot_id, USER) == []


async def test_a_negative_adjustment_cannot_overdraw(money: Money) -> None:
    await accounts.ensure_user(money.db, money.name, money.epoch, money.bot_id, USER, "ru", 1_000)
    await accounts.credit(money.db, money.name, money.epoch, money.bot_id, USER, -400, "op:1", kind="adjustment")
    with pytest.raises(Overdraft):
        await accounts.credit(money.db, money.name, money.epoch, money.bot_id, USER, -601, "op:2", kind="adjustment")
    assert await accounts.balance(money.db, money.bot_id, USER) == accounts.Balance(600, 0)
    assert [e.key for e in await accounts.recent_entries(money.db, money.bot_id, USER)] == ["op:1", f"welcome:{USER}"]


async def test_the_database_refuses_an_overdraft_and_ledger_edits_from_raw_sql(money: Money) -> None:
    """Not only the code: whoever writes, the CHECK and the triggers hold."""
    await accounts.ensure_user(money.db, money.name, money.epoch, money.bot_id, USER, "ru", 1_000)
    pool = money.db.require()
    with pytest.raises(asyncpg.CheckViolationError, match="accounts_available_not_negative"):
        await pool.execute(
            """INSERT INTO ledger (bot_id, user_id, kind, balance_delta, held_delta, idempotency_key, epoch)
               VALUES ($1, $2, 'adjustment', -1001, 0, 'raw:1', 1)""", money.bot_id, USER)
    with pytest.raises(asyncpg.CheckViolationError, match="accounts_available_not_negative"):
        await pool.execute("UPDATE accounts SET held = 1001 WHERE bot_id = $1 AND user_id = $2", money.bot_id, USER)
    with pytest.raises(asyncpg.CheckViolationError, match="accounts_available_not_negative"):
        await pool.execute("UPDATE accounts SET balance = -1 WHERE bot_id = $1 AND user_id = $2", money.bot_id, USER)
    with pytest.raises(asyncpg.CheckViolationError, match="ledger_kind_moves"):  # a top-up cannot take money
        await pool.execute(
            """INSERT INTO ledger (bot_id, user_id, kind, balance_delta, held_delta, idempotency_key, epoch)
               VALUES ($1, $2, 'top_up', -5, 0, 'raw:2', 1)""", money.bot_id, USER)
    with pytest.raises(asyncpg.RestrictViolationError, match="append-only"):
        await pool.execute("UPDATE ledger SET balance_delta = 1000000")
    with pytest.raises(asyncpg.RestrictViolationError, match="append-only"):
        await pool.execute("DELETE FROM ledger")
    with pytest.raises(asyncpg.RestrictViolationError, match="append-only"):
        await pool.execute("TRUNCATE ledger")
    assert await accounts.balance(money.db, money.bot_id, USER) == accounts.Balance(1_000, 0)


async def test_a_credit_under_a_stale_epoch_is_refused_and_moves_nothing(money: Money) -> None:
    await accounts.ensure_user(money.db, money.name, money.epoch, money.bot_id, USER, "ru", 0)
    old = money.epoch
    await money.new_leader()
    with pytest.raises(Fenced):
        await accounts.credit(money.db, money.name, old, money.bot_id, USER, 500, "charge:late")
    with pytest.raises(Fenced):
        await accounts.ensure_user(money.db, money.name, old, money.bot_id, USER + 1, "ru", 500)
    assert await accounts.get_user(money.db, money.bot_id, USER + 1) is None
    assert await accounts.recent_entries(money.db, money.bot_id, USER) == []
    posted = await accounts.credit(money.db, money.name, money.epoch, money.bot_id, USER, 500, "charge:late")
    assert posted.fresh and posted.entry.epoch == money.epoch


async def test_the_checker_sees_an_account_that_disagrees_with_its_ledger(money: Money) -> None:
    """The invariant check is only as good as what it catches: an account written around the ledger."""
    await accounts.ensure_user(money.db, money.name, money.epoch, money.bot_id, USER, "ru", 1_000)
    assert await invariants.check(money.db) == []
    pool = money.db.require()
    await pool.execute("UPDATE accounts SET balance = 1500 WHERE bot_id = $1 AND user_id = $2", money.bot_id, USER)
    problems = await invariants.check(money.db)
    assert len(problems) == 1 and "the ledger adds up to 1000/0" in problems[0]
    await pool.execute("UPDATE accounts SET balance = 1000 WHERE bot_id = $1 AND user_id = $2", money.bot_id, USER)


async def test_the_migration_runs_again_without_harm(money: Money) -> None:
    """Idempotent like every migration: run twice (a half-applied deploy, a manual rerun), it keeps
    the data and one copy of each trigger (a second ledger_apply would apply every entry twice)."""
    await accounts.ensure_user(money.db, money.name, money.epoch, money.bot_id, USER, "ru", 700)
    sql = (migrations.SQL_DIR / "007_ledger_jobs.sql").read_text()
    await money.db.require().execute(sql)
    await accounts.credit(money.db, money.name, money.epoch, money.bot_id, USER, 300, "after rerun")
    assert await accounts.balance(money.db, money.bot_id, USER) == accounts.Balance(1_000, 0)


async def test_a_first_contact_is_one_fenced_write_counted_as_committed_and_a_known_user_only_a_read(
        money: Money) -> None:
    with counting_commits() as commits:
        _, new = await accounts.ensure_user(money.db, money.name, money.epoch, money.bot_id, USER, "ru", 700)
    assert new and commits == [money.epoch], "an update that created the account must not be called failed"
    old = money.epoch
    await money.new_leader()
    with counting_commits() as commits:
        known, new = await accounts.ensure_user(money.db, money.name, old, money.bot_id, USER, "en", 700)
    assert not new and known.language == "ru" and commits == [], "a known user is read, even by an ex-leader"
    assert await accounts.balance(money.db, money.bot_id, USER) == accounts.Balance(700, 0)
