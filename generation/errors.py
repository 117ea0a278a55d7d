"""How a step says what happened to it, so the actor knows whether to try again or end the job."""

from __future__ import annotations

from store.jobs import Job


class InputUnavailable(Exception):
    """A file the user sent cannot be had (gone, too large, an earlier job without a task), or
    must not go to KIE (longer than priced): the job ends released, `reason` says why to the user."""

    def __init__(self, message: str, reason: str = "input_unavailable") -> None:
        super().__init__(message)
        self.reason = reason


class RetryLater(Exception):
    """A transient failure: the same step is tried again at a later sweep."""


class DeliveryFailed(Exception):
    """The result cannot reach the user (its file is gone, Telegram refuses it for good)."""


class NotOurs(Exception):
    """mark_submitting changed nothing: another drive or an earlier leader moved the job on."""

    def __init__(self, job: Job) -> None:
        super().__init__(f"job {job.id} is {job.state}")
        self.job = job
