"""What webhook_setter last told Telegram (the secret itself is never stored, only its hash)."""

from __future__ import annotations

from store.database import Database
from store.fence import fenced


async def last_secret_hash(db: Database, name: str) -> str | None:
    secret_hash: str | None = await db.require().fetchval("SELECT secret_hash FROM webhook_state WHERE name = $1",
                                                           name)
    return secret_hash


async def record_set(db: Database, name: str, epoch: int, url: str, secret_hash: str,
                     allowed_updates: list[str], max_connections: int) -> None:
    """Fenced: only the current leader records a webhook it set."""
    async with fenced(db, name, epoch) as conn:
        await conn.execute(
            """INSERT INTO webhook_state (name, url, secret_hash, allowed_updates, max_connections, epoch)
               VALUES ($1, $2, $3, $4, $5, $6)
               ON CONFLICT (name) DO UPDATE SET url = EXCLUDED.url, secret_hash = EXCLUDED.secret_hash,
                   allowed_updates = EXCLUDED.allowed_updates, max_connections = EXCLUDED.max_connections,
                   set_at = now(), epoch = EXCLUDED.epoch""",
            name, url, secret_hash, allowed_updates, max_connections, epoch,
        )
