"""Messages of the generation pipeline (Confirm to delivery)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class WakeJobs:
    """A job was confirmed or a KIE callback was stored: drive jobs now, not at the next sweep."""
