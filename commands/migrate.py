"""`run.py migrate`: apply pending sql/ migrations and exit, for a deploy's release step."""

from __future__ import annotations

import sys

from store import migrations
from store.database import DB_ERRORS, Database, describe_url


async def migrate(database: Database) -> int:
    try:
        names, fresh = await migrations.apply_at(database.url)
    except migrations.MigrationError as exc:
        print(f"migrate: {exc}", file=sys.stderr)
        return 1
    except DB_ERRORS as exc:
        print(f"migrate: cannot reach the database at {describe_url(database.url)}: {exc}", file=sys.stderr)
        return 1
    print(f"migrate: {len(names)} migrations, {len(fresh)} applied now: {', '.join(fresh) or 'none'}")
    return 0
