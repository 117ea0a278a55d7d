"""Money in: the one way a credit reaches a user's balance, whatever brought it.

A Stars payment, a subscription's renewal, an approved transfer, a promo code, an admin's
adjustment and a referral bonus all call credit_in() inside their own fenced transaction (the
one that also marks their order paid, their request approved, their code redeemed), so the
credit and its cause commit together or not at all. The entry is keyed by the cause's own id (a
charge id, a request id, a redemption), so a duplicate delivery, a double click or a failover
finds the entry and moves nothing: `fresh` says whether this call moved the money, and only a
fresh credit pays a referrer. What the user is told afterwards is bot/money_in.py's.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import asyncpg

from store import referrals
from store.accounts import Balance, Entry, Overdraft, UnknownUser, post
from store.database import Database
from store.fence import fenced

Source = Literal["stars", "subscription", "transfer", "promo", "admin", "referral"]
SOURCES: tuple[str, ...] = ("stars", "subscription", "transfer", "promo", "admin", "referral")
# money the user paid for: their first such credit pays their referrer (a promo or a bonus does not)
PAID_SOURCES: tuple[str, ...] = ("stars", "subscription", "transfer")
# told of every fresh credit once its transaction committed (commands/tree.py counts them as metrics)
listeners: dict[str, Callable[[str, int], None]] = {}
_KIND = {"stars": "top_up", "subscription": "top_up", "transfer": "top_up", "promo": "bonus",
         "referral": "bonus", "admin": "adjustment"}


@dataclass(frozen=True, slots=True)
class Credited:
    """What credit_in did: the entry (`fresh`: this call appended it), the balance after it, and
    the referrer this credit paid (None unless it did, now)."""

    user_id: int
    amount: int
    source: str
    entry: Entry
    fresh: bool
    balance: Balance
    referral: referrals.Rewarded | None = None


async def credit_in(conn: asyncpg.Connection, bot_id: int, user_id: int, amount: int, *, source: Source, key: str,
                    epoch: int, note: str | None = None, referral_bonus: int = 0) -> Credited:
    """Credit `amount` kopecks once per `key` inside the caller's fenced transaction.

    Only an admin's adjustment may be negative (and never overdraw: the accounts CHECK aborts the
    transaction). A fresh credit from a paid source pays the user's referrer `referral_bonus`
    once per pair (referrals.reward)."""
    if source not in SOURCES:
        raise ValueError(f"source must be one of {', '.join(SOURCES)}, got {source!r}")
    if amount == 0 or (amount < 0 and source != "admin"):
        raise ValueError(f"a credit from {source} must be positive, got {amount}")
    if not key.startswith(f"{source}:"):
        raise ValueError(f"a credit's key starts with its source ({source}:...), got {key!r}")
    posted = await post(conn, bot_id, user_id, _KIND[source], amount, 0, key, epoch, note=note, source=source)
    rewarded = None
    if posted.fresh and source in PAID_SOURCES and referral_bonus > 0:
        rewarded = await referrals.reward(conn, bot_id, user_id, referral_bonus, epoch, cause=key)
    row = await conn.fetchrow("SELECT balance, held FROM accounts WHERE bot_id = $1 AND user_id = $2", bot_id, user_id)
    assert row is not None  # post() appended or found an entry of this account
    return Credited(user_id, amount, source, posted.entry, posted.fresh, Balance(row["balance"], row["held"]), rewarded)


async def reverse(conn: asyncpg.Connection, bot_id: int, user_id: int, amount: int, *, key: str, epoch: int,
                  note: str | None = None) -> Credited:
    """Take back a refunded payment's `amount` (positive kopecks) once per `key`, inside the
    caller's fenced transaction; money already spent makes the accounts CHECK refuse it."""
    if amount <= 0:
        raise ValueError(f"a reversal takes back a positive amount, got {amount}")
    posted = await post(conn, bot_id, user_id, "reversal", -amount, 0, key, epoch, note=note, source="reversal")
    row = await conn.fetchrow("SELECT balance, held FROM accounts WHERE bot_id = $1 AND user_id = $2", bot_id, user_id)
    assert row is not None
    return Credited(user_id, -amount, "reversal", posted.entry, posted.fresh, Balance(row["balance"], row["held"]))


async def money_in(db: Database, lock_name: str, epoch: int, bot_id: int, user_id: int, amount: int, *,
                   source: Source, key: str, note: str | None = None, referral_bonus: int = 0) -> Credited:
    """credit_in() in a fenced transaction of its own, for a cause with no row of its own to
    write (an admin's adjustment). Raises Overdraft (a negative adjustment larger than what is
    available) and UnknownUser."""
    try:
        async with fenced(db, lock_name, epoch) as conn:
            return await credit_in(conn, bot_id, user_id, amount, source=source, key=key, epoch=epoch, note=note,
                                   referral_bonus=referral_bonus)
    except asyncpg.CheckViolationError as exc:
        raise Overdraft(f"{source} of {amount} refused for user {user_id}: {exc.constraint_name}") from exc
    except asyncpg.ForeignKeyViolationError as exc:
        raise UnknownUser(f"user {user_id} has no account") from exc


async def revenue(db: Database, bot_id: int, since_days: float | None = None) -> dict[str, int]:
    """Kopecks credited by source (reversals as their own negative line), all time or the last days."""
    rows = await db.require().fetch(
        """SELECT source, sum(balance_delta) AS total FROM ledger
            WHERE bot_id = $1 AND source IS NOT NULL
              AND ($2::float8 IS NULL OR created_at > now() - make_interval(secs => $2 * 86400))
            GROUP BY source""", bot_id, since_days)
    return {r["source"]: int(r["total"]) for r in rows}


def committed(credited: Credited) -> None:
    """The credit's transaction committed: tell the listeners when this call moved the money."""
    if credited.fresh:
        for listener in list(listeners.values()):
            listener(credited.source, credited.amount)
