"""What the admin panel reads (bot/routers/admin.py, admin_users.py): the shop's numbers, one
user's card, and the last failures. Read-only SQL over the tables other modules write, kept here
so the bot layer asks questions instead of writing queries.

"Today" is the calendar day in BOT_TIMEZONE (the caller passes its midnight), the same day the
free tier counts; "7 days" is the last 7 × 24 hours.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time
from zoneinfo import ZoneInfo

from store.database import Database

# a 'submitting' job released at its deadline with no task id: KIE may have made (and billed) the
# task, generation/submit.release_orphan counts it as a possible orphan (/health's "orphaned")
ORPHAN_SQL = "state = 'timed_out' AND kie_task_id IS NULL AND attempts > 0"
# the dispatcher's outcomes of an update that failed for good and got an apology
APOLOGY_OUTCOMES = ("error", "deadline")


def day_start(zone: ZoneInfo, now: datetime | None = None) -> datetime:
    """Midnight of today in `zone`, as an aware datetime."""
    today: date = (now or datetime.now(zone)).astimezone(zone).date()
    return datetime.combine(today, time(0), zone)


@dataclass(frozen=True, slots=True)
class Users:
    total: int
    new_today: int
    new_week: int
    active_today: int
    active_week: int
    blocked: int
    banned: int


@dataclass(frozen=True, slots=True)
class Generations:
    by_state: dict[str, int]
    today: int
    week: int
    top_models: list[tuple[str, int]]  # model, generations in the last 7 days, most first
    failures: list[tuple[str, int]]  # failure category, jobs in the last 7 days, most first
    orphans: int  # possible orphan tasks at KIE, all time
    orphans_week: int


async def users(db: Database, bot_id: int, today: datetime) -> Users:
    row = await db.require().fetchrow(
        """SELECT count(*) AS total,
                  count(*) FILTER (WHERE first_seen >= $2) AS new_today,
                  count(*) FILTER (WHERE first_seen >= now() - interval '7 days') AS new_week,
                  count(*) FILTER (WHERE last_seen >= $2) AS active_today,
                  count(*) FILTER (WHERE last_seen >= now() - interval '7 days') AS active_week,
                  count(*) FILTER (WHERE blocked) AS blocked,
                  count(*) FILTER (WHERE banned) AS banned
             FROM users WHERE bot_id = $1""", bot_id, today)
    assert row is not None
    return Users(*(int(row[k]) for k in ("total", "new_today", "new_week", "active_today", "active_week",
                                          "blocked", "banned")))


async def generations(db: Database, bot_id: int, today: datetime, top: int = 5) -> Generations:
    pool = db.require()
    states = await pool.fetch("SELECT state, count(*) AS n FROM jobs WHERE bot_id = $1 GROUP BY state ORDER BY state",
                              bot_id)
    counts = await pool.fetchrow(
        f"""SELECT count(*) FILTER (WHERE created_at >= $2) AS today,
                   count(*) FILTER (WHERE created_at >= now() - interval '7 days') AS week,
                   count(*) FILTER (WHERE {ORPHAN_SQL}) AS orphans,
                   count(*) FILTER (WHERE {ORPHAN_SQL} AND finished_at >= now() - interval '7 days') AS orphans_week
              FROM jobs WHERE bot_id = $1""", bot_id, today)
    assert counts is not None
    models = await pool.fetch(
        """SELECT model, count(*) AS n FROM jobs WHERE bot_id = $1 AND created_at >= now() - interval '7 days'
            GROUP BY model ORDER BY n DESC, model LIMIT $2""", bot_id, top)
    failures = await pool.fetch(
        """SELECT coalesce(failure, state) AS failure, count(*) AS n FROM jobs
            WHERE bot_id = $1 AND state IN ('failed', 'timed_out') AND finished_at >= now() - interval '7 days'
            GROUP BY 1 ORDER BY n DESC, 1""", bot_id)
    return Generations({r["state"]: int(r["n"]) for r in states}, int(counts["today"]), int(counts["week"]),
                       [(r["model"], int(r["n"])) for r in models], [(r["failure"], int(r["n"])) for r in failures],
                       int(counts["orphans"]), int(counts["orphans_week"]))


# --- one user's card --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class JobLine:
    id: int
    model: str
    state: str
    price: int
    paid_with: str
    failure: str | None
    created_at: datetime


@dataclass(frozen=True, slots=True)
class PaymentLine:
    charge_id: str
    stars: int
    kopecks: int
    recurring: bool
    paid_at: datetime
    refunded_at: datetime | None


@dataclass(frozen=True, slots=True)
class Card:
    """What an admin sees of a user beyond their account (store.accounts): generations, Stars
    payments and referrals."""

    jobs_by_state: dict[str, int]
    jobs: list[JobLine]
    payments_count: int
    payments_stars: int
    payments_kopecks: int
    payments: list[PaymentLine]
    referred: int  # users this user brought
    referred_paid: int  # of them, the ones whose bonus was paid
    referrer: int | None  # who brought this user


async def card(db: Database, bot_id: int, user_id: int, tail: int = 5) -> Card:
    pool = db.require()
    states = await pool.fetch(
        "SELECT state, count(*) AS n FROM jobs WHERE bot_id = $1 AND user_id = $2 GROUP BY state ORDER BY state",
        bot_id, user_id)
    jobs = await pool.fetch(
        """SELECT id, model, state, price, paid_with, failure, created_at FROM jobs
            WHERE bot_id = $1 AND user_id = $2 ORDER BY id DESC LIMIT $3""", bot_id, user_id, tail)
    totals = await pool.fetchrow(
        """SELECT count(*) AS n, coalesce(sum(stars), 0) AS stars,
                  coalesce(sum(kopecks) FILTER (WHERE refunded_at IS NULL), 0) AS kopecks
             FROM star_payments WHERE bot_id = $1 AND user_id = $2""", bot_id, user_id)
    assert totals is not None
    payments = await pool.fetch(
        """SELECT charge_id, stars, kopecks, recurring, paid_at, refunded_at FROM star_payments
            WHERE bot_id = $1 AND user_id = $2 ORDER BY paid_at DESC LIMIT $3""", bot_id, user_id, tail)
    brought = await pool.fetchrow(
        """SELECT count(*) AS n, count(*) FILTER (WHERE rewarded_at IS NOT NULL) AS paid FROM referrals
            WHERE bot_id = $1 AND referrer_id = $2""", bot_id, user_id)
    assert brought is not None
    referrer = await pool.fetchval("SELECT referrer_id FROM referrals WHERE bot_id = $1 AND user_id = $2",
                                   bot_id, user_id)
    return Card(
        {r["state"]: int(r["n"]) for r in states},
        [JobLine(r["id"], r["model"], r["state"], r["price"], r["paid_with"], r["failure"], r["created_at"])
         for r in jobs],
        int(totals["n"]), int(totals["stars"]), int(totals["kopecks"]),
        [PaymentLine(r["charge_id"], r["stars"], r["kopecks"], r["recurring"], r["paid_at"], r["refunded_at"])
         for r in payments],
        int(brought["n"]), int(brought["paid"]), None if referrer is None else int(referrer))


# --- the last failures ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Failure:
    """A job that failed or timed out (`j<id>`) or an update that ended in an apology (`u<id>`)."""

    ref: str
    what: str  # the job's model, or the update's kind
    why: str  # the job's failure category, or the update's outcome
    user_id: int | None
    at: datetime


async def failures(db: Database, bot_id: int, limit: int = 10) -> list[Failure]:
    """The newest failed jobs and apologised updates, newest first, at most `limit` in all."""
    pool = db.require()
    jobs = await pool.fetch(
        f"""SELECT id, model, coalesce(failure, state) AS why, user_id, finished_at,
                   ({ORPHAN_SQL}) AS orphan FROM jobs
             WHERE bot_id = $1 AND state IN ('failed', 'timed_out') ORDER BY finished_at DESC LIMIT $2""",
        bot_id, limit)
    updates = await pool.fetch(
        """SELECT update_id, kind, outcome, chat_key, done_at FROM inbox
            WHERE bot_id = $1 AND state = 2 AND outcome = ANY($3::text[]) ORDER BY done_at DESC LIMIT $2""",
        bot_id, limit, list(APOLOGY_OUTCOMES))
    found = [Failure(f"j{r['id']}", r["model"], r["why"] + (", orphan?" if r["orphan"] else ""), r["user_id"],
                     r["finished_at"]) for r in jobs]
    found += [Failure(f"u{r['update_id']}", r["kind"], r["outcome"], r["chat_key"], r["done_at"]) for r in updates]
    found.sort(key=lambda f: f.at, reverse=True)
    return found[:limit]
