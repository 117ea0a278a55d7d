"""Jobs and the money they hold, on a real PostgreSQL: Confirm holds once per confirmation screen
whatever the clicks, replays and failovers; one user's concurrent confirmations never overdraw or
run more than the limit; finish moves money once whatever the order and repetition of callbacks
and polls. The `money` fixture checks the invariants (store/invariants.py) after every test."""

from __future__ import annotations

import asyncio
from dataclasses import replace as dataclasses_replace
from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

import pytest

from store import accounts, batching, invariants, job_parts, jobs, kie_account, kie_callbacks, standing
from store.accounts import UnknownUser
from store.database import DatabaseUnavailable
from store.fence import Fenced
from store.jobs import (
    Created,
    Existing,
    Failed,
    FreeLimitReached,
    InsufficientFunds,
    Order,
    Paused,
    Succeeded,
    TimedOut,
    TooManyActive,
)
from tests.conftest import Money

pytestmark = pytest.mark.timeout(60)
USER = 2002
PRICE = 1_000
DAY = date(2025, 3, 1)
MOSCOW = ZoneInfo("Europe/Moscow")
PROMPT = {"prompt": "a cat 🐈 and a lone surrogate \ud800"}


def order(nonce: str, *, price: int = PRICE, paid_with: jobs.PaidWith = "money", day: date = DAY,
          user: int = USER) -> Order:
    return Order(user_id=user, chat_id=user, nonce=nonce, model="flux", sku="flux-1:1", input=PROMPT,
                 price=price, paid_with=paid_with, day=day, status_message_id=77)


async def user_with(money: Money, kopecks: int, user: int = USER) -> None:
    await accounts.ensure_user(money.db, money.name, money.epoch, money.bot_id, user, "ru", 0)
    if kopecks:
        await accounts.credit(money.db, money.name, money.epoch, money.bot_id, user, kopecks, f"seed:{user}")


async def confirm(money: Money, o: Order, *, limit: int = 5, max_active: int = 3) -> jobs.Confirmation:
    return await jobs.confirm(money.db, money.name, money.epoch, money.bot_id, o, free_daily_limit=limit,
                              max_active=max_active)


async def created(money: Money, o: Order, **kwargs: int) -> jobs.Job:
    result = await confirm(money, o, **kwargs)
    assert isinstance(result, Created), result
    return result.job


async def balance(money: Money, user: int = USER) -> accounts.Balance:
    return await accounts.balance(money.db, money.bot_id, user)


async def kinds(money: Money, user: int = USER) -> list[str]:
    return [e.kind for e in reversed(await accounts.recent_entries(money.db, money.bot_id, user, 100))]


# --- Confirm --------------------------------------------------------------------------------------


async def test_confirm_holds_the_price_and_creates_the_job(money: Money) -> None:
    await user_with(money, 2_500)
    job = await created(money, order("n1"))
    assert (job.state, job.paid_with, job.price, job.held, job.epoch) == ("created", "money", PRICE, PRICE, money.epoch)
    assert job.input == PROMPT, "a prompt jsonb would refuse is kept as it was"
    assert job.status_message_id == 77 and job.chat_id == USER and job.free_day is None
    assert await balance(money) == accounts.Balance(2_500, PRICE)
    assert (await balance(money)).available == 1_500
    assert await kinds(money) == ["top_up", "hold"]


async def test_a_double_click_holds_once_and_creates_one_job(money: Money) -> None:
    await user_with(money, 5_000)
    first = await created(money, order("screen-1"))
    again = await confirm(money, order("screen-1"))
    assert again == Existing(first)
    results = await asyncio.gather(*(confirm(money, order("screen-2")) for _ in range(10)))
    assert sum(isinstance(r, Created) for r in results) == 1
    assert all(isinstance(r, Created | Existing) for r in results)
    assert len({r.job.id for r in results if isinstance(r, Created | Existing)}) == 1
    assert await balance(money) == accounts.Balance(5_000, 2 * PRICE)
    assert len(await jobs.user_jobs(money.db, money.bot_id, USER)) == 2


async def test_a_confirmation_replayed_after_a_failover_finds_its_job(money: Money) -> None:
    await user_with(money, 5_000)
    job = await created(money, order("screen-1"))
    await money.new_leader()
    again = await confirm(money, order("screen-1"))
    assert isinstance(again, Existing) and again.job.id == job.id and again.job.epoch == job.epoch
    assert await balance(money) == accounts.Balance(5_000, PRICE)


async def test_twenty_concurrent_confirmations_with_money_for_three_make_three_jobs(money: Money) -> None:
    await user_with(money, 3 * PRICE + PRICE // 2)
    results = await asyncio.gather(*(confirm(money, order(f"screen-{i}"), max_active=100) for i in range(20)))
    made = [r for r in results if isinstance(r, Created)]
    refused = [r for r in results if isinstance(r, InsufficientFunds)]
    assert len(made) == 3 and len(refused) == 17
    assert {r.price for r in refused} == {PRICE} and {r.available for r in refused} == {PRICE // 2}
    assert await balance(money) == accounts.Balance(3 * PRICE + PRICE // 2, 3 * PRICE)
    assert await jobs.active_count(money.db, money.bot_id, USER) == 3


async def test_twenty_concurrent_confirmations_run_at_most_max_active(money: Money) -> None:
    await user_with(money, 100 * PRICE)
    results = await asyncio.gather(*(confirm(money, order(f"screen-{i}"), max_active=3) for i in range(20)))
    assert sum(isinstance(r, Created) for r in results) == 3
    assert {r for r in results if not isinstance(r, Created)} == {TooManyActive(3, 3)}
    assert (await balance(money)).held == 3 * PRICE


async def test_a_finished_job_frees_its_place(money: Money) -> None:
    await user_with(money, 10 * PRICE)
    first = await created(money, order("a"))
    await created(money, order("b"))
    await created(money, order("c"))
    assert await confirm(money, order("d")) == TooManyActive(3, 3)
    await jobs.finish(money.db, money.name, money.epoch, first.id, Failed("kie_error"))
    await created(money, order("d"))


async def test_exactly_the_price_is_enough_and_a_kopeck_less_is_not(money: Money) -> None:
    await user_with(money, PRICE - 1)
    assert await confirm(money, order("a")) == InsufficientFunds(PRICE - 1, PRICE)
    await accounts.credit(money.db, money.name, money.epoch, money.bot_id, USER, 1, "one kopeck")
    await created(money, order("a"))
    assert (await balance(money)).available == 0


async def test_free_generations_count_per_day_in_the_bot_timezone(money: Money) -> None:
    await user_with(money, 0)
    evening = jobs.local_day(MOSCOW, datetime(2025, 3, 1, 20, 59, 59, tzinfo=UTC))  # 23:59:59 in Moscow
    midnight = jobs.local_day(MOSCOW, datetime(2025, 3, 1, 21, 0, 0, tzinfo=UTC))  # 00:00 the next day
    assert (evening, midnight) == (date(2025, 3, 1), date(2025, 3, 2))
    assert jobs.local_day(ZoneInfo("UTC"), datetime(2025, 3, 1, 21, 0, 0, tzinfo=UTC)) == date(2025, 3, 1)
    free = [await created(money, order(f"free-{i}", paid_with="free", day=evening), max_active=100) for i in range(5)]
    assert all(j.held == 0 and j.free_day == evening for j in free), "free generations hold no money"
    assert await confirm(money, order("free-5", paid_with="free", day=evening), max_active=100) == \
        FreeLimitReached(5, 5)
    assert await jobs.free_used(money.db, money.bot_id, USER, evening) == 5
    # a free generation that failed gave nothing: it does not count
    await jobs.finish(money.db, money.name, money.epoch, free[0].id, Failed("kie_error"))
    await jobs.finish(money.db, money.name, money.epoch, free[1].id, Succeeded({"urls": ["https://x/1.png"]}))
    assert await jobs.free_used(money.db, money.bot_id, USER, evening) == 4
    await created(money, order("free-5", paid_with="free", day=evening), max_active=100)
    assert await confirm(money, order("free-6", paid_with="free", day=evening), max_active=100) == \
        FreeLimitReached(5, 5)
    await created(money, order("free-7", paid_with="free", day=midnight), max_active=100)
    assert await balance(money) == accounts.Balance(0, 0)
    assert await invariants.check(money.db, free_daily_limit=5) == []


async def test_an_admin_generates_for_free_with_nothing_held(money: Money) -> None:
    await user_with(money, 0)
    job = await created(money, order("adm", paid_with="admin"))
    assert (job.paid_with, job.price, job.held) == ("admin", PRICE, 0)
    await jobs.finish(money.db, money.name, money.epoch, job.id, Succeeded({"urls": []}))
    assert await balance(money) == accounts.Balance(0, 0)
    assert await kinds(money) == []


async def test_confirm_needs_a_known_user_and_its_own_nonce(money: Money) -> None:
    with pytest.raises(UnknownUser):
        await confirm(money, order("x"))
    await user_with(money, 5_000)
    await user_with(money, 5_000, user=USER + 1)
    await created(money, order("x"))
    with pytest.raises(ValueError, match="another user"):
        await confirm(money, order("x", user=USER + 1))
    with pytest.raises(ValueError, match="positive price"):
        await confirm(money, order("y", price=0))
    assert (await balance(money, USER + 1)).held == 0


async def test_a_confirmation_under_a_stale_epoch_is_refused_and_moves_nothing(money: Money) -> None:
    await user_with(money, 5_000)
    old = money.epoch
    await money.new_leader()
    with pytest.raises(Fenced):
        await jobs.confirm(money.db, money.name, old, money.bot_id, order("late"), free_daily_limit=5, max_active=3)
    assert await jobs.user_jobs(money.db, money.bot_id, USER) == []
    assert await balance(money) == accounts.Balance(5_000, 0)


async def test_paused_generations_refuse_a_new_confirmation_but_a_confirmed_one_still_finds_its_job(
        money: Money) -> None:
    await user_with(money, 5_000)
    made = await confirm(money, order("before"))
    assert isinstance(made, Created)
    await kie_account.pause(money.db, money.name, money.epoch, money.bot_id, "402 from KIE")
    assert await confirm(money, order("during")) == Paused()
    assert await confirm(money, order("during", paid_with="admin", price=0)) == Paused(), "whoever pays"
    replay = await confirm(money, order("before"))
    assert isinstance(replay, Existing) and replay.job.id == made.job.id, "a replay answers first"
    assert await balance(money) == accounts.Balance(5_000, PRICE)
    await kie_account.resume(money.db, money.name, money.epoch, money.bot_id)
    assert isinstance(await confirm(money, order("during")), Created)
    for job in await jobs.user_jobs(money.db, money.bot_id, USER):
        await jobs.finish(money.db, money.name, money.epoch, job.id, Failed("test"))


async def test_a_confirmation_meeting_an_epoch_bump_in_flight_waits_for_it_and_is_refused(money: Money) -> None:
    """The one-statement Confirm (sql/020_confirm.sql) takes the fence as the fenced transaction
    did: it waits on the leader row a new leader is taking, then finds itself fenced."""
    await user_with(money, 5_000)
    async with money.db.require().acquire() as bumper, bumper.transaction():
        await bumper.execute("UPDATE leader SET epoch = epoch + 1 WHERE name = $1", money.name)
        late = asyncio.create_task(jobs.confirm(money.db, money.name, money.epoch, money.bot_id, order("bumped"),
                                                free_daily_limit=5, max_active=3))
        await money.until_one_waits_on_a_lock()
        assert not late.done()
    with pytest.raises(Fenced):
        await asyncio.wait_for(late, 10)
    money.epoch += 1
    assert await jobs.user_jobs(money.db, money.bot_id, USER) == []
    assert await balance(money) == accounts.Balance(5_000, 0)


# --- After Confirm ----------------------------------------------------------------------------------


async def test_a_success_captures_once(money: Money) -> None:
    await user_with(money, 5_000)
    job = await created(money, order("a"))
    step = await jobs.finish(money.db, money.name, money.epoch, job.id, Succeeded({"urls": ["https://x/1.png"]}))
    assert step.changed and step.job.state == "succeeded" and step.job.held == 0
    assert step.job.result == {"urls": ["https://x/1.png"]} and step.job.finished_at is not None
    again = await jobs.finish(money.db, money.name, money.epoch, job.id, Succeeded({"urls": ["https://x/2.png"]}))
    assert not again.changed and again.job == step.job
    late_failure = await jobs.finish(money.db, money.name, money.epoch, job.id, Failed("kie_error"))
    assert not late_failure.changed and late_failure.job.state == "succeeded"
    assert await balance(money) == accounts.Balance(4_000, 0)
    assert await kinds(money) == ["top_up", "hold", "capture"]


@pytest.mark.parametrize("outcome", [Failed("kie_error"), TimedOut()])
async def test_a_failure_or_timeout_releases_once(money: Money, outcome: jobs.Outcome) -> None:
    await user_with(money, 5_000)
    job = await created(money, order("a"))
    step = await jobs.finish(money.db, money.name, money.epoch, job.id, outcome)
    assert step.changed and step.job.state in ("failed", "timed_out") and step.job.failure in ("kie_error", "timed_out")
    for repeat in (outcome, Succeeded({"urls": []}), TimedOut()):
        assert not (await jobs.finish(money.db, money.name, money.epoch, job.id, repeat)).changed
    assert await balance(money) == accounts.Balance(5_000, 0)
    assert await kinds(money) == ["top_up", "hold", "release"]


async def test_ten_concurrent_finishes_callbacks_and_polls_move_money_once(money: Money) -> None:
    await user_with(money, 10 * PRICE)
    outcomes: list[jobs.Outcome] = [Succeeded({"urls": [f"https://x/{i}.png"]}) if i % 2 else Failed("kie_error")
                                    for i in range(10)]
    for n in range(3):
        job = await created(money, order(f"job-{n}"))
        steps = await asyncio.gather(*(jobs.finish(money.db, money.name, money.epoch, job.id, o) for o in outcomes))
        assert sum(s.changed for s in steps) == 1
        winner = next(s.job for s in steps if s.changed)
        assert all(s.job == winner for s in steps)
    entries = await accounts.recent_entries(money.db, money.bot_id, USER, 100)
    assert sum(e.kind in ("capture", "release") for e in entries) == 3
    assert (await balance(money)).held == 0


async def test_the_way_from_confirm_to_delivery(money: Money) -> None:
    await user_with(money, 5_000)
    job = await created(money, order("a"))
    submitting = await jobs.mark_submitting(money.db, money.name, money.epoch, job.id)
    assert submitting.changed and submitting.job.state == "submitting" and submitting.job.attempts == 1
    assert (await jobs.mark_submitting(money.db, money.name, money.epoch, job.id)).job.attempts == 2
    submitted = await jobs.mark_submitted(money.db, money.name, money.epoch, job.id, "task-1")
    assert submitted.changed and submitted.job.kie_task_id == "task-1" and submitted.job.submitted_at is not None
    other = await jobs.mark_submitted(money.db, money.name, money.epoch, job.id, "task-2")
    assert not other.changed and other.job.kie_task_id == "task-1", "the first task id stays"
    assert not (await jobs.mark_submitting(money.db, money.name, money.epoch, job.id)).changed
    queued = await jobs.record_poll(money.db, money.name, money.epoch, job.id, running=False)
    assert queued.job.state == "submitted" and queued.job.polls == 1
    running = await jobs.record_poll(money.db, money.name, money.epoch, job.id, running=True)
    assert running.job.state == "running" and running.job.polls == 2 and running.job.last_polled_at is not None
    assert await jobs.job_by_task(money.db, "task-1") == running.job
    await jobs.set_status_message(money.db, money.name, money.epoch, job.id, 99)
    with pytest.raises(ValueError, match="not finished"):
        await jobs.mark_delivered(money.db, money.name, money.epoch, job.id, "file-1")
    assert [j.id for j in await jobs.jobs_to_drive(money.db, money.bot_id)] == [job.id]
    await jobs.finish(money.db, money.name, money.epoch, job.id, Succeeded({"urls": ["https://x/1.png"]}))
    assert not (await jobs.record_poll(money.db, money.name, money.epoch, job.id, running=True)).changed
    assert [j.id for j in await jobs.jobs_to_drive(money.db, money.bot_id)] == [job.id], "the user is not told yet"
    delivered = await jobs.mark_delivered(money.db, money.name, money.epoch, job.id, "file-1")
    assert delivered.changed and delivered.job.result_file_id == "file-1" and delivered.job.status_message_id == 99
    again = await jobs.mark_delivered(money.db, money.name, money.epoch, job.id, "file-2")
    assert not again.changed and again.job.result_file_id == "file-1"
    late = await jobs.finish(money.db, money.name, money.epoch, job.id, Failed("kie_error"))
    assert not late.changed and late.job.state == "succeeded" and late.job.delivered_at is not None
    assert await jobs.jobs_to_drive(money.db, money.bot_id) == []
    assert await balance(money) == accounts.Balance(4_000, 0)


async def test_a_finish_under_a_stale_epoch_is_refused_and_the_next_leader_finishes(money: Money) -> None:
    await user_with(money, 5_000)
    job = await created(money, order("a"))
    old = money.epoch
    await money.new_leader()
    for stale in (jobs.finish(money.db, money.name, old, job.id, Succeeded({"urls": []})),
                  jobs.mark_submitting(money.db, money.name, old, job.id)):
        with pytest.raises(Fenced):
            await stale
    assert await balance(money) == accounts.Balance(5_000, PRICE)
    assert [j.id for j in await jobs.jobs_to_drive(money.db, money.bot_id)] == [job.id], "left for the next leader"
    step = await jobs.finish(money.db, money.name, money.epoch, job.id, Failed("kie_error"))
    assert step.changed and step.job.epoch == money.epoch
    assert await balance(money) == accounts.Balance(5_000, 0)


async def test_callbacks_are_kept_until_applied(money: Money) -> None:
    first = await kie_callbacks.store_callback(money.db, money.bot_id, "passive-1", '{"taskId": "t1"}', task_id="t1")
    second = await kie_callbacks.store_callback(money.db, money.bot_id, "active-1", "not json", job_id=5)
    await kie_callbacks.store_callback(money.db, money.bot_id + 1, "active-1", "{}")
    pending = await kie_callbacks.pending_callbacks(money.db, money.bot_id)
    assert [(c.id, c.task_id, c.job_id, c.body) for c in pending] == [
        (first, "t1", None, '{"taskId": "t1"}'), (second, None, 5, "not json")]
    await kie_callbacks.mark_callbacks_applied(money.db, [first])
    assert [c.id for c in await kie_callbacks.pending_callbacks(money.db, money.bot_id)] == [second]


async def test_the_checker_sees_a_job_that_holds_money_the_ledger_never_held(money: Money) -> None:
    await user_with(money, 5_000)
    job = await created(money, order("a"))
    pool = money.db.require()
    await pool.execute(
        """INSERT INTO jobs (bot_id, user_id, chat_id, confirm_nonce, model, sku, input, price, paid_with, held, epoch)
           SELECT bot_id, user_id, chat_id, 'forged', model, sku, input, price, paid_with, held, epoch
             FROM jobs WHERE id = $1""", job.id)
    problems = await invariants.check(money.db)
    assert any("0 holds" in p for p in problems) and any("its jobs hold 2000" in p for p in problems), problems
    await pool.execute("DELETE FROM jobs WHERE confirm_nonce = 'forged'")
    assert await invariants.check(money.db, max_active=1) == []
    await created(money, order("b"))
    assert await invariants.check(money.db, max_active=1) == [f"user {USER}: 2 jobs running at once, limit 1"]


async def test_the_history_is_newest_first(money: Money) -> None:
    await user_with(money, 10 * PRICE)
    made = [await created(money, order(f"h{i}"), max_active=10) for i in range(5)]
    page = await jobs.user_jobs(money.db, money.bot_id, USER, offset=1, limit=2)
    assert [j.id for j in page] == [made[3].id, made[2].id]
    assert await jobs.job(money.db, made[0].id) == made[0]
    assert await jobs.job(money.db, 10**12) is None
    with pytest.raises(LookupError):
        await jobs.finish(money.db, money.name, money.epoch, 10**12, TimedOut())


# --- delivery progress (issue 17) ---------------------------------------------------------------


async def test_a_job_with_a_result_in_the_chat_is_captured_whatever_ends_it(money: Money) -> None:
    await user_with(money, 10 * PRICE)
    outcomes = (Failed("delivery"), TimedOut(), Failed("generation_failed"))
    for n, outcome in enumerate(outcomes):
        job = await created(money, order(f"p{n}"), max_active=10)
        await jobs.record_result(money.db, money.name, money.epoch, job.id, {"urls": ["https://r/1.png"]})
        assert await job_parts.record_part(money.db, money.name, money.epoch, job.id, "0:photo", reached=True,
                                           file_id="F", message_id=5)
        step = await jobs.finish(money.db, money.name, money.epoch, job.id, outcome)
        assert step.changed and (step.job.state, step.job.failure) == ("succeeded", None), outcome
        assert step.job.result == {"urls": ["https://r/1.png"]}, "the result kept for the rest of the delivery"
    assert await kinds(money) == ["top_up"] + ["hold", "capture"] * 3
    assert await balance(money) == accounts.Balance(7 * PRICE, 0)


async def test_our_words_alone_do_not_make_a_job_a_success(money: Money) -> None:
    await user_with(money, 5_000)
    job = await created(money, order("w"))
    await job_parts.record_part(money.db, money.name, money.epoch, job.id, "apology", reached=False, message_id=9)
    step = await jobs.finish(money.db, money.name, money.epoch, job.id, Failed("delivery"))
    assert step.job.state == "failed" and await kinds(money) == ["top_up", "hold", "release"]


async def test_a_part_is_recorded_once_and_only_by_the_leader(money: Money) -> None:
    await user_with(money, 5_000)
    job = await created(money, order("r"))
    assert await job_parts.record_part(money.db, money.name, money.epoch, job.id, "0:photo", reached=True, file_id="A",
                                       message_id=1)
    assert not await job_parts.record_part(money.db, money.name, money.epoch, job.id, "0:photo", reached=True,
                                           file_id="B", message_id=2), "a repetition changes nothing"
    old = money.epoch
    await money.new_leader()
    with pytest.raises(Fenced):
        await job_parts.record_part(money.db, money.name, old, job.id, "0:document", reached=True)
    assert await job_parts.parts(money.db, job.id) == {"0:photo": job_parts.Part("0:photo", True, "A", 1)}
    await jobs.finish(money.db, money.name, money.epoch, job.id, Failed("delivery"))


async def test_a_status_message_recorded_after_the_job_was_told_reopens_it_for_its_last_word(money: Money) -> None:
    await user_with(money, 5_000)
    job = await created(money, dataclasses_replace(order("s"), status_message_id=None))
    await jobs.finish(money.db, money.name, money.epoch, job.id, Failed("no_kie_key"))
    await job_parts.record_part(money.db, money.name, money.epoch, job.id, "apology", reached=False, message_id=3)
    late = await jobs.set_status_message(money.db, money.name, money.epoch, job.id, 4)
    refused = await jobs.mark_delivered(money.db, money.name, money.epoch, job.id, status_message_id=None)
    assert not refused.changed and refused.job.delivered_at is None, "the status message it had is not the one now"
    assert late.job.status_message_id == 4
    told = await jobs.mark_delivered(money.db, money.name, money.epoch, job.id, status_message_id=4)
    assert told.changed
    again = await jobs.set_status_message(money.db, money.name, money.epoch, job.id, 4)
    assert again.job.delivered_at is not None, "the same message again is no news"
    reopened = await jobs.set_status_message(money.db, money.name, money.epoch, job.id, 6)
    assert reopened.job.delivered_at is None and [j.id for j in await jobs.jobs_to_drive(money.db, money.bot_id)] \
        == [job.id]


async def test_the_checker_sees_a_released_job_whose_result_reached_the_user(money: Money) -> None:
    """The store never lets it happen (finish captures once a part reached the chat); the check
    must still see it when something writes around the store, as the soak's checker relies on."""
    await user_with(money, 5 * PRICE)
    job = await created(money, order("reached-then-released"))
    await jobs.finish(money.db, money.name, money.epoch, job.id, Failed("generation_failed"))
    assert await invariants.check(money.db) == []
    pool = money.db.require()
    await pool.execute("INSERT INTO job_deliveries (job_id, part, reached, epoch) VALUES ($1, '0:photo', true, $2)",
                       job.id, money.epoch)
    problems = await invariants.check(money.db)
    assert len(problems) == 1 and "a result reached the user" in problems[0] and "released" in problems[0]
    await pool.execute("DELETE FROM job_deliveries WHERE job_id = $1", job.id)


async def test_first_screens_read_at_once_share_statements_and_each_says_what_it_would_alone(money: Money) -> None:
    """standing.read() batched (store/batching.py): each user's balance and free generations used
    on the day, as a read of their own would say, including a user twice and one never met."""
    users = list(range(USER + 10, USER + 30))
    for n, user in enumerate(users):
        await user_with(money, 1_000 * n, user)
    for i in range(2):  # two free generations of the day, one paid one (which is not counted)
        await created(money, order(f"free-{i}", paid_with="free", user=users[3]), max_active=100)
    await created(money, order("paid", user=users[5]), max_active=100)
    asked = [*users, users[3], USER + 99]
    alone = [await standing.read(money.db, money.bot_id, user, DAY) for user in asked]
    assert alone[3] == (3_000, 2) and alone[5] == (5_000 - PRICE, 0) and alone[-1] == (0, 0)
    before = batching.stats(money.db, standing.BATCHER)
    together = await asyncio.gather(*(standing.read(money.db, money.bot_id, user, DAY) for user in asked))
    after = batching.stats(money.db, standing.BATCHER)
    assert list(together) == alone
    assert after["items"] - before["items"] == len(asked)
    assert after["batches"] - before["batches"] < len(asked), "reads at the same moment share statements"
    other_day = await asyncio.gather(standing.read(money.db, money.bot_id, users[3], date(2025, 3, 2)),
                                     standing.read(money.db, money.bot_id, users[3], DAY))
    assert other_day == [(3_000, 0), (3_000, 2)], "a batch of two days answers each day's count"


async def test_a_batch_of_first_screens_fails_each_of_its_readers_when_the_database_is_down(money: Money) -> None:
    money.db.state = "down"
    try:
        results = await asyncio.gather(*(standing.read(money.db, money.bot_id, user, DAY) for user in (1, 2, 3)),
                                       return_exceptions=True)
    finally:
        money.db.state = "up"
    assert all(isinstance(r, DatabaseUnavailable) for r in results), results
