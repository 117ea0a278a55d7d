"""Users and their money: an account per user in integer kopecks, moved only by ledger entries.

An entry is appended under the leader's fence with an idempotency key unique per bot, so a
replayed update, a double click or a failover moves money once; the database applies each entry
to its account (a trigger) and refuses a negative available balance (a CHECK), whoever writes.
Holds, captures and releases belong to jobs and are written by store/jobs.py through post().
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

import asyncpg

from store import first_contacts, user_cache
from store.database import Database
from store.fence import committed, fence_checked_in_sql, fenced

CreditKind = Literal["top_up", "bonus", "refund", "adjustment"]
CREDIT_KINDS = ("top_up", "bonus", "refund", "adjustment")


class UnknownUser(Exception):
    """The user has no account yet: ensure_user() runs at their first contact, before any money moves."""


class Overdraft(Exception):
    """The database refused an entry that would make the available balance negative."""


class KeyReused(Exception):
    """An idempotency key already names a different entry: two intents were given one key (a bug)."""


@dataclass(frozen=True, slots=True)
class User:
    """`blocked`: the user blocked the bot (Telegram's 403); `banned`: an operator blocked the user."""

    user_id: int
    language: str | None
    first_seen: datetime
    blocked: bool
    banned: bool = False
    ban_told: bool = False
    username: str | None = None
    last_seen: datetime | None = None
    lang: str | None = None  # chosen with /language (ru, en); None: Telegram's `language` holds

    @property
    def speaks(self) -> str | None:
        """The language our words go out in: the user's choice, else what Telegram said at first contact."""
        return self.lang or self.language


@dataclass(frozen=True, slots=True)
class Balance:
    """Kopecks: `balance` is the user's money, `held` the part running jobs reserve."""

    balance: int
    held: int

    @property
    def available(self) -> int:
        return self.balance - self.held


@dataclass(frozen=True, slots=True)
class Entry:
    id: int
    user_id: int
    kind: str
    balance_delta: int
    held_delta: int
    job_id: int | None
    key: str
    epoch: int
    note: str | None
    created_at: datetime


@dataclass(frozen=True, slots=True)
class Posted:
    """An entry and whether this call appended it (False: the key was already there, nothing moved)."""

    entry: Entry
    fresh: bool


WELCOME_KEY = "welcome:{user_id}"
_ENTRY = "id, user_id, kind, balance_delta, held_delta, job_id, idempotency_key, epoch, note, created_at"
_USER = first_contacts.USER_COLUMNS


@dataclass(frozen=True, slots=True)
class Contact:
    """What meet() found: the user, whether this call created them, and then whether the FSM
    holds nothing under their private chat (sql/021: so the FSM cache needs no read of its own)."""

    user: User
    new: bool
    chat_clear: bool


@contextlib.contextmanager
def forgetting(db: Database, bot_id: int, user_id: int) -> Iterator[None]:
    """Around a write of the user's row (committed when the block ends): the leader's kept copy is
    forgotten however the write ends, a cancelled one included (it may have committed)."""
    try:
        yield
    finally:
        user_cache.of(db).forget(bot_id, user_id)


def _entry(r: asyncpg.Record) -> Entry:
    return Entry(r["id"], r["user_id"], r["kind"], r["balance_delta"], r["held_delta"], r["job_id"],
                 r["idempotency_key"], r["epoch"], r["note"], r["created_at"])


def _user(r: asyncpg.Record) -> User:
    return User(r["user_id"], r["language"], r["first_seen"], r["blocked"], r["banned"], r["ban_told"], r["username"],
                r["last_seen"], r["lang"])


async def post(conn: asyncpg.Connection, bot_id: int, user_id: int, kind: str, balance_delta: int, held_delta: int,
               key: str, epoch: int, *, job_id: int | None = None, note: str | None = None,
               source: str | None = None) -> Posted:
    """Append one entry inside the caller's fenced transaction, or find the one `key` already names.

    Raises KeyReused when that one differs (user, kind, amounts or job); a refused overdraft or a
    missing account raises asyncpg's CheckViolationError / ForeignKeyViolationError, and the
    caller's transaction is then aborted.
    """
    row = await conn.fetchrow(
        f"""INSERT INTO ledger (bot_id, user_id, kind, balance_delta, held_delta, job_id, idempotency_key, epoch, note,
                                source)
            VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
            ON CONFLICT (bot_id, idempotency_key) DO NOTHING
            RETURNING {_ENTRY}""",
        bot_id, user_id, kind, balance_delta, held_delta, job_id, key, epoch, note, source,
    )
    if row is not None:
        return Posted(_entry(row), True)
    row = await conn.fetchrow(f"SELECT {_ENTRY} FROM ledger WHERE bot_id = $1 AND idempotency_key = $2", bot_id, key)
    assert row is not None  # a conflicting row is committed (ON CONFLICT waited for it), and the ledger keeps rows
    entry = _entry(row)
    if (entry.user_id, entry.kind, entry.balance_delta, entry.held_delta, entry.job_id) != (
            user_id, kind, balance_delta, held_delta, job_id):
        raise KeyReused(f"idempotency key {key!r} already names entry {entry.id} ({entry.kind} {entry.balance_delta}"
                        f"/{entry.held_delta} for user {entry.user_id})")
    return Posted(entry, False)


async def get_user(db: Database, bot_id: int, user_id: int) -> User | None:
    row = await db.require().fetchrow(f"SELECT {_USER} FROM users WHERE bot_id = $1 AND user_id = $2", bot_id, user_id)
    return None if row is None else _user(row)


async def ensure_user(db: Database, lock_name: str, epoch: int, bot_id: int, user_id: int, language: str | None,
                      welcome_bonus: int, *, username: str | None = None) -> tuple[User, bool]:
    """The user, and True when this call met them first: it created their account and credited
    `welcome_bonus` kopecks (once per new user: concurrent first contacts wait on the users row,
    and the bonus is keyed by the user). A known user costs nothing when this leader read them in
    this epoch (store/user_cache.py), else one read and no fenced transaction; a new one is
    created seen now under `username`, so no second write follows the first."""
    contact = await meet(db, lock_name, epoch, bot_id, user_id, language, welcome_bonus, username=username)
    return contact.user, contact.new


async def meet(db: Database, lock_name: str, epoch: int, bot_id: int, user_id: int, language: str | None,
               welcome_bonus: int, *, username: str | None = None) -> Contact:
    """ensure_user(), and for a user it created whether their private chat's FSM is clear. A user
    this leader has not read in its epoch is met in one statement shared with whoever else is met
    at the same moment (store/first_contacts.py)."""
    if welcome_bonus < 0:
        raise ValueError(f"welcome bonus must not be negative, got {welcome_bonus}")
    cache = user_cache.of(db)
    kept = cache.get(bot_id, user_id, epoch)
    if isinstance(kept, User):
        return Contact(kept, False, False)
    began = cache.begin()
    newcomer = first_contacts.Newcomer(lock_name, epoch, bot_id, user_id, language, username, welcome_bonus,
                                       WELCOME_KEY.format(user_id=user_id))
    with fence_checked_in_sql(lock_name, epoch):  # one round trip, shared with the users met at the same time
        met = await first_contacts.meet(db, newcomer)
    row = met.row
    created = bool(row["created"]) and met.first
    if created:
        committed(epoch)
    user = _user(row)
    cache.put(bot_id, user_id, epoch, user, began)
    return Contact(user, created, created and bool(row["chat_clear"]))


async def set_language(db: Database, bot_id: int, user_id: int, language: str) -> None:
    """Not fenced: no money, and the last choice wins either way."""
    with forgetting(db, bot_id, user_id):
        await db.require().execute("UPDATE users SET language = $3 WHERE bot_id = $1 AND user_id = $2",
                                   bot_id, user_id, language)


async def choose_lang(db: Database, bot_id: int, user_id: int, lang: str) -> None:
    """The user picked our language with /language (users.lang). Not fenced: no money, and the
    last choice wins either way."""
    with forgetting(db, bot_id, user_id):
        await db.require().execute("UPDATE users SET lang = $3 WHERE bot_id = $1 AND user_id = $2",
                                   bot_id, user_id, lang)


async def set_blocked(db: Database, bot_id: int, user_id: int, blocked: bool) -> None:
    """Telegram said the user blocked the bot (403), or wrote again; not fenced: no money moves."""
    with forgetting(db, bot_id, user_id):
        await db.require().execute("UPDATE users SET blocked = $3 WHERE bot_id = $1 AND user_id = $2",
                                   bot_id, user_id, blocked)


async def seen(db: Database, bot_id: int, user_id: int, username: str | None) -> None:
    """The user wrote now (stats' active users) under this @username (the admin's lookup). Not
    fenced: no money; callers write it at most once an hour per user, not per update."""
    with forgetting(db, bot_id, user_id):
        await db.require().execute(
            "UPDATE users SET last_seen = now(), username = $3 WHERE bot_id = $1 AND user_id = $2",
            bot_id, user_id, username)


async def set_banned(conn: asyncpg.Connection, bot_id: int, user_id: int, banned: bool) -> bool | None:
    """Block (or unblock) the user from the bot inside the caller's transaction (an admin's, with
    its audit row); their next update gets one polite message again. Returns the flag before,
    None for an unknown user. The caller commits, so the caller wraps its transaction in
    `forgetting` (store/user_cache.py)."""
    row = await conn.fetchrow(
        """UPDATE users u SET banned = $3, ban_told = false FROM (SELECT banned FROM users
                WHERE bot_id = $1 AND user_id = $2 FOR UPDATE) old
            WHERE u.bot_id = $1 AND u.user_id = $2 RETURNING old.banned""", bot_id, user_id, banned)
    return None if row is None else bool(row["banned"])


async def ban_told(db: Database, bot_id: int, user_id: int) -> bool:
    """Record that a banned user got their one message; False when another update already did."""
    with forgetting(db, bot_id, user_id):
        return await db.require().fetchval(
            """UPDATE users SET ban_told = true WHERE bot_id = $1 AND user_id = $2 AND banned AND NOT ban_told
               RETURNING true""", bot_id, user_id) is not None


async def find_user(db: Database, bot_id: int, query: str) -> User | None:
    """A user by numeric id or @username (case-insensitive), as an admin types it."""
    text = query.strip()
    if text.lstrip("-").isdigit():
        return await get_user(db, bot_id, int(text))
    row = await db.require().fetchrow(
        f"""SELECT {_USER} FROM users WHERE bot_id = $1 AND lower(username) = lower($2)
             ORDER BY last_seen DESC NULLS LAST LIMIT 1""", bot_id, text.removeprefix("@"))
    return None if row is None else _user(row)


async def balance(db: Database, bot_id: int, user_id: int) -> Balance:
    """The user's kopecks (zero for a user never seen)."""
    row = await db.require().fetchrow("SELECT balance, held FROM accounts WHERE bot_id = $1 AND user_id = $2",
                                      bot_id, user_id)
    return Balance(0, 0) if row is None else Balance(row["balance"], row["held"])


async def credit(db: Database, lock_name: str, epoch: int, bot_id: int, user_id: int, amount: int, key: str, *,
                 kind: CreditKind = "top_up", note: str | None = None, job_id: int | None = None) -> Posted:
    """Add `amount` kopecks to the user's balance under the fence, once per `key` (a payment's
    charge id, an operator's request id): a second call with the key moves nothing and returns
    the first entry. Only an adjustment may be negative; one that would overdraw raises Overdraft."""
    if kind not in CREDIT_KINDS:
        raise ValueError(f"credit kind must be one of {', '.join(CREDIT_KINDS)}, got {kind!r}")
    if amount == 0 or (amount < 0 and kind != "adjustment"):
        raise ValueError(f"a {kind} must be positive, got {amount}")
    try:
        async with fenced(db, lock_name, epoch) as conn:
            return await post(conn, bot_id, user_id, kind, amount, 0, key, epoch, job_id=job_id, note=note)
    except asyncpg.CheckViolationError as exc:
        raise Overdraft(f"{kind} of {amount} refused for user {user_id}: {exc.constraint_name}") from exc
    except asyncpg.ForeignKeyViolationError as exc:
        if exc.constraint_name != "ledger_bot_id_user_id_fkey":
            raise
        raise UnknownUser(f"user {user_id} has no account") from exc


async def recent_entries(db: Database, bot_id: int, user_id: int, limit: int = 20) -> list[Entry]:
    """The user's newest entries first."""
    rows = await db.require().fetch(
        f"SELECT {_ENTRY} FROM ledger WHERE bot_id = $1 AND user_id = $2 ORDER BY id DESC LIMIT $3",
        bot_id, user_id, limit,
    )
    return [_entry(r) for r in rows]



GenerationState = Literal["reserved", "paid", "returned"]


@dataclass(frozen=True, slots=True)
class HistoryLine:
    """One line of a user's money history as they count it: a payment, a bonus, a correction
    (`kind` is its ledger kind), or one generation (`kind` "job"), whose hold and capture or
    release are one line: `state` reserved (it runs), paid or returned. `amount` is what the line
    did to the user's money: a reserve and a payment take the price, a return nothing."""

    kind: str
    amount: int  # kopecks
    created_at: datetime  # the first entry's: when the payment came, when the generation began
    job_id: int | None = None
    user_number: int | None = None
    model: str | None = None
    state: GenerationState | None = None
    note: str | None = None


async def history(db: Database, bot_id: int, user_id: int, limit: int = 10) -> list[HistoryLine]:
    """The user's newest `limit` history lines, newest first: a generation's hold, capture and
    release grouped into one line, placed where the generation began."""
    rows = await db.require().fetch(
        """SELECT min(l.id) AS first_id, min(l.created_at) AS created_at, bool_or(l.job_id IS NOT NULL
                  AND l.kind IN ('hold', 'capture', 'release')) AS generation,
                  (array_agg(l.kind ORDER BY l.id))[1] AS kind, (array_agg(l.note ORDER BY l.id))[1] AS note,
                  sum(l.balance_delta)::bigint AS balance_delta,
                  (sum(l.held_delta) FILTER (WHERE l.kind = 'hold'))::bigint AS held,
                  bool_or(l.kind = 'capture') AS captured, bool_or(l.kind = 'release') AS released,
                  min(l.job_id) AS job_id, min(j.user_number) AS user_number, min(j.model) AS model
             FROM ledger l LEFT JOIN jobs j ON j.id = l.job_id AND l.kind IN ('hold', 'capture', 'release')
            WHERE l.bot_id = $1 AND l.user_id = $2
            GROUP BY CASE WHEN l.kind IN ('hold', 'capture', 'release') THEN l.job_id ELSE -l.id END
            ORDER BY min(l.id) DESC LIMIT $3""", bot_id, user_id, limit)
    lines: list[HistoryLine] = []
    for r in rows:
        if not r["generation"]:
            lines.append(HistoryLine(r["kind"], r["balance_delta"], r["created_at"], job_id=r["job_id"],
                                     note=r["note"]))
            continue
        state: GenerationState = "paid" if r["captured"] else "returned" if r["released"] else "reserved"
        amount = r["balance_delta"] if state == "paid" else 0 if state == "returned" else -(r["held"] or 0)
        lines.append(HistoryLine("job", amount, r["created_at"], job_id=r["job_id"], user_number=r["user_number"],
                                 model=r["model"], state=state))
    return lines
