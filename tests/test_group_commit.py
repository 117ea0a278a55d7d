"""Group commit and update classification: the pieces of the ack path, in process."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence

import pytest

from ingest import updates
from store.group_commit import GroupCommit
from tests.actors_kit import until

pytestmark = pytest.mark.timeout(30)


async def test_concurrent_submits_share_batches_and_get_their_own_results() -> None:
    seen: list[list[int]] = []

    async def flush(items: Sequence[int]) -> list[int]:
        seen.append(list(items))
        await asyncio.sleep(0)  # a real flush awaits the database; let submitters pile up meanwhile
        return [i * 10 for i in items]

    commits: GroupCommit[int, int] = GroupCommit(flush, max_batch=16, linger=0.001, parallel=1)
    results = await asyncio.gather(*(commits.submit(i) for i in range(100)))
    assert results == [i * 10 for i in range(100)]
    assert sorted(i for batch in seen for i in batch) == list(range(100))
    assert len(seen) < 100 and max(len(b) for b in seen) <= 16
    await commits.close()


async def test_a_failed_flush_fails_exactly_its_callers() -> None:
    fail = asyncio.Event()
    fail.set()

    async def flush(items: Sequence[str]) -> list[str]:
        if fail.is_set():
            fail.clear()
            raise ConnectionError("database gone")
        return list(items)

    commits: GroupCommit[str, str] = GroupCommit(flush, max_batch=4, linger=0.05, parallel=1)
    first = await asyncio.gather(*(commits.submit(s) for s in "abcd"), return_exceptions=True)
    assert all(isinstance(r, ConnectionError) for r in first)
    assert await asyncio.gather(*(commits.submit(s) for s in "efgh")) == list("efgh")
    await commits.close()


async def test_close_fails_waiting_callers_never_succeeds_them() -> None:
    release = asyncio.Event()

    async def flush(items: Sequence[int]) -> list[int]:
        await release.wait()
        return list(items)

    commits: GroupCommit[int, int] = GroupCommit(flush, max_batch=2, linger=0, parallel=1)
    waiting = [asyncio.ensure_future(commits.submit(i)) for i in range(5)]
    await asyncio.sleep(0)
    await commits.close()
    results = await asyncio.gather(*waiting, return_exceptions=True)
    assert all(isinstance(r, Exception) for r in results), results


@pytest.mark.parametrize(("update", "kind", "key"), [
    ({"update_id": 1, "message": {"chat": {"id": -100, "type": "group"}, "from": {"id": 5}}}, "message", -100),
    ({"update_id": 1, "callback_query": {"id": "q", "from": {"id": 5}, "message": {"chat": {"id": 7}}}},
     "callback_query", 7),
    ({"update_id": 1, "callback_query": {"id": "q", "from": {"id": 5}, "inline_message_id": "x"}}, "callback_query", 5),
    ({"update_id": 1, "pre_checkout_query": {"id": "p", "from": {"id": 9}}}, "pre_checkout_query", 9),
    ({"update_id": 1, "my_chat_member": {"chat": {"id": 3}, "from": {"id": 4}}}, "my_chat_member", 3),
    ({"update_id": 1, "poll": {"id": "x"}}, "poll", None),
    ({"update_id": 1}, "unknown", None),
    ({"update_id": 1, "message": {"chat": {"id": "not-a-number"}}}, "message", None),
])
def test_classify(update: dict, kind: str, key: int | None) -> None:
    assert updates.classify(update) == (kind, key)


@pytest.mark.parametrize(("raw", "reason"), [
    (b"{", "not_json"), (b"\xff", "not_json"), (b"[]", "not_object"), (b"3", "not_object"),
    (b'{"message": {}}', "no_update_id"), (b'{"update_id": "1"}', "no_update_id"),
    (b'{"update_id": 1.5}', "no_update_id"), (b'{"update_id": true}', "no_update_id"),
    (b'{"update_id": 99999999999999999999}', "no_update_id"),
])
def test_parse_refuses_what_telegram_would_not_send(raw: bytes, reason: str) -> None:
    with pytest.raises(updates.BadUpdate, match=reason):
        updates.parse(raw)


def test_parse_keeps_the_raw_text_with_unknown_fields() -> None:
    raw = '{"update_id": 12, "future_kind": {"chat": {"id": 4}}, "extra": 1, "text": "é"}'.encode()
    update, row = updates.parse(raw)
    assert row.update_id == 12 and row.kind == "future_kind" and row.chat_key == 4
    assert row.payload == raw.decode() and update["extra"] == 1


def free_slots(commits: GroupCommit[int, int]) -> int:
    return commits.slots._value  # the semaphore itself: what the next batch would find


async def test_close_during_the_linger_gives_the_slot_back_so_a_later_submit_still_commits() -> None:
    async def flush(items: Sequence[int]) -> list[int]:
        return [i + 1 for i in items]

    commits: GroupCommit[int, int] = GroupCommit(flush, max_batch=256, linger=30.0, parallel=2)
    for round_ in range(3):  # more closes than there are slots: each used to keep one
        lingering = max(free_slots(commits) - 1, 0)  # with none left (as before the fix) it waits for one instead
        waiting = asyncio.ensure_future(commits.submit(round_))
        await until(lambda want=lingering: free_slots(commits) == want, 5, "the runner lingering with a slot")
        await commits.close()
        with pytest.raises(ConnectionError):
            await waiting
    commits.linger = 0.001
    async with asyncio.timeout(2):
        assert await commits.submit(41) == 42, "a submit after the closes commits promptly"
    assert free_slots(commits) == 2
    await commits.close()


async def test_a_flush_that_never_returns_is_reported_as_a_stuck_commit() -> None:
    never = asyncio.Event()

    async def flush(items: Sequence[int]) -> list[int]:
        await never.wait()
        return list(items)

    commits: GroupCommit[int, int] = GroupCommit(flush, max_batch=1, linger=0, parallel=1)
    assert commits.problems(0.05) == []
    callers = [asyncio.ensure_future(commits.submit(i)) for i in range(3)]
    await until(lambda: commits.stats()["flushing"] == 1 and commits.stats()["pending"] == 2, 5, "one stuck flush")
    assert commits.stats()["free_slots"] == 0
    problems = await until(lambda: len(commits.problems(0.05)) == 2 and commits.problems(0.05), 5,
                           "both reasons reported")
    assert "waited" in problems[0] and "no free commit slot" in problems[1], problems
    assert commits.stats()["oldest_pending_seconds"] > 0.05
    await commits.close()
    await asyncio.gather(*callers, return_exceptions=True)
    assert commits.problems(0.05) == [] and commits.stats()["free_slots"] == 1


async def test_a_caller_waiting_past_the_timeout_is_told_so_while_its_item_still_commits() -> None:
    release = asyncio.Event()
    flushed: list[int] = []

    async def flush(items: Sequence[int]) -> list[int]:
        await release.wait()
        flushed.extend(items)
        return list(items)

    commits: GroupCommit[int, int] = GroupCommit(flush, max_batch=1, linger=0, parallel=1, timeout=0.1)
    waiting = [commits.submit_nowait(i) for i in range(3)]  # one in the stuck flush, two behind it
    async with asyncio.timeout(5):
        outcomes = await asyncio.gather(*waiting, return_exceptions=True)
    assert all(isinstance(o, TimeoutError) for o in outcomes), outcomes
    release.set()
    await until(lambda: flushed == [0, 1, 2], 5, "every timed-out item committed all the same")
    assert await commits.submit(3) == 3, "a caller after the stall gets its result"
    assert commits.stats()["pending"] == 0
    await commits.close()
    assert commits.expiry is None, "close leaves no timer behind"


async def test_each_caller_times_out_at_its_own_deadline_not_the_first_callers() -> None:
    never = asyncio.Event()

    async def flush(items: Sequence[int]) -> list[int]:
        await never.wait()
        return list(items)

    loop = asyncio.get_running_loop()
    commits: GroupCommit[int, int] = GroupCommit(flush, max_batch=1, linger=0, parallel=1, timeout=0.5)
    first = commits.submit_nowait(1)
    await asyncio.sleep(0.3)  # the second caller comes this much later: its deadline is this much later too
    second, second_at = commits.submit_nowait(2), loop.time()
    seen_when_first_failed: list[bool] = []
    first.add_done_callback(lambda _: seen_when_first_failed.append(second.done()))
    async with asyncio.timeout(5):
        with pytest.raises(TimeoutError):
            await first
        assert seen_when_first_failed == [False], "the second caller outlived the first's deadline"
        with pytest.raises(TimeoutError):
            await second
    assert loop.time() - second_at >= 0.45, "the second caller had (about) its whole timeout"
    await commits.close()


LONE = "\ud800"  # a lone surrogate: valid in a JSON string as an escape, without any UTF-8 form


@pytest.mark.parametrize("raw", [
    b'{"update_id": 7, "message": {"chat": {"id": 4}, "text": "\\ud800"}}',  # as Telegram sends it
    '{"update_id": 7, "message": {"chat": {"id": 4}, "text": "\\ud800"}}',
    '{"update_id": 7, "message": {"chat": {"id": 4}, "text": "\ud800"}}',  # the surrogate itself, in a str
])
def test_parse_keeps_a_lone_surrogate_in_a_payload_the_database_can_hold(raw: bytes | str) -> None:
    update, row = updates.parse(raw)
    assert update["message"]["text"] == LONE and row.kind == "message" and row.chat_key == 4
    row.payload.encode()  # PostgreSQL takes only what has a UTF-8 form
    assert json.loads(row.payload) == update


def test_an_update_from_get_updates_with_a_lone_surrogate_gets_a_payload_the_database_can_hold() -> None:
    update = {"update_id": 8, "message": {"chat": {"id": 4}, "text": LONE + "é"}}
    row = updates.from_object(update)
    row.payload.encode()
    assert json.loads(row.payload) == update and row.kind == "message"
    assert "é" in updates.from_object({"update_id": 9, "message": {"text": "é"}}).payload, "plain text stays as is"


@pytest.mark.parametrize("key", [LONE, "x\x00", "not a name", ""])
def test_an_update_type_that_is_not_a_name_is_classified_unknown_with_its_chat(key: str) -> None:
    assert updates.classify({"update_id": 1, key: {"chat": {"id": 3}}}) == ("unknown", 3)
