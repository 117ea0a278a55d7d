"""Subscriptions sold for Telegram Stars: the order, each payment (the first and every renewal),
the renewal's state, and which subscription gives a user its benefits right now.

A subscription is keyed by its order (the invoice's payload, which every renewal carries again).
Each payment is a star_payments row keyed by its charge id, written in the same fenced
transaction that extends the period to the payment's subscription_expiration_date and credits
the plan's monthly credit (store.money_in.credit_in, keyed by the charge id): a duplicate
delivery, a restart or a failover extends and credits once. The benefits hold while
now < expires_at, whatever the renewal's state: canceled and failed renewals stop the next
period, never the one paid for. Time is always passed in (`now`), never read here.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

import asyncpg

from store import money_in
from store.database import Database
from store.fence import fenced

PERIOD = timedelta(seconds=2_592_000)  # Telegram's only subscription period: 30 days
State = Literal["active", "canceled", "failed"]
_SUB = ("id, bot_id, user_id, order_id, plan, first_charge_id, last_charge_id, daily, discount, started_at, "
        "expires_at, state, canceled_by, cancel_asked_at")


@dataclass(frozen=True, slots=True)
class Subscription:
    id: int
    bot_id: int
    user_id: int
    order_id: int
    plan: str
    first_charge_id: str
    last_charge_id: str
    daily: dict[str, int]
    discount: int
    started_at: datetime
    expires_at: datetime
    state: str
    canceled_by: str | None
    cancel_asked_at: datetime | None

    def active_at(self, now: datetime) -> bool:
        """The benefits hold at `now` (a canceled or failed renewal still runs to its end)."""
        return now < self.expires_at

    @property
    def renews(self) -> bool:
        return self.state == "active"


def _sub(r: asyncpg.Record) -> Subscription:
    daily = json.loads(r["daily"])
    return Subscription(r["id"], r["bot_id"], r["user_id"], r["order_id"], r["plan"], r["first_charge_id"],
                        r["last_charge_id"], {str(k): int(v) for k, v in daily.items()}, r["discount"],
                        r["started_at"], r["expires_at"], r["state"], r["canceled_by"], r["cancel_asked_at"])


# --- the order ------------------------------------------------------------------------------------


async def create_order(db: Database, lock_name: str, epoch: int, bot_id: int, user_id: int, *, plan: str,
                       stars: int, kopecks: int, default_rate: int, ttl_seconds: float, now: datetime) -> int:
    """A star_orders row for a plan (kind 'subscription', plan, its price in Stars and the monthly
    credit in kopecks), committed before the invoice link is made. The rate is the Stars rate of
    the moment (the column is shared with top-ups; a subscription credits its plan's kopecks)."""
    async with fenced(db, lock_name, epoch) as conn:
        order_id: int = await conn.fetchval(
            """INSERT INTO star_orders (bot_id, user_id, kind, plan, stars, kopecks, rate, created_at, expires_at)
               VALUES ($1, $2, 'subscription', $3, $4, $5,
                       COALESCE((SELECT kopecks FROM stars_rates WHERE bot_id = $1 ORDER BY id DESC LIMIT 1), $6),
                       $7::timestamptz, $7::timestamptz + make_interval(secs => $8))
               RETURNING id""", bot_id, user_id, plan, stars, kopecks, default_rate, now, float(ttl_seconds))
    return order_id


@dataclass(frozen=True, slots=True)
class OrderRow:
    id: int
    user_id: int
    kind: str
    plan: str | None
    stars: int
    kopecks: int
    status: str


async def order(db: Database | asyncpg.Connection, bot_id: int, order_id: int) -> OrderRow | None:
    conn = db.require() if isinstance(db, Database) else db
    r = await conn.fetchrow("SELECT id, user_id, kind, plan, stars, kopecks, status FROM star_orders "
                            "WHERE bot_id = $1 AND id = $2", bot_id, order_id)
    return None if r is None else OrderRow(r["id"], r["user_id"], r["kind"], r["plan"], r["stars"], r["kopecks"],
                                           r["status"])


# --- a payment ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Payment:
    """A recurring successful_payment as Telegram reported it."""

    user_id: int
    charge_id: str
    order_id: int | None  # what the payload names (store.stars.order_of), None: not one of ours
    stars: int
    expires_at: datetime | None  # subscription_expiration_date


@dataclass(frozen=True, slots=True)
class Terms:
    """What the plan gives, as of this payment (the bot reads it from catalog/plans.yaml)."""

    plan: str
    monthly_credit: int
    daily: dict[str, int]
    discount: int


@dataclass(frozen=True, slots=True)
class Paid:
    """What pay() did. fresh: this call recorded the charge (else a duplicate); told: the user was
    told about it before (a duplicate of a told payment tells nothing); subscription: None when
    the payload names no subscription order of this user (the money is recorded, nothing given)."""

    fresh: bool
    told: bool
    subscription: Subscription | None
    credited: money_in.Credited | None


async def pay(db: Database, lock_name: str, epoch: int, bot_id: int, payment: Payment,
              terms: Terms | None, *, now: datetime, referral_bonus: int = 0) -> Paid:
    """Record a subscription's payment once per charge id, extend its period to the payment's
    expiry and credit the plan's monthly credit, all in one fenced transaction.

    `terms` None: the plan is gone from the YAML (or the order is unknown): the payment and the
    period are still recorded (the user paid), with the terms the subscription had; an order
    credits what it said at creation (star_orders.kopecks)."""
    order_id = payment.order_id
    expires = payment.expires_at or now + PERIOD
    async with fenced(db, lock_name, epoch) as conn:
        found = None if order_id is None else await order(conn, bot_id, order_id)
        if found is not None and (found.kind != "subscription" or found.user_id != payment.user_id):
            found = None
        status = await conn.execute(
            """INSERT INTO star_payments (bot_id, charge_id, user_id, order_id, stars, kopecks, recurring, expires_at,
                                          paid_at)
               VALUES ($1, $2, $3, $4, $5, $6, true, $7, $8) ON CONFLICT (bot_id, charge_id) DO NOTHING""",
            bot_id, payment.charge_id, payment.user_id, None if found is None else found.id, payment.stars,
            0 if found is None else found.kopecks, expires, now)
        fresh = status.endswith(" 1")
        told = False
        if not fresh:
            told = bool(await conn.fetchval("SELECT told_at IS NOT NULL FROM star_payments "
                                            "WHERE bot_id = $1 AND charge_id = $2", bot_id, payment.charge_id))
        if found is None:
            return Paid(fresh, told, None, None)
        sub: Subscription | None
        if fresh:
            await conn.execute("UPDATE star_orders SET status = 'paid', paid_at = $3 "
                               "WHERE bot_id = $1 AND id = $2 AND status = 'open'", bot_id, found.id, now)
            sub = await _extend(conn, bot_id, payment, found, terms, expires, now)
        else:
            r = await conn.fetchrow(f"SELECT {_SUB} FROM subscriptions WHERE bot_id = $1 AND order_id = $2",
                                    bot_id, found.id)
            sub = None if r is None else _sub(r)
        credited = None
        if found.kopecks > 0:
            credited = await money_in.credit_in(
                conn, bot_id, payment.user_id, found.kopecks, source="subscription",
                key=f"subscription:{payment.charge_id}", epoch=epoch, note=f"plan {found.plan}",
                referral_bonus=referral_bonus)
    return Paid(fresh, told, sub, credited)


async def _extend(conn: asyncpg.Connection, bot_id: int, payment: Payment, found: OrderRow, terms: Terms | None,
                  expires: datetime, now: datetime) -> Subscription:
    """The subscription of this order, created by its first payment, extended by a later one. A
    payment newer than the period (a renewal) makes it renew again (it was paid); an older one
    delivered late only records its charge."""
    assert found.plan is not None  # the CHECK: a subscription order names its plan
    daily = json.dumps(terms.daily if terms is not None else {})
    discount = terms.discount if terms is not None else 0
    r = await conn.fetchrow(
        f"""INSERT INTO subscriptions (bot_id, user_id, order_id, plan, first_charge_id, last_charge_id, daily,
                                       discount, started_at, expires_at)
            VALUES ($1, $2, $3, $4, $5, $5, $6, $7, $8, $9)
            ON CONFLICT (bot_id, order_id) DO UPDATE SET
                last_charge_id = CASE WHEN EXCLUDED.expires_at > subscriptions.expires_at
                                      THEN EXCLUDED.last_charge_id ELSE subscriptions.last_charge_id END,
                daily = CASE WHEN $10 THEN EXCLUDED.daily ELSE subscriptions.daily END,
                discount = CASE WHEN $10 THEN EXCLUDED.discount ELSE subscriptions.discount END,
                state = CASE WHEN EXCLUDED.expires_at > subscriptions.expires_at THEN 'active'
                             ELSE subscriptions.state END,
                canceled_by = CASE WHEN EXCLUDED.expires_at > subscriptions.expires_at THEN NULL
                                   ELSE subscriptions.canceled_by END,
                expires_at = GREATEST(subscriptions.expires_at, EXCLUDED.expires_at),
                updated_at = now()
            RETURNING {_SUB}""",
        bot_id, payment.user_id, found.id, found.plan, payment.charge_id, daily, discount, now, expires,
        terms is not None)
    assert r is not None
    return _sub(r)


async def mark_told(db: Database, bot_id: int, charge_id: str, now: datetime) -> None:
    """The user was told about this payment: a redelivery tells nothing more. Not fenced: telling
    twice is the only harm of a lost mark."""
    await db.require().execute("UPDATE star_payments SET told_at = $3 WHERE bot_id = $1 AND charge_id = $2 "
                               "AND told_at IS NULL", bot_id, charge_id, now)


# --- the renewal's state ----------------------------------------------------------------------------


async def updated(db: Database, lock_name: str, epoch: int, bot_id: int, user_id: int, order_id: int | None,
                  state: str) -> Subscription | None:
    """Telegram's `subscription` update: the user canceled (renewal off; it runs to its end), re-
    enabled it (active), or the renewal's payment failed (nothing beyond the paid period, which is
    when Telegram reports it). None when the payload names no subscription of this user, or the
    state was already that (a duplicate update: the user is told once)."""
    if order_id is None or state not in ("active", "canceled", "failed"):
        return None
    async with fenced(db, lock_name, epoch) as conn:
        r = await conn.fetchrow(
            f"""UPDATE subscriptions SET state = $4,
                       canceled_by = CASE WHEN $4 = 'canceled' THEN 'user' ELSE NULL END, updated_at = now()
                 WHERE bot_id = $1 AND user_id = $2 AND order_id = $3 AND state IS DISTINCT FROM $4
             RETURNING {_SUB}""",
            bot_id, user_id, order_id, state)
    return None if r is None else _sub(r)


async def ask_cancel(db: Database, lock_name: str, epoch: int, bot_id: int, user_id: int, subscription_id: int,
                     now: datetime) -> Subscription | None:
    """The user pressed Cancel renewal: the intent, committed before editUserStarSubscription."""
    async with fenced(db, lock_name, epoch) as conn:
        r = await conn.fetchrow(
            f"""UPDATE subscriptions SET cancel_asked_at = $4, updated_at = now()
                 WHERE bot_id = $1 AND user_id = $2 AND id = $3 RETURNING {_SUB}""",
            bot_id, user_id, subscription_id, now)
    return None if r is None else _sub(r)


async def set_renewal(db: Database, lock_name: str, epoch: int, bot_id: int, subscription_id: int, *,
                      canceled: bool) -> Subscription | None:
    """Telegram accepted editUserStarSubscription: renewal off (canceled by the bot) or back on
    (only a cancel of the bot's own can be undone by the bot)."""
    async with fenced(db, lock_name, epoch) as conn:
        if canceled:
            r = await conn.fetchrow(
                f"""UPDATE subscriptions SET state = 'canceled', canceled_by = 'bot', updated_at = now()
                     WHERE bot_id = $1 AND id = $2 AND state = 'active' RETURNING {_SUB}""", bot_id, subscription_id)
        else:
            r = await conn.fetchrow(
                f"""UPDATE subscriptions SET state = 'active', canceled_by = NULL, cancel_asked_at = NULL,
                           updated_at = now()
                     WHERE bot_id = $1 AND id = $2 AND state = 'canceled' AND canceled_by = 'bot'
                 RETURNING {_SUB}""", bot_id, subscription_id)
        if r is None:
            r = await conn.fetchrow(f"SELECT {_SUB} FROM subscriptions WHERE bot_id = $1 AND id = $2",
                                    bot_id, subscription_id)
    return None if r is None else _sub(r)


async def revoke(conn: asyncpg.Connection, bot_id: int, charge_id: str, now: datetime) -> Subscription | None:
    """A refunded charge of a subscription (the refund's own fenced transaction, store/stars.py):
    the period it paid for ends at `now` and it no longer renews; None when the charge paid no
    subscription. Idempotent: a second call changes nothing more."""
    r = await conn.fetchrow(
        f"""UPDATE subscriptions s SET expires_at = LEAST(s.expires_at, $3), state = 'canceled',
                   canceled_by = COALESCE(s.canceled_by, 'bot'), updated_at = now()
              FROM star_payments p
             WHERE p.bot_id = $1 AND p.charge_id = $2 AND p.recurring AND s.bot_id = p.bot_id
               AND s.order_id = p.order_id
         RETURNING {', '.join('s.' + c.strip() for c in _SUB.split(','))}""", bot_id, charge_id, now)
    return None if r is None else _sub(r)


# --- reading --------------------------------------------------------------------------------------


async def current(db: Database | asyncpg.Connection, bot_id: int, user_id: int, now: datetime
                  ) -> Subscription | None:
    """The subscription whose benefits the user has at `now`: of those not expired, the one that
    lasts longest (two bought at once: one set of benefits, never their sum)."""
    conn: Any = db.require() if isinstance(db, Database) else db
    r = await conn.fetchrow(current_sql("$1", "$2", "$3"), bot_id, user_id, now)
    return None if r is None else _sub(r)


def current_sql(bot: str, user: str, now: str) -> str:
    """current()'s query with these placeholders (store/grants.py joins it into one round trip)."""
    return f"""SELECT {_SUB} FROM subscriptions WHERE bot_id = {bot} AND user_id = {user} AND expires_at > {now}
                ORDER BY expires_at DESC, id DESC LIMIT 1"""


def from_row(r: asyncpg.Record) -> Subscription:
    """A subscription from a row holding current_sql()'s columns."""
    return _sub(r)


async def by_id(db: Database, bot_id: int, subscription_id: int) -> Subscription | None:
    r = await db.require().fetchrow(f"SELECT {_SUB} FROM subscriptions WHERE bot_id = $1 AND id = $2",
                                    bot_id, subscription_id)
    return None if r is None else _sub(r)
