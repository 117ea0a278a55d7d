"""Leadership: which instance is ACTIVE, under which fencing epoch."""

from __future__ import annotations

import enum
from dataclasses import dataclass


class Role(enum.Enum):
    ACTIVE = "ACTIVE"
    PASSIVE = "PASSIVE"


@dataclass(frozen=True, slots=True)
class RoleChanged:
    """Told to every subscriber on each transition; `epoch` is the fencing token while ACTIVE."""

    role: Role
    epoch: int
    reason: str = ""


@dataclass(frozen=True, slots=True)
class CurrentRole:
    """Ask lock_keeper for the role now (answered with a RoleChanged); used by actors at start."""


@dataclass(frozen=True, slots=True)
class LockConnectionLost:
    """The lock connection ended under us (server restart, termination, network)."""

    reason: str
