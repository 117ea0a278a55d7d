"""Free generations a user is entitled to: a promo code's grants, and the daily allowance of the
listed models that their subscription's plan gives; and the plan's discount on paid ones.

What the confirmation offers is entitlement(); what Confirm takes is use(), in store.jobs.confirm's
fenced transaction, after the user's account row is locked (so one user's confirmations run one
at a time and each sees the uses before it): a grant of one generation makes one free job however
many confirmations race for it, and an allowance is never exceeded. A failed or timed-out job gave
the user nothing, so its use does not count (as for the free tier). Time is passed in (`now`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, Literal

import asyncpg

from store import subscriptions
from store.database import Database

Kind = Literal["grant", "plan"]
# a use of a job that gave the user something (a failed or timed-out one did not)
_COUNTS = "NOT EXISTS (SELECT 1 FROM jobs j WHERE j.id = u.job_id AND j.state IN ('failed', 'timed_out'))"


def discounted(price: int, discount: int) -> int:
    """A paid generation's price with the plan's discount, in whole kopecks (rounded down, never
    below one kopeck: a paid job needs a positive price)."""
    if discount <= 0 or price <= 0:
        return price
    return max(1, price * (100 - discount) // 100)


def _conn(db: Database | asyncpg.Connection) -> Any:
    return db.require() if isinstance(db, Database) else db


async def grant(conn: asyncpg.Connection, bot_id: int, user_id: int, count: int, *, key: str, epoch: int,
                max_price: int | None = None) -> bool:
    """Give `count` free generations (of a price up to `max_price` kopecks, any when None) once per
    `key`, inside the caller's fenced transaction (a promo redemption's). False: this key granted
    before, nothing more given."""
    if count <= 0:
        raise ValueError(f"a grant gives at least one generation, got {count}")
    if not key:
        raise ValueError("a grant needs a key")
    status = await conn.execute(
        """INSERT INTO grants (bot_id, key, user_id, count, max_price, epoch) VALUES ($1, $2, $3, $4, $5, $6)
           ON CONFLICT (bot_id, key) DO NOTHING""", bot_id, key, user_id, count, max_price, epoch)
    return bool(status.endswith(" 1"))


@dataclass(frozen=True, slots=True)
class Entitlement:
    """How a generation of `model` at `price` may be had now. kind: "plan" (the subscription's
    daily allowance), "grant" (a promo's free generation), or None (pay, with `discount`)."""

    kind: Kind | None
    left: int = 0  # of the allowance today, or of the grants that cover this price
    allowance: int | None = None  # the plan's daily count of this model
    subscription_id: int | None = None
    grant_key: str | None = None
    discount: int = 0  # percent off a paid generation (the active plan's)
    plan: str | None = None


async def allowance_used(db: Database | asyncpg.Connection, bot_id: int, user_id: int, model: str,
                         day: date) -> int:
    used: int = await _conn(db).fetchval(f"SELECT {_plan_used('$1', '$2', '$3', '$4')}", bot_id, user_id, day, model)
    return used


def _plan_used(bot: str, user: str, day: str, model: str) -> str:
    return f"""(SELECT count(*) FROM entitlement_uses u WHERE u.bot_id = {bot} AND u.user_id = {user}
                  AND u.kind = 'plan' AND u.day = {day} AND u.model = {model} AND {_COUNTS})"""


def _covering(bot: str, user: str, price: str) -> str:
    """The user's grants that cover `price` (any when NULL), with the generations each has left."""
    return f"""SELECT g.key, g.granted_at, g.count - (SELECT count(*) FROM entitlement_uses u
                                                      WHERE u.bot_id = g.bot_id AND u.kind = 'grant'
                                                        AND u.grant_key = g.key AND {_COUNTS}) AS left
                 FROM grants g
                WHERE g.bot_id = {bot} AND g.user_id = {user}
                  AND ({price}::bigint IS NULL OR g.max_price IS NULL OR g.max_price >= {price})"""


async def grants_left(db: Database | asyncpg.Connection, bot_id: int, user_id: int,
                      price: int | None = None) -> list[tuple[str, int]]:
    """(key, generations left) of the user's grants that cover `price` (any when None), oldest first."""
    rows = await _conn(db).fetch(f"SELECT c.key, c.left FROM ({_covering('$1', '$2', '$3')}) c "
                                 "ORDER BY c.granted_at, c.key", bot_id, user_id, price)
    return [(r["key"], int(r["left"])) for r in rows if r["left"] > 0]


@dataclass(frozen=True, slots=True)
class Standing:
    """What the user has for a generation now: the entitlement, and the kopecks available."""

    entitlement: Entitlement
    available: int  # balance less held (0 for a user never seen)


# standing()'s one statement (store/warmup.py prepares it on every new pool connection: it is
# read on every Confirm, on the way to createTask)
STANDING = f"""SELECT a.balance - a.held AS available, s.*, {_plan_used('$1', '$2', '$5', '$3')} AS plan_used,
                      (SELECT json_agg(json_build_array(c.key, c.left) ORDER BY c.granted_at, c.key)
                         FROM ({_covering('$1', '$2', '$4')}) c WHERE c.left > 0) AS covering
                 FROM (SELECT 1) AS one
                 LEFT JOIN accounts a ON a.bot_id = $1 AND a.user_id = $2
                 LEFT JOIN LATERAL ({subscriptions.current_sql('$1', '$2', '$6')}) s ON true"""


async def standing(db: Database | asyncpg.Connection, bot_id: int, user_id: int, model: str, price: int, *,
                   day: date, now: datetime) -> Standing:
    """entitlement() and the available balance in one round trip: the confirmation's terms are
    read for every screen and again on Confirm, where each round trip delays createTask."""
    row = await _conn(db).fetchrow(STANDING, bot_id, user_id, model, price, day, now)
    assert row is not None
    sub = None if row["id"] is None else subscriptions.from_row(row)
    covering = [(str(key), int(left)) for key, left in json.loads(row["covering"] or "[]")]
    return Standing(_decide(sub, model, int(row["plan_used"]), covering), int(row["available"] or 0))


async def entitlement(db: Database | asyncpg.Connection, bot_id: int, user_id: int, model: str, price: int, *,
                      day: date, now: datetime) -> Entitlement:
    """What the user has for this generation at `now`: the plan's allowance first (it renews
    daily), then a grant (it keeps), else the plan's discount on the price."""
    return (await standing(db, bot_id, user_id, model, price, day=day, now=now)).entitlement


def _decide(sub: subscriptions.Subscription | None, model: str, plan_used: int,
            covering: list[tuple[str, int]]) -> Entitlement:
    discount = sub.discount if sub is not None else 0
    plan = sub.plan if sub is not None else None
    if sub is not None and sub.daily.get(model, 0) > 0:
        allowance = sub.daily[model]
        left = allowance - plan_used
        if left > 0:
            return Entitlement("plan", left, allowance, sub.id, discount=discount, plan=plan)
    if covering:
        return Entitlement("grant", sum(n for _, n in covering), grant_key=covering[0][0], discount=discount,
                           plan=plan)
    return Entitlement(None, discount=discount, plan=plan)


async def use(conn: asyncpg.Connection, bot_id: int, user_id: int, job_id: int, entitled: Entitlement, *,
              model: str, day: date) -> None:
    """Record that `job_id` took `entitled` (confirm()'s transaction, the account row locked)."""
    assert entitled.kind is not None
    await conn.execute(
        """INSERT INTO entitlement_uses (job_id, bot_id, user_id, kind, grant_key, subscription_id, model, day,
                                         allowance)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)""",
        job_id, bot_id, user_id, entitled.kind, entitled.grant_key if entitled.kind == "grant" else None,
        entitled.subscription_id if entitled.kind == "plan" else None, model, day,
        entitled.allowance if entitled.kind == "plan" else None)


@dataclass(frozen=True, slots=True)
class Summary:
    """For the subscription screen: today's allowance left per model, and promo generations left."""

    allowance_left: dict[str, int]
    grants_left: int


async def summary(db: Database, bot_id: int, user_id: int, *, day: date, now: datetime) -> Summary:
    sub = await subscriptions.current(db, bot_id, user_id, now)
    left: dict[str, int] = {}
    if sub is not None:
        for model, count in sub.daily.items():
            left[model] = max(0, count - await allowance_used(db, bot_id, user_id, model, day))
    return Summary(left, sum(n for _, n in await grants_left(db, bot_id, user_id)))
