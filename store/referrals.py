"""Referrals: who brought whom, linked once, and the referrer's bonus paid once per pair.

Every user has a personal code (users.ref_code: random letters and digits, written once, unique
per bot), shared as t.me/<bot>?start=ref_<code>. A link is written when a NEW user arrives
through it and is never changed (no relinking: one row per referred user; no self-referral: a
CHECK; no cycle: the referrer must not have been brought by the user).

"New" (link()): the user first wrote to the bot less than NEW_FOR ago and has done nothing with
money yet (no generation, no ledger entry but the welcome bonus). It is decided from the
database, not from "ensure_user created the account in this update", so an update that runs
again after a crash still links, and an old user who never opened the link's bot page from the
start cannot attach themselves to a friend later.

The bonus is paid inside the transaction of the referred user's first paid credit
(store/money_in.py) or first paid generation that succeeded (store/jobs.py), keyed by the
referred user, so duplicate updates and concurrent first payments pay it once.
"""

from __future__ import annotations

import re
import secrets
import string
from dataclasses import dataclass
from datetime import timedelta
from typing import Literal

import asyncpg

from store.accounts import WELCOME_KEY, post
from store.database import Database
from store.fence import fenced

BONUS_KEY = "referral:{user_id}"
PAYLOAD_PREFIX = "ref_"
CODE_LENGTH = 10  # 62**10 codes: not guessable, and short in a link
CODE = re.compile(r"[A-Za-z0-9]{6,16}")  # what sql/012's CHECK allows
_ALPHABET = string.ascii_letters + string.digits
NEW_FOR = timedelta(minutes=10)  # a user who first wrote longer ago is not new (see the module's doc)

Outcome = Literal["linked", "unknown_code", "self", "cycle", "already_linked", "not_new"]


@dataclass(frozen=True, slots=True)
class Linked:
    """What link() did: `outcome`, and the referrer when the code named one."""

    outcome: Outcome
    referrer_id: int | None = None


@dataclass(frozen=True, slots=True)
class Stats:
    """A referrer's screen: users they brought, how many of those paid, kopecks earned."""

    invited: int
    paid: int
    earned: int


def new_code() -> str:
    return "".join(secrets.choice(_ALPHABET) for _ in range(CODE_LENGTH))


def parse_payload(payload: str | None) -> str | None:
    """The code of a /start payload "ref_<code>", or None for anything else (malformed, absent)."""
    if not payload or not payload.startswith(PAYLOAD_PREFIX):
        return None
    code = payload[len(PAYLOAD_PREFIX):]
    return code if CODE.fullmatch(code) else None


def payload_of(code: str) -> str:
    return PAYLOAD_PREFIX + code


async def code_of(db: Database, bot_id: int, user_id: int) -> str:
    """The user's referral code, made the first time it is asked for. Not fenced: no money moves,
    and the first writer wins (a concurrent call reads what it wrote)."""
    pool = db.require()
    for _ in range(5):
        row = await pool.fetchrow("SELECT ref_code FROM users WHERE bot_id = $1 AND user_id = $2", bot_id, user_id)
        if row is None:
            raise LookupError(f"user {user_id} is unknown")
        if row["ref_code"] is not None:
            return str(row["ref_code"])
        try:
            written = await pool.fetchval(
                """UPDATE users SET ref_code = $3 WHERE bot_id = $1 AND user_id = $2 AND ref_code IS NULL
                   RETURNING ref_code""", bot_id, user_id, new_code())
        except asyncpg.UniqueViolationError:  # another user's code already: draw again
            continue
        if written is not None:
            return str(written)
    raise RuntimeError(f"no free referral code for user {user_id} after 5 draws")


async def link(db: Database, lock_name: str, epoch: int, bot_id: int, user_id: int, code: str | None, *,
               new_for: timedelta = NEW_FOR) -> Linked:
    """Link `user_id` to the owner of `code` if the user is new (the module's doc) and has no
    referrer yet, in a fenced transaction (who gets a bonus later is money). Anything else is an
    outcome, not an error: the caller welcomes the user either way."""
    if code is None or not CODE.fullmatch(code):
        return Linked("unknown_code")
    async with fenced(db, lock_name, epoch) as conn:
        referrer = await conn.fetchval("SELECT user_id FROM users WHERE bot_id = $1 AND ref_code = $2 AND NOT banned",
                                       bot_id, code)
        if referrer is None:
            return Linked("unknown_code")
        referrer = int(referrer)
        if referrer == user_id:
            return Linked("self", referrer)
        existing = await conn.fetchval("SELECT referrer_id FROM referrals WHERE bot_id = $1 AND user_id = $2",
                                       bot_id, user_id)
        if existing is not None:
            return Linked("already_linked", int(existing))
        new = await conn.fetchval(
            """SELECT first_seen > now() - $3::interval
                      AND NOT EXISTS (SELECT 1 FROM jobs WHERE bot_id = $1 AND user_id = $2)
                      AND NOT EXISTS (SELECT 1 FROM ledger WHERE bot_id = $1 AND user_id = $2
                                         AND idempotency_key <> $4)
                 FROM users WHERE bot_id = $1 AND user_id = $2""",
            bot_id, user_id, new_for, WELCOME_KEY.format(user_id=user_id))
        if not new:
            return Linked("not_new", referrer)
        if await conn.fetchval("SELECT 1 FROM referrals WHERE bot_id = $1 AND user_id = $2 AND referrer_id = $3",
                               bot_id, referrer, user_id):
            return Linked("cycle", referrer)
        inserted = await conn.fetchval(
            """INSERT INTO referrals (bot_id, user_id, referrer_id) VALUES ($1, $2, $3)
               ON CONFLICT (bot_id, user_id) DO NOTHING RETURNING referrer_id""", bot_id, user_id, referrer)
        if inserted is None:  # a concurrent update (the same /start delivered twice) linked them first
            return Linked("already_linked", referrer)
        return Linked("linked", referrer)


async def referrer_of(db: Database, bot_id: int, user_id: int) -> int | None:
    value = await db.require().fetchval("SELECT referrer_id FROM referrals WHERE bot_id = $1 AND user_id = $2",
                                        bot_id, user_id)
    return None if value is None else int(value)


async def stats(db: Database, bot_id: int, user_id: int) -> Stats:
    row = await db.require().fetchrow(
        """SELECT count(*) AS invited, count(rewarded_at) AS paid, COALESCE(sum(bonus), 0) AS earned
             FROM referrals WHERE bot_id = $1 AND referrer_id = $2""", bot_id, user_id)
    assert row is not None
    return Stats(int(row["invited"]), int(row["paid"]), int(row["earned"]))


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
