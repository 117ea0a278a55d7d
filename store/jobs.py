"""Generations: a job row from Confirm to delivery, and the money it holds.

A KIE call cannot be fenced, so every step commits its intent under the leader's fence first:
confirm() holds the price (or counts a free generation) and creates the job in one transaction
keyed by the confirmation screen's nonce; mark_submitting() (or that confirm() itself, sql/025)
precedes createTask; finish() captures or releases the hold in the same transaction that ends the
job. Each is idempotent, so a double click, a replayed update, a callback racing a poll, a restart
or a failover moves money once. States (sql/007_ledger_jobs.sql): created -> submitting ->
submitted -> running -> succeeded | failed | timed_out; delivered_at marks that the user has been
told.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any, Literal
from zoneinfo import ZoneInfo

import asyncpg

from store import grants, referrals
from store.accounts import UnknownUser, post
from store.database import Database
from store.fence import committed, fence_checked_in_sql, fenced

# grant: a promo's free generation; plan: the subscription's daily allowance (store/grants.py)
PaidWith = Literal["money", "free", "admin", "grant", "plan"]
# each told "hold", "capture" or "release" after a transaction that moved a job's money committed:
# the tree installs the ledger flow counter (store/ imports no metrics), by a name, so never twice
ledger_listeners: dict[str, Callable[[str], None]] = {}
ACTIVE = ("created", "submitting", "submitted", "running")  # counted by MAX_ACTIVE_JOBS_PER_USER, money held
FINISHED = ("succeeded", "failed", "timed_out")
# a failed or timed-out free generation gave the user nothing, so it does not use up the day's allowance
# (sql/020_confirm.sql's trt_confirm_check counts the running and the free jobs the same way)
# a job that used up one of the day's free generations (store/standing.py counts them too)
COUNTS_AS_FREE = "paid_with = 'free' AND state NOT IN ('failed', 'timed_out')"
_ACTIVE_SQL = "state IN ('created', 'submitting', 'submitted', 'running')"
_JOB = ("id, bot_id, user_id, chat_id, confirm_nonce, model, sku, input, price, paid_with, held, free_day, state, "
        "kie_task_id, epoch, attempts, polls, result, failure, result_file_id, status_message_id, created_at, "
        "updated_at, submitted_at, last_polled_at, finished_at, delivered_at, user_number, endpoint, parent_id, "
        "intent_epoch")


@dataclass(frozen=True, slots=True)
class Job:
    id: int
    bot_id: int
    user_id: int
    chat_id: int
    nonce: str
    model: str
    sku: str
    input: dict[str, Any]
    price: int  # kopecks
    paid_with: str
    held: int  # kopecks this job holds now
    free_day: date | None
    state: str
    kie_task_id: str | None
    epoch: int
    attempts: int
    polls: int
    result: dict[str, Any] | None
    failure: str | None
    result_file_id: str | None
    status_message_id: int | None
    created_at: datetime
    updated_at: datetime
    submitted_at: datetime | None
    last_polled_at: datetime | None
    finished_at: datetime | None
    delivered_at: datetime | None
    user_number: int = 0  # the user's own count: their first generation is №1 (sql/015_user_numbers.sql)
    endpoint: str = "jobs"  # the KIE family that runs its task (sql/017_job_families.sql)
    parent_id: int | None = None  # the job whose result this one acts on (extend, 1080p, ...)
    intent_epoch: int | None = None  # the epoch whose Confirm committed createTask's intent (sql/025)

    @property
    def finished(self) -> bool:
        return self.state in FINISHED


def _job(r: asyncpg.Record) -> Job:
    return Job(r["id"], r["bot_id"], r["user_id"], r["chat_id"], r["confirm_nonce"], r["model"], r["sku"],
               json.loads(r["input"]), r["price"], r["paid_with"], r["held"], r["free_day"], r["state"],
               r["kie_task_id"], r["epoch"], r["attempts"], r["polls"],
               None if r["result"] is None else json.loads(r["result"]), r["failure"], r["result_file_id"],
               r["status_message_id"], r["created_at"], r["updated_at"], r["submitted_at"], r["last_polled_at"],
               r["finished_at"], r["delivered_at"], r["user_number"], r["endpoint"], r["parent_id"],
               r["intent_epoch"])


def _flowed(kind: str) -> None:
    for listener in list(ledger_listeners.values()):
        listener(kind)


def local_day(zone: ZoneInfo, at: datetime | None = None) -> date:
    """The calendar day in BOT_TIMEZONE that a free generation counts against."""
    return (at or datetime.now(zone)).astimezone(zone).date()


# --- Confirm ---------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Order:
    """What the confirmation screen showed. paid_with is the caller's call: "admin" for ADMIN_IDS
    (before "free"), "free" for a free-tier SKU, else "money"; `day` is local_day() now."""

    user_id: int
    chat_id: int
    nonce: str
    model: str
    sku: str
    input: Mapping[str, Any]
    price: int  # kopecks
    paid_with: PaidWith
    day: date
    status_message_id: int | None = None
    full_price: int | None = None  # money: the price before the plan's discount (None: no discount shown)
    at: datetime | None = None  # the moment of Confirm (a subscription's end is checked against it); None: now
    endpoint: str = "jobs"  # the KIE family of the model (catalog Model.endpoint)
    parent_id: int | None = None  # an action on a result: the job it acts on (the same user's)
    terms_read: bool = True  # False: money at the full price as the screen showed it, unread since; the
    # commit refuses it (TermsChanged) when a plan, a grant or a discount applies by now (sql/024)
    submitting: bool = False  # with terms_read False: the job is made in 'submitting', createTask's intent
    # committed with it (sql/025), for a caller that holds a createTask slot and needs nothing resolved


@dataclass(frozen=True, slots=True)
class Created:
    job: Job


@dataclass(frozen=True, slots=True)
class Existing:
    """This screen was confirmed before (a double click, a replayed update): nothing moved now."""

    job: Job


@dataclass(frozen=True, slots=True)
class InsufficientFunds:
    available: int
    price: int


@dataclass(frozen=True, slots=True)
class TooManyActive:
    active: int
    limit: int


@dataclass(frozen=True, slots=True)
class FreeLimitReached:
    used: int
    limit: int


@dataclass(frozen=True, slots=True)
class Paused:
    """Generations are paused (KIE answered 402: our credits ran out, store/kie_account.py):
    nothing moved."""


@dataclass(frozen=True, slots=True)
class TermsChanged:
    """The plan's allowance, the promo grant or the discount the confirmation showed is gone (used
    by another confirmation, the subscription ended): nothing moved; show the new terms."""


Confirmation = Created | Existing | InsufficientFunds | TooManyActive | FreeLimitReached | TermsChanged | Paused


# the outcome of sql/020_confirm.sql's functions, with the job (an earlier one, or the one made)
_CHECKED = "c.c_outcome, c.c_available, c.c_count, (c.c_job).*"
# confirm()'s one statement for an order that needs nothing else (store/warmup.py prepares it on
# every new pool connection)
CONFIRM = f"""SELECT {_CHECKED} FROM trt_confirm($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16,
                                            $17, $18) AS c"""
# an order whose terms the caller did not read (Order.terms_read): the same, and nothing but money
CONFIRM_MONEY = f"""SELECT {_CHECKED} FROM trt_confirm_money($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13,
                                                  $14, $15, $16) AS c"""
# the same, the job made with createTask's intent (Order.submitting)
CONFIRM_SUBMITTING = CONFIRM_MONEY.replace("trt_confirm_money(", "trt_confirm_submitting(")


async def confirm(db: Database, lock_name: str, epoch: int, bot_id: int, order: Order, *, free_daily_limit: int,
                  max_active: int) -> Confirmation:
    """Create the job and hold its price (or count the free generation) in one fenced transaction.

    The user's account row is locked first, so one user's confirmations run one at a time and
    each sees the ones before it: the nonce, the running jobs, the day's free generations and
    the available balance are all read after the lock (sql/020_confirm.sql). A nonce already
    confirmed answers Existing, before Paused (KIE's 402) and any other refusal. The accounts
    CHECK backs the balance test: no interleaving can overdraw. An order that needs nothing else
    is one round trip (trt_confirm); one paid with a promo grant or the plan's allowance records
    its use here (store/grants.py), and a discounted price is checked against the plan of
    `order.at`: either gone answers TermsChanged, so a grant is used once and an allowance never
    exceeded. An order whose terms were not read (`terms_read` False, money at the full price)
    answers TermsChanged when anything else applies by now (trt_confirm_money, sql/024), so a
    Confirm costs one round trip, not a read and then the commit; with `submitting` its job is
    made in 'submitting', createTask's intent committed with it (sql/025).
    Raises UnknownUser when ensure_user() has not run for the user.
    """
    if order.paid_with == "money" and order.price <= 0:
        raise ValueError(f"a paid job needs a positive price, got {order.price}")
    held = order.price if order.paid_with == "money" else 0
    discounted = order.paid_with == "money" and order.full_price is not None and order.full_price != order.price
    if not order.terms_read and (order.paid_with != "money" or order.full_price is not None):
        raise ValueError(f"only money at the full price is confirmed unread, not {order.paid_with!r}")
    if order.submitting and order.terms_read:
        raise ValueError("only an order confirmed unread is made submitting")
    if order.paid_with in ("grant", "plan") or discounted:
        return await _confirm_entitled(db, lock_name, epoch, bot_id, order, held, discounted,
                                       free_daily_limit=free_daily_limit, max_active=max_active)
    with fence_checked_in_sql(lock_name, epoch):
        if order.terms_read:
            row = await db.require().fetchrow(
                CONFIRM, lock_name, epoch, bot_id, order.user_id, order.chat_id, order.nonce, order.model, order.sku,
                json.dumps(dict(order.input)), order.price, order.paid_with, held, _free_day(order),
                free_daily_limit, max_active, order.status_message_id, order.endpoint, order.parent_id)
        else:
            row = await db.require().fetchrow(
                CONFIRM_SUBMITTING if order.submitting else CONFIRM_MONEY, lock_name, epoch, bot_id, order.user_id,
                order.chat_id, order.nonce, order.model, order.sku, json.dumps(dict(order.input)), order.price,
                max_active, order.status_message_id, order.endpoint, order.parent_id, order.day,
                order.at or datetime.now(UTC))
    assert row is not None
    if row["c_outcome"] != "created":
        return _refused(row, order, free_daily_limit, max_active)
    committed(epoch)
    if held:
        _flowed("hold")
    return Created(_job(row))


def _free_day(order: Order) -> date | None:
    return order.day if order.paid_with == "free" else None


def _refused(row: asyncpg.Record, order: Order, free_daily_limit: int, max_active: int) -> Confirmation:
    """What a check that did not pass answers; the ones that are the caller's mistake raise."""
    outcome = row["c_outcome"]
    if outcome == "unknown_user":
        raise UnknownUser(f"user {order.user_id} has no account")
    if outcome == "other_user":
        raise ValueError(f"confirmation nonce {order.nonce!r} belongs to another user")
    if outcome == "not_yours":
        raise ValueError(f"job {order.parent_id} is not a result of user {order.user_id}")
    if outcome == "existing":
        return Existing(_job(row))
    if outcome == "paused":
        return Paused()
    if outcome == "too_many":
        return TooManyActive(row["c_count"], max_active)
    if outcome == "free_limit":
        return FreeLimitReached(row["c_count"], free_daily_limit)
    if outcome == "insufficient":
        return InsufficientFunds(row["c_available"], order.price)
    if outcome == "terms_changed":
        return TermsChanged()
    raise AssertionError(f"confirm answered {outcome!r}")


async def _confirm_entitled(db: Database, lock_name: str, epoch: int, bot_id: int, order: Order, held: int,
                            discounted: bool, *, free_daily_limit: int, max_active: int) -> Confirmation:
    """confirm() for a grant, the plan's allowance or a discount: the entitlement is read between
    the checks and the insert, in one fenced transaction with the account row locked."""
    async with fenced(db, lock_name, epoch) as conn:
        row = await conn.fetchrow(f"SELECT {_CHECKED} FROM trt_confirm_check($1, $2, $3, $4, $5, $6, $7, $8, $9) AS c",
                                  lock_name, epoch, bot_id, order.user_id, order.nonce, order.parent_id,
                                  _free_day(order), free_daily_limit, max_active)
        assert row is not None
        if row["c_outcome"] != "ok":
            return _refused(row, order, free_daily_limit, max_active)
        entitled = await grants.entitlement(
            conn, bot_id, order.user_id, order.model,
            order.full_price if discounted and order.full_price is not None else order.price,
            day=order.day, now=order.at or datetime.now(UTC))
        if discounted:
            assert order.full_price is not None
            if grants.discounted(order.full_price, entitled.discount) != order.price:
                return TermsChanged()
        elif entitled.kind != order.paid_with:
            return TermsChanged()
        available = row["c_available"]
        if available < held:
            return InsufficientFunds(available, order.price)
        row = await conn.fetchrow(
            f"""SELECT {_JOB} FROM trt_confirm_insert($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14,
                                                       $15)""",
            epoch, bot_id, order.user_id, order.chat_id, order.nonce, order.model, order.sku,
            json.dumps(dict(order.input)), order.price, order.paid_with, held, _free_day(order),
            order.status_message_id, order.endpoint, order.parent_id)
        assert row is not None
        job = _job(row)
        if not discounted:  # a grant or the plan's allowance: its use is recorded with the job
            await grants.use(conn, bot_id, order.user_id, job.id, entitled, model=order.model, day=order.day)
    if held:
        _flowed("hold")
    return Created(job)


# --- Steps after Confirm ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Step:
    """The job after a step, and whether this call changed it (False: a repetition, or too late)."""

    job: Job
    changed: bool
    referral: referrals.Rewarded | None = None  # finish(): the referrer this success paid, now


def step_sql(sets: str, allowed: str, extra: int) -> str:
    """_step's statement: $1 the job, $2 the epoch, then `extra` arguments of `sets`, the lock name last."""
    return f"""WITH fence AS MATERIALIZED (SELECT trt_fence(${3 + extra}, $2) AS ok),
                     changed AS (UPDATE jobs SET {sets}, epoch = $2, updated_at = now() FROM fence
                                  WHERE jobs.id = $1 AND ({allowed}) RETURNING jobs.*)
                SELECT c.* FROM fence LEFT JOIN changed c ON true"""


# the two steps on every Confirm's way to createTask (store/warmup.py prepares them)
SUBMITTING = ("state = 'submitting', attempts = attempts + 1", "state IN ('created', 'submitting')")
SUBMITTED = ("state = 'submitted', kie_task_id = $3, submitted_at = now()",
             "state IN ('created', 'submitting') AND kie_task_id IS NULL")


_STATUS_SETS = ("status_message_id = $3, delivered_at = CASE WHEN status_message_id IS DISTINCT FROM $3 "
                "AND (state IN ('failed', 'timed_out') "
                "OR EXISTS (SELECT 1 FROM job_deliveries d WHERE d.job_id = jobs.id)) THEN NULL "
                "ELSE delivered_at END")


def status_message_step(only_if_none: bool) -> tuple[str, str]:
    """set_status_message's (sets, allowed) for step_sql (a Confirm's status message records one)."""
    return _STATUS_SETS, "status_message_id IS NULL" if only_if_none else "true"


async def _step(db: Database, lock_name: str, epoch: int, job_id: int, sets: str, allowed: str,
                *args: Any) -> Step:
    """UPDATE jobs SET `sets` where the job is in a state `allowed`, fenced; else the job as it is.

    One round trip when it changes the job (four in a fenced transaction: the step before
    createTask is on every Confirm's way): the UPDATE joins sql/020's trt_fence, which the
    statement runs whether or not a row matches, so a stale epoch raises Fenced either way."""
    with fence_checked_in_sql(lock_name, epoch):
        row = await db.require().fetchrow(step_sql(sets, allowed, len(args)), job_id, epoch, *args, lock_name)
    if row is not None and row["id"] is not None:
        committed(epoch)
        return Step(_job(row), True)
    # not changed: the job as it is now (a new snapshot, so a step that raced ours shows)
    row = await db.require().fetchrow(f"SELECT {_JOB} FROM jobs WHERE id = $1", job_id)
    if row is None:
        raise LookupError(f"no job {job_id}")
    return Step(_job(row), False)


async def mark_submitting(db: Database, lock_name: str, epoch: int, job_id: int) -> Step:
    """Commit "createTask is about to be sent" (attempts + 1) before sending it. A job found in
    'submitting' by a later run may or may not exist at KIE; only a caller that knows its request
    never left may submit again (this counts another attempt)."""
    return await _step(db, lock_name, epoch, job_id, *SUBMITTING)


async def submit_refused(db: Database, lock_name: str, epoch: int, job_id: int) -> Step:
    """KIE certainly refused createTask (an answer without a task, or nothing sent): back to
    'created', so that 'submitting' keeps meaning "KIE may have the task" after any crash."""
    return await _step(db, lock_name, epoch, job_id, "state = 'created'",
                       "state = 'submitting' AND kie_task_id IS NULL")


async def mark_submitted(db: Database, lock_name: str, epoch: int, job_id: int, task_id: str) -> Step:
    """KIE answered createTask with `task_id`; the first task id recorded stays. A task id already
    on another job raises asyncpg's UniqueViolationError."""
    return await _step(db, lock_name, epoch, job_id, *SUBMITTED, task_id)


async def record_poll(db: Database, lock_name: str, epoch: int, job_id: int, *, running: bool) -> Step:
    """A poll (or a callback) found the task unfinished; `running`: KIE has started it."""
    return await _step(db, lock_name, epoch, job_id,
                       "state = CASE WHEN $3::boolean THEN 'running' ELSE state END, polls = polls + 1, "
                       "last_polled_at = now()",
                       "state IN ('submitted', 'running')", running)


async def set_status_message(db: Database, lock_name: str, epoch: int, job_id: int, message_id: int, *,
                             only_if_none: bool = False) -> Step:
    """The message that shows the job's progress (the one to edit). The wizard records it after
    Confirm's commit, so a fast end may have told the user before it existed: a job told by this
    code (it has delivery parts) or one that failed (its apology may have been refused, leaving
    no part) is then open again, for the driver to give the new message its last word (the parts
    keep anything from being sent twice). A success with no part was never sent (the user had
    blocked the bot): it stays told.

    `only_if_none`: record it only when the job has none yet (changed False when a twin, a replay
    of the same Confirm, recorded its own first: the caller's message is then a duplicate)."""
    return await _step(db, lock_name, epoch, job_id, *status_message_step(only_if_none), message_id)


@dataclass(frozen=True, slots=True)
class Succeeded:
    result: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class Failed:
    reason: str  # a plain category for the user and the operator, never a raw error


@dataclass(frozen=True, slots=True)
class TimedOut:
    pass


Outcome = Succeeded | Failed | TimedOut


async def finish(db: Database, lock_name: str, epoch: int, job_id: int, outcome: Outcome, *,
                 delivered: bool = False, file_id: str | None = None, referral_bonus: int = 0) -> Step:
    """End the job and settle its money in one fenced transaction: success captures the hold,
    failure and timeout release it (and a free generation stops counting), except that a job
    with any result part recorded as reached (store.job_parts.record_part) always succeeds and
    captures: the returned job's state says which outcome was applied. The job row is locked
    first, so of any number of finishes in any order (callbacks, polls, restarts, leaders) the
    first ends it and the others find it finished and change nothing.

    `delivered`: the user already has the outcome (a result sent before this commit, as
    `file_id`): the delivery mark goes in the same transaction, so no crash can leave a job
    finished and sent but undelivered (it would be sent again). On a job already finished it
    marks delivery if nothing has yet (changed stays False: the money had moved before).

    A captured paid generation is the user's first paid use when nothing paid the referrer yet:
    then `referral_bonus` goes to their referrer in the same transaction (referrals.reward)."""
    if isinstance(outcome, Succeeded):
        state, result, failure = "succeeded", json.dumps(dict(outcome.result)), None
    elif isinstance(outcome, Failed):
        state, result, failure = "failed", None, outcome.reason
    else:
        state, result, failure = "timed_out", None, "timed_out"
    async with fenced(db, lock_name, epoch) as conn:
        row = await conn.fetchrow(f"SELECT {_JOB} FROM jobs WHERE id = $1 FOR UPDATE", job_id)
        if row is None:
            raise LookupError(f"no job {job_id}")
        job = _job(row)
        if state != "succeeded" and not job.finished and await conn.fetchval(
                "SELECT EXISTS (SELECT 1 FROM job_deliveries WHERE job_id = $1 AND reached)", job_id):
            # a result reached the user (KIE made it and billed us): never a refund for it, whatever
            # ended the job (a deadline, a failure after a partial delivery, a leader that forgot)
            state, failure = "succeeded", None
        if job.finished:
            if delivered and job.delivered_at is None:
                row = await conn.fetchrow(
                    f"""UPDATE jobs SET delivered_at = now(), result_file_id = $2, epoch = $3, updated_at = now()
                         WHERE id = $1 RETURNING {_JOB}""", job_id, file_id, epoch)
                assert row is not None
                job = _job(row)
            return Step(job, False)
        row = await conn.fetchrow(
            f"""UPDATE jobs SET state = $2, held = 0, result = COALESCE($3, result), failure = $4, finished_at = now(),
                                epoch = $5, updated_at = now(),
                                delivered_at = CASE WHEN $6::boolean THEN now() END,
                                result_file_id = CASE WHEN $6::boolean THEN $7 END
                 WHERE id = $1 RETURNING {_JOB}""", job_id, state, result, failure, epoch, delivered, file_id)
        assert row is not None
        flow, rewarded = None, None
        if job.held and state == "succeeded":
            await post(conn, job.bot_id, job.user_id, "capture", -job.held, -job.held, f"capture:{job_id}", epoch,
                       job_id=job_id)
            flow = "capture"
            rewarded = await referrals.reward(conn, job.bot_id, job.user_id, referral_bonus, epoch,
                                              cause=f"job {job_id}")
        elif job.held:
            await post(conn, job.bot_id, job.user_id, "release", 0, -job.held, f"release:{job_id}", epoch,
                       job_id=job_id)
            flow = "release"
    if flow:
        _flowed(flow)
    return Step(_job(row), True, rewarded)


_ANY_STATUS: Any = object()


async def mark_delivered(db: Database, lock_name: str, epoch: int, job_id: int, file_id: str | None = None, *,
                         status_message_id: int | None = _ANY_STATUS) -> Step:
    """The user has been told the outcome (for a success: the result sent as `file_id`), or the
    driver gave up telling them (they blocked the bot), so the job leaves jobs_to_drive(). Once: a
    repetition keeps the first mark. Raises ValueError for a job not finished.

    `status_message_id`: the status message that was given its last word (None: the job had
    none). When another one is recorded by now (the wizard records it after Confirm's commit),
    nothing changes, so the next step says that one's last word too."""
    allowed = "finished_at IS NOT NULL AND delivered_at IS NULL"
    args: list[Any] = [file_id]
    if status_message_id is not _ANY_STATUS:
        allowed += " AND status_message_id IS NOT DISTINCT FROM $4::bigint"
        args.append(status_message_id)
    step = await _step(db, lock_name, epoch, job_id, "delivered_at = now(), result_file_id = $3", allowed, *args)
    if not step.job.finished:
        raise ValueError(f"job {job_id} is {step.job.state}: not finished, nothing to deliver")
    return step


async def record_result(db: Database, lock_name: str, epoch: int, job_id: int, result: Mapping[str, Any]) -> Step:
    """What KIE made, kept before the first file goes out, so whoever finishes the job later (a
    deadline, a new leader that KIE no longer answers) still has the rest to send."""
    return await _step(db, lock_name, epoch, job_id, "result = $3", f"{_ACTIVE_SQL} AND result IS NULL",
                       json.dumps(dict(result)))


# --- Reading ------------------------------------------------------------------------------------


async def job(db: Database, job_id: int) -> Job | None:
    row = await db.require().fetchrow(f"SELECT {_JOB} FROM jobs WHERE id = $1", job_id)
    return None if row is None else _job(row)


async def job_by_task(db: Database, task_id: str) -> Job | None:
    row = await db.require().fetchrow(f"SELECT {_JOB} FROM jobs WHERE kie_task_id = $1", task_id)
    return None if row is None else _job(row)


async def user_jobs(db: Database, bot_id: int, user_id: int, offset: int = 0, limit: int = 10) -> list[Job]:
    """A user's history, newest first."""
    rows = await db.require().fetch(
        f"SELECT {_JOB} FROM jobs WHERE bot_id = $1 AND user_id = $2 ORDER BY id DESC OFFSET $3 LIMIT $4",
        bot_id, user_id, offset, limit)
    return [_job(r) for r in rows]


async def children(db: Database, job_id: int, limit: int = 20) -> list[Job]:
    """The jobs that acted on this one's result (extend, 1080p, ...), oldest first: history's chain."""
    rows = await db.require().fetch(f"SELECT {_JOB} FROM jobs WHERE parent_id = $1 ORDER BY id LIMIT $2",
                                    job_id, limit)
    return [_job(r) for r in rows]


async def active_count(db: Database, bot_id: int, user_id: int) -> int:
    count: int = await db.require().fetchval(
        f"SELECT count(*) FROM jobs WHERE bot_id = $1 AND user_id = $2 AND {_ACTIVE_SQL}", bot_id, user_id)
    return count


async def free_used(db: Database, bot_id: int, user_id: int, day: date) -> int:
    """Free generations the user has used on `day` (failed and timed-out ones do not count)."""
    count: int = await db.require().fetchval(
        f"SELECT count(*) FROM jobs WHERE bot_id = $1 AND user_id = $2 AND free_day = $3 AND {COUNTS_AS_FREE}",
        bot_id, user_id, day)
    return count


async def jobs_to_drive(db: Database, bot_id: int, limit: int = 100, *, after: int = 0) -> list[Job]:
    """Jobs with work left, oldest first: running ones and finished ones the user has not been told
    about, including those an earlier leader or an earlier run of this process left. `after`: the
    last id of the previous page, so a driver sees every one however many there are."""
    rows = await db.require().fetch(
        f"SELECT {_JOB} FROM jobs WHERE bot_id = $1 AND delivered_at IS NULL AND id > $3 ORDER BY id LIMIT $2",
        bot_id, limit, after)
    return [_job(r) for r in rows]


async def usual_seconds(db: Database, bot_id: int, model: str, sample: int = 50) -> float | None:
    """How long `model` usually takes: the median, from confirmation to the end, of its last
    `sample` successful jobs (what a status message promises a waiting user); None before any."""
    value = await db.require().fetchval(
        """SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY seconds) FROM (
               SELECT extract(epoch FROM finished_at - created_at) AS seconds FROM jobs
                WHERE bot_id = $1 AND model = $2 AND state = 'succeeded'
                ORDER BY id DESC LIMIT $3) recent""", bot_id, model, sample)
    return None if value is None else float(value)
