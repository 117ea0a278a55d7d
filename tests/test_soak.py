"""The chaos soak (bench/soak.py) in the suite: a one-minute run under every kind of fault on a
fixed seed, and the history checker (bench/soak_checker.py) shown to catch each violation it
claims to, on small synthetic histories, so a clean soak means something."""

from __future__ import annotations

import dataclasses
import itertools
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest
from aiogram import Bot
from aiogram.types import Update

from bench.soak import KINDS, SoakConfig, make_schedule, run_soak
from bench.soak_checker import (
    INVARIANTS,
    Acquisition,
    History,
    InboxRow,
    JobRow,
    KieCreate,
    Media,
    Reply,
    Sample,
    check,
    failover_times,
    parse_reply,
    replays,
)
from bot import texts
from bot.conversation import build_dispatcher
from fakes.telegram_api import FakeTelegram, message_update
from ingest.bot_api import make_bot
from tests.procs import FAKE_TOKEN

pytestmark = pytest.mark.timeout(30)

SOAK_SEED = 6  # fixed, and its minute deals every kind and variant of fault; a failure replays with
# `.venv/bin/python -m bench.soak --seed 6 --minutes 1 --chats 150 --rate 25`


# -- the echo command the soak's load speaks -------------------------------------------------------


@pytest.fixture
async def bot(fake: FakeTelegram) -> AsyncIterator[Bot]:
    bot = make_bot(FAKE_TOKEN, fake.base_url, timeout=10)
    yield bot
    await bot.session.close()


async def test_chaos_echo_answers_with_its_token_and_exists_only_with_chaos_on(fake: FakeTelegram, bot: Bot) -> None:
    on, off = build_dispatcher(chaos=True), build_dispatcher()
    await on.feed_update(bot, Update.model_validate(message_update(1, 61, "/chaos_echo 1000042")))
    await on.feed_update(bot, Update.model_validate(message_update(2, 61, "/chaos_echo")))
    await off.feed_update(bot, Update.model_validate(message_update(3, 62, "/chaos_echo 7")))
    began = time.monotonic()
    await on.feed_update(bot, Update.model_validate(message_update(4, 61, "/chaos_echo 1000043 0.3")))
    assert time.monotonic() - began >= 0.3  # it worked as long as asked before answering
    await on.feed_update(bot, Update.model_validate(message_update(5, 61, "/chaos_echo 1000044 soon")))
    assert [c.text for c in fake.sent_messages(61)] == [
        "chaos_echo 1000042", "chaos_echo", "chaos_echo 1000043", "chaos_echo 1000044"]
    assert parse_reply(fake.sent_messages(61)[0].text) == (1000042, "echo")
    assert fake.sent_messages(62)[0].text == texts.t("ru", "fallback")  # without CHAOS_TOKEN: an unknown command


def test_replies_are_tied_to_their_update_by_echo_or_apology_reference() -> None:
    assert parse_reply("chaos_echo 55") == (55, "echo")
    assert parse_reply(texts.t("ru", "apology", ref="u56")) == (56, "apology")
    assert parse_reply(texts.t("en", "apology", ref="u57")) == (57, "apology")
    assert parse_reply(texts.t("en", "fallback")) == (None, "other")
    assert parse_reply("chaos_echo 55 and more") == (None, "other")
    assert parse_reply(None) == (None, "other")


# -- the schedule --------------------------------------------------------------------------------


def test_a_seed_gives_the_same_schedule_and_a_minute_deals_every_kind_of_fault() -> None:
    one = make_schedule(SOAK_SEED, 60, 3)
    assert one == make_schedule(SOAK_SEED, 60, 3)
    assert one != make_schedule(SOAK_SEED + 1, 60, 3)
    assert {f.kind for f in one} == set(KINDS)
    variants = {(f.kind, f.param("fault") or f.param("answer")) for f in one if f.kind in ("chaos", "telegram")}
    assert variants == {("chaos", "crash"), ("chaos", "hang"), ("chaos", "slow"),
                        ("telegram", "429"), ("telegram", "500"), ("telegram", "slow")}
    assert all(0 < f.at < 60 for f in one) and [f.at for f in one] == sorted(f.at for f in one)
    gaps = [b.at - a.at for a, b in itertools.pairwise(one)]
    assert min(gaps) >= 2.0 and max(gaps) <= 6.0
    stops = [f.param("seconds") for s in range(20) for f in make_schedule(s, 120, 3) if f.kind == "sigstop"]
    assert any(s > 3 for s in stops) and any(s < 3 for s in stops)  # some outlast STALE_AFTER, some do not


# -- the checker, on synthetic histories --------------------------------------------------------

T0 = 1_000.0


def clean() -> History:
    """Two chats, four updates; i0 leads, i1 takes over at T0+10 and replays update 3 (claimed twice)."""
    def reply(instance: str, chat: int, at: float, update: int, kind: str = "echo", ok: bool = True) -> Reply:
        return Reply(instance, chat, T0 + at, ok, update, kind)

    return History(
        acked={1: 7, 2: 8, 3: 7, 4: 7},
        replies=[reply("i0", 7, 1, 1), reply("i0", 8, 2, 2, ok=False), reply("i0", 8, 2.1, 2, "apology"),
                 reply("i0", 7, 9, 3), reply("i1", 7, 11, 3), reply("i1", 7, 12, 4)],
        leadership=[Acquisition(1, "i0", T0), Acquisition(2, "i1", T0 + 10)],
        inbox={1: InboxRow(1, 7, 2, 1, "ok"), 2: InboxRow(2, 8, 2, 1, "error"), 3: InboxRow(3, 7, 2, 2, "ok"),
               4: InboxRow(4, 7, 2, 1, "ok")},
        samples=[Sample(T0 + t, "i0", "ACTIVE", True, 1) for t in range(10)]
        + [Sample(T0 + 10 + t, "i1", "ACTIVE", t > 0, 1) for t in range(3)],
        final=[Sample(T0 + 20, "i0", "PASSIVE", False, 0), Sample(T0 + 20, "i1", "ACTIVE", True, 0),
               Sample(T0 + 20, "i2", None, False, 0)],
        # three generations: job 1 paid and delivered; job 2 refused once (402: no task), then failed
        # at KIE and released; job 3 free, its first createTask hung (ambiguous), so a second task is allowed
        jobs=[JobRow(1, 7, "succeeded", "money", True, T0 + 1, 1, 1, 0, kie_done_at=T0 + 5),
              JobRow(2, 8, "failed", "money", True, T0 + 2, 1, 0, 1, kie_done_at=T0 + 6),
              JobRow(3, 8, "succeeded", "free", True, T0 + 3, kie_done_at=T0 + 9)],
        kie_creates=[KieCreate(1, T0 + 1.5, True, False), KieCreate(2, T0 + 2.5, False, False),
                     KieCreate(2, T0 + 3.5, True, False), KieCreate(3, T0 + 3.2, True, True),
                     KieCreate(3, T0 + 8, True, False)],
        media=[Media(7, T0 + 5.5, True, "sendPhoto"), Media(7, T0 + 5.6, True, "sendDocument"),
               Media(8, T0 + 9.5, False, "sendPhoto"), Media(8, T0 + 9.7, True, "sendPhoto")],
    )


def violated(history: History) -> set[str]:
    return {v.invariant for v in check(history)}


def test_a_clean_history_passes_every_invariant_and_counts_its_replay() -> None:
    assert check(clean()) == []
    assert replays(clean()) == {3: 1}
    assert failover_times(clean(), [(T0 + 9.5, "kill9")]) == [("kill9", 0.5)]
    # a freeze the leader survived with its lock is no failover, whatever acquisition comes later
    assert failover_times(clean(), [(T0 + 5, "sigstop"), (T0 + 9.5, "kill9"), (T0 + 12, "sigstop")]) == [
        ("kill9", 0.5)]


def test_an_acknowledged_update_never_answered_is_caught() -> None:
    history = clean()
    history.replies = [r for r in history.replies if r.update_id != 2 or r.kind != "apology"]  # only the failed send
    assert violated(history) == {"every acknowledged update answered"}
    [line] = [v.detail for v in check(history)]
    assert "update 2" in line and "outcome error" in line


def test_a_send_after_the_next_acquisition_is_caught() -> None:
    """The woken ex-leader: i0's send arrives after i1 acquired (beyond the slack)."""
    history = clean()
    history.replies.append(Reply("i0", 8, T0 + 10.2, True, None, "other"))
    assert violated(history) == {"no send outside the sender's leadership"}
    assert "0.200s late" in check(history)[0].detail
    history.stalls = [(T0 + 9.9, 0.3)]  # evidence for the reader: the stamp may be late by a stall
    assert "stalled up to 300 ms" in check(history)[0].detail
    history.replies[-1] = Reply("i0", 8, T0 + 10.04, True, None, "other")  # within the slack
    assert check(history) == []
    history.replies[-1] = Reply("i2", 8, T0 + 5, False, None, "other")  # never led: even a failed send counts
    assert violated(history) == {"no send outside the sender's leadership"}


def test_an_update_answered_twice_in_one_claim_is_caught() -> None:
    history = clean()
    history.replies.append(Reply("i1", 7, T0 + 12.5, True, 4, "echo"))  # update 4 again, attempts 1
    assert violated(history) == {"no double answer without a replay"}
    history.inbox[4] = dataclasses.replace(history.inbox[4], attempts=2)  # a replay: counted, not a violation
    assert check(history) == [] and replays(history) == {3: 1, 4: 1}


def test_a_chat_answered_out_of_update_id_order_is_caught() -> None:
    history = clean()
    history.replies = [r if r.update_id != 4 else dataclasses.replace(r, instance="i0", at=T0 + 8.5)
                       for r in history.replies]
    assert violated(history) == {"each chat in update_id order"}
    assert "update 4 first answered" in check(history)[0].detail


def test_a_claim_left_unfinished_or_an_update_never_stored_is_caught() -> None:
    history = clean()
    history.inbox[3] = dataclasses.replace(history.inbox[3], state=1)
    assert violated(history) == {"no claim left stranded"}
    history = clean()
    del history.inbox[4]
    assert violated(history) == {"no claim left stranded"}
    assert "update 4 (chat 7) acknowledged but not in the inbox" in check(history)[0].detail


def test_an_active_instance_idle_past_the_bound_or_two_active_at_the_end_are_caught() -> None:
    history = clean()
    history.samples += [Sample(T0 + 13 + t * 0.5, "i1", "ACTIVE", False, 4) for t in range(12)]  # 5.5 s
    assert violated(history) == {"no ACTIVE instance idle"}
    history.samples = history.samples[:-2]  # 4.5 s: a transition, not a stuck leader
    assert check(history) == []
    history.samples += [Sample(T0 + 30 + t, "i1", "ACTIVE", False, 0) for t in range(10)]  # nothing waits
    history.samples += [Sample(T0 + 40 + t, "i1", "ACTIVE", False, None) for t in range(10)]  # unknown
    assert check(history) == []
    history.final[0] = dataclasses.replace(history.final[0], role="ACTIVE")
    assert violated(history) == {"no ACTIVE instance idle"}
    history.final = [dataclasses.replace(s, consuming=False) for s in clean().final]
    assert violated(history) == {"no ACTIVE instance idle"}


def test_a_webhook_answer_other_than_200_or_503_is_caught() -> None:
    history = clean()
    history.webhook_answers = {"200": 4, "503": 2, "timeout": 1, "connection error": 3}
    assert check(history) == []
    history.webhook_answers["500"] = 1  # an error escaped the intake (a traceback, not a Retry-After)
    assert [v.detail for v in check(history)] == ["/webhook answered 500 to 1 post(s)"]


def test_money_invariant_lines_are_violations() -> None:
    history = clean()
    history.money_problems = ["user 7 (bot 1): negative: balance -100, held 0"]
    assert [(v.invariant, v.detail) for v in check(history)] == [
        ("money invariants hold", "user 7 (bot 1): negative: balance -100, held 0")]


def test_a_job_left_running_or_never_told_is_caught() -> None:
    history = clean()
    history.jobs[1] = dataclasses.replace(history.jobs[1], state="running", releases=0)
    assert "every job finished and told" in violated(history)
    assert "job 2 (chat 8) left in state running" in [v.detail for v in check(history)]
    history = clean()
    history.jobs[0] = dataclasses.replace(history.jobs[0], delivered=False)
    assert [v.detail for v in check(history)] == ["job 1 (chat 7) succeeded but the user was never told"]
    # an ambiguous submit waits for its callback or its model's timeout: unfinished only until then
    history = clean()
    history.jobs.append(JobRow(4, 9, "submitting", "money", False, T0 + 10, 1, deadline=T0 + 310))
    history.ended_at = T0 + 100
    assert check(history) == []
    history.ended_at = T0 + 311
    assert [v.detail for v in check(history)] == ["job 4 (chat 9) left in state submitting"]
    history.jobs[-1] = dataclasses.replace(history.jobs[-1], state="running")  # only a submit may wait so
    history.ended_at = T0 + 100
    assert [v.detail for v in check(history)] == ["job 4 (chat 9) left in state running"]


def test_a_second_kie_task_without_an_ambiguous_submit_is_caught() -> None:
    history = clean()
    history.kie_creates.append(KieCreate(1, T0 + 2, True, False))  # job 1 submitted twice, both answered
    assert violated(history) == {"one KIE task per job unless ambiguous"}
    assert check(history)[0].detail.startswith("job 1: 2 tasks at KIE")
    history = clean()
    history.kie_creates.append(KieCreate(2, T0 + 4, True, False))  # the 402 made no task: it excuses nothing
    assert violated(history) == {"one KIE task per job unless ambiguous"}
    history = clean()
    history.kie_creates.append(KieCreate(3, T0 + 8.5, True, False))  # after an ambiguous one: a third is allowed
    assert check(history) == []
    history.kie_creates.append(KieCreate(None, T0 + 9, True, False))
    assert [v.detail for v in check(history)] == [f"createTask at {T0 + 9:.3f} names no job in its callBackUrl"]


def test_a_success_whose_result_never_reached_the_chat_is_caught() -> None:
    history = clean()
    history.media = [m for m in history.media if m.chat_id != 8 or not m.ok]  # job 3's only good photo gone
    assert violated(history) == {"every success delivered"}
    assert check(history)[0].detail.startswith("job 3 (chat 8) succeeded")
    history = clean()
    history.media = [dataclasses.replace(m, at=T0 + 4) if m.chat_id == 7 else m for m in history.media]
    assert violated(history) == {"every success delivered"}  # sent before KIE ended the task: not this result
    history = clean()
    history.jobs.append(JobRow(4, 8, "succeeded", "free", True, T0 + 9.1, kie_done_at=T0 + 9.2))
    assert next(v.detail for v in check(history)).startswith("job 4 (chat 8)")  # one photo counts for one job


def test_money_moved_twice_or_not_at_all_is_caught() -> None:
    history = clean()
    history.jobs[0] = dataclasses.replace(history.jobs[0], captures=2)
    assert violated(history) == {"money moved once per job"}
    history.jobs[0] = dataclasses.replace(history.jobs[0], captures=1, releases=1)
    assert violated(history) == {"money moved once per job"}
    history = clean()
    history.jobs[2] = dataclasses.replace(history.jobs[2], holds=1)  # a free job held money
    assert [v.detail for v in check(history)] == [
        "job 3 (succeeded, free): 1 hold(s), 0 capture(s), 0 release(s); expected 0, 0, 0"]


def test_the_invariant_list_is_open_for_more() -> None:
    """A product invariant (money) is one more function over the History."""
    def no_chat_seven(history: History) -> list[str]:
        return [f"update {u}" for u, chat in history.acked.items() if chat == 7]

    assert [v.detail for v in check(clean(), [*INVARIANTS, ("no chat seven", no_chat_seven)])] == [
        "update 1", "update 3", "update 4"]


# -- the soak itself -----------------------------------------------------------------------------


@pytest.fixture
def postgres_restart(pg_server_url: str, request: pytest.FixtureRequest) -> Callable[[], None] | None:
    """The embedded server's restart, or None when DATABASE_URL points at a server we do not own
    (the soak then runs without PostgreSQL restarts rather than not at all)."""
    from tests import conftest

    if not conftest._SERVER:
        return None
    restart: Callable[[], None] = request.getfixturevalue("restart_postgres")
    return restart


@pytest.mark.timeout(360)
async def test_a_one_minute_soak_under_every_kind_of_fault_breaks_no_invariant(
        database_url: str, postgres_restart: Callable[[], None] | None, tmp_path: Path) -> None:
    # every wait of the run is bounded, and the bounds add up to less than the timeout (about 80 s
    # when all is well): start 60, faults 60, settle 40 + 45, quiet 5, drain 60
    config = SoakConfig(seed=SOAK_SEED, fault_seconds=60, chats=150, rate=25, start_timeout=60,
                        redeliver_for=30, settle_faults_timeout=45, drain_timeout=60)
    result = await run_soak(config, database_url, tmp_path, postgres_restart)
    print(result.report(full=True))
    applied = {a.planned.kind for a in result.applied if a.outcome == "ok"}
    assert applied >= set(KINDS) - ({"pg_restart"} if postgres_restart is None else set()), result.report(True)
    assert len(result.history.acked) > 500
    assert result.ok, result.report(full=True)
