"""Our KIE account as the bot sees it: generations paused after KIE answered 402 (our credits ran
out), and the last credit balance seen. The jobs actor writes it under the fence; the Confirm
handler reads it, so a user is told "paused" before any money is held, on whichever instance."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from store.database import Database
from store.fence import fenced


@dataclass(frozen=True, slots=True)
class KieAccount:
    paused_since: datetime | None
    pause_reason: str | None
    credits: int | None
    credits_at: datetime | None

    @property
    def paused(self) -> bool:
        return self.paused_since is not None


async def get(db: Database, bot_id: int) -> KieAccount:
    row = await db.require().fetchrow(
        "SELECT paused_since, pause_reason, credits, credits_at FROM kie_account WHERE bot_id = $1", bot_id)
    if row is None:
        return KieAccount(None, None, None, None)
    return KieAccount(row["paused_since"], row["pause_reason"], row["credits"], row["credits_at"])


async def pause(db: Database, lock_name: str, epoch: int, bot_id: int, reason: str) -> bool:
    """Pause new generations (idempotent: the first pause's time stays); True when this call paused."""
    async with fenced(db, lock_name, epoch) as conn:
        status: str = await conn.execute(
            """INSERT INTO kie_account (bot_id, paused_since, pause_reason) VALUES ($1, now(), $2)
               ON CONFLICT (bot_id) DO UPDATE SET paused_since = now(), pause_reason = $2, updated_at = now()
                WHERE kie_account.paused_since IS NULL""", bot_id, reason)
    return status.endswith(" 1")


async def resume(db: Database, lock_name: str, epoch: int, bot_id: int) -> bool:
    """Resume (credits are back); True when this call resumed."""
    async with fenced(db, lock_name, epoch) as conn:
        status: str = await conn.execute(
            """UPDATE kie_account SET paused_since = NULL, pause_reason = NULL, updated_at = now()
                WHERE bot_id = $1 AND paused_since IS NOT NULL""", bot_id)
    return status.endswith(" 1")


async def record_credits(db: Database, lock_name: str, epoch: int, bot_id: int, credits: int) -> None:
    async with fenced(db, lock_name, epoch) as conn:
        await conn.execute(
            """INSERT INTO kie_account (bot_id, credits, credits_at) VALUES ($1, $2, now())
               ON CONFLICT (bot_id) DO UPDATE SET credits = $2, credits_at = now(), updated_at = now()""",
            bot_id, credits)
