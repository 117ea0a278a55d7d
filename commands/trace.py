"""`python run.py trace <correlation id>`: one update's (u<update_id>) or one job's (j<job_id>)
story as a timeline, read from the traces table, so an operator answering "why did my /start get
no answer" or "where is my picture" reads what happened instead of grepping logs.

An update that confirmed a generation names its job, and a job names the update that made it:
the linked story is printed after the asked one (telemetry/stories.py, shared with `/admin trace`).
"""

from __future__ import annotations

import sys

from store.database import DB_ERRORS, Database, describe_url
from telemetry import logs
from telemetry.stories import links, story, timeline

__all__ = ["links", "show", "story", "timeline"]


async def show(database: Database, correlation_id: str) -> int:
    correlation_id = correlation_id.strip()
    try:
        await database.connect()
    except (*DB_ERRORS, OSError) as exc:
        print(logs.redact(f"cannot reach the database at {describe_url(database.url)}: {exc}"), file=sys.stderr)
        return 1
    try:
        out = await story(database, correlation_id)
        if not out:
            print(f"no trace for {correlation_id!r}: ids look like u<update_id> or j<job_id>, and traces are "
                  "trimmed after INBOX_RETENTION_DAYS", file=sys.stderr)
            return 1
    except DB_ERRORS as exc:
        print(logs.redact(f"reading traces failed: {exc}"), file=sys.stderr)
        return 1
    finally:
        await database.close()
    print(logs.redact("\n".join(out)))
    return 0
