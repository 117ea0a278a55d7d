"""The dispatcher's done marks, written in batches by one writer.

An update whose reply went out but whose done mark is not written runs again after a crash
(at-least-once), so the marks go out as soon as they can, but never one statement per update:
what finishes while a statement runs goes in the next one, and batches grow with the load by
themselves (no linger). A mark leaves memory only once written: a writer cancelled mid-statement
(a stop) keeps its marks for the stop's last attempt instead of losing them.
"""

from __future__ import annotations

import asyncio

from actors.mailbox import describe
from store import inbox
from store.database import DB_ERRORS, Database
from telemetry import logs

log = logs.get("dispatcher")

RETRY_AFTER = 1.0  # seconds between writes while the database refuses them
LAST_ATTEMPT = 2.0  # seconds a stop gives the marks still waiting


class DoneMarks:
    def __init__(self, database: Database, bot_id: int) -> None:
        self.database = database
        self.bot_id = bot_id
        self.marks: list[tuple[int, str]] = []  # (update_id, outcome), in the order they ended
        self.added = asyncio.Event()
        self.flushed = asyncio.Event()  # set whenever no mark waits to be written

    def __len__(self) -> int:
        return len(self.marks)

    def add(self, update_id: int, outcome: str) -> None:
        self.marks.append((update_id, outcome))
        self.flushed.clear()
        self.added.set()

    async def write(self) -> None:
        """The writer: runs until cancelled (spawned by the actor, so a crash fails the actor)."""
        while True:
            await self.added.wait()
            self.added.clear()
            marks = self.marks[:]
            if not marks:
                continue
            try:
                await inbox.mark_done(self.database, self.bot_id, marks)
            except DB_ERRORS as exc:
                log.warning("done_marks_retry", extra={"count": len(marks), "error_text": describe(exc)})
                await asyncio.sleep(RETRY_AFTER)
                self.added.set()
            else:
                del self.marks[:len(marks)]  # later marks were only appended meanwhile
                if not self.marks:
                    self.flushed.set()

    async def flush(self, timeout: float) -> None:
        """Wait (bounded) until every mark is written by the writer."""
        if self.marks:
            try:
                async with asyncio.timeout(timeout):
                    await self.flushed.wait()
            except TimeoutError:
                log.warning("done_marks_unflushed", extra={"count": len(self.marks)})

    async def last_attempt(self) -> None:
        """The writer is gone (a stop): one more statement, so a clean stop does not replay
        finished updates."""
        if not self.marks:
            return
        marks, self.marks = self.marks, []
        try:
            async with asyncio.timeout(LAST_ATTEMPT):
                await inbox.mark_done(self.database, self.bot_id, marks)
        except DB_ERRORS as exc:
            log.warning("done_marks_lost", extra={"count": len(marks), "error_text": describe(exc)})
