"""store/kie_account.py: pausing generations after a 402 and resuming are idempotent and fenced."""

from __future__ import annotations

import pytest

from store import kie_account
from store.database import Database
from store.fence import Fenced

pytestmark = pytest.mark.timeout(30)
NAME = "trt:leader:5"


async def leader(db: Database, epoch: int = 1) -> None:
    await db.require().execute("INSERT INTO leader (name, epoch, instance, pid, heartbeat_at, acquired_at) "
                               "VALUES ($1, $2, 't', 1, now(), now())", NAME, epoch)


async def test_a_pause_is_kept_once_and_a_resume_clears_it(db: Database) -> None:
    await leader(db)
    assert not (await kie_account.get(db, 5)).paused
    assert await kie_account.pause(db, NAME, 1, 5, "KIE credits exhausted")
    first = await kie_account.get(db, 5)
    assert first.paused and first.pause_reason == "KIE credits exhausted"
    assert not await kie_account.pause(db, NAME, 1, 5, "again")
    assert (await kie_account.get(db, 5)).paused_since == first.paused_since
    assert await kie_account.resume(db, NAME, 1, 5)
    assert not await kie_account.resume(db, NAME, 1, 5)
    assert not (await kie_account.get(db, 5)).paused
    await kie_account.record_credits(db, NAME, 1, 5, 1234)
    assert (await kie_account.get(db, 5)).credits == 1234
    assert not (await kie_account.get(db, 6)).paused, "another bot is apart"


async def test_a_stale_epoch_can_neither_pause_nor_resume(db: Database) -> None:
    await leader(db, epoch=2)
    with pytest.raises(Fenced):
        await kie_account.pause(db, NAME, 1, 5, "late")
    assert not (await kie_account.get(db, 5)).paused
