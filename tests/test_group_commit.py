"""Group commit and update classification: the pieces of the ack path, in process."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import pytest

from ingest import updates
from store.group_commit import GroupCommit

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
