"""Messages of broadcasts."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class WakeBroadcast:
    """A broadcast was confirmed, paused, resumed or cancelled: look at the broadcasts now, not at the next sweep."""
