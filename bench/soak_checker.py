"""The chaos soak's history checker: pure functions over what one run recorded.

Why it is apart from the engine (bench/soak.py): an invariant is a claim about the product, and
a claim is only as good as the proof that it catches its violation. Here each one is a plain
function over a :class:`History` (no processes, no database, no clock), so tests/test_soak.py
shows each of them failing on a small synthetic history before a soak relies on it passing.

Extensible: :data:`INVARIANTS` is a list of ``(name, function)``; a function takes the History
and returns one line of evidence per violation. A new property is one more function appended
there, with the facts it needs added as fields of History and recorded by the engine; the
generations' ones (8-12: money, every job finished and told, one KIE task per job unless a
submit was ambiguous, every success delivered, money moved once per job) came that way.
"""

from __future__ import annotations

import itertools
import re
import statistics
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field

ECHO = re.compile(r"^chaos_echo (\d+)$")  # bot/routers/chaos.py: the reply to "/chaos_echo <update_id>"
APOLOGY = re.compile(r"(?:Код|Ref): u(\d+)")  # bot/texts.py "apology": the reference is u<update_id>


def parse_reply(text: str | None) -> tuple[int | None, str]:
    """Which update a bot message answers, and how: ("echo" its handler's reply, "apology" the
    dispatcher's message for a failed update, "other" for anything that names no update)."""
    if text:
        if found := ECHO.match(text):
            return int(found.group(1)), "echo"
        if found := APOLOGY.search(text):
            return int(found.group(1)), "apology"
    return None, "other"


@dataclass(frozen=True)
class Reply:
    """One sendMessage that reached the fake Telegram (answered with any status)."""

    instance: str  # the sender: the /_as/<instance> prefix of its TELEGRAM_API_BASE ("?" without one)
    chat_id: int
    at: float  # wall clock (time.time()) of its arrival at the fake
    ok: bool  # answered 200: the user saw it
    update_id: int | None
    kind: str  # see parse_reply
    incarnation: int | None = None  # which start of the instance sent it (its /_as/<instance>.<n> base)


@dataclass(frozen=True)
class Death:
    """One process of an instance that stopped running: `at` is no earlier than its last
    instruction (stamped right after the SIGKILL, or when its exit was seen)."""

    instance: str
    incarnation: int
    at: float  # wall clock
    how: str  # "kill9", "sigterm", "exited"


@dataclass(frozen=True)
class Freeze:
    """One SIGSTOP of a process: `stopped` stamped right after the signal (no earlier than its
    last instruction before the freeze), `resumed` right before the SIGCONT (wall clock)."""

    instance: str
    incarnation: int
    stopped: float
    resumed: float


# a frozen process's first instructions after SIGCONT finish what it was doing at the stop: a
# request it had passed its lease check for goes out at once (the check refuses anything newer)
RESUME_GRACE = 0.5


@dataclass(frozen=True)
class Acquisition:
    """One row of leader_history: the lock was acquired by `instance` under `epoch` at `at` (wall clock)."""

    epoch: int
    instance: str
    at: float


@dataclass(frozen=True)
class InboxRow:
    update_id: int
    chat_id: int | None
    state: int  # 0 pending, 1 claimed, 2 done
    attempts: int  # claims so far: more than one means it was taken over after a crash or failover
    outcome: str | None


@dataclass(frozen=True)
class Sample:
    """One look at one instance's /health, with the inbox's unfinished rows at that moment."""

    at: float  # wall clock
    instance: str
    role: str | None  # None: /health did not answer (down, frozen, starting)
    consuming: bool
    pending: int | None  # unfinished inbox rows; None: the database did not answer


@dataclass(frozen=True)
class JobRow:
    """One jobs row after the drain, with its ledger entries counted, and when KIE ended its task."""

    job_id: int
    chat_id: int
    state: str  # created, submitting, submitted, running, succeeded, failed, timed_out
    paid_with: str  # money, free, admin
    delivered: bool  # delivered_at is set: the user was told the outcome
    created_at: float  # wall clock
    holds: int = 0
    captures: int = 0
    releases: int = 0
    kie_done_at: float | None = None  # wall clock of the (last) task's end at the fake KIE, if it ended
    deadline: float | None = None  # wall clock by which its model's timeout (from created_at) has ended it
    task_id: str | None = None  # jobs.kie_task_id: the task the job adopted
    kie_outcome: str | None = None  # the state of its (last) task at the fake KIE: success, fail, or running
    files_delivered: int = 0  # media sends answered 200 to its chat that carried one of its tasks' files


@dataclass(frozen=True)
class KieCreate:
    """One createTask the fake KIE received, tied to its job by the callBackUrl (/kie-callback/<secret>/<job>)."""

    job_id: int | None
    at: float  # wall clock
    created: bool  # a task was made at KIE for it
    # the sender could not know whether a task was made: no answer (a hang, a dropped connection)
    # or an answer that is not KIE's envelope (a CDN's 502/520 page)
    ambiguous: bool


@dataclass(frozen=True)
class Media:
    """One sendPhoto/sendDocument/sendVideo/sendAudio that reached the fake Telegram, or a sendMessage
    carrying a result URL (method "link": the fallback after 413 or "too big")."""

    chat_id: int
    at: float  # wall clock
    ok: bool
    method: str


@dataclass(frozen=True)
class Forged:
    """One callback the soak forged at a job: `kind` is "wrong token", "success to trap",
    "success via redirect", "failure" or "re-bodied"."""

    job_id: int
    at: float  # wall clock
    kind: str
    status: int | None  # what the instance answered (None: no answer)


TERMINAL_JOB_STATES = ("succeeded", "failed", "timed_out")


@dataclass
class History:
    """Everything a soak run recorded that the invariants judge."""

    acked: dict[int, int]  # update_id -> chat_id of every update a /webhook answered with 200
    replies: list[Reply]
    leadership: list[Acquisition]  # by epoch
    inbox: dict[int, InboxRow]
    samples: list[Sample]  # during the run
    final: list[Sample]  # one per instance, after the drain
    slack: float = 0.05  # seconds: the fake's arrival stamp against the database's clock
    idle_bound: float = 5.0  # seconds an ACTIVE instance may report not consuming while work waits
    # how /webhook answered the load's posts: "200", "503", ..., "timeout", "connection error"
    webhook_answers: dict[str, int] = field(default_factory=dict)
    # (wall clock it ended, seconds) of each stall of the fake Telegram's loop, which stamps the
    # arrivals: a stamp may be late by the stall it ended with, never early
    stalls: list[tuple[float, float]] = field(default_factory=list)
    deaths: list[Death] = field(default_factory=list)  # every process of an instance that stopped
    heartbeats: dict[int, float] = field(default_factory=dict)  # epoch -> its last heartbeat_at seen (wall)
    freezes: list[Freeze] = field(default_factory=list)  # every SIGSTOP ... SIGCONT of a process
    # generations: every job row after the drain, every createTask the fake KIE received, every
    # media message that reached the fake Telegram, and store.invariants.check's lines at the end
    jobs: list[JobRow] = field(default_factory=list)
    kie_creates: list[KieCreate] = field(default_factory=list)
    media: list[Media] = field(default_factory=list)
    money_problems: list[str] = field(default_factory=list)
    ended_at: float | None = None  # wall clock when the jobs were read
    orphans: dict[int, int] = field(default_factory=dict)  # job id -> kie_orphan_task lines in the logs
    trap_hits: list[str] = field(default_factory=list)  # every request the loopback trap server got
    forged: list[Forged] = field(default_factory=list)  # the callbacks the soak forged
    # Stars: charge id -> (chat, Stars, a /webhook acknowledged a copy) of every payment posted, and
    # charge id -> (user, Stars, credits) of every payment the database recorded
    payments_posted: dict[str, tuple[int, int, bool]] = field(default_factory=dict)
    payments_recorded: dict[str, tuple[int, int, int]] = field(default_factory=dict)


Invariant = Callable[[History], list[str]]


def ok_replies(history: History) -> dict[int, list[Reply]]:
    """The replies users saw, per update they answer, in arrival order."""
    out: dict[int, list[Reply]] = defaultdict(list)
    for reply in sorted(history.replies, key=lambda r: r.at):
        if reply.ok and reply.update_id is not None:
            out[reply.update_id].append(reply)
    return out


def leadership_spans(history: History) -> list[tuple[str, float, float, int]]:
    """(instance, from, until, epoch): each acquisition holds until the next one."""
    acq = sorted(history.leadership, key=lambda a: a.epoch)
    return [(a.instance, a.at, acq[i + 1].at if i + 1 < len(acq) else float("inf"), a.epoch)
            for i, a in enumerate(acq)]


# -- the invariants ------------------------------------------------------------------------------


def every_acked_update_answered(history: History) -> list[str]:
    """1. An update Telegram got a 200 for is the bot's promise: the user sees a reply naming it
    (its echo, or the apology with its reference)."""
    answered = ok_replies(history)
    naming: dict[int, list[Reply]] = defaultdict(list)
    for reply in history.replies:
        if reply.update_id is not None:
            naming[reply.update_id].append(reply)
    out = []
    for update_id in sorted(history.acked):
        if update_id not in answered:
            row = history.inbox.get(update_id)
            where = "not in the inbox" if row is None else (
                f"inbox state {row.state}, attempts {row.attempts}, outcome {row.outcome}")
            tried = naming.get(update_id, [])
            sends = ", ".join(f"{r.instance}@{r.at:.3f}{'' if r.ok else ' failed'}" for r in tried) or "none"
            out.append(f"update {update_id} (chat {history.acked[update_id]}) acknowledged but never answered; "
                       f"{where}; sends naming it: {sends}")
    return out


def stamp_lateness(history: History, at: float) -> float:
    """How late the fake may have stamped an arrival at `at`: the longest stall of its loop that
    ended around then (a request that came in during a stall is stamped when the stall ends)."""
    return max((lag for ended, lag in history.stalls if at - 0.05 <= ended <= at + lag + 0.3), default=0.0)


def death_of(history: History, instance: str, incarnation: int | None) -> Death | None:
    if incarnation is None:
        return None
    return next((d for d in history.deaths if d.instance == instance and d.incarnation == incarnation), None)


def thawed_just_before(history: History, reply: Reply, late: float) -> Freeze | None:
    """The freeze of the reply's sender that ended just before its stamp, if any."""
    return next((f for f in history.freezes if f.instance == reply.instance and f.incarnation == reply.incarnation
                 and f.resumed - history.slack <= reply.at <= f.resumed + RESUME_GRACE + late), None)


def no_send_outside_leadership(history: History) -> list[str]:
    """2. A message reaches Telegram only from the instance holding the lock when it sent it. What
    is known of a send: it was written no earlier than its stamp less the fake's stall then (and
    the slack), and no later than its stamp, nor than its sender's death (a dead process's
    request still in flight is read after it died: then only that bound is known, and it is
    excused if its sender held the lock at any time before it died). A violation is a send whose every possible
    writing time lies outside each span of its instance's leadership (acquisition to the next
    acquisition by anyone): a deposed leader sending while alive, never a stamp made late by a
    stall or a dead leader's last request. A frozen leader's request is the same as a dead one's:
    stamped within RESUME_GRACE after its SIGCONT, it was past the lease check when the SIGSTOP
    came, and is excused if the sender led at the stop."""
    spans = leadership_spans(history)
    out = []
    for reply in sorted(history.replies, key=lambda r: r.at):
        late = stamp_lateness(history, reply.at)
        earliest = reply.at - late - history.slack
        death = death_of(history, reply.instance, reply.incarnation)
        latest = reply.at + history.slack if death is None else min(reply.at, death.at) + history.slack
        if death is not None and reply.at >= death.at:
            earliest = float("-inf")  # read after its sender died: written before, when exactly is unknown
        if any(inst == reply.instance and earliest <= end and latest >= start
               for inst, start, end, _ in spans):
            continue
        freeze = thawed_just_before(history, reply, late)
        if freeze is not None and any(inst == reply.instance and start <= freeze.stopped + history.slack
                                      and end >= freeze.stopped - history.slack for inst, start, end, _ in spans):
            continue  # passed its lease check while leading, then frozen before the write: in flight
        own = [(start, end, epoch) for inst, start, end, epoch in spans if inst == reply.instance]
        before = [s for s in own if s[0] <= reply.at]
        if before:
            start, end, epoch = before[-1]
            nxt = next((f"{inst} (epoch {e})" for inst, s, _, e in spans if s == end), "?")
            why = (f"its epoch {epoch} began {start:.3f}, ended {end:.3f} when {nxt} acquired: "
                   f"{reply.at - end:.3f}s late")
        else:
            why = "it had never held the lock before"
        if late:
            why += f" (the fake's loop stalled {late * 1000:.0f} ms then: written after {earliest:.3f} all the same)"
        why += (f"; the sender was alive (not dead until {death.at:.3f}, {death.how})" if death is not None
                else "; the sender did not die")
        out.append(f"{reply.instance}#{reply.incarnation} sent to chat {reply.chat_id} ({reply.kind} of update "
                   f"{reply.update_id}, {'ok' if reply.ok else 'failed'}) at {reply.at:.3f}: {why}")
    return out


def no_double_answer_without_replay(history: History) -> list[str]:
    """3. A second reply to one update is a replay of a claim taken over after a crash or
    failover, never two runs of one claim: an update may be answered at most as often as it
    was claimed (inbox attempts), so answered twice with one attempt is a violation."""
    out = []
    for update_id, replies in sorted(ok_replies(history).items()):
        if len(replies) < 2:
            continue
        row = history.inbox.get(update_id)
        attempts = row.attempts if row is not None else 0
        if len(replies) > attempts:
            who = ", ".join(f"{r.kind} by {r.instance}@{r.at:.3f}" for r in replies)
            out.append(f"update {update_id} answered {len(replies)} times with {attempts} attempt(s): {who}")
    return out


def each_chat_in_update_id_order(history: History) -> list[str]:
    """4. One chat's updates are answered one at a time in update_id order: the first reply of
    each update (replays excluded) comes after the first reply of every earlier update."""
    first = {u: replies[0] for u, replies in ok_replies(history).items()}
    per_chat: dict[int, list[int]] = defaultdict(list)
    for update_id, chat in history.acked.items():
        if update_id in first:
            per_chat[chat].append(update_id)
    out = []
    for chat, ids in sorted(per_chat.items()):
        ids.sort()
        for earlier, later in itertools.pairwise(ids):
            a, b = first[earlier], first[later]
            if b.at < a.at:
                out.append(f"chat {chat}: update {later} first answered at {b.at:.3f} by {b.instance}, "
                           f"before update {earlier} at {a.at:.3f} by {a.instance}")
    return out


def no_claim_left_stranded(history: History) -> list[str]:
    """5. After the drain every update is stored and done: nothing acknowledged is missing from
    the inbox, and no row waits pending or claimed by an owner that is gone."""
    out = [f"update {u} (chat {c}) acknowledged but not in the inbox"
           for u, c in sorted(history.acked.items()) if u not in history.inbox]
    out += [f"update {row.update_id} left in state {row.state} after {row.attempts} attempt(s)"
            for row in sorted(history.inbox.values(), key=lambda r: r.update_id) if row.state != 2]
    return out


def idle_spells(history: History) -> list[tuple[str, Sample, Sample]]:
    """(instance, first, last sample) of each run of samples where it reported ACTIVE and not
    consuming while the inbox had unfinished updates (an unknown count ends a run)."""
    out = []
    by_instance: dict[str, list[Sample]] = defaultdict(list)
    for sample in history.samples:
        by_instance[sample.instance].append(sample)
    for instance, samples in sorted(by_instance.items()):
        samples.sort(key=lambda s: s.at)
        began: Sample | None = None
        last: Sample | None = None
        for look in [*samples, None]:
            if (look is not None and look.role == "ACTIVE" and not look.consuming
                    and look.pending is not None and look.pending > 0):
                began = began or look
                last = look
                continue
            if began is not None and last is not None:
                out.append((instance, began, last))
            began = last = None
    return out


def no_active_instance_idle(history: History) -> list[str]:
    """6. An ACTIVE instance works: one that reports ACTIVE but not consuming while the inbox has
    unfinished updates, for longer than `idle_bound` (more than a lease), is stuck; and at the
    end exactly one instance is ACTIVE and consuming."""
    out = [f"{instance} ACTIVE and not consuming from {began.at:.3f} to {last.at:.3f} "
           f"({last.at - began.at:.1f}s) with {last.pending} update(s) waiting"
           for instance, began, last in idle_spells(history) if last.at - began.at > history.idle_bound]
    working = [s.instance for s in history.final if s.role == "ACTIVE" and s.consuming]
    active = [s.instance for s in history.final if s.role == "ACTIVE"]
    if len(working) != 1 or len(active) != 1:
        shown = ", ".join(f"{s.instance}={s.role}{'/consuming' if s.consuming else ''}" for s in history.final)
        out.append(f"at the end {len(active)} ACTIVE and {len(working)} ACTIVE and consuming: {shown}")
    return out


def webhook_answers_200_or_503(history: History) -> list[str]:
    """7. /webhook says "stored" (200) or "not now, again" (503, Retry-After), or cannot answer at
    all (the process is down or frozen); anything else is an error escaping the intake."""
    allowed = ("200", "503", "timeout", "connection error")
    return [f"/webhook answered {answer} to {count} post(s)"
            for answer, count in sorted(history.webhook_answers.items()) if answer not in allowed]


def money_invariants_hold(history: History) -> list[str]:
    """8. The product's money invariants (store.invariants.check over the soak's database after the
    drain): accounts equal their ledger, nothing negative, nothing held by a finished job."""
    return list(history.money_problems)


def every_payment_credited_once(history: History) -> list[str]:
    """8b. Every Stars payment a /webhook acknowledged (however many copies, whatever failed over
    between them) is recorded for its payer with its Stars and credited exactly once; nothing is
    recorded that was never paid (a copy whose acknowledgement was lost may be recorded)."""
    problems = []
    for charge, (chat, stars, acked) in sorted(history.payments_posted.items()):
        found = history.payments_recorded.get(charge)
        if found is None and acked:
            problems.append(f"payment {charge} of chat {chat} ({stars} Stars) acknowledged but never recorded")
        elif found is not None and found != (chat, stars, 1):
            problems.append(f"payment {charge} of chat {chat} ({stars} Stars) recorded as user {found[0]}, "
                            f"{found[1]} Stars, credited {found[2]} times")
    problems += [f"payment {charge} recorded but never paid" for charge in
                 sorted(set(history.payments_recorded) - set(history.payments_posted))]
    return problems


def within_timeout(history: History, job: JobRow) -> bool:
    """A job still 'submitting' (its createTask interrupted or unanswered: ambiguous, so it waits
    for a callback or its model's timeout) when the history was read before that timeout."""
    return (job.state == "submitting" and job.deadline is not None and history.ended_at is not None
            and history.ended_at < job.deadline)


def every_job_finished_and_told(history: History) -> list[str]:
    """9. Every confirmed job reached a terminal state and its user was told (delivered_at set);
    only an ambiguous submit still within its model's timeout may be unfinished (a figure)."""
    out = []
    for job in sorted(history.jobs, key=lambda j: j.job_id):
        if within_timeout(history, job):
            continue
        if job.state not in TERMINAL_JOB_STATES:
            out.append(f"job {job.job_id} (chat {job.chat_id}) left in state {job.state}")
        elif not job.delivered:
            out.append(f"job {job.job_id} (chat {job.chat_id}) {job.state} but the user was never told")
    return out


def one_kie_task_per_job(history: History) -> list[str]:
    """10. A job has at most one task at KIE (counted by the job its callBackUrl names): KIE has
    no idempotency key, so a createTask whose answer was ambiguous (none, or a CDN's page) is
    never sent again; the job waits for its task to show up or ends with an orphan counted."""
    by_job: dict[int, list[KieCreate]] = defaultdict(list)
    out = []
    for create in sorted(history.kie_creates, key=lambda c: c.at):
        if create.job_id is None:
            out.append(f"createTask at {create.at:.3f} names no job in its callBackUrl")
        else:
            by_job[create.job_id].append(create)
    for job_id, creates in sorted(by_job.items()):
        made = [c for c in creates if c.created]
        if len(made) > 1:
            shown = ", ".join(f"{c.at:.3f}{' task' if c.created else ''}{' ambiguous' if c.ambiguous else ''}"
                              for c in creates)
            out.append(f"job {job_id}: {len(made)} tasks at KIE; createTask calls: {shown}")
    return out


def every_success_delivered(history: History) -> list[str]:
    """11. Every succeeded job's result reached its chat: a media message answered 200 to that chat
    after KIE ended its task (each media message counted for one job only, earliest job first)."""
    sends: dict[int, list[Media]] = defaultdict(list)
    for media in sorted(history.media, key=lambda m: m.at):
        if media.ok:
            sends[media.chat_id].append(media)
    used: set[int] = set()
    out = []
    for job in sorted((j for j in history.jobs if j.state == "succeeded"),
                      key=lambda j: (j.kie_done_at or j.created_at, j.job_id)):
        after = job.kie_done_at if job.kie_done_at is not None else job.created_at
        match = next((i for i, m in enumerate(sends[job.chat_id])
                      if id(m) not in used and m.at >= after - history.slack), None)
        if match is None:
            out.append(f"job {job.job_id} (chat {job.chat_id}) succeeded (KIE ended it at {after:.3f}) but no "
                       f"result reached the chat after that ({len(sends[job.chat_id])} media message(s) in it)")
        else:
            used.add(id(sends[job.chat_id][match]))
    return out


def money_moved_once_per_job(history: History) -> list[str]:
    """12. A paid job's money moved once: one hold, then one capture (succeeded) or one release
    (failed, timed out); an unfinished one neither; an unpaid one none of them."""
    out = []
    for job in sorted(history.jobs, key=lambda j: j.job_id):
        paid = job.paid_with == "money"
        expected = (1 if paid else 0, 1 if paid and job.state == "succeeded" else 0,
                    1 if paid and job.state in ("failed", "timed_out") else 0)
        if (job.holds, job.captures, job.releases) != expected:
            out.append(f"job {job.job_id} ({job.state}, {job.paid_with}): {job.holds} hold(s), {job.captures} "
                       f"capture(s), {job.releases} release(s); expected {expected[0]}, {expected[1]}, {expected[2]}")
    return out


def delivered_means_captured(history: History) -> list[str]:
    """13. A job any of whose result files reached the user is a success: state succeeded and, if
    paid, its hold captured, never released (KIE billed us and the user has the result)."""
    out = []
    for job in sorted(history.jobs, key=lambda j: j.job_id):
        if job.files_delivered <= 0:
            continue
        paid_ok = job.paid_with != "money" or (job.captures >= 1 and job.releases == 0)  # twice: see 12
        if job.state != "succeeded" or not paid_ok:
            out.append(f"job {job.job_id} (chat {job.chat_id}, {job.paid_with}): {job.files_delivered} result file(s) "
                       f"delivered but it ended {job.state} with {job.captures} capture(s), {job.releases} release(s)")
    return out


def no_download_from_the_trap(history: History) -> list[str]:
    """14. Results come only from where results live: the loopback trap server that forged
    callbacks name (directly, or through a redirect from an allowed host) is never asked for
    anything, and its address never reaches a chat."""
    return list(history.trap_hits)


def kie_success_never_failed(history: History) -> list[str]:
    """15. A callback is a wake-up, never a verdict: a job whose task succeeded at KIE does not end
    failed (a forged failure would release money KIE bills; a timeout is another matter)."""
    out = []
    for job in sorted(history.jobs, key=lambda j: j.job_id):
        if job.kie_outcome == "success" and job.state == "failed":
            forged = [f"{f.kind}@{f.at:.3f}->{f.status}" for f in history.forged if f.job_id == job.job_id]
            out.append(f"job {job.job_id} (chat {job.chat_id}) ended failed ({job.releases} release(s)) though its KIE "
                       f"task {job.task_id} succeeded; forged callbacks at it: {', '.join(forged) or 'none'}; "
                       f"{job.files_delivered} file(s) delivered")
    return out


def ambiguous_submit_accounted(history: History) -> list[str]:
    """16. A submit that may have made a task is accounted for: once the job is over (or past its
    deadline) without a task adopted, after an ambiguous createTask or with a task KIE made for it,
    the orphan is counted (`kie_orphan_task` logged with its job_id)."""
    ambiguous = {c.job_id for c in history.kie_creates if c.ambiguous and c.job_id is not None}
    made = {c.job_id for c in history.kie_creates if c.created and c.job_id is not None}
    out = []
    for job in sorted(history.jobs, key=lambda j: j.job_id):
        if job.task_id is not None or job.job_id not in ambiguous | made or within_timeout(history, job):
            continue
        if job.state not in TERMINAL_JOB_STATES and not (
                job.deadline is not None and history.ended_at is not None and history.ended_at >= job.deadline):
            continue
        if history.orphans.get(job.job_id, 0) < 1:
            why = "an ambiguous createTask" if job.job_id in ambiguous else "a task KIE made for it"
            out.append(f"job {job.job_id} (chat {job.chat_id}) ended {job.state} with no task adopted after {why}, "
                       f"and no orphan counted")
    return out


INVARIANTS: list[tuple[str, Invariant]] = [
    ("every acknowledged update answered", every_acked_update_answered),
    ("no send outside the sender's leadership", no_send_outside_leadership),
    ("no double answer without a replay", no_double_answer_without_replay),
    ("each chat in update_id order", each_chat_in_update_id_order),
    ("no claim left stranded", no_claim_left_stranded),
    ("no ACTIVE instance idle", no_active_instance_idle),
    ("webhook answers 200 or 503", webhook_answers_200_or_503),
    ("money invariants hold", money_invariants_hold),
    ("every payment credited once", every_payment_credited_once),
    ("every job finished and told", every_job_finished_and_told),
    ("one KIE task per job", one_kie_task_per_job),
    ("every success delivered", every_success_delivered),
    ("money moved once per job", money_moved_once_per_job),
    ("a delivered result is captured", delivered_means_captured),
    ("no download from the trap", no_download_from_the_trap),
    ("a KIE success never ends failed", kie_success_never_failed),
    ("an ambiguous submit is accounted", ambiguous_submit_accounted),
]


@dataclass(frozen=True)
class Violation:
    invariant: str
    detail: str


def check(history: History, invariants: list[tuple[str, Invariant]] | None = None) -> list[Violation]:
    """Every violation of every invariant, in the list's order."""
    return [Violation(name, detail) for name, judge in (invariants or INVARIANTS) for detail in judge(history)]


# -- figures (never judged) ----------------------------------------------------------------------


def replays(history: History) -> dict[int, int]:
    """update_id -> extra replies, for updates answered more than once."""
    return {u: len(r) - 1 for u, r in ok_replies(history).items() if len(r) > 1}


def figures(history: History) -> dict[str, object]:
    answered = ok_replies(history)
    kinds = Counter(r.kind for r in history.replies if r.ok)
    attempts = Counter(min(row.attempts, 5) for row in history.inbox.values())
    senders = Counter(r.instance for r in history.replies if r.ok)
    extra = replays(history)
    return {
        "acked": len(history.acked),
        "answered": sum(1 for u in history.acked if u in answered),
        "replies_ok": sum(kinds.values()),
        "replies_failed": sum(1 for r in history.replies if not r.ok),
        "replies_by_kind": dict(kinds),
        "replies_by_instance": dict(sorted(senders.items())),
        "replayed_updates": len(extra),
        "replay_replies": sum(extra.values()),
        "inbox_rows": len(history.inbox),
        "inbox_attempts": {f"{k}{'+' if k == 5 else ''}": v for k, v in sorted(attempts.items())},
        "epochs": len(history.leadership),
        "health_samples": len(history.samples),
        "longest_idle_active": max((last.at - began.at for _, began, last in idle_spells(history)), default=0.0),
        "jobs_by_state": dict(sorted(Counter(j.state for j in history.jobs).items())),
        "jobs_delivered": sum(1 for j in history.jobs if j.delivered),
        # each with how many createTask calls for it reached KIE (0: the submit was cut before it went out)
        "jobs_submitting_within_timeout": {j.job_id: sum(1 for c in history.kie_creates if c.job_id == j.job_id)
                                           for j in history.jobs if within_timeout(history, j)},
        "kie_creates": len(history.kie_creates),
        "kie_creates_ambiguous": sum(1 for c in history.kie_creates if c.ambiguous),
        "kie_tasks": sum(1 for c in history.kie_creates if c.created),
        "media_ok": sum(1 for m in history.media if m.ok),
    }


def epoch_end(history: History, epoch: int) -> tuple[float, str] | None:
    """When `epoch` really ended, and how we know: its holder's death while it held it (the lock
    goes with the session), else its last heartbeat seen (a frozen or cut-off holder stops renewing
    there; the takeover waits for that heartbeat to go stale); None when neither is known."""
    spans = {epoch_: (inst, start, end) for inst, start, end, epoch_ in leadership_spans(history)}
    if epoch not in spans:
        return None
    holder, start, end = spans[epoch]
    died = [d for d in history.deaths if d.instance == holder and start <= d.at <= end]
    if died:
        first = min(died, key=lambda d: d.at)
        return first.at, first.how
    if epoch in history.heartbeats:
        return history.heartbeats[epoch], "last heartbeat"
    return None


def failover_times(history: History, faults: list[tuple[float, str]], within: float = 2.0) -> list[tuple[str, float]]:
    """(cause, seconds) for each change of leader: from the old epoch's real end (epoch_end) to the
    next acquisition. The cause is the last fault (wall time, label) on the leader at most `within`
    seconds before that end (a freeze it survived with its lock is not the cause of a later
    loss); "-" when none; an epoch whose end is unknown is left out."""
    out = []
    acq = sorted(history.leadership, key=lambda a: a.epoch)
    for old, new in itertools.pairwise(acq):
        ended = epoch_end(history, old.epoch)
        if ended is None:
            continue
        at, how = ended
        causes = [label for when, label in sorted(faults) if at - within <= when <= at + 1.0]
        out.append((causes[-1] if causes else f"- ({how})", round(max(0.0, new.at - at), 3)))
    return out


def describe_failovers(times: list[tuple[str, float]]) -> str:
    if not times:
        return "none seen"
    values = [t for _, t in times]
    return (f"{len(values)}, median {statistics.median(values):.2f}s, max {max(values):.2f}s: "
            + ", ".join(f"{label} {t:.2f}s" for label, t in times))
