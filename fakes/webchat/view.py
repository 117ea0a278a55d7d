"""The chat as the demo page shows it, read from the fake Telegram's state.

Why it exists: the page renders what a Telegram client would: each message as the Bot API stores
it (plain text with its entities, never the bot's HTML, so nothing the bot or the user wrote can
become markup), its media by a URL of the fake's file store, its inline keyboard, and what the bot
did that is not a message (a button press answered with a toast, "typing..."). A digest of the
view lets the page's long poll sleep until something it shows changes.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from fakes.telegram.fake import FakeTelegram
from fakes.telegram.wire import SEND_METHODS

MAX_MESSAGES = 200  # the newest shown; a long session stays light
QUOTE_CHARS = 60  # how much of a message a reply or a marker quotes
TYPING_SECONDS = 5.0  # how long Telegram shows a chat action
FILE_PATH = "/demo/api/file/"
_MEDIA_KINDS = ("photo", "animation", "video", "audio", "voice", "document")  # an animation also carries a document
_BUTTON_ACTIONS = ("web_app", "login_url", "switch_inline_query", "switch_inline_query_current_chat",
                   "switch_inline_query_chosen_chat", "copy_text", "callback_game")


@dataclass(frozen=True)
class Press:
    """A button the page's user pressed: on which message, which button, and the newest message id
    the chat had then (a message with a higher id came after the press)."""

    message_id: int
    data: str
    label: str
    after: int


def chat_view(telegram: FakeTelegram, chat_id: int, since: int, queries: Mapping[str, int],
              presses: Sequence[Press] = ()) -> dict[str, Any]:
    """What chat ``chat_id`` shows now, and the toasts of button presses answered after call ``since``.

    ``queries`` maps the callback query ids the page made to their chat: answerCallbackQuery names
    no chat. ``calls`` is where the next look at the record of calls starts (the first one still
    running, so its answer is not missed). ``presses`` are the chat's button presses, oldest first:
    a bot message that answers a press on a message higher up (other messages between them) says
    so, or the user would not know what it answers.
    """
    stored = telegram.chat_messages(chat_id)[-MAX_MESSAGES:]
    messages = [message_view(message) for message in stored]
    _mark_answers(messages, presses)
    calls = telegram.calls()
    toasts: list[dict[str, Any]] = []
    cursor = min(max(since, 0), len(calls))
    while cursor < len(calls) and calls[cursor].status is not None:
        call = calls[cursor]
        query = str(call.params.get("callback_query_id", ""))
        text = call.params.get("text")
        if call.method == "answerCallbackQuery" and call.ok and queries.get(query) == chat_id and text:
            toasts.append({"text": str(text), "alert": bool(call.params.get("show_alert"))})
        cursor += 1
    shown: dict[str, Any] = {
        "chat": chat_id,
        "bot": {"name": telegram.first_name, "username": telegram.username},
        "ready": bool(telegram.webhook_info().get("url")),
        "typing": _typing(telegram, chat_id),
        "messages": messages,
    }
    digest = hashlib.sha256(json.dumps(shown, sort_keys=True, ensure_ascii=False).encode()).hexdigest()[:20]
    return {**shown, "digest": digest, "calls": cursor, "toasts": toasts}


def message_view(message: Mapping[str, Any]) -> dict[str, Any]:
    """One message: who sent it, its text or caption with entities, media, invoice and buttons."""
    sender = message.get("from")
    text, entities = message.get("text"), message.get("entities")
    if text is None:
        text, entities = message.get("caption"), message.get("caption_entities")
    view: dict[str, Any] = {
        "id": message.get("message_id"),
        "mine": not (isinstance(sender, dict) and sender.get("is_bot")),
        "date": message.get("date"),
        "edited": "edit_date" in message,
        "text": str(text or ""),
        "entities": [e for e in entities or [] if isinstance(e, dict)],
        "buttons": _buttons(message.get("reply_markup")),
    }
    media = _media(message)
    if media is not None:
        view["media"] = media
    invoice = message.get("invoice")
    if isinstance(invoice, dict):
        view["invoice"] = {key: invoice.get(key) for key in ("title", "description", "currency", "total_amount")}
    paid = message.get("successful_payment")
    if isinstance(paid, dict):
        view["paid"] = {key: paid.get(key) for key in ("currency", "total_amount")}
    original = message.get("reply_to_message")
    if isinstance(original, dict) and isinstance(original.get("message_id"), int):
        view["reply"] = _quote(original)
    return view


def _quote(message: Mapping[str, Any]) -> dict[str, Any]:
    """A message as a reply or a marker names it: its id, whose it is, a line of its text or its kind."""
    sender = message.get("from")
    text = str(message.get("text") or message.get("caption") or "").strip().split("\n", 1)[0]
    quote: dict[str, Any] = {"id": message.get("message_id"), "mine": not (isinstance(sender, dict)
                                                                         and sender.get("is_bot")),
                             "text": text[:QUOTE_CHARS] + ("…" if len(text) > QUOTE_CHARS else "")}
    media = _media(message)
    if media is not None:
        quote["kind"] = media["kind"]
    return quote


def _mark_answers(messages: list[dict[str, Any]], presses: Sequence[Press]) -> None:
    """Mark the first bot message that answers a press on a message higher up: the newest of the
    user's actions before it was that press, and other messages stand between the pressed message
    and the moment of the press (the answer lands below them)."""
    marked: set[Press] = set()
    by_id = {message["id"]: message for message in messages}
    for message in messages:
        if message["mine"] or not isinstance(message["id"], int):
            continue
        press = next((p for p in reversed(presses) if p.after < message["id"]), None)
        if press is None or press in marked:
            continue
        typed = [m["id"] for m in messages if m["mine"] and isinstance(m["id"], int) and m["id"] < message["id"]]
        if typed and max(typed) > press.after:  # the user wrote after the press: this answers that
            continue
        marked.add(press)
        between = [m for m in messages if isinstance(m["id"], int) and press.message_id < m["id"] <= press.after]
        pressed = by_id.get(press.message_id)
        if between and pressed is not None:
            message["answers"] = {"id": press.message_id, "button": press.label,
                                  "text": _quote_view(pressed)}


def _quote_view(message: Mapping[str, Any]) -> str:
    """A line of a shown message's text for a marker."""
    text = str(message.get("text") or "").strip().split("\n", 1)[0]
    return text[:QUOTE_CHARS] + ("…" if len(text) > QUOTE_CHARS else "")


def file_url(file_id: str) -> str:
    return FILE_PATH + quote(file_id, safe="")


def _media(message: Mapping[str, Any]) -> dict[str, Any] | None:
    for kind in _MEDIA_KINDS:
        value = message.get(kind)
        if kind == "photo" and isinstance(value, list) and value:
            sizes = [size for size in value if isinstance(size, dict) and size.get("file_id")]
            if not sizes:
                continue
            item = max(sizes, key=lambda size: int(size.get("width") or 0) * int(size.get("height") or 0))
        elif isinstance(value, dict) and value.get("file_id"):
            item = value
        else:
            continue
        media = {"kind": kind, "url": file_url(str(item["file_id"]))}
        for key in ("width", "height", "duration", "file_name", "mime_type", "file_size", "title", "performer"):
            if item.get(key) is not None:
                media[key] = item[key]
        return media
    return None


def _buttons(markup: Any) -> list[list[dict[str, Any]]]:
    rows = markup.get("inline_keyboard") if isinstance(markup, dict) else None
    if not isinstance(rows, list):
        return []
    return [[_button(b) for b in row if isinstance(b, dict)] for row in rows if isinstance(row, list)]


def _button(button: Mapping[str, Any]) -> dict[str, Any]:
    shown: dict[str, Any] = {"text": str(button.get("text", ""))}
    if isinstance(button.get("callback_data"), str):
        shown["data"] = button["callback_data"]
    elif isinstance(button.get("url"), str):
        shown["url"] = button["url"]
    elif button.get("pay"):
        shown["pay"] = True
    else:  # a button the demo cannot play (a web app, an inline query...): shown, not pressable
        shown["other"] = next((key for key in _BUTTON_ACTIONS if key in button), "unknown")
    return shown


def _typing(telegram: FakeTelegram, chat_id: int) -> str | None:
    """The chat action the bot announced in the last few seconds, unless a message came since."""
    actions = [call for call in telegram.calls("sendChatAction", chat_id) if call.ok]
    if not actions or time.monotonic() - actions[-1].at > TYPING_SECONDS:
        return None
    last = actions[-1]
    if any(call.at > last.at for call in telegram.calls(chat_id=chat_id) if call.method in SEND_METHODS and call.ok):
        return None
    return str(last.params.get("action") or "typing")
