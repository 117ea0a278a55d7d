"""Messages of the generation pipeline (Confirm to delivery)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class WakeJobs:
    """A job was confirmed or a KIE callback was stored: drive jobs now, not at the next sweep.

    `job_id`: the job just confirmed, driven at once by itself (a sweep may be minutes of rows
    and sweeps are at most five a second); a wake dropped from a full mailbox leaves it to the sweep.
    `job`: that job as its Confirm committed it (a store.jobs.Job: messages are plain data and
    import none of the program), so the first step need not read it again (used only while
    nothing else can have changed it: actors/kie_poller.py). `slot`: the createTask slot of KIE's
    limiter that Confirm took for the job it made 'submitting' (sql/025), for its request."""

    job_id: int | None = None
    job: object = None
    slot: float | None = None
