"""janitor: trims tables that grow forever (trace events, the inbox, applied KIE callbacks) by age, so
none can grow without bound.

The inbox is trimmed of this bot's handled updates only: another bot may share the database, and
an update never handled is lost work, which the janitor reports (a warning, its health) instead of
deleting.
"""

from __future__ import annotations

import time
from typing import Any, ClassVar

from actors.actor import Actor
from actors.mailbox import Mailbox
from messages.control import Tick
from store import inbox, kie_callbacks, traces
from store.database import Database, DatabaseUnavailable
from telemetry import logs

log = logs.get("janitor")


class Janitor(Actor):
    default_deadline: ClassVar[float] = 120.0

    def __init__(self, mailbox: Mailbox, database: Database, bot_id: int, retention_seconds: float,
                 interval: float = 600.0) -> None:
        super().__init__(mailbox)
        self.database = database
        self.bot_id = bot_id
        self.retention = retention_seconds
        self.interval = interval
        self.last_run: float | None = None
        self.trimmed = 0
        self.unfinished_past_retention = 0

    async def on_start(self) -> None:
        self.every(self.interval, first=min(30.0, self.interval))

    async def on_tick(self, msg: Tick) -> None:
        try:
            removed = await traces.trim(self.database, self.retention)
            updates, unfinished = await inbox.trim(self.database, self.bot_id, self.retention)
            callbacks = await kie_callbacks.trim_callbacks(self.database, self.bot_id, self.retention)
        except DatabaseUnavailable:
            return
        self.trimmed += removed + updates + callbacks
        self.unfinished_past_retention = unfinished
        self.last_run = time.time()
        if removed:
            log.info("traces_trimmed", extra={"count": removed})
        if updates:
            log.info("inbox_trimmed", extra={"count": updates})
        if callbacks:
            log.info("kie_callbacks_trimmed", extra={"count": callbacks})
        if unfinished:  # never handled within the retention: kept, and said, since it is lost work otherwise
            log.warning("inbox_unfinished_past_retention", extra={"count": unfinished,
                                                                 "retention_seconds": self.retention})

    def health(self) -> dict[str, Any]:
        return {"trimmed": self.trimmed, "last_run_at": self.last_run,
                "inbox_unfinished_past_retention": self.unfinished_past_retention}
