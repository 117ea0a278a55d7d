"""Newcomers met at the same time share one statement (store/first_contacts.py), on a real
PostgreSQL: each is met exactly as alone, and what fails fails only its own callers. The `money`
fixture checks the money invariants after every test."""

from __future__ import annotations

import asyncio

import asyncpg
import pytest

from store import accounts, batching, first_contacts, fsm
from store.database import DatabaseUnavailable
from store.fence import Fenced, counting_commits
from tests.conftest import Money

pytestmark = pytest.mark.timeout(60)

BONUS = 500


def meet(money: Money, user: int, epoch: int | None = None, language: str = "ru") -> asyncio.Task[accounts.Contact]:
    """The update's side of a first contact, started now (so gathered ones reach one batch)."""
    return asyncio.ensure_future(accounts.meet(money.db, money.name, money.epoch if epoch is None else epoch,
                                               money.bot_id, user, language, BONUS, username=f"u{user}"))


async def bonuses(money: Money) -> dict[int, int]:
    rows = await money.db.require().fetch(
        "SELECT user_id, sum(balance_delta) AS paid, count(*) AS entries FROM ledger "
        "WHERE bot_id = $1 AND kind = 'bonus' GROUP BY user_id", money.bot_id)
    assert all(r["entries"] == 1 for r in rows), "one welcome bonus per user"
    return {r["user_id"]: r["paid"] for r in rows}


async def test_newcomers_met_at_once_share_statements_and_each_is_created_once_with_one_bonus(money: Money) -> None:
    users = list(range(5001, 5031))
    before = batching.stats(money.db, first_contacts.BATCHER)
    contacts = await asyncio.gather(*(meet(money, user) for user in users))
    after = batching.stats(money.db, first_contacts.BATCHER)
    assert [c.user.user_id for c in contacts] == users
    assert all(c.new and c.chat_clear for c in contacts)
    assert {c.user.username for c in contacts} == {f"u{user}" for user in users}
    assert after["items"] - before["items"] == len(users)
    assert after["batches"] - before["batches"] < len(users), "concurrent first contacts share statements"
    assert await bonuses(money) == dict.fromkeys(users, BONUS)
    again = await asyncio.gather(*(accounts.meet(money.db, money.name, money.epoch, money.bot_id, user, "en", BONUS)
                                   for user in users))
    assert not any(c.new for c in again) and {c.user.language for c in again} == {"ru"}


async def test_the_same_user_twice_in_one_batch_is_created_once_and_the_later_caller_is_told_known(
        money: Money) -> None:
    tasks = [meet(money, 6001), meet(money, 6002), meet(money, 6001, language="en"), meet(money, 6003)]
    contacts = await asyncio.gather(*tasks)
    assert [c.new for c in contacts] == [True, True, False, True]
    assert contacts[2].user == contacts[0].user and contacts[2].user.language == "ru"
    assert not contacts[2].chat_clear
    assert await bonuses(money) == {6001: BONUS, 6002: BONUS, 6003: BONUS}


async def test_only_the_callers_that_created_a_user_count_a_fenced_commit(money: Money) -> None:
    async def one(user: int) -> tuple[bool, list[int]]:
        with counting_commits() as commits:
            contact = await accounts.meet(money.db, money.name, money.epoch, money.bot_id, user, "ru", BONUS)
        return contact.new, commits

    results = await asyncio.gather(one(6101), one(6101), one(6102))
    assert sorted(results) == [(False, []), (True, [money.epoch]), (True, [money.epoch])]


async def test_a_newcomer_with_a_conversation_already_stored_is_told_their_chat_is_not_clear(money: Money) -> None:
    await fsm.set_state(money.db, (money.bot_id, 6202, 6202, 0, "", "default"), "wizard:prompt")
    contacts = await asyncio.gather(meet(money, 6201), meet(money, 6202), meet(money, 6203))
    assert [c.new for c in contacts] == [True, True, True]
    assert [c.chat_clear for c in contacts] == [True, False, True]


async def test_a_refused_fence_fails_every_newcomer_of_its_batch_and_writes_nothing(money: Money) -> None:
    old = money.epoch
    await money.new_leader()
    results = await asyncio.gather(*(meet(money, user, epoch=old) for user in (6301, 6302, 6303)),
                                   return_exceptions=True)
    assert all(isinstance(r, Fenced) for r in results), results
    assert await money.db.require().fetchval("SELECT count(*) FROM users WHERE bot_id = $1", money.bot_id) == 0
    assert await bonuses(money) == {}


async def test_one_users_broken_row_fails_only_that_user_not_the_rest_of_its_batch(money: Money) -> None:
    # user 6402's welcome key is taken by another user's entry (written by hand, or by a bug):
    # their bonus cannot be written, which fails the statement they are in
    await accounts.meet(money.db, money.name, money.epoch, money.bot_id, 6400, "ru", 0)
    await accounts.credit(money.db, money.name, money.epoch, money.bot_id, 6400, 100,
                          accounts.WELCOME_KEY.format(user_id=6402))
    results = await asyncio.gather(*(meet(money, user) for user in (6401, 6402, 6403)), return_exceptions=True)
    assert isinstance(results[1], asyncpg.UniqueViolationError), results
    assert [r.new for r in (results[0], results[2]) if isinstance(r, accounts.Contact)] == [True, True]
    assert await accounts.get_user(money.db, money.bot_id, 6402) is None, "the broken user's statement rolled back"
    assert await bonuses(money) == {6401: BONUS, 6403: BONUS}


async def test_a_caller_giving_up_does_not_cancel_the_newcomers_it_was_batched_with(money: Money) -> None:
    blocker = await asyncpg.connect(money.db.url)
    try:
        locking = blocker.transaction()
        await locking.start()
        await blocker.execute("SELECT 1 FROM leader WHERE name = $1 FOR UPDATE", money.name)  # the fence waits
        tasks = [meet(money, user) for user in (6501, 6502, 6503)]
        await money.until_one_waits_on_a_lock()
        tasks[1].cancel()
        await locking.rollback()
        first, gone, last = await asyncio.gather(*tasks, return_exceptions=True)
    finally:
        await blocker.close()
    assert isinstance(gone, asyncio.CancelledError)
    assert isinstance(first, accounts.Contact) and first.new
    assert isinstance(last, accounts.Contact) and last.new
    kept = await accounts.meet(money.db, money.name, money.epoch, money.bot_id, 6502, "ru", BONUS)
    assert not kept.new, "the statement went on without its cancelled caller: the user exists"
    assert await bonuses(money) == dict.fromkeys((6501, 6502, 6503), BONUS)


async def test_a_database_marked_down_fails_the_newcomers_at_once(money: Money) -> None:
    money.db.state = "down"
    try:
        results = await asyncio.gather(meet(money, 6601), meet(money, 6602), return_exceptions=True)
    finally:
        money.db.state = "up"
    assert all(isinstance(r, DatabaseUnavailable) for r in results), results
    assert (await meet(money, 6601)).new
