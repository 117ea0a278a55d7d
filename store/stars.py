"""Telegram Stars: the rate, orders (an invoice's payload names one), payments keyed by Telegram's
charge id, and refunds.

A payment credits through store.money_in.credit_in in the same fenced transaction that records
it, keyed `stars:<charge id>`, so the same successful_payment delivered twice, after a failover
or to another instance, moves money once. A refund takes the credit back keyed
`reversal:<charge id>`, whichever of the admin's refund or Telegram's refunded_payment message
comes first; a refund Telegram refused gives the money back once, an adjustment keyed
`admin:restored:<charge id>`.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import asyncpg

from store import audit, subscriptions
from store.database import Database
from store.fence import fenced
from store.money_in import Credited, credit_in, reverse

PAYLOAD_TAG = 16  # hex characters of the payload's HMAC tag


def credit_key(charge_id: str) -> str:
    return f"stars:{charge_id}"


def reversal_key(charge_id: str) -> str:
    return f"reversal:{charge_id}"


def restored_key(charge_id: str) -> str:
    return f"admin:restored:{charge_id}"


# --- the payload ---------------------------------------------------------------------------------


def _tag(secret: str, bot_id: int, order_id: int) -> str:
    digest = hmac.new(secret.encode(), f"stars-order:{bot_id}:{order_id}".encode(), hashlib.sha256)
    return digest.hexdigest()[:PAYLOAD_TAG]


def payload(secret: str, bot_id: int, order_id: int) -> str:
    """An order's invoice payload: `<id>.<tag>` (well under Telegram's 128 bytes); the tag tells a
    payload we made from one somebody edited."""
    return f"{order_id}.{_tag(secret, bot_id, order_id)}"


def order_of(secret: str, bot_id: int, text: str | None) -> int | None:
    """The order id a payload names, or None when it is not one of ours (wrong shape or tag)."""
    head, _, tag = (text or "").partition(".")
    if not head.isdigit() or len(head) > 18:
        return None
    order_id = int(head)
    return order_id if hmac.compare_digest(tag, _tag(secret, bot_id, order_id)) else None


# --- the rate ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Rate:
    kopecks: int
    set_by: int
    set_at: datetime


async def current_rate(db: Database, bot_id: int, default: int) -> int:
    """Kopecks one Star credits now: the newest rate an admin set, else STARS_RATE (`default`)."""
    value = await db.require().fetchval(
        "SELECT kopecks FROM stars_rates WHERE bot_id = $1 ORDER BY id DESC LIMIT 1", bot_id)
    return default if value is None else int(value)


async def rates(db: Database, bot_id: int, limit: int = 10) -> list[Rate]:
    """The rate's history, newest first."""
    rows = await db.require().fetch(
        "SELECT kopecks, set_by, set_at FROM stars_rates WHERE bot_id = $1 ORDER BY id DESC LIMIT $2", bot_id, limit)
    return [Rate(r["kopecks"], r["set_by"], r["set_at"]) for r in rows]


async def set_rate(conn: asyncpg.Connection, bot_id: int, kopecks: int, admin_id: int, default: int) -> int:
    """Set the rate inside the caller's fenced transaction, with its audit row; returns the rate before."""
    if kopecks <= 0:
        raise ValueError(f"a rate is a positive number of kopecks, got {kopecks}")
    before = await conn.fetchval(
        "SELECT kopecks FROM stars_rates WHERE bot_id = $1 ORDER BY id DESC LIMIT 1 FOR UPDATE", bot_id)
    before = default if before is None else int(before)
    await conn.execute("INSERT INTO stars_rates (bot_id, kopecks, set_by) VALUES ($1, $2, $3)",
                       bot_id, kopecks, admin_id)
    await audit.record(conn, bot_id, admin_id, "stars_rate", target="stars_rate", before=before, after=kopecks)
    return before


# --- orders --------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Order:
    id: int
    user_id: int
    kind: str
    plan: str | None
    stars: int
    kopecks: int
    rate: int
    status: str
    created_at: datetime
    expires_at: datetime
    paid_at: datetime | None


_ORDER = "id, user_id, kind, plan, stars, kopecks, rate, status, created_at, expires_at, paid_at"


def _order(r: asyncpg.Record) -> Order:
    return Order(r["id"], r["user_id"], r["kind"], r["plan"], r["stars"], r["kopecks"], r["rate"], r["status"],
                 r["created_at"], r["expires_at"], r["paid_at"])


async def create_order(db: Database, lock_name: str, epoch: int, bot_id: int, user_id: int, stars: int, *,
                       default_rate: int, ttl: float) -> Order:
    """A top-up order at the rate of this moment, committed before the invoice is sent (so the
    payment that follows always finds it)."""
    if stars <= 0:
        raise ValueError(f"an order is for a positive number of Stars, got {stars}")
    async with fenced(db, lock_name, epoch) as conn:
        rate = await conn.fetchval(
            "SELECT kopecks FROM stars_rates WHERE bot_id = $1 ORDER BY id DESC LIMIT 1", bot_id)
        rate = default_rate if rate is None else int(rate)
        row = await conn.fetchrow(
            f"""INSERT INTO star_orders (bot_id, user_id, kind, stars, kopecks, rate, expires_at)
                VALUES ($1, $2, 'top_up', $3, $4, $5, now() + make_interval(secs => $6)) RETURNING {_ORDER}""",
            bot_id, user_id, stars, stars * rate, rate, ttl)
    return _order(row)


async def get_order(db: Database, bot_id: int, order_id: int) -> Order | None:
    row = await db.require().fetchrow(f"SELECT {_ORDER} FROM star_orders WHERE bot_id = $1 AND id = $2",
                                      bot_id, order_id)
    return None if row is None else _order(row)


Refusal = str  # why a pre-checkout is refused: a text key of bot/phrases/stars.py


async def check_checkout(db: Database, bot_id: int, order_id: int | None, user_id: int, total: int,
                         currency: str) -> Refusal | None:
    """The pre-checkout's checks in one indexed read: None to accept, else why not. A paid
    subscription order is still payable: its renewals carry the same payload (whether Telegram
    asks a pre-checkout for them is not documented; refusing one would end the subscription)."""
    if currency != "XTR" or order_id is None:
        return "pay_refused_unknown"
    row = await db.require().fetchrow(
        """SELECT o.user_id, o.kind, o.stars, o.status, o.expires_at <= now() AS expired, u.banned
             FROM star_orders o JOIN users u ON u.bot_id = o.bot_id AND u.user_id = o.user_id
            WHERE o.bot_id = $1 AND o.id = $2""", bot_id, order_id)
    if row is None or row["user_id"] != user_id:
        return "pay_refused_unknown"
    if row["banned"]:
        return "pay_refused_banned"
    renewal = row["kind"] == "subscription" and row["status"] == "paid"
    if row["status"] != "open" and not renewal:
        return "pay_refused_paid"
    if row["expired"] and not renewal:
        return "pay_refused_expired"
    if row["stars"] != total:
        return "pay_refused_amount"
    return None


# --- payments ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Paid:
    """A recorded payment and its credit: `matched` False when the payload named no order of this
    user for this amount (credited at the current rate all the same: the user paid), `told` when
    the user was already told about it."""

    credited: Credited
    order_id: int | None
    matched: bool
    told: bool


async def record_payment(db: Database, lock_name: str, epoch: int, bot_id: int, user_id: int, charge_id: str, *,
                         order_id: int | None, stars: int, default_rate: int, referral_bonus: int) -> Paid:
    """Record a (non-recurring) Stars payment once per charge id, mark its order paid and credit
    the order's kopecks, all in one fenced transaction. A repeat finds the row and credits nothing."""
    async with fenced(db, lock_name, epoch) as conn:
        order = None
        if order_id is not None:
            row = await conn.fetchrow(
                f"SELECT {_ORDER} FROM star_orders WHERE bot_id = $1 AND id = $2 FOR UPDATE", bot_id, order_id)
            order = None if row is None else _order(row)
        matched = (order is not None and order.user_id == user_id and order.stars == stars
                   and order.kind == "top_up" and order.kopecks > 0)
        if matched:
            assert order is not None
            kopecks = order.kopecks
        else:
            rate = await conn.fetchval(
                "SELECT kopecks FROM stars_rates WHERE bot_id = $1 ORDER BY id DESC LIMIT 1", bot_id)
            kopecks = stars * (default_rate if rate is None else int(rate))
        inserted = await conn.fetchrow(
            """INSERT INTO star_payments (bot_id, charge_id, user_id, order_id, stars, kopecks)
               VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (bot_id, charge_id) DO NOTHING
               RETURNING told_at""",
            bot_id, charge_id, user_id, order.id if matched and order else None, stars, kopecks)
        told = False
        if inserted is None:  # delivered before: credit what was recorded then (the rate may have moved)
            known = await conn.fetchrow(
                "SELECT user_id, order_id, kopecks, told_at FROM star_payments WHERE bot_id = $1 AND charge_id = $2",
                bot_id, charge_id)
            assert known is not None
            user_id, kopecks, told = known["user_id"], known["kopecks"], known["told_at"] is not None
            matched, order_id = known["order_id"] is not None, known["order_id"]
        elif matched:
            await conn.execute(
                """UPDATE star_orders SET status = 'paid', paid_at = now()
                    WHERE bot_id = $1 AND id = $2 AND status = 'open'""", bot_id, order_id)
        credited = await credit_in(conn, bot_id, user_id, kopecks, source="stars", key=credit_key(charge_id),
                                   epoch=epoch, note=f"{stars} Stars", referral_bonus=referral_bonus)
    return Paid(credited, order_id if matched else None, matched, told)


async def mark_told(db: Database, bot_id: int, charge_id: str) -> None:
    """The user was told about the payment; not fenced: no money, and telling twice is the worst."""
    await db.require().execute(
        "UPDATE star_payments SET told_at = now() WHERE bot_id = $1 AND charge_id = $2 AND told_at IS NULL",
        bot_id, charge_id)


@dataclass(frozen=True, slots=True)
class Payment:
    charge_id: str
    user_id: int
    order_id: int | None
    stars: int
    kopecks: int
    recurring: bool
    paid_at: datetime
    refunded_at: datetime | None
    refunded_by: int | None
    restored: bool  # a refund Telegram refused gave the money back

    @property
    def state(self) -> str:
        """paid | refunded (the credit taken back, Telegram asked) | refused (and the money restored)."""
        if self.restored:
            return "refused"
        return "paid" if self.refunded_at is None else "refunded"


_PAYMENT = """p.charge_id, p.user_id, p.order_id, p.stars, p.kopecks, p.recurring, p.paid_at, p.refunded_at,
              p.refunded_by, EXISTS (SELECT 1 FROM ledger l WHERE l.bot_id = p.bot_id
                                        AND l.idempotency_key = 'admin:restored:' || p.charge_id) AS restored"""


def _payment(r: asyncpg.Record) -> Payment:
    return Payment(r["charge_id"], r["user_id"], r["order_id"], r["stars"], r["kopecks"], r["recurring"],
                   r["paid_at"], r["refunded_at"], r["refunded_by"], r["restored"])


async def payment(db: Database, bot_id: int, charge_id: str) -> Payment | None:
    row = await db.require().fetchrow(
        f"SELECT {_PAYMENT} FROM star_payments p WHERE p.bot_id = $1 AND p.charge_id = $2", bot_id, charge_id)
    return None if row is None else _payment(row)


async def recent_payments(db: Database, bot_id: int, *, user_id: int | None = None, limit: int = 10,
                          since: timedelta | None = None) -> list[Payment]:
    """Newest first: one user's (for /paysupport) or everybody's (the admin's refunds)."""
    rows = await db.require().fetch(
        f"""SELECT {_PAYMENT} FROM star_payments p
             WHERE p.bot_id = $1 AND ($2::bigint IS NULL OR p.user_id = $2)
               AND ($4::interval IS NULL OR p.paid_at > now() - $4::interval)
             ORDER BY p.paid_at DESC, p.charge_id LIMIT $3""", bot_id, user_id, limit, since)
    return [_payment(r) for r in rows]


async def find_payment(db: Database, bot_id: int, charge_prefix: str) -> Payment | None:
    """A payment by its charge id or an unambiguous start of it (the admin's button carries one)."""
    rows = await db.require().fetch(
        f"""SELECT {_PAYMENT} FROM star_payments p WHERE p.bot_id = $1 AND starts_with(p.charge_id, $2) LIMIT 2""",
        bot_id, charge_prefix)
    return _payment(rows[0]) if len(rows) == 1 else None


# --- refunds ---------------------------------------------------------------------------------------


class Spent(Exception):
    """The credit cannot be taken back: the user spent (or holds) the money it brought."""


class RefundRefused(Exception):
    """Telegram refused this payment's refund earlier; the money was given back."""


@dataclass(frozen=True, slots=True)
class Intent:
    """A refund's intent, committed: the credit taken back (`reversal.fresh`: by this call)."""

    payment: Payment
    reversal: Credited | None


async def begin_refund(db: Database, lock_name: str, epoch: int, bot_id: int, charge_id: str,
                       admin_id: int) -> Intent | None:
    """Take the credit back and mark the payment refunded (by whom) with its audit row, before
    Telegram is asked: under the fence, once per charge id whatever repeats (a repeat finds the
    reversal and asks Telegram again, which answers CHARGE_ALREADY_REFUNDED once it is done).
    None: no such payment. Raises Spent (nothing changed), RefundRefused."""
    try:
        async with fenced(db, lock_name, epoch) as conn:
            row = await conn.fetchrow(
                f"SELECT {_PAYMENT} FROM star_payments p WHERE p.bot_id = $1 AND p.charge_id = $2 FOR UPDATE OF p",
                bot_id, charge_id)
            if row is None:
                return None
            found = _payment(row)
            if found.restored:
                raise RefundRefused(charge_id)
            reversal = await _reverse(conn, bot_id, found, epoch, f"refund of {found.stars} Stars")
            if found.refunded_at is None:
                await _mark_refunded(conn, bot_id, found, admin_id)
                await audit.record(conn, bot_id, admin_id, "stars_refund", target=charge_id,
                                   before={"state": "paid", "user_id": found.user_id, "kopecks": found.kopecks},
                                   after={"state": "refunded", "stars": found.stars})
    except asyncpg.CheckViolationError as exc:
        raise Spent(charge_id) from exc
    return Intent(found, reversal)


async def _reverse(conn: asyncpg.Connection, bot_id: int, found: Payment, epoch: int, note: str) -> Credited | None:
    """Take the payment's credit back once (None: it credited nothing, e.g. a subscription whose
    plan gives no money)."""
    if found.kopecks <= 0:
        return None
    return await reverse(conn, bot_id, found.user_id, found.kopecks, key=reversal_key(found.charge_id), epoch=epoch,
                         note=note)


async def _mark_refunded(conn: asyncpg.Connection, bot_id: int, found: Payment, admin_id: int | None) -> None:
    await conn.execute(
        """UPDATE star_payments SET refunded_at = now(), refunded_by = $3
            WHERE bot_id = $1 AND charge_id = $2 AND refunded_at IS NULL""", bot_id, found.charge_id, admin_id)
    if found.order_id:
        await conn.execute("UPDATE star_orders SET status = 'refunded' WHERE bot_id = $1 AND id = $2",
                           bot_id, found.order_id)
    if found.recurring:  # a subscription's charge: the period it paid for ends now, and it renews no more
        await subscriptions.revoke(conn, bot_id, found.charge_id, datetime.now(UTC))


async def restore(db: Database, lock_name: str, epoch: int, bot_id: int, charge_id: str,
                  admin_id: int, reason: str) -> Credited | None:
    """Telegram refused the refund for good: the money taken back returns to the user once (an
    adjustment with its own key, so the payment's one credit stays one). None: nothing to restore."""
    async with fenced(db, lock_name, epoch) as conn:
        row = await conn.fetchrow(
            f"SELECT {_PAYMENT} FROM star_payments p WHERE p.bot_id = $1 AND p.charge_id = $2 FOR UPDATE OF p",
            bot_id, charge_id)
        if row is None or row["refunded_at"] is None or row["kopecks"] <= 0:
            return None
        found = _payment(row)
        credited = await credit_in(conn, bot_id, found.user_id, found.kopecks, source="admin",
                                   key=restored_key(charge_id), epoch=epoch, note="refund refused by Telegram")
        if credited.fresh:
            await audit.record(conn, bot_id, admin_id, "stars_refund_refused", target=charge_id,
                               before={"state": "refunded"}, after={"state": "refused", "reason": reason[:200]})
    return credited


@dataclass(frozen=True, slots=True)
class Refunded:
    """Telegram's refunded_payment applied: `reversal` None when the payment is unknown or the
    money was spent (`spent`)."""

    payment: Payment | None
    reversal: Credited | None
    spent: bool


async def refunded(db: Database, lock_name: str, epoch: int, bot_id: int, charge_id: str) -> Refunded:
    """Telegram says the payment was refunded (our own refund, or one we did not start): take the
    credit back once (the admin's refund uses the same key), and a restored credit too."""
    async with fenced(db, lock_name, epoch) as conn:
        row = await conn.fetchrow(
            f"SELECT {_PAYMENT} FROM star_payments p WHERE p.bot_id = $1 AND p.charge_id = $2 FOR UPDATE OF p",
            bot_id, charge_id)
        if row is None:
            return Refunded(None, None, False)
        found = _payment(row)
        reversal, spent = None, False
        try:
            async with conn.transaction():  # a savepoint: a refused overdraft leaves the mark standing
                reversal = await _reverse(conn, bot_id, found, epoch, f"refunded {found.stars} Stars")
                if found.restored:
                    await reverse(conn, bot_id, found.user_id, found.kopecks, key=f"reversal:{charge_id}:restored",
                                  epoch=epoch, note="refund done after all")
        except asyncpg.CheckViolationError:
            spent = True
        await _mark_refunded(conn, bot_id, found, None)  # Telegram returned the Stars, taken back or not
    return Refunded(found, reversal, spent)
