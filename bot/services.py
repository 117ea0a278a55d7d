"""What the conversation's handlers need beyond aiogram, handed to them by the tree (aiogram
workflow data `services`): the database handle for store/ calls, the settings, the catalog, and
a way to wake the jobs actor after a job is committed. bot/ holds no actor: `wake_jobs` is a
plain callable the tree builds around the jobs actor's mailbox, and `health` (the admin's health
summary) one around the process's /health body; None where nothing serves it (tests);
`wake_broadcaster` one around the broadcaster's mailbox."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from catalog.model import Catalog
from config import Settings
from store.database import Database
from store.jobs import Job
from store.leader import lock_name


@dataclass(frozen=True)
class Services:
    database: Database
    settings: Settings
    catalog: Catalog
    wake_jobs: Callable[[], None]
    health: Callable[[], Awaitable[dict[str, Any]]] | None = None
    # the broadcaster actor's wake after a broadcast is confirmed or changed (it also sweeps every second)
    wake_broadcaster: Callable[[], None] = field(default=lambda: None)
    # the jobs actor told to drive the job just confirmed at once (by id, no sweep), with the createTask
    # slot its Confirm took (take_slot) or None; None: wake_jobs
    drive_job: Callable[[Job, float | None], None] | None = None
    # a slot of KIE's createTask limit that is free now, taken for a Confirm that commits the intent with
    # its job (sql/025); None: none free now, or no KIE key. give_back_slot: one no job was made with
    take_slot: Callable[[], float | None] = field(default=lambda: None)
    give_back_slot: Callable[[float], None] = field(default=lambda slot: None)

    @property
    def lock_name(self) -> str:
        """The fence's name for this bot: handlers pass it with `fence_epoch` to fenced writes."""
        return lock_name(self.settings.bot_id)
