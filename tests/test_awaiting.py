"""A late task's log line names the await it sits in (telemetry/awaiting.py)."""

from __future__ import annotations

import asyncio

import pytest

from telemetry.awaiting import awaiting

pytestmark = pytest.mark.timeout(10)


async def test_a_task_that_ignores_its_cancellation_is_named_by_the_await_it_sits_in() -> None:
    release = asyncio.Event()

    async def cleanup_that_waits() -> None:
        await release.wait()

    async def handler() -> None:
        try:
            await asyncio.sleep(3600)
        finally:
            await cleanup_that_waits()  # a `finally` that awaits: the cancel does not end the task

    task = asyncio.create_task(handler())
    await asyncio.sleep(0)
    task.cancel()
    _, late = await asyncio.wait({task}, timeout=0.05)
    assert late == {task}
    where = awaiting(task)
    assert "in handler > " in where and "in cleanup_that_waits > locks.py:" in where, where  # Event.wait
    assert "test_awaiting.py:" in where
    release.set()
    with pytest.raises(asyncio.CancelledError):
        await task
