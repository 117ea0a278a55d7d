"""Messages every actor understands: timers and injected faults; and the control marker."""

from __future__ import annotations

from dataclasses import dataclass


class Control:
    """Marker of a control message (a role change, a stop): it goes ahead of data messages and is
    never dropped by a full mailbox. Told without a reply, a newer one of the same type replaces
    a queued older one (they carry state, and only the latest state matters); one that waits for
    a reply is kept in order. It survives its actor's restart, for the next incarnation."""

    __slots__ = ()


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
