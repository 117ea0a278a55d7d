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
    key = next((k for k, v in update.items() if k != "update_id" and isinstance(v, dict)), "unknown")
    # update types are names; a key with a NUL or a lone surrogate, stored as the kind, would fail its whole batch
    kind = key if key.isascii() and key.isidentifier() else "unknown"
    body = update.get(key)
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
    if not isinstance(raw, bytes):  # decoded bytes are valid UTF-8 already; a str may hold a lone surrogate
        text = storable(text, update)
    return update, Incoming(int(update["update_id"]), kind, chat_key, text)


def is_update(value: Any) -> bool:
    """An object with an integer update_id: what parse() accepts, for updates already decoded."""
    return isinstance(value, dict) and _is_int(value.get("update_id"))


def from_object(update: dict[str, Any]) -> Incoming:
    """An update the poller already has as an object (getUpdates); check is_update first."""
    kind, chat_key = classify(update)
    payload = storable(json.dumps(update, ensure_ascii=False), update)
    return Incoming(int(update["update_id"]), kind, chat_key, payload)


def storable(text: str, update: dict[str, Any]) -> str:
    """`text` if PostgreSQL can hold it, else the update with JSON escapes.

    A JSON string may carry a lone surrogate ("\\ud800"): it decodes to a str that has no UTF-8
    form, so the database refuses it, and a poller retrying that batch would never get past it.
    Escaped, it is plain ASCII and decodes back to the same update.
    """
    try:
        text.encode()
    except UnicodeEncodeError:
        return json.dumps(update, ensure_ascii=True)
    return text


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and -(2**63) <= value < 2**63
