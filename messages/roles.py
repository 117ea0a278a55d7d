"""Leadership: which instance is ACTIVE, under which fencing epoch, and until when it is sure.

The role is level-triggered: lock_keeper tells every subscriber its current state after every
heartbeat, every lock attempt and every transition, so a subscriber that missed a message (it
was restarting, or busy) is right again at the next one; nobody trusts that it saw every edge.
These are control messages: they never wait behind data traffic and are never dropped by it.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from messages.control import Control


class Role(enum.Enum):
    ACTIVE = "ACTIVE"
    PASSIVE = "PASSIVE"


@dataclass(frozen=True, slots=True)
class RoleChanged(Control):
    """lock_keeper's current state. `epoch` is the fencing token while ACTIVE (the epoch given up
    when PASSIVE after a demotion, else 0). `lease_until` (time.monotonic()) is how long the ACTIVE
    role is certain: no other instance can take the lock before it, so acting is safe until then
    even if no further word comes; 0 when PASSIVE."""

    role: Role
    epoch: int
    reason: str = ""
    lease_until: float = 0.0


@dataclass(frozen=True, slots=True)
class RoleQuery:
    """Ask lock_keeper to tell every subscriber the current state now (a (re)starting actor)."""


@dataclass(frozen=True, slots=True)
class CurrentRole:
    """Ask lock_keeper for the role now, answered with a RoleChanged (operators' tools, tests)."""


@dataclass(frozen=True, slots=True)
class Relinquish(Control):
    """lock_keeper, before it lets the lock go: stop acting under `epoch` and answer when stopped."""

    epoch: int


@dataclass(frozen=True, slots=True)
class EpochRefused(Control):
    """The fence refused a write under `epoch`: another instance leads. Stop acting at once."""

    epoch: int


@dataclass(frozen=True, slots=True)
class LockConnectionLost:
    """The lock connection numbered `session` ended under us (server restart, termination, network)."""

    reason: str
    session: int = 0
