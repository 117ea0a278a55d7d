"""Trace events: one step in the story of an update or a generation, for correlation_flusher."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class TraceEvent:
    correlation_id: str
    actor: str
    event: str
    data: dict[str, Any] | None = None
    at: float = field(default_factory=time.time)
