"""What of a job's outcome is in its chat already, part by part (sql/009_job_deliveries.sql): each
file or text of a result, an apology, a speech task made first. A part is recorded right after
Telegram's (or KIE's) answer, so no retry, restart or new leader sends it again; store/jobs.py's
finish() reads a reached part as a success.
"""

from __future__ import annotations

from dataclasses import dataclass

from store.database import Database
from store.fence import fenced


@dataclass(frozen=True, slots=True)
class Part:
    """A piece of a job's outcome that reached the chat (see sql/009_job_deliveries.sql)."""

    part: str
    reached: bool
    file_id: str | None
    message_id: int | None


async def record_part(db: Database, lock_name: str, epoch: int, job_id: int, part: str, *, reached: bool,
                      file_id: str | None = None, message_id: int | None = None) -> bool:
    """Record, right after Telegram's answer, that `part` of the job's outcome is in the chat, so
    no retry, restart or new leader sends it again. `reached`: a result (a file or its link),
    which makes the job a success (finish). The job row is locked as finish() locks it, so the two
    never interleave. Idempotent: False when the part was recorded before."""
    async with fenced(db, lock_name, epoch) as conn:
        if await conn.fetchval("SELECT id FROM jobs WHERE id = $1 FOR SHARE", job_id) is None:
            raise LookupError(f"no job {job_id}")
        status = await conn.execute(
            """INSERT INTO job_deliveries (job_id, part, reached, file_id, message_id, epoch)
               VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (job_id, part) DO NOTHING""",
            job_id, part, reached, file_id, message_id, epoch)
    return bool(status.endswith(" 1"))


async def parts(db: Database, job_id: int) -> dict[str, Part]:
    """What of the job's outcome is in the chat already, by part."""
    rows = await db.require().fetch(
        "SELECT part, reached, file_id, message_id FROM job_deliveries WHERE job_id = $1 ORDER BY sent_at, part",
        job_id)
    return {r["part"]: Part(r["part"], r["reached"], r["file_id"], r["message_id"]) for r in rows}
