"""What ingress and the poller need to know about a raw Telegram update before storing it.

The kind (its one payload field) decides whether a handler exists; the chat key decides which
updates must run one at a time in update_id order. Unknown kinds and shapes are tolerated:
Telegram adds update types, and they must never break the ack path.
"""

from __future__ import annotations

import json
from typing import Any

from store.inbox import Incoming


class BadUpdate(ValueError):
    """Not something Telegram would send: not an object, or no integer update_id."""


def classify(update: dict[str, Any]) -> tuple[str, int | None]:
    """(kind, chat key): the chat when there is one, else the user, else None (runs alone)."""
    kind = next((k for k, v in update.items() if k != "update_id" and isinstance(v, dict)), "unknown")
    body = update.get(kind)
    if not isinstance(body, dict):
        return kind, None
    chat = body.get("chat")
    if not isinstance(chat, dict) and isinstance(body.get("message"), dict):
        chat = body["message"].get("chat")
    if isinstance(chat, dict) and _is_int(chat.get("id")):
        return kind, int(chat["id"])
    user = body.get("from") or body.get("user")
    if isinstance(user, dict) and _is_int(user.get("id")):
        return kind, int(user["id"])
    return kind, None


def parse(raw: bytes | str) -> tuple[dict[str, Any], Incoming]:
    """Validate a raw update; raises BadUpdate with the reason (a metric label) when it is not one."""
    try:
        text = raw.decode() if isinstance(raw, bytes) else raw
        update = json.loads(text)
    except (ValueError, UnicodeDecodeError):  # UnicodeDecodeError is a ValueError; named for the reader
        raise BadUpdate("not_json") from None
    if not isinstance(update, dict):
        raise BadUpdate("not_object")
    if not is_update(update):
        raise BadUpdate("no_update_id")
    kind, chat_key = classify(update)
    return update, Incoming(int(update["update_id"]), kind, chat_key, text)


def is_update(value: Any) -> bool:
    """An object with an integer update_id: what parse() accepts, for updates already decoded."""
    return isinstance(value, dict) and _is_int(value.get("update_id"))


def from_object(update: dict[str, Any]) -> Incoming:
    """An update the poller already has as an object (getUpdates); check is_update first."""
    kind, chat_key = classify(update)
    return Incoming(int(update["update_id"]), kind, chat_key, json.dumps(update, ensure_ascii=False))


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and -(2**63) <= value < 2**63
