"""Messages every actor understands: timers and injected faults."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Tick:
    """A periodic timer firing; `name` tells which timer when an actor has several."""

    name: str = "tick"


@dataclass(frozen=True, slots=True)
class ChaosFault:
    """A fault injected through POST /chaos/{actor} to prove that the tree heals.

    crash: the handler raises. hang: it waits forever, so the message deadline trips (with
    ignore_cancel the handler also swallows cancellation, so only the watchdog can end it).
    slow: it takes `seconds`. exit: the whole process exits with `code` at once. `deadline`
    overrides the actor's default handling deadline for this one message, so a test can see a
    hang trip quickly without changing the actor.
    """

    fault: str
    seconds: float = 0.0
    ignore_cancel: bool = False
    code: int = 1
    deadline: float | None = None
