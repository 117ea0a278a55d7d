"""The jobs made 'submitting' by their Confirm (sql/025) whose createTask this process has begun
to send, for the epoch it leads in.

Why it exists: nothing in such a job's row says whether its createTask left, since no write stands
between the Confirm's commit and the request (that write is what sql/025 took out). The leader
of the Confirm's epoch must send it once, and a row read before the send (a sweep's page, a wake
that waited in the mailbox) shows the job as its Confirm made it. So the sending is claimed here,
before anything is awaited, and a claim stays until the job's deadline has passed, after which
no step sends a 'submitting' job at all (it is released). One record per process, given to every
incarnation of the jobs actor like the KIE client: the supervisor restarts the actor in the same
epoch, and a new incarnation that knew nothing would send again what its predecessor sent. Another
epoch (a new lease, here or elsewhere) starts empty and reads such a job as KIE may have it.
"""

from __future__ import annotations

from datetime import datetime


class Sent:
    def __init__(self) -> None:
        self.epoch = 0
        self._until: dict[int, datetime] = {}  # job id -> the time past which the claim is dropped

    def __contains__(self, job_id: object) -> bool:
        return job_id in self._until

    def __len__(self) -> int:
        return len(self._until)

    def claim(self, epoch: int, job_id: int, until: datetime) -> bool:
        """True once per job in `epoch`: the caller sends its createTask now. A new epoch forgets
        every claim of the last."""
        if epoch != self.epoch:
            self._until.clear()
            self.epoch = epoch
        if job_id in self._until:
            return False
        self._until[job_id] = until
        return True

    def forget_past(self, now: datetime) -> None:
        """Drop the claims of jobs past their deadline."""
        for job_id in [j for j, until in self._until.items() if until < now]:
            del self._until[job_id]
