"""The store steps the jobs actor relies on beyond confirm/finish: a certain refusal of createTask
puts a job back to 'created', a success is finished and marked delivered in one transaction (so a
crash cannot leave a sent result undelivered), jobs to drive are read page by page, a model's
usual duration, and the ledger flow listeners. The `money` fixture checks the invariants."""

from __future__ import annotations

import asyncio
from datetime import date

import pytest

from store import accounts, jobs
from store.fence import Fenced
from store.jobs import Created, Failed, Order, Succeeded
from tests.conftest import Money

pytestmark = pytest.mark.timeout(60)
USER = 3003


async def job_for(money: Money, nonce: str, price: int = 500) -> jobs.Job:
    await accounts.ensure_user(money.db, money.name, money.epoch, money.bot_id, USER, "en", 0)
    await accounts.credit(money.db, money.name, money.epoch, money.bot_id, USER, 100_000, f"seed:{nonce}")
    order = Order(user_id=USER, chat_id=USER, nonce=nonce, model="google/nano-banana", sku="x", input={"prompt": "p"},
                  price=price, paid_with="money", day=date(2025, 1, 1))
    created = await jobs.confirm(money.db, money.name, money.epoch, money.bot_id, order, free_daily_limit=5,
                                 max_active=100)
    assert isinstance(created, Created)
    return created.job


async def test_a_certain_refusal_puts_a_submitting_job_back_to_created(money: Money) -> None:
    job = await job_for(money, "r1")
    assert (await jobs.mark_submitting(money.db, money.name, money.epoch, job.id)).job.state == "submitting"
    back = await jobs.submit_refused(money.db, money.name, money.epoch, job.id)
    assert back.changed and back.job.state == "created" and back.job.attempts == 1
    again = await jobs.mark_submitting(money.db, money.name, money.epoch, job.id)
    assert again.job.attempts == 2
    await jobs.mark_submitted(money.db, money.name, money.epoch, job.id, "task-r1")
    late = await jobs.submit_refused(money.db, money.name, money.epoch, job.id)
    assert not late.changed and late.job.state == "submitted", "a job KIE has stays submitted"
    await jobs.finish(money.db, money.name, money.epoch, job.id, Failed("test"))


async def test_a_success_is_finished_and_delivered_in_one_step_and_only_once(money: Money) -> None:
    job = await job_for(money, "d1")
    flows: list[str] = []
    jobs.ledger_listeners["test"] = flows.append
    try:
        step = await jobs.finish(money.db, money.name, money.epoch, job.id, Succeeded({"urls": ["u"]}),
                                 delivered=True, file_id="photo-1")
        assert step.changed and step.job.state == "succeeded"
        assert step.job.delivered_at is not None and step.job.result_file_id == "photo-1"
        again = await jobs.finish(money.db, money.name, money.epoch, job.id, Succeeded({"urls": ["v"]}),
                                  delivered=True, file_id="photo-2")
        assert not again.changed and again.job.result_file_id == "photo-1", "the first delivery stays"
        assert await jobs.jobs_to_drive(money.db, money.bot_id) == []
        assert flows == ["capture"]
        released = await job_for(money, "d2")
        await jobs.finish(money.db, money.name, money.epoch, released.id, Failed("delivery"))
        told = await jobs.finish(money.db, money.name, money.epoch, released.id, Failed("delivery"), delivered=True)
        assert not told.changed and told.job.delivered_at is not None and told.job.result_file_id is None
        assert flows == ["capture", "hold", "release"]
    finally:
        del jobs.ledger_listeners["test"]
    assert (await accounts.balance(money.db, money.bot_id, USER)).held == 0


async def test_a_stale_epoch_cannot_finish_or_refuse(money: Money) -> None:
    job = await job_for(money, "s1")
    await jobs.mark_submitting(money.db, money.name, money.epoch, job.id)
    old = money.epoch
    await money.new_leader()
    for stale in (jobs.submit_refused(money.db, money.name, old, job.id),
                  jobs.finish(money.db, money.name, old, job.id, Succeeded({}), delivered=True)):
        with pytest.raises(Fenced):
            await stale
    await jobs.finish(money.db, money.name, money.epoch, job.id, Failed("test"))


async def test_a_step_under_a_stale_epoch_is_refused_whether_or_not_it_would_change_the_job(money: Money) -> None:
    """A step is one statement whose UPDATE joins the fence (sql/020_confirm.sql): the fence runs
    even when no row matches, so a stale leader learns it is fenced either way."""
    job = await job_for(money, "f1")
    old = money.epoch
    await money.new_leader()
    with pytest.raises(Fenced):  # would change it: created -> submitting
        await jobs.mark_submitting(money.db, money.name, old, job.id)
    with pytest.raises(Fenced):  # would not: a poll of a job never submitted
        await jobs.record_poll(money.db, money.name, old, job.id, running=True)
    now = await jobs.job(money.db, job.id)
    assert now is not None and now.state == "created" and now.attempts == 0 and now.epoch == old
    step = await jobs.mark_submitting(money.db, money.name, money.epoch, job.id)
    assert step.changed and step.job.epoch == money.epoch
    await jobs.finish(money.db, money.name, money.epoch, job.id, Failed("test"))


async def test_a_step_meeting_an_epoch_bump_in_flight_waits_for_it_and_is_refused(money: Money) -> None:
    job = await job_for(money, "f2")
    async with money.db.require().acquire() as bumper, bumper.transaction():
        await bumper.execute("UPDATE leader SET epoch = epoch + 1 WHERE name = $1", money.name)
        late = asyncio.create_task(jobs.mark_submitting(money.db, money.name, money.epoch, job.id))
        await money.until_one_waits_on_a_lock()
        assert not late.done()
    with pytest.raises(Fenced):
        await asyncio.wait_for(late, 10)
    money.epoch += 1
    now = await jobs.job(money.db, job.id)
    assert now is not None and now.state == "created" and now.attempts == 0
    await jobs.finish(money.db, money.name, money.epoch, job.id, Failed("test"))


async def test_jobs_to_drive_pages_through_every_job_and_the_usual_duration_is_a_median(money: Money) -> None:
    made = [await job_for(money, f"p{i}", price=100) for i in range(7)]
    seen: list[int] = []
    after = 0
    while page := await jobs.jobs_to_drive(money.db, money.bot_id, 3, after=after):
        seen += [j.id for j in page]
        after = page[-1].id
    assert seen == [j.id for j in made]
    assert await jobs.usual_seconds(money.db, money.bot_id, "google/nano-banana") is None
    for job, seconds in zip(made, (10, 20, 30, 40, 50, 60, 70), strict=True):
        await money.db.require().execute("UPDATE jobs SET created_at = now() - make_interval(secs => $2) "
                                          "WHERE id = $1", job.id, float(seconds))
        await jobs.finish(money.db, money.name, money.epoch, job.id,
                          Succeeded({}) if seconds != 70 else Failed("x"), delivered=True)
    usual = await jobs.usual_seconds(money.db, money.bot_id, "google/nano-banana")
    assert usual is not None and 34 < usual < 36, "the median of 10..60 s, the failed one left out"
    assert await jobs.usual_seconds(money.db, money.bot_id, "other") is None


async def test_an_action_job_keeps_its_family_and_parent_and_never_acts_on_another_users_result(money: Money) -> None:
    parent = await job_for(money, "p1")
    order = Order(user_id=USER, chat_id=USER, nonce="p1-extend", model="veo/extend", sku="fast",
                  input={"taskId": "veo_task_1", "prompt": "p"}, price=300, paid_with="money", day=date(2025, 1, 1),
                  endpoint="veo", parent_id=parent.id)
    created = await jobs.confirm(money.db, money.name, money.epoch, money.bot_id, order, free_daily_limit=5,
                                 max_active=100)
    assert isinstance(created, Created)
    assert created.job.endpoint == "veo" and created.job.parent_id == parent.id
    assert (await jobs.job(money.db, created.job.id)) == created.job, "read back as it was written"
    stranger = 3004
    await accounts.ensure_user(money.db, money.name, money.epoch, money.bot_id, stranger, "en", 0)
    await accounts.credit(money.db, money.name, money.epoch, money.bot_id, stranger, 10_000, "seed:stranger")
    forged = Order(user_id=stranger, chat_id=stranger, nonce="s1", model="veo/extend", sku="fast",
                   input={"taskId": "veo_task_1", "prompt": "p"}, price=300, paid_with="money", day=date(2025, 1, 1),
                   endpoint="veo", parent_id=parent.id)
    with pytest.raises(ValueError, match="not a result of user"):
        await jobs.confirm(money.db, money.name, money.epoch, money.bot_id, forged, free_daily_limit=5, max_active=100)
    assert (await accounts.balance(money.db, money.bot_id, stranger)).held == 0, "nothing held for a refused action"
    for job in (parent, created.job):
        await jobs.finish(money.db, money.name, money.epoch, job.id, Failed("test"))
