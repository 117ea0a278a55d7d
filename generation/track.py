"""What this process remembers of a job between its steps, and how often a job is looked at.

All of it may be lost (a restart, a new leader): the rows say what matters, a Track only paces
the work, so nothing here may be the only record of money or of what the user has seen.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from kie import TaskRecord, TaskState

RETRY_LATER = 5.0  # seconds after a transient failure, times the failures so far


@dataclass
class Track:
    """One job's pacing in this process."""

    next_at: float = 0.0  # time.monotonic() when the job needs a look again
    next_poll: float = 0.0
    polled_at: float = float("-inf")  # when recordInfo was last asked about it
    last_edit: float = float("-inf")
    last_text: str | None = None
    no_status: bool = False  # the status message cannot be edited (deleted, chat gone)
    failures: int = 0  # failed attempts to deliver (or to apologise)
    kie_state: TaskState | None = None
    stage: str | None = None  # how far a running task got, when its family says (Suno's "text", "first")
    stage_said: str | None = None  # the stage the status message last showed
    terminal: TaskRecord | None = None  # how KIE ended it, when seen and not yet delivered
    uploads: dict[str, str] = field(default_factory=dict)  # Telegram file_id -> KIE upload URL
    measured: dict[str, float] = field(default_factory=dict)  # Telegram file_id -> seconds it plays
    ended_at: float = float("-inf")  # when its last drive ended: a sweep read before that is stale for it


def poll_interval(age: float) -> float:
    """KIE's guidance: every 2-3 s for the first 30 s, 5-10 s to 2 min, 15-30 s after (jittered)."""
    base = 2.5 if age < 30 else 7.5 if age < 120 else 20.0
    return base * random.uniform(0.85, 1.15)


def shown_elapsed(seconds: float) -> float:
    """Elapsed time rounded down to what a status line shows: a new figure every 5 s for the first
    minute, every 15 s to five minutes, every 30 s after (so edits stay few on long videos)."""
    step = 5 if seconds < 60 else 15 if seconds < 300 else 30
    return float(int(seconds) // step * step)
