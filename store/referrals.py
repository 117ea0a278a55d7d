"""Referrals: who brought whom, linked once, and the referrer's bonus paid once per pair.

A link is written at the referred user's first contact and never changed (no relinking, no
self-referral: a CHECK). The bonus is paid inside the transaction of the referred user's first
paid credit (store/money_in.py) or first paid generation that succeeded (store/jobs.py), keyed by
the referred user, so duplicate updates and concurrent first payments pay it once.
"""

from __future__ import annotations

from dataclasses import dataclass

import asyncpg

from store.accounts import post

BONUS_KEY = "referral:{user_id}"


@dataclass(frozen=True, slots=True)
class Rewarded:
    """The referrer was paid `amount` just now for bringing `referred_id`."""

    referrer_id: int
    referred_id: int
    amount: int


async def reward(conn: asyncpg.Connection, bot_id: int, user_id: int, bonus: int, epoch: int, *,
                 cause: str) -> Rewarded | None:
    """Pay `user_id`'s referrer `bonus` kopecks if they have one not yet paid, inside the caller's
    fenced transaction (the row lock makes a concurrent first payment wait, then find it paid)."""
    if bonus <= 0:
        return None
    row = await conn.fetchrow(
        """SELECT referrer_id FROM referrals WHERE bot_id = $1 AND user_id = $2 AND rewarded_at IS NULL
           FOR UPDATE""", bot_id, user_id)
    if row is None:
        return None
    referrer = int(row["referrer_id"])
    posted = await post(conn, bot_id, referrer, "bonus", bonus, 0, BONUS_KEY.format(user_id=user_id), epoch,
                        note=f"referral: user {user_id}, {cause}", source="referral")
    await conn.execute("UPDATE referrals SET rewarded_at = now(), bonus = $3 WHERE bot_id = $1 AND user_id = $2",
                       bot_id, user_id, bonus)
    return Rewarded(referrer, user_id, bonus) if posted.fresh else None
