"""What an admin changes from the panel (bot/routers/admin_users.py), each in one fenced
transaction with its audit row (store/audit.py), so a change and its record commit together or
not at all: a balance adjustment (through store/money_in.credit_in, keyed by the admin's request)
and a ban or unban."""

from __future__ import annotations

import asyncpg

from store import audit
from store.accounts import Overdraft, UnknownUser, forgetting, set_banned
from store.database import Database
from store.fence import fenced
from store.money_in import Credited, credit_in


async def adjust(db: Database, lock_name: str, epoch: int, bot_id: int, admin_id: int, user_id: int, amount: int,
                 *, key: str, reason: str) -> Credited:
    """Move `amount` kopecks (signed) on the user's balance once per `key` ("admin:..."), the
    ledger's note naming the admin and the reason, audited with the balance before and after
    (only by the call that moved the money: a replay finds the entry, `fresh` False).

    Raises Overdraft when it would take more than is available, UnknownUser for a user with no
    account, KeyReused when `key` already moved a different amount."""
    try:
        async with fenced(db, lock_name, epoch) as conn:
            before = await conn.fetchrow(
                "SELECT balance, held FROM accounts WHERE bot_id = $1 AND user_id = $2 FOR UPDATE", bot_id, user_id)
            if before is None:
                raise UnknownUser(f"user {user_id} has no account")
            credited = await credit_in(conn, bot_id, user_id, amount, source="admin", key=key, epoch=epoch,
                                       note=f"admin {admin_id}: {reason}")
            if credited.fresh:
                await audit.record(
                    conn, bot_id, admin_id, "adjust_balance", target=f"user:{user_id}",
                    before={"balance": before["balance"], "held": before["held"]},
                    after={"balance": credited.balance.balance, "held": credited.balance.held, "amount": amount,
                           "reason": reason, "entry": credited.entry.id, "key": key})
            return credited
    except asyncpg.CheckViolationError as exc:
        raise Overdraft(f"admin adjustment of {amount} refused for user {user_id}: {exc.constraint_name}") from exc


async def set_ban(db: Database, lock_name: str, epoch: int, bot_id: int, admin_id: int, user_id: int,
                  banned: bool) -> bool | None:
    """Ban or unban the user, audited; returns the flag before (None: no such user). Asking for
    what already holds changes nothing (a banned user is not told a second time)."""
    with forgetting(db, bot_id, user_id):
        async with fenced(db, lock_name, epoch) as conn:
            old = await conn.fetchval("SELECT banned FROM users WHERE bot_id = $1 AND user_id = $2 FOR UPDATE",
                                      bot_id, user_id)
            if old is None or bool(old) == banned:
                return None if old is None else bool(old)
            await set_banned(conn, bot_id, user_id, banned)
            await audit.record(conn, bot_id, admin_id, "ban" if banned else "unban", target=f"user:{user_id}",
                               before={"banned": bool(old)}, after={"banned": banned})
    return bool(old)
