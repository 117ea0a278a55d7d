"""Messages of the update pipeline."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Wake:
    """Updates were just committed to the inbox: claim them now instead of at the next sweep."""


@dataclass(frozen=True, slots=True)
class WorkerFailed:
    """A background task of an actor died unexpectedly: the actor fails, its supervisor restarts it."""

    error: str
