"""Messages of the update pipeline."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Wake:
    """Updates were just committed to the inbox: claim them now instead of at the next sweep."""

