"""How an actor whose work depends on the role hears about it, through lock_keeper's address.

lock_keeper tells every subscriber its state again after every heartbeat and lock attempt, so a
subscriber needs no answer to go on: a (re)starting one just asks for an early word. It needs only
lock_keeper's mailbox, never the lock_keeper module (actors hold addresses, not each other).
"""

from __future__ import annotations

from actors.mailbox import Mailbox, MailboxError
from messages.roles import RoleQuery
from telemetry import logs

log = logs.get("roles")


def ask_for_role(lock_keeper: Mailbox | None) -> None:
    """Ask lock_keeper to tell us the role now; if it cannot take the question (restarting), its
    next heartbeat or lock attempt tells us anyway: until then the role is unknown, not PASSIVE."""
    if lock_keeper is None:
        return
    try:
        lock_keeper.tell_nowait(RoleQuery())
    except MailboxError as exc:
        log.info("role_query_not_delivered", extra={"error_text": str(exc)[:200]})
