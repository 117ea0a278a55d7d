"""Bank transfers: a user's request to be credited for money sent by bank, its screenshot, and an
admin's decision (sql/013_transfers.sql).

The request row is written before the user sees the payment details, so the number they are
shown is real. Approval is one fenced transaction: the conditional UPDATE pending -> approved,
the credit keyed `transfer:<id>` (store/money_in.credit_in) and the audit row commit together, so
a double click or two admins at once credit once and the loser is told who decided. Each user has
at most one open (pending) request: a unique index, so two presses cannot pile rows up for admins.
A request with no screenshot by its expires_at is expired; that is evaluated lazily in every
query (no sweeper needed), and written down when the user next starts one.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime

import asyncpg

from store import audit
from store.accounts import UnknownUser
from store.database import Database
from store.fence import fenced
from store.money_in import Credited, credit_in

_COLUMNS = ("id, user_id, amount, status, created_at, expires_at, screenshot, screenshot_kind, screenshot_at, "
            "notified_at, decided_by, decided_at, decided_query, reason, told_at")
# a pending request without a screenshot past its time is expired wherever it is read
_LIVE = "status = 'pending' AND (screenshot IS NOT NULL OR expires_at > now())"


@dataclass(frozen=True, slots=True)
class Request:
    id: int
    user_id: int
    amount: int
    status: str
    created_at: datetime
    expires_at: datetime
    screenshot: str | None
    screenshot_kind: str | None
    screenshot_at: datetime | None
    notified_at: datetime | None
    decided_by: int | None
    decided_at: datetime | None
    decided_query: str | None
    reason: str | None
    told_at: datetime | None

    @property
    def awaiting_screenshot(self) -> bool:
        return self.status == "pending" and self.screenshot is None

    @property
    def under_review(self) -> bool:
        return self.status == "pending" and self.screenshot is not None

    def decided_here(self, query_id: str) -> bool:
        """This decision was made by callback query `query_id` and its user was not told yet: the
        same update run again (a crash after the commit) tells them, a second click does not."""
        return self.decided_query == query_id and self.told_at is None


def _request(row: asyncpg.Record) -> Request:
    return Request(row["id"], row["user_id"], row["amount"], row["status"], row["created_at"], row["expires_at"],
                   row["screenshot"], row["screenshot_kind"], row["screenshot_at"], row["notified_at"],
                   row["decided_by"], row["decided_at"], row["decided_query"], row["reason"], row["told_at"])


def _effective(request: Request, now: datetime) -> Request:
    """The request as the user and admins see it: a lapsed one is expired even before it is written."""
    if request.awaiting_screenshot and request.expires_at <= now:
        return replace(request, status="expired")
    return request


async def get(db: Database, bot_id: int, request_id: int) -> Request | None:
    row = await db.require().fetchrow(
        f"SELECT {_COLUMNS}, now() AS now FROM transfer_requests WHERE bot_id = $1 AND id = $2", bot_id, request_id)
    return None if row is None else _effective(_request(row), row["now"])


async def open_request(db: Database, bot_id: int, user_id: int) -> Request | None:
    """The user's live request (awaiting a screenshot in time, or awaiting an admin), if any."""
    row = await db.require().fetchrow(
        f"SELECT {_COLUMNS} FROM transfer_requests WHERE bot_id = $1 AND user_id = $2 AND {_LIVE}", bot_id, user_id)
    return None if row is None else _request(row)


async def create(db: Database, lock_name: str, epoch: int, bot_id: int, user_id: int, amount: int, *,
                 ttl: float) -> tuple[Request, bool]:
    """A new request for `amount` kopecks awaiting a screenshot for `ttl` seconds, and True; or the
    user's live request and False (one open request per user). A lapsed one is expired first."""
    if amount <= 0:
        raise ValueError(f"a transfer's amount must be positive, got {amount}")
    for _ in range(3):  # a concurrent cancel can free the slot between the INSERT and the SELECT
        async with fenced(db, lock_name, epoch) as conn:
            await conn.execute(
                """UPDATE transfer_requests SET status = 'expired'
                    WHERE bot_id = $1 AND user_id = $2 AND status = 'pending' AND screenshot IS NULL
                      AND expires_at <= now()""", bot_id, user_id)
            try:
                row = await conn.fetchrow(
                    f"""INSERT INTO transfer_requests (bot_id, user_id, amount, expires_at)
                        VALUES ($1, $2, $3, now() + make_interval(secs => $4))
                        ON CONFLICT (bot_id, user_id) WHERE status = 'pending' DO NOTHING
                        RETURNING {_COLUMNS}""", bot_id, user_id, amount, ttl)
            except asyncpg.ForeignKeyViolationError as exc:
                raise UnknownUser(f"user {user_id} has no account") from exc
            if row is not None:
                return _request(row), True
            row = await conn.fetchrow(
                f"SELECT {_COLUMNS} FROM transfer_requests WHERE bot_id = $1 AND user_id = $2 AND status = 'pending'",
                bot_id, user_id)
            if row is not None:
                return _request(row), False
    raise RuntimeError(f"user {user_id}'s open transfer request kept changing under a create")


@dataclass(frozen=True, slots=True)
class Attached:
    """The screenshot is on the request; `fresh`: this call put it there (False: the same file again)."""

    request: Request
    fresh: bool


@dataclass(frozen=True, slots=True)
class NotAwaiting:
    """No request of the user takes a screenshot now: none, expired, or one already under review
    (`request`: the latest, to say which)."""

    request: Request | None


async def attach_screenshot(db: Database, lock_name: str, epoch: int, bot_id: int, user_id: int, file_id: str,
                            kind: str) -> Attached | NotAwaiting:
    """Put the screenshot (Telegram file_id of a photo or an image document) on the user's request
    awaiting one."""
    if kind not in ("photo", "document"):
        raise ValueError(f"a screenshot is a photo or a document, got {kind!r}")
    async with fenced(db, lock_name, epoch) as conn:
        row = await conn.fetchrow(
            f"""UPDATE transfer_requests SET screenshot = $3, screenshot_kind = $4, screenshot_at = now()
                 WHERE bot_id = $1 AND user_id = $2 AND status = 'pending' AND screenshot IS NULL
                   AND expires_at > now()
                RETURNING {_COLUMNS}""", bot_id, user_id, file_id, kind)
        if row is not None:
            return Attached(_request(row), True)
        row = await conn.fetchrow(
            f"""SELECT {_COLUMNS}, now() AS now FROM transfer_requests WHERE bot_id = $1 AND user_id = $2
                 ORDER BY id DESC LIMIT 1""", bot_id, user_id)
    if row is None:
        return NotAwaiting(None)
    request = _effective(_request(row), row["now"])
    if request.under_review and request.screenshot == file_id:
        return Attached(request, False)
    return NotAwaiting(request)


async def mark_notified(db: Database, lock_name: str, epoch: int, bot_id: int, request_id: int) -> None:
    """The admins got the screenshot (an update run again before this re-sends it)."""
    async with fenced(db, lock_name, epoch) as conn:
        await conn.execute("UPDATE transfer_requests SET notified_at = now() WHERE bot_id = $1 AND id = $2",
                           bot_id, request_id)


async def mark_told(db: Database, lock_name: str, epoch: int, bot_id: int, request_id: int) -> None:
    """The user was told the decision."""
    async with fenced(db, lock_name, epoch) as conn:
        await conn.execute("UPDATE transfer_requests SET told_at = now() WHERE bot_id = $1 AND id = $2",
                           bot_id, request_id)


async def cancel(db: Database, lock_name: str, epoch: int, bot_id: int, user_id: int,
                 request_id: int) -> tuple[Request | None, bool]:
    """The user withdraws their pending request: (the request, True when this call cancelled it).
    One decided meanwhile stays decided (the conditional UPDATE loses to an approval)."""
    async with fenced(db, lock_name, epoch) as conn:
        row = await conn.fetchrow(
            f"""UPDATE transfer_requests SET status = 'cancelled', decided_at = now()
                 WHERE bot_id = $1 AND id = $2 AND user_id = $3 AND status = 'pending'
                RETURNING {_COLUMNS}""", bot_id, request_id, user_id)
    if row is not None:
        return _request(row), True
    request = await get(db, bot_id, request_id)
    return (request if request is not None and request.user_id == user_id else None), False


@dataclass(frozen=True, slots=True)
class Decided:
    """This call decided the request (`credited`: the credit of an approval, None for a rejection)."""

    request: Request
    credited: Credited | None = None


@dataclass(frozen=True, slots=True)
class AlreadyDecided:
    """Someone else (or an earlier click) decided it, or the user cancelled it, or it expired."""

    request: Request


@dataclass(frozen=True, slots=True)
class NotReady:
    """Not decidable: no such request, or it has no screenshot yet."""

    request: Request | None


async def _undecided(db: Database, bot_id: int, request_id: int) -> AlreadyDecided | NotReady:
    request = await get(db, bot_id, request_id)
    if request is None or request.awaiting_screenshot:
        return NotReady(request)
    return AlreadyDecided(request)


async def approve(db: Database, lock_name: str, epoch: int, bot_id: int, request_id: int, admin_id: int, *,
                  query_id: str, referral_bonus: int) -> Decided | AlreadyDecided | NotReady:
    """Approve a request under review and credit its amount once (key `transfer:<id>`), with its
    audit row, in one fenced transaction; the loser of a race gets AlreadyDecided."""
    async with fenced(db, lock_name, epoch) as conn:
        row = await conn.fetchrow(
            f"""UPDATE transfer_requests
                   SET status = 'approved', decided_by = $3, decided_at = now(), decided_query = $4
                 WHERE bot_id = $1 AND id = $2 AND status = 'pending' AND screenshot IS NOT NULL
                RETURNING {_COLUMNS}""", bot_id, request_id, admin_id, query_id)
        if row is not None:
            request = _request(row)
            credited = await credit_in(conn, bot_id, request.user_id, request.amount, source="transfer",
                                       key=f"transfer:{request.id}", epoch=epoch,
                                       note=f"bank transfer #{request.id} approved by {admin_id}",
                                       referral_bonus=referral_bonus)
            await audit.record(conn, bot_id, admin_id, "transfer_approve", target=f"transfer:{request.id}",
                               before={"status": "pending", "user_id": request.user_id, "amount": request.amount},
                               after={"status": "approved", "credited": credited.fresh,
                                      "balance": credited.balance.balance})
            return Decided(request, credited)
    return await _undecided(db, bot_id, request_id)


async def credited(db: Database, lock_name: str, epoch: int, bot_id: int, request: Request) -> Credited:
    """An approved request's credit as it stands (nothing moves: its key is taken), to tell the
    user again when the approving update is run again before they were told."""
    if request.status != "approved":
        raise ValueError(f"transfer #{request.id} is {request.status}, not approved")
    async with fenced(db, lock_name, epoch) as conn:
        return await credit_in(conn, bot_id, request.user_id, request.amount, source="transfer",
                               key=f"transfer:{request.id}", epoch=epoch)


async def reject(db: Database, lock_name: str, epoch: int, bot_id: int, request_id: int, admin_id: int, *,
                 query_id: str, reason: str) -> Decided | AlreadyDecided | NotReady:
    """Reject a request under review with `reason` (told to the user), with its audit row."""
    async with fenced(db, lock_name, epoch) as conn:
        row = await conn.fetchrow(
            f"""UPDATE transfer_requests
                   SET status = 'rejected', decided_by = $3, decided_at = now(), decided_query = $4, reason = $5
                 WHERE bot_id = $1 AND id = $2 AND status = 'pending' AND screenshot IS NOT NULL
                RETURNING {_COLUMNS}""", bot_id, request_id, admin_id, query_id, reason)
        if row is not None:
            request = _request(row)
            await audit.record(conn, bot_id, admin_id, "transfer_reject", target=f"transfer:{request.id}",
                               before={"status": "pending", "user_id": request.user_id, "amount": request.amount},
                               after={"status": "rejected", "reason": reason})
            return Decided(request)
    return await _undecided(db, bot_id, request_id)


async def under_review(db: Database, bot_id: int, limit: int = 20) -> list[Request]:
    """Requests with a screenshot awaiting an admin, oldest first (they are rows: a restart keeps them)."""
    rows = await db.require().fetch(
        f"""SELECT {_COLUMNS} FROM transfer_requests
             WHERE bot_id = $1 AND status = 'pending' AND screenshot IS NOT NULL ORDER BY id LIMIT $2""",
        bot_id, limit)
    return [_request(r) for r in rows]


async def counts(db: Database, bot_id: int) -> tuple[int, int]:
    """(under review, awaiting a screenshot in time)."""
    row = await db.require().fetchrow(
        f"""SELECT count(*) FILTER (WHERE screenshot IS NOT NULL) AS review,
                   count(*) FILTER (WHERE screenshot IS NULL) AS waiting
              FROM transfer_requests WHERE bot_id = $1 AND {_LIVE}""", bot_id)
    assert row is not None
    return int(row["review"]), int(row["waiting"])


async def invariant_problems(db: Database, bot_id: int | None = None) -> list[str]:
    """The money invariants of transfers (for store/invariants.check): an approved request is
    credited exactly once, its amount to its user; a transfer credit names an approved request."""
    problems: list[str] = []
    for r in await db.require().fetch(
            """SELECT r.id, r.user_id, r.amount, r.status, count(l.id) AS credits,
                      COALESCE(sum(l.balance_delta), 0) AS credited,
                      count(l.id) FILTER (WHERE l.user_id <> r.user_id) AS strangers
                 FROM transfer_requests r
                 LEFT JOIN ledger l ON l.bot_id = r.bot_id AND l.idempotency_key = 'transfer:' || r.id
                WHERE $1::bigint IS NULL OR r.bot_id = $1
                GROUP BY r.id""", bot_id):
        want = (1, r["amount"]) if r["status"] == "approved" else (0, 0)
        if (r["credits"], r["credited"]) != want or r["strangers"]:
            problems.append(f"transfer #{r['id']} of user {r['user_id']} ({r['status']}, {r['amount']} kopecks): "
                            f"credited {r['credits']} times, {r['credited']} kopecks, {r['strangers']} to others")
    for r in await db.require().fetch(
            """SELECT l.user_id, l.idempotency_key FROM ledger l
                WHERE ($1::bigint IS NULL OR l.bot_id = $1) AND l.source = 'transfer'
                  AND NOT EXISTS (SELECT 1 FROM transfer_requests r WHERE r.bot_id = l.bot_id
                                     AND l.idempotency_key = 'transfer:' || r.id)""", bot_id):
        problems.append(f"user {r['user_id']}: a transfer credit {r['idempotency_key']} without its request")
    return problems
