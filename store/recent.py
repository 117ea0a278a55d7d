"""What a user made most recently, for the bot to offer the same again (bot/routers/intake.py:
a prompt typed with no flow open goes to the user's last text-to-image model)."""

from __future__ import annotations

from collections.abc import Sequence

from store.database import Database


async def last_model(db: Database, bot_id: int, user_id: int, among: Sequence[str]) -> str | None:
    """The model of the user's newest generation that is one of `among` (a family's models still
    in the catalog), or None when they made none of them. Failed ones count: the user chose it."""
    if not among:
        return None
    model: str | None = await db.require().fetchval(
        "SELECT model FROM jobs WHERE bot_id = $1 AND user_id = $2 AND model = ANY($3::text[])"
        " ORDER BY id DESC LIMIT 1", bot_id, user_id, list(among))
    return model
