"""Promo codes: admins create them (an amount of kopecks or a number of free generations, at most
so many uses, until a date), users redeem each once.

A redemption is one fenced transaction: the user's redemption row (its primary key makes a
second one by the same user wait, then find the first), the code's use (a conditional UPDATE
... WHERE uses < max_uses: concurrent redemptions queue on the code's row and the ones past the
limit find it used up, so the uses never exceed max_uses), and the credit (store/money_in.py,
keyed promo:<code id>:<user id>) or the grant of free generations (store/grants.py). A refusal
raises Refused inside the transaction, so nothing of it stays.

An update that runs again after a crash between the commit and the user's notice finds the
redemption not yet told and returns it again (fresh=False) so the user is told then; once
told_at is set, another try is "already used".
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

import asyncpg

from store import money_in
from store.database import Database
from store.fence import fenced

Kind = Literal["amount", "generations"]
KINDS: tuple[str, ...] = ("amount", "generations")
Reason = Literal["unknown", "expired", "inactive", "used_up", "already"]
CODE = re.compile(r"[A-Z0-9_-]{3,32}")  # what sql/012's CHECK allows, after normalize()
KEY = "promo:{code_id}:{user_id}"
_CODE = "id, code, kind, value, max_uses, uses, expires_at, disabled_at, created_by, created_at"


class Refused(Exception):
    """The code cannot be redeemed by this user now: `reason` says why (the user is told)."""

    def __init__(self, reason: Reason, code: str = "") -> None:
        super().__init__(f"promo code {code!r}: {reason}")
        self.reason: Reason = reason
        self.code = code


class CodeTaken(Exception):
    """An admin created a code whose text another code of the bot already has."""


@dataclass(frozen=True, slots=True)
class Code:
    id: int
    code: str
    kind: str
    value: int  # kopecks (amount) or generations
    max_uses: int
    uses: int
    expires_at: datetime
    disabled_at: datetime | None
    created_by: int
    created_at: datetime

    def status(self, now: datetime) -> str:
        """active | disabled | expired | used_up, for an admin's list."""
        if self.disabled_at is not None:
            return "disabled"
        if self.expires_at <= now:
            return "expired"
        return "used_up" if self.uses >= self.max_uses else "active"

    def audit(self) -> dict[str, object]:
        return {"code": self.code, "kind": self.kind, "value": self.value, "max_uses": self.max_uses,
                "uses": self.uses, "expires_at": self.expires_at.isoformat(),
                "disabled": self.disabled_at is not None}


@dataclass(frozen=True, slots=True)
class Redeemed:
    """A redemption: `credited` for an amount code, `generations` for a generations code.
    `fresh`: this call redeemed it (False: an earlier run did and its user was not told yet)."""

    code: Code
    user_id: int
    fresh: bool
    credited: money_in.Credited | None = None
    generations: int = 0


def _code(r: asyncpg.Record) -> Code:
    return Code(r["id"], r["code"], r["kind"], r["value"], r["max_uses"], r["uses"], r["expires_at"],
                r["disabled_at"], r["created_by"], r["created_at"])


def normalize(text: str) -> str:
    """A code as stored: trimmed, upper-case (users type codes in any case)."""
    return text.strip().upper()


async def create(conn: asyncpg.Connection, bot_id: int, admin_id: int, code: str, kind: Kind, value: int,
                 max_uses: int, expires_at: datetime) -> Code:
    """A new code, inside the caller's transaction (an admin's, with its audit row)."""
    text = normalize(code)
    if not CODE.fullmatch(text):
        raise ValueError(f"a promo code is 3-32 letters, digits, '_' or '-', got {code!r}")
    if kind not in KINDS:
        raise ValueError(f"a promo code's kind is one of {', '.join(KINDS)}, got {kind!r}")
    if value <= 0 or max_uses <= 0:
        raise ValueError(f"a promo code's value and uses are positive, got {value}, {max_uses}")
    try:
        row = await conn.fetchrow(
            f"""INSERT INTO promo_codes (bot_id, code, kind, value, max_uses, expires_at, created_by)
                VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING {_CODE}""",
            bot_id, text, kind, value, max_uses, expires_at, admin_id)
    except asyncpg.UniqueViolationError as exc:
        raise CodeTaken(f"promo code {text} exists") from exc
    assert row is not None
    return _code(row)


async def disable(conn: asyncpg.Connection, bot_id: int, code_id: int, admin_id: int) -> tuple[Code, Code] | None:
    """Stop a code (the redemptions made stay), inside the caller's transaction; (before, after),
    None for an unknown code. Disabling a disabled code changes nothing."""
    before = await conn.fetchrow(f"SELECT {_CODE} FROM promo_codes WHERE bot_id = $1 AND id = $2 FOR UPDATE",
                                 bot_id, code_id)
    if before is None:
        return None
    after = await conn.fetchrow(
        f"""UPDATE promo_codes SET disabled_at = COALESCE(disabled_at, now()),
                                   disabled_by = COALESCE(disabled_by, $3)
             WHERE bot_id = $1 AND id = $2 RETURNING {_CODE}""", bot_id, code_id, admin_id)
    assert after is not None
    return _code(before), _code(after)


async def codes(db: Database, bot_id: int, limit: int = 20) -> list[Code]:
    """The newest codes first."""
    rows = await db.require().fetch(f"SELECT {_CODE} FROM promo_codes WHERE bot_id = $1 ORDER BY id DESC LIMIT $2",
                                    bot_id, limit)
    return [_code(r) for r in rows]


async def get(db: Database, bot_id: int, code_id: int) -> Code | None:
    row = await db.require().fetchrow(f"SELECT {_CODE} FROM promo_codes WHERE bot_id = $1 AND id = $2",
                                      bot_id, code_id)
    return None if row is None else _code(row)


async def redeem(db: Database, lock_name: str, epoch: int, bot_id: int, user_id: int, text: str) -> Redeemed:
    """Redeem `text` for the user once (the module's doc); raises Refused with the reason."""
    code = normalize(text)
    if not CODE.fullmatch(code):
        raise Refused("unknown", code)
    async with fenced(db, lock_name, epoch) as conn:
        row = await conn.fetchrow(f"SELECT {_CODE} FROM promo_codes WHERE bot_id = $1 AND code = $2", bot_id, code)
        if row is None:
            raise Refused("unknown", code)
        found = _code(row)
        mine = await conn.fetchval(
            """INSERT INTO promo_redemptions (code_id, bot_id, user_id) VALUES ($1, $2, $3)
               ON CONFLICT (code_id, user_id) DO NOTHING RETURNING true""", found.id, bot_id, user_id)
        if mine is None:
            told = await conn.fetchval("SELECT told_at FROM promo_redemptions WHERE code_id = $1 AND user_id = $2",
                                       found.id, user_id)
            if told is not None:
                raise Refused("already", code)
            return await _give(conn, found, bot_id, user_id, epoch, fresh=False)  # finds its entry: moves nothing
        if found.disabled_at is not None:
            raise Refused("inactive", code)
        used = await conn.fetchrow(
            f"""UPDATE promo_codes SET uses = uses + 1
                 WHERE id = $1 AND uses < max_uses AND disabled_at IS NULL AND expires_at > now()
                RETURNING {_CODE}""", found.id)
        if used is None:  # the last use went to a concurrent redemption, or the code ended meanwhile
            now = await conn.fetchrow("SELECT disabled_at IS NOT NULL AS off, expires_at <= now() AS expired "
                                      "FROM promo_codes WHERE id = $1", found.id)
            assert now is not None
            raise Refused("inactive" if now["off"] else "expired" if now["expired"] else "used_up", code)
        return await _give(conn, _code(used), bot_id, user_id, epoch, fresh=True)


async def _give(conn: asyncpg.Connection, code: Code, bot_id: int, user_id: int, epoch: int, *,
                fresh: bool) -> Redeemed:
    key = KEY.format(code_id=code.id, user_id=user_id)
    if code.kind == "amount":
        credited = await money_in.credit_in(conn, bot_id, user_id, code.value, source="promo", key=key, epoch=epoch,
                                            note=f"promo code {code.code}")
        return Redeemed(code, user_id, fresh, credited=credited)
    from store import grants  # H2's module (free generations); imported here so amount codes never need it

    await grants.grant(conn, bot_id, user_id, code.value, key=key, epoch=epoch)
    return Redeemed(code, user_id, fresh, generations=code.value)


async def told(db: Database, bot_id: int, code_id: int, user_id: int) -> None:
    """The user was told about their redemption: another try is "already used" from now on."""
    await db.require().execute(
        "UPDATE promo_redemptions SET told_at = now() WHERE code_id = $1 AND user_id = $2 AND told_at IS NULL",
        code_id, user_id)


async def redemptions(db: Database, bot_id: int, user_id: int) -> list[tuple[str, datetime]]:
    """The codes a user redeemed, newest first (the admin's user card)."""
    rows = await db.require().fetch(
        """SELECT c.code, r.redeemed_at FROM promo_redemptions r JOIN promo_codes c ON c.id = r.code_id
            WHERE r.bot_id = $1 AND r.user_id = $2 ORDER BY r.redeemed_at DESC""", bot_id, user_id)
    return [(r["code"], r["redeemed_at"]) for r in rows]


async def invariants(db: Database, bot_id: int | None = None) -> list[str]:
    """What must hold whatever happened (for store/invariants.py): a code's uses are its
    redemptions; an amount code's redemption credited its value once under its key, a
    generations code's granted once; and no promo credit without its redemption."""
    pool = db.require()
    problems: list[str] = []
    for r in await pool.fetch(
            """SELECT c.id, c.code, c.uses, count(r.user_id) AS redeemed FROM promo_codes c
                 LEFT JOIN promo_redemptions r ON r.code_id = c.id
                WHERE ($1::bigint IS NULL OR c.bot_id = $1) GROUP BY c.id HAVING c.uses <> count(r.user_id)""",
            bot_id):
        problems.append(f"promo code {r['code']} ({r['id']}): {r['uses']} uses but {r['redeemed']} redemptions")
    for r in await pool.fetch(
            """SELECT c.code, c.kind, c.value, r.user_id,
                      (SELECT count(*) FROM ledger l WHERE l.bot_id = r.bot_id
                          AND l.idempotency_key = 'promo:' || c.id || ':' || r.user_id
                          AND l.user_id = r.user_id AND l.source = 'promo' AND l.balance_delta = c.value) AS credits,
                      (SELECT count(*) FROM grants g WHERE g.bot_id = r.bot_id
                          AND g.key = 'promo:' || c.id || ':' || r.user_id
                          AND g.user_id = r.user_id AND g.count = c.value) AS grants
                 FROM promo_redemptions r JOIN promo_codes c ON c.id = r.code_id
                WHERE ($1::bigint IS NULL OR r.bot_id = $1)""", bot_id):
        given = r["credits"] if r["kind"] == "amount" else r["grants"]
        if given != 1 or r["credits"] + r["grants"] != 1:
            problems.append(f"promo code {r['code']} redeemed by user {r['user_id']}: {r['credits']} credits, "
                            f"{r['grants']} grants of {r['value']}")
    for r in await pool.fetch(
            """SELECT l.user_id, l.idempotency_key FROM ledger l
                WHERE ($1::bigint IS NULL OR l.bot_id = $1) AND l.source = 'promo'
                  AND NOT EXISTS (SELECT 1 FROM promo_redemptions r WHERE r.bot_id = l.bot_id
                                     AND l.idempotency_key = 'promo:' || r.code_id || ':' || r.user_id)""", bot_id):
        problems.append(f"user {r['user_id']}: a promo credit {r['idempotency_key']} without its redemption")
    return problems
