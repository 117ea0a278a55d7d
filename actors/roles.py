"""The role query: what lock_keeper says the role is now, asked through its address.

Any actor whose work depends on the role asks this when it (re)starts; it needs only
lock_keeper's mailbox, never the lock_keeper module (actors hold addresses, not each other).
"""

from __future__ import annotations

from actors.mailbox import Mailbox, MailboxError
from messages.roles import CurrentRole, RoleChanged
from telemetry import logs


async def current_role(lock_keeper: Mailbox | None, timeout: float = 2.0) -> RoleChanged | None:
    """The role now, for an actor (re)starting after the last RoleChanged was told; None when
    lock_keeper cannot say (it is restarting, and its next RoleChanged will tell)."""
    if lock_keeper is None:
        return None
    try:
        answer: RoleChanged = await lock_keeper.ask(CurrentRole(), timeout=timeout)
    except (TimeoutError, MailboxError) as exc:
        logs.get("roles").info("role_unknown_at_start", extra={"error_text": str(exc)[:200]})
        return None
    return answer
