"""The chaos soak (bench/soak.py) in the suite: a one-minute run under every kind of fault on a
fixed seed, and the history checker (bench/soak_checker.py) shown to catch each violation it
claims to, on small synthetic histories, so a clean soak means something."""

from __future__ import annotations

import dataclasses
import itertools
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import aiohttp
import pytest
from aiogram import Bot
from aiogram.types import Update

from bench.soak import (
    KINDS,
    MONEY_DECK,
    SoakConfig,
    forged_body,
    job_id_of,
    make_money_schedule,
    make_schedule,
    run_soak,
    wrong_token,
)
from bench.soak_checker import (
    INVARIANTS,
    Acquisition,
    Death,
    Forged,
    Freeze,
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
from fakes.kie_api import CREATE_PATH, FakeKie
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
        # four generations: job 1 paid and delivered (photo and document); job 2 refused once (402:
        # no task), then failed at KIE and released; job 3 free, its createTask answered by a CDN's
        # page after KIE made the task (ambiguous), the task adopted; job 5 free, its createTask hung
        # (ambiguous, no task made): timed out with the orphan counted
        jobs=[JobRow(1, 7, "succeeded", "money", True, T0 + 1, 1, 1, 0, kie_done_at=T0 + 5, task_id="t1",
                     kie_outcome="success", files_delivered=2),
              JobRow(2, 8, "failed", "money", True, T0 + 2, 1, 0, 1, kie_done_at=T0 + 6, task_id="t2",
                     kie_outcome="fail"),
              JobRow(3, 8, "succeeded", "free", True, T0 + 3, kie_done_at=T0 + 9, task_id="t3",
                     kie_outcome="success", files_delivered=1),
              JobRow(5, 9, "timed_out", "free", True, T0 + 3, deadline=T0 + 8)],
        kie_creates=[KieCreate(1, T0 + 1.5, True, False), KieCreate(2, T0 + 2.5, False, False),
                     KieCreate(2, T0 + 3.5, True, False), KieCreate(3, T0 + 3.2, True, True),
                     KieCreate(5, T0 + 3.3, False, True)],
        orphans={5: 1},
        ended_at=T0 + 20,
        # i0 was killed at T0+9.9 (its lock went with it); i1's epoch 2 was alive at T0+19
        deaths=[Death("i0", 1, T0 + 9.9, "kill9")],
        heartbeats={1: T0 + 9.6, 2: T0 + 19},
        media=[Media(7, T0 + 5.5, True, "sendPhoto"), Media(7, T0 + 5.6, True, "sendDocument"),
               Media(8, T0 + 9.5, False, "sendPhoto"), Media(8, T0 + 9.7, True, "sendPhoto")],
        # a payment whose acknowledgement was lost may be recorded; one never acknowledged need not be
        payments_posted={"c1": (7, 50, True), "c2": (8, 100, False), "c3": (8, 250, False)},
        payments_recorded={"c1": (7, 50, 1), "c2": (8, 100, 1)},
    )


def violated(history: History) -> set[str]:
    return {v.invariant for v in check(history)}


def test_a_clean_history_passes_every_invariant_and_counts_its_replay() -> None:
    assert check(clean()) == []
    assert replays(clean()) == {3: 1}


def test_a_failover_is_measured_from_the_old_epochs_real_end_not_from_the_fault() -> None:
    # the kill ended epoch 1 when i0 died (T0+9.9): i1 acquired 0.1 s later
    assert failover_times(clean(), [(T0 + 9.85, "kill9")]) == [("kill9", 0.1)]
    # a freeze the leader survived with its lock (it kept renewing until T0+9.6) is not the cause
    # of a loss 8 s later, nor is the loss timed from it
    history = clean()
    history.deaths = []
    assert failover_times(history, [(T0 + 1.5, "sigstop")]) == [("- (last heartbeat)", 0.4)]
    # a freeze that ended it: the takeover is timed from the last heartbeat before it
    history.heartbeats[1] = T0 + 6.5
    assert failover_times(history, [(T0 + 6.6, "sigstop")]) == [("sigstop", 3.5)]
    history.heartbeats = {}  # nothing says when epoch 1 ended: left out rather than guessed
    assert failover_times(history, [(T0 + 6.6, "sigstop")]) == []


def test_an_acknowledged_update_never_answered_is_caught() -> None:
    history = clean()
    history.replies = [r for r in history.replies if r.update_id != 2 or r.kind != "apology"]  # only the failed send
    assert violated(history) == {"every acknowledged update answered"}
    [line] = [v.detail for v in check(history)]
    assert "update 2" in line and "outcome error" in line


def test_a_deposed_leaders_live_send_is_caught() -> None:
    """The woken ex-leader: i0 (a later start of it, alive) sends after i1 acquired, beyond the slack."""
    history = clean()
    history.replies.append(Reply("i0", 8, T0 + 10.2, True, None, "other", incarnation=2))
    assert violated(history) == {"no send outside the sender's leadership"}
    [line] = [v.detail for v in check(history)]
    assert "0.200s late" in line and "the sender did not die" in line
    history.replies[-1] = Reply("i0", 8, T0 + 10.04, True, None, "other", incarnation=2)  # within the slack
    assert check(history) == []
    history.replies[-1] = Reply("i2", 8, T0 + 5, False, None, "other")  # never led: even a failed send counts
    assert violated(history) == {"no send outside the sender's leadership"}


def test_a_dead_senders_request_in_flight_is_no_violation() -> None:
    """i0 was killed at T0+9.9 holding the lock; its last request, written before it died, is
    stamped 0.54 s after the kill, after i1 acquired: in flight, not a send outside leadership."""
    history = clean()
    history.replies.append(Reply("i0", 7, T0 + 10.44, True, None, "other", incarnation=1))
    assert check(history) == []
    # the same stamp from a process that was alive then is a violation
    history.replies[-1] = dataclasses.replace(history.replies[-1], incarnation=2)
    assert violated(history) == {"no send outside the sender's leadership"}
    # a sender that died only after it had been deposed is not excused by its death
    history = clean()
    history.deaths = [Death("i0", 1, T0 + 11, "kill9")]
    history.replies.append(Reply("i0", 7, T0 + 10.5, True, None, "other", incarnation=1))
    assert violated(history) == {"no send outside the sender's leadership"}
    assert "not dead until" in check(history)[0].detail


def test_a_frozen_leaders_request_in_flight_at_the_stop_is_no_violation_but_a_later_send_is() -> None:
    """i0, leading, is SIGSTOPped at T0+9.5 and continued at T0+12 (i1 acquired at T0+10): the
    request it had passed its lease check for goes out right after SIGCONT, after i1 acquired: in
    flight at the stop, like a dead sender's last request (seed 90210 once met one, 8 ms after)."""
    history = clean()
    history.deaths = []  # frozen, not killed, this time
    history.freezes = [Freeze("i0", 1, T0 + 9.5, T0 + 12)]
    history.replies.append(Reply("i0", 7, T0 + 12.01, True, None, "other", incarnation=1))
    assert check(history) == []
    # a second after the SIGCONT it is a new send, which the lease check would have refused
    history.replies[-1] = dataclasses.replace(history.replies[-1], at=T0 + 13.0)
    assert violated(history) == {"no send outside the sender's leadership"}
    # frozen only after it was deposed: its lease check cannot have passed while it led
    history = clean()
    history.deaths = []
    history.freezes = [Freeze("i0", 1, T0 + 10.5, T0 + 12)]
    history.replies.append(Reply("i0", 7, T0 + 12.01, True, None, "other", incarnation=1))
    assert violated(history) == {"no send outside the sender's leadership"}


def test_a_stamp_late_by_the_fakes_stall_is_no_violation_but_a_send_later_than_the_stall_is() -> None:
    history = clean()
    history.replies.append(Reply("i0", 8, T0 + 10.2, True, None, "other", incarnation=2))
    history.stalls = [(T0 + 10.19, 0.3)]  # the fake's loop was stuck from T0+9.89: the send may be from then
    assert check(history) == []
    history.stalls = [(T0 + 10.19, 0.1)]  # written after T0+10.04 whatever the stall: a real violation
    assert violated(history) == {"no send outside the sender's leadership"}
    assert "stalled 100 ms" in check(history)[0].detail


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


def test_a_payment_lost_credited_twice_or_never_paid_is_caught() -> None:
    history = clean()
    history.payments_recorded["c1"] = (7, 50, 2)
    history.payments_posted["c4"] = (9, 50, True)
    history.payments_recorded["c9"] = (9, 100, 1)
    assert sorted(v.detail for v in check(history) if v.invariant == "every payment credited once") == [
        "payment c1 of chat 7 (50 Stars) recorded as user 7, 50 Stars, credited 2 times",
        "payment c4 of chat 9 (50 Stars) acknowledged but never recorded",
        "payment c9 recorded but never paid"]


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


def test_a_job_with_two_kie_tasks_fails_the_check_even_after_an_ambiguous_create_task() -> None:
    history = clean()
    history.kie_creates.append(KieCreate(1, T0 + 2, True, False))  # job 1 submitted twice, both answered
    assert violated(history) == {"one KIE task per job"}
    assert check(history)[0].detail.startswith("job 1: 2 tasks at KIE")
    history = clean()
    history.kie_creates.append(KieCreate(2, T0 + 4, True, False))  # the 402 made no task: it excuses nothing
    assert violated(history) == {"one KIE task per job"}
    history = clean()
    history.kie_creates.append(KieCreate(3, T0 + 8.5, True, False))  # resent after a CDN's 502: billed twice
    assert violated(history) == {"one KIE task per job"}
    history = clean()
    history.kie_creates.append(KieCreate(None, T0 + 9, True, False))
    assert [v.detail for v in check(history)] == [f"createTask at {T0 + 9:.3f} names no job in its callBackUrl"]


def test_a_job_with_a_delivered_file_that_is_released_or_failed_fails_the_check() -> None:
    history = clean()  # job 1's first file reached the user, a later one failed: refunded whole
    history.jobs[0] = dataclasses.replace(history.jobs[0], state="failed", captures=0, releases=1)
    assert violated(history) == {"a delivered result is captured", "a KIE success never ends failed"}
    assert [v.detail for v in check(history) if v.invariant == "a delivered result is captured"] == [
        "job 1 (chat 7, money): 2 result file(s) delivered but it ended failed with 0 capture(s), 1 release(s)"]
    history = clean()  # free: no money, but a success all the same
    history.jobs[2] = dataclasses.replace(history.jobs[2], state="timed_out")
    assert "a delivered result is captured" in violated(history)


def test_a_request_that_reached_the_trap_fails_the_check() -> None:
    history = clean()
    history.trap_hits = ["the trap got GET /creds/3.png from 127.0.0.1 at 1009.000 (User-Agent aiohttp)"]
    assert [(v.invariant, v.detail) for v in check(history)] == [
        ("no download from the trap", history.trap_hits[0])]


def test_a_job_failed_though_its_kie_task_succeeded_fails_the_check() -> None:
    history = clean()  # a forged failure callback released job 1's money, KIE billed the task all the same
    history.jobs[0] = dataclasses.replace(history.jobs[0], state="failed", captures=0, releases=1, files_delivered=0)
    history.forged = [Forged(1, T0 + 3, "failure", 200)]
    assert violated(history) == {"a KIE success never ends failed"}
    assert "failure@1003.000->200" in check(history)[0].detail
    history.jobs[0] = dataclasses.replace(history.jobs[0], state="timed_out")  # a timeout is another matter
    assert check(history) == []


def test_an_ambiguous_submit_ended_without_a_task_or_a_counted_orphan_fails_the_check() -> None:
    history = clean()
    history.orphans = {}
    assert violated(history) == {"an ambiguous submit is accounted"}
    assert "job 5 (chat 9) ended timed_out" in check(history)[0].detail
    history.jobs[3] = dataclasses.replace(history.jobs[3], state="submitting", delivered=False, deadline=T0 + 30)
    assert check(history) == []  # still waiting for its task within its deadline


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
    assert violated(history) == {"money moved once per job", "a delivered result is captured"}
    history = clean()
    history.jobs[2] = dataclasses.replace(history.jobs[2], holds=1)  # a free job held money
    assert [v.detail for v in check(history)] == [
        "job 3 (succeeded, free): 1 hold(s), 0 capture(s), 0 release(s); expected 0, 0, 0"]


def test_the_money_schedule_is_seeded_and_deals_every_money_fault() -> None:
    one = make_money_schedule(SOAK_SEED, 60)
    assert one == make_money_schedule(SOAK_SEED, 60) and one != make_money_schedule(SOAK_SEED + 1, 60)
    assert {f.param("what") for f in make_money_schedule(SOAK_SEED, 70)} == set(MONEY_DECK)
    assert make_schedule(SOAK_SEED, 60, 3) == make_schedule(SOAK_SEED, 60, 3)  # the process faults as they were


def test_a_forged_callback_names_the_job_with_a_wrong_token_or_a_body_of_our_choosing() -> None:
    real = "http://127.0.0.1:9/kie-callback/0123abcd/42"
    assert job_id_of(real) == 42 and job_id_of("http://x/kie-callback/42/beef?sig=ab") == 42
    assert job_id_of("http://x/webhook/42") is None
    forged = wrong_token(real)
    assert forged != real and job_id_of(forged) == 42 and forged.startswith("http://127.0.0.1:9/kie-callback/")
    assert wrong_token("http://x/kie-callback/42?t=abc") == "http://x/kie-callback/42?t=aba"


async def test_the_fake_kie_makes_the_task_then_answers_cloudflares_page_and_breaks_result_files() -> None:
    async with FakeKie(duration=0.05) as kie, aiohttp.ClientSession() as session:
        kie.inject(CREATE_PATH, body="<html>502 Bad gateway</html>", http_status=502, after_create=True)
        kie.plan("*", "success", result_count=2, file_faults={1: (404, None)}, count=1)
        body = {"model": "google/nano-banana", "input": {"prompt": "x"}, "callBackUrl": "http://127.0.0.1:9/k/1"}
        async with session.post(kie.base_url + CREATE_PATH, json=body, headers={"Authorization": "Bearer k"}) as r:
            assert (r.status, r.content_type) == (502, "text/html")
        [task] = kie.tasks.values()  # made all the same
        assert kie.calls(CREATE_PATH)[0].injected == "body_after_create"
        done = await kie.wait_for_state(task.task_id)
        first, second = done.result_urls or []
        async with session.get(first) as r:
            assert r.status == 200
        async with session.get(second) as r:
            assert r.status == 404
        moved = kie.add_redirect("redirect/1.png", "http://127.0.0.2:9/creds")
        async with session.get(moved, allow_redirects=False) as r:
            assert (r.status, r.headers["Location"]) == (302, "http://127.0.0.2:9/creds")
        assert forged_body(task, "fail", [], 5)["data"]["taskId"] == task.task_id


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
    assert "money" in applied and result.history.forged, result.report(True)
    assert len(result.history.acked) > 500
    assert result.history.payments_recorded, "Stars payments went through the failovers"
    assert result.ok, result.report(full=True)
