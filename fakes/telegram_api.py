"""A fake of the Telegram Bot API, served by a real aiohttp server on 127.0.0.1.

Why it exists: the end-to-end tests and the demo mode must drive the bot's real aiogram client
over real HTTP — the way it builds requests (form data, multipart uploads, JSON-typed fields sent
as JSON *strings*), the error envelopes it turns into exceptions (401, 400, 409, 429 with
``retry_after``, 5xx), long polling, webhooks with the secret header — without a bot token, the
network or a human in a chat. Point the bot at it with ``TELEGRAM_API_BASE=<base_url>``, exactly
like a local Bot API server.

Wire format, as Telegram speaks it:

* ``POST|GET /bot<token>/<method>`` (method names are case-insensitive); parameters come from the
  query string, a JSON body, ``application/x-www-form-urlencoded`` or ``multipart/form-data``;
  files are multipart parts, referenced as ``attach://<part>`` or sent as the parameter itself;
* answers ``{"ok": true, "result": ...}`` or ``{"ok": false, "error_code": N, "description": ...}``
  (plus ``"parameters": {"retry_after": N}`` for 429);
* ``GET /file/bot<token>/<file_path>`` serves files the fake knows (uploads, :meth:`add_file`).

One fake is one bot's world (one webhook, one update queue, the chats and their messages);
``tokens`` only decide which tokens authenticate (the bot id is the token's digits). Tests steer
it with :meth:`FakeTelegram.push_update` (for getUpdates), :meth:`FakeTelegram.deliver` (to the
webhook), :meth:`FakeTelegram.inject` (errors, delays, hangs) and observe it through
:meth:`FakeTelegram.calls`, :meth:`FakeTelegram.sent_messages`, :meth:`FakeTelegram.chat_messages`
and :meth:`FakeTelegram.wait_for`, which wakes on every change instead of sleeping blindly.

Some of Telegram's checks that catch real bot bugs are reproduced: HTML ``parse_mode`` is parsed
(unsupported or unbalanced tags are a 400, entities come back with UTF-16 offsets), texts and
captions have their length limits, inline buttons their 64-byte ``callback_data``, edits answer
"message is not modified", a callback or pre-checkout query can be answered only once.

Standalone: ``python -m fakes.telegram_api --port 8081`` prints one JSON log line with the base
URL and serves until SIGINT or SIGTERM; ``POST /_fake/updates`` (an update, or the shorthand
``{"chat_id": 1, "text": "/start"}`` or ``{"chat_id": 1, "callback_data": "x"}``) queues it, or
delivers it when a webhook is set, and ``GET /_fake/calls`` lists what the bot called
(``?method=``, ``?chat_id=`` filter; ``?count=1`` answers only ``{"count": N}``).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import html
import json
import mimetypes
import os
import re
import secrets
import signal
import struct
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import TracebackType
from typing import Any, ClassVar, TypeVar

import aiohttp
from aiohttp import web

__all__ = [
    "MEDIA_METHODS",
    "METHODS",
    "SEND_METHODS",
    "Call",
    "Delivery",
    "FakeTelegram",
    "Fault",
    "FileRecord",
    "TelegramError",
    "Upload",
    "callback_update",
    "message_update",
    "parse_html",
    "photo_update",
    "pre_checkout_update",
    "successful_payment_update",
    "user_dict",
]

T = TypeVar("T")

METHODS: tuple[str, ...] = (
    "getMe",
    "setWebhook",
    "getWebhookInfo",
    "deleteWebhook",
    "getUpdates",
    "sendMessage",
    "editMessageText",
    "editMessageReplyMarkup",
    "editMessageCaption",
    "deleteMessage",
    "answerCallbackQuery",
    "answerPreCheckoutQuery",
    "sendPhoto",
    "sendVideo",
    "sendAudio",
    "sendDocument",
    "sendAnimation",
    "sendMediaGroup",
    "sendChatAction",
    "sendInvoice",
    "setMyCommands",
    "getMyCommands",
    "deleteMyCommands",
    "setChatMenuButton",
    "getChatMenuButton",
    "getFile",
    "copyMessage",
    "forwardMessage",
    "getChat",
)
_CANONICAL: dict[str, str] = {name.lower(): name for name in METHODS}

# single-file sends: method -> (parameter, kind)
MEDIA_METHODS: dict[str, tuple[str, str]] = {
    "sendPhoto": ("photo", "photo"),
    "sendVideo": ("video", "video"),
    "sendAudio": ("audio", "audio"),
    "sendDocument": ("document", "document"),
    "sendAnimation": ("animation", "animation"),
}
SEND_METHODS: frozenset[str] = frozenset({"sendMessage", "sendMediaGroup", *MEDIA_METHODS})

# how form fields (always strings on the wire) are typed back
_JSON_FIELDS = frozenset(
    {
        "reply_markup",
        "entities",
        "caption_entities",
        "allowed_updates",
        "media",
        "commands",
        "scope",
        "menu_button",
        "prices",
        "reply_parameters",
        "link_preview_options",
        "suggested_tip_amounts",
        "results",
        "explanation_entities",
        "question_entities",
        "options",
        "reaction",
    }
)
_INT_FIELDS = frozenset(
    {
        "chat_id",
        "from_chat_id",
        "message_id",
        "message_thread_id",
        "reply_to_message_id",
        "offset",
        "limit",
        "timeout",
        "max_connections",
        "cache_time",
        "user_id",
        "duration",
        "width",
        "height",
        "max_tip_amount",
        "video_start_timestamp",
    }
)
_BOOL_FIELDS = frozenset(
    {
        "drop_pending_updates",
        "show_alert",
        "ok",
        "disable_notification",
        "protect_content",
        "allow_paid_broadcast",
        "has_spoiler",
        "supports_streaming",
        "disable_content_type_detection",
        "show_caption_above_media",
        "allow_sending_without_reply",
        "disable_web_page_preview",
        "is_flexible",
        "need_name",
        "need_phone_number",
        "need_email",
        "need_shipping_address",
        "send_phone_number_to_provider",
        "send_email_to_provider",
        "remove_caption",
    }
)
_CHAT_ACTIONS = frozenset(
    {
        "typing",
        "upload_photo",
        "record_video",
        "upload_video",
        "record_voice",
        "upload_voice",
        "upload_document",
        "choose_sticker",
        "find_location",
        "record_video_note",
        "upload_video_note",
    }
)
_DEFAULT_DESCRIPTIONS: dict[int, str] = {
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden: bot was blocked by the user",
    404: "Not Found",
    409: "Conflict: terminated by other getUpdates request; make sure that only one bot instance is running",
    413: "Request Entity Too Large",
    420: "Flood",
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Unavailable",
    504: "Gateway Timeout",
}
_WEBHOOK_ACTIVE = (
    "Conflict: can't use getUpdates method while webhook is active; use deleteWebhook to delete the webhook first"
)
_TOKEN_RE = re.compile(r"^(\d+):[A-Za-z0-9_-]+$")
_COMMAND_RE = re.compile(r"(?<![\w/])/[A-Za-z0-9_]{1,32}(?:@[A-Za-z0-9_]{3,32})?")
_BOT_COMMAND_RE = re.compile(r"^[a-z0-9_]{1,32}$")
_SECRET_RE = re.compile(r"^[A-Za-z0-9_-]{1,256}$")
_TEXT_LIMIT = 4096
_CAPTION_LIMIT = 1024
_MAX_UPLOAD = 50 * 1024 * 1024
_FILE_PREFIXES = {
    "photo": "AgACAgIAAxkBAAI",
    "video": "BAACAgIAAxkBAAI",
    "audio": "CQACAgIAAxkBAAI",
    "document": "BQACAgIAAxkBAAI",
    "animation": "CgACAgIAAxkBAAI",
}
_FILE_FOLDERS = {
    "photo": "photos",
    "video": "videos",
    "audio": "music",
    "document": "documents",
    "animation": "animations",
}
_DEFAULT_EXTENSIONS = {"photo": ".jpg", "video": ".mp4", "audio": ".mp3", "document": "", "animation": ".mp4"}
_DEFAULT_MIME = {"video": "video/mp4", "audio": "audio/mpeg", "animation": "video/mp4"}


class TelegramError(Exception):
    """An error answer: ``{"ok": false, "error_code": status, "description": description}``."""

    def __init__(self, status: int, description: str | None = None, retry_after: int | None = None) -> None:
        self.status = status
        self.description = description or _DEFAULT_DESCRIPTIONS.get(status, "Error")
        self.retry_after = retry_after
        super().__init__(f"{status} {self.description}")

    def payload(self) -> dict[str, Any]:
        body: dict[str, Any] = {"ok": False, "error_code": self.status, "description": self.description}
        if self.retry_after is not None:
            body["parameters"] = {"retry_after": self.retry_after}
        return body


def _bad(description: str) -> TelegramError:
    return TelegramError(400, f"Bad Request: {description}")


@dataclass
class Upload:
    """One multipart file part as received."""

    part: str
    filename: str | None
    content_type: str | None
    data: bytes


@dataclass
class Call:
    """One API call the fake received, in arrival order.

    ``params`` are typed back from the wire: JSON-typed fields (``reply_markup``, ``entities``,
    ``media``, ...) decoded, known integer and boolean fields converted. ``files`` maps the
    parameter that carried a file (``"photo"``, ``"media[0]"``, or the part name when nothing
    referenced it) to its size in bytes; ``uploads`` holds the parts themselves. ``status`` is the
    HTTP status answered (None while running or when the call hung); ``result`` the ``result``
    answered, ``error`` the error description. ``source`` is "http", or "webhook-reply" for a method
    a webhook answered with. ``content_type`` is the request body's media type, ``host`` the Host
    header the client sent.
    """

    method: str
    params: dict[str, Any]
    token: str
    at: float
    files: dict[str, int] = field(default_factory=dict)
    uploads: dict[str, Upload] = field(default_factory=dict)
    status: int | None = None
    result: Any = None
    error: str | None = None
    description: str | None = None  # the note Telegram adds to some ok answers ("Webhook was set")
    source: str = "http"
    content_type: str | None = None  # of the request body: form, multipart or JSON
    host: str | None = None  # the Host header: tells apart clients given different base URLs

    @property
    def ok(self) -> bool:
        return self.status == 200

    @property
    def chat_id(self) -> int | str | None:
        value = self.params.get("chat_id")
        return value if isinstance(value, int | str) else None

    @property
    def text(self) -> str | None:
        """The text or caption the call sent (raw, before parse_mode)."""
        value = self.params.get("text", self.params.get("caption"))
        return value if isinstance(value, str) else None


@dataclass
class Fault:
    """An injected fault for the next ``remaining`` calls of ``method`` ("*" = any method)."""

    method: str
    status: int | None = 500
    description: str | None = None
    remaining: int = 1
    delay: float = 0.0
    retry_after: int | None = None
    hang: bool = False

    def matches(self, method: str) -> bool:
        return self.remaining > 0 and (self.method == "*" or self.method.lower() == method.lower())


@dataclass
class Delivery:
    """One webhook POST made by :meth:`FakeTelegram.deliver`."""

    update: dict[str, Any]
    url: str
    at: float
    status: int | None = None
    body: bytes = b""
    error: str | None = None
    reply: Call | None = None  # the method the webhook answered with, executed


@dataclass
class FileRecord:
    """A file the fake knows; ``getFile`` answers with ``file_path`` and serves ``data``."""

    file_id: str
    file_unique_id: str
    kind: str
    file_path: str
    data: bytes | None
    file_name: str | None = None
    mime_type: str | None = None
    width: int | None = None
    height: int | None = None
    duration: int | None = None

    @property
    def size(self) -> int | None:
        return None if self.data is None else len(self.data)


@dataclass
class _Chat:
    info: dict[str, Any]
    last_message_id: int = 0
    messages: dict[int, dict[str, Any]] = field(default_factory=dict)
    known: bool = False  # seen in an update (matters with strict_chats)


@dataclass
class _Webhook:
    url: str = ""
    secret_token: str | None = None
    max_connections: int = 40
    ip_address: str | None = None
    token: str | None = None
    last_error_date: int | None = None
    last_error_message: str | None = None


@dataclass
class _Poll:
    terminated: str | None = None


_HANG = object()  # a handler outcome: close the connection without answering


def _now() -> int:
    return int(time.time())


def _utf16_len(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


def _byte_offset(text: str, index: int) -> int:
    return len(text[:index].encode())


# ---------------------------------------------------------------------- update builders


def user_dict(
    user_id: int,
    first_name: str = "Test",
    language_code: str | None = "ru",
    username: str | None = None,
    last_name: str | None = None,
) -> dict[str, Any]:
    """A Telegram ``User`` of a human."""
    user: dict[str, Any] = {"id": user_id, "is_bot": False, "first_name": first_name}
    if last_name:
        user["last_name"] = last_name
    if username:
        user["username"] = username
    if language_code:
        user["language_code"] = language_code
    return user


def _chat_dict(chat_id: int, user: dict[str, Any] | None = None) -> dict[str, Any]:
    if chat_id < 0:
        return {"id": chat_id, "type": "supergroup", "title": f"Group {abs(chat_id)}"}
    chat: dict[str, Any] = {"id": chat_id, "type": "private", "first_name": (user or {}).get("first_name", "Test")}
    for key in ("last_name", "username"):
        if user and user.get(key):
            chat[key] = user[key]
    return chat


def _default_user_id(chat_id: int) -> int:
    return chat_id if chat_id > 0 else 100_001


def _command_entities(text: str) -> list[dict[str, Any]]:
    return [
        {"type": "bot_command", "offset": _utf16_len(text[: m.start()]), "length": _utf16_len(m.group())}
        for m in _COMMAND_RE.finditer(text)
    ]


def _bot_user(bot_id: int, username: str = "trt_fake_bot", first_name: str = "TRT Fake") -> dict[str, Any]:
    return {"id": bot_id, "is_bot": True, "first_name": first_name, "username": username}


def message_update(
    update_id: int,
    chat_id: int,
    text: str,
    user_id: int | None = None,
    language_code: str | None = "ru",
    first_name: str = "Test",
    *,
    username: str | None = None,
    message_id: int | None = None,
    date: int | None = None,
) -> dict[str, Any]:
    """An update with a text message from a user; "/command" words get ``bot_command`` entities.

    ``message_id`` defaults to ``update_id`` (:meth:`FakeTelegram.user_message` picks a free one).
    """
    user = user_dict(user_id or _default_user_id(chat_id), first_name, language_code, username)
    message: dict[str, Any] = {
        "message_id": update_id if message_id is None else message_id,
        "from": user,
        "chat": _chat_dict(chat_id, user),
        "date": date or _now(),
        "text": text,
    }
    entities = _command_entities(text)
    if entities:
        message["entities"] = entities
    return {"update_id": update_id, "message": message}


def callback_update(
    update_id: int,
    chat_id: int,
    data: str,
    message_id: int = 1,
    language_code: str | None = "ru",
    *,
    user_id: int | None = None,
    first_name: str = "Test",
    username: str | None = None,
    message: dict[str, Any] | None = None,
    message_text: str = "…",
    bot_id: int = 1,
    query_id: str | None = None,
) -> dict[str, Any]:
    """An update with a callback query (an inline button press) on message ``message_id``.

    ``message`` replaces the bot message the button belongs to (e.g. one from
    :meth:`FakeTelegram.chat_messages`); otherwise a text message from bot ``bot_id`` is built.
    """
    uid = user_id or _default_user_id(chat_id)
    user = user_dict(uid, first_name, language_code, username)
    if message is None:
        message = {
            "message_id": message_id,
            "from": _bot_user(bot_id),
            "chat": _chat_dict(chat_id, user),
            "date": _now(),
            "text": message_text,
        }
    chat_instance = str(-(int(hashlib.sha256(f"chat:{chat_id}".encode()).hexdigest()[:15], 16)))
    return {
        "update_id": update_id,
        "callback_query": {
            "id": query_id or str(uid * 1_000_000 + update_id % 1_000_000),
            "from": user,
            "message": message,
            "chat_instance": chat_instance,
            "data": data,
        },
    }


def photo_update(
    update_id: int,
    chat_id: int,
    file_id: str,
    file_unique_id: str | None = None,
    *,
    caption: str | None = None,
    width: int = 1280,
    height: int = 960,
    file_size: int | None = None,
    user_id: int | None = None,
    language_code: str | None = "ru",
    first_name: str = "Test",
    message_id: int | None = None,
) -> dict[str, Any]:
    """An update with a photo from a user (register the bytes with :meth:`FakeTelegram.add_file`)."""
    user = user_dict(user_id or _default_user_id(chat_id), first_name, language_code)
    unique = file_unique_id or "AQAD" + hashlib.sha256(file_id.encode()).hexdigest()[:12]
    size: dict[str, Any] = {"file_id": file_id, "file_unique_id": unique, "width": width, "height": height}
    if file_size is not None:
        size["file_size"] = file_size
    message: dict[str, Any] = {
        "message_id": update_id if message_id is None else message_id,
        "from": user,
        "chat": _chat_dict(chat_id, user),
        "date": _now(),
        "photo": [size],
    }
    if caption is not None:
        message["caption"] = caption
    return {"update_id": update_id, "message": message}


def pre_checkout_update(
    update_id: int,
    user_id: int,
    total_amount: int,
    invoice_payload: str,
    currency: str = "XTR",
    *,
    query_id: str | None = None,
    language_code: str | None = "ru",
    first_name: str = "Test",
) -> dict[str, Any]:
    """An update with a pre-checkout query (the bot must answer it within 10 s)."""
    return {
        "update_id": update_id,
        "pre_checkout_query": {
            "id": query_id or str(user_id * 1_000_000 + update_id % 1_000_000),
            "from": user_dict(user_id, first_name, language_code),
            "currency": currency,
            "total_amount": total_amount,
            "invoice_payload": invoice_payload,
        },
    }


def successful_payment_update(
    update_id: int,
    chat_id: int,
    total_amount: int,
    invoice_payload: str,
    currency: str = "XTR",
    *,
    telegram_payment_charge_id: str | None = None,
    user_id: int | None = None,
    language_code: str | None = "ru",
    first_name: str = "Test",
    message_id: int | None = None,
) -> dict[str, Any]:
    """An update with the service message of a completed payment."""
    user = user_dict(user_id or _default_user_id(chat_id), first_name, language_code)
    digest = hashlib.sha256(f"{chat_id}:{update_id}".encode()).hexdigest()
    charge = telegram_payment_charge_id or f"stxFake{digest[:24]}"
    return {
        "update_id": update_id,
        "message": {
            "message_id": update_id if message_id is None else message_id,
            "from": user,
            "chat": _chat_dict(chat_id, user),
            "date": _now(),
            "successful_payment": {
                "currency": currency,
                "total_amount": total_amount,
                "invoice_payload": invoice_payload,
                "telegram_payment_charge_id": charge,
                "provider_payment_charge_id": "",
            },
        },
    }


# ---------------------------------------------------------------------- HTML parse mode

_HTML_ENTITY_TYPES = {
    "b": "bold",
    "strong": "bold",
    "i": "italic",
    "em": "italic",
    "u": "underline",
    "ins": "underline",
    "s": "strikethrough",
    "strike": "strikethrough",
    "del": "strikethrough",
    "tg-spoiler": "spoiler",
    "span": "spoiler",
    "a": "text_link",
    "code": "code",
    "pre": "pre",
    "blockquote": "blockquote",
    "tg-emoji": "custom_emoji",
}
_HTML_ESCAPE_RE = re.compile(r"&(lt|gt|amp|quot|#[0-9]{1,7}|#[xX][0-9a-fA-F]{1,6});")
_HTML_ATTR_RE = re.compile(r"""\s*([A-Za-z-]+)\s*(?:=\s*(?:"([^"]*)"|'([^']*)'|([^\s"'>]+)))?""")


def parse_html(source: str) -> tuple[str, list[dict[str, Any]]]:
    """Parse Telegram's HTML parse mode like the Bot API does: plain text and its entities.

    Raises :class:`TelegramError` 400 "can't parse entities: ..." on what Telegram rejects.
    """

    def fail(reason: str) -> TelegramError:
        return _bad(f"can't parse entities: {reason}")

    out: list[str] = []
    offset = 0  # in UTF-16 code units, as Telegram counts
    stack: list[tuple[str, dict[str, str], int]] = []
    entities: list[dict[str, Any]] = []
    index, size = 0, len(source)
    while index < size:
        char = source[index]
        if char == "&":
            match = _HTML_ESCAPE_RE.match(source, index)
            if match:
                decoded = html.unescape(match.group())
                out.append(decoded)
                offset += _utf16_len(decoded)
                index = match.end()
                continue
        if char != "<":
            out.append(char)
            offset += 2 if ord(char) > 0xFFFF else 1
            index += 1
            continue
        begin = index
        index += 1
        if index < size and source[index] == "/":
            if not stack:
                raise fail(f"Unexpected end tag at byte offset {_byte_offset(source, begin)}")
            index += 1
            name_start = index
            while index < size and not source[index].isspace() and source[index] != ">":
                index += 1
            end_name = source[name_start:index].lower()
            while index < size and source[index].isspace():
                index += 1
            if index >= size or source[index] != ">":
                raise fail(f"Unclosed end tag at byte offset {_byte_offset(source, begin)}")
            index += 1
            tag, attrs, start = stack.pop()
            if end_name and end_name != tag:
                raise fail(
                    f'Unmatched end tag at byte offset {_byte_offset(source, begin)}, expected "</{tag}>", '
                    f'found "</{end_name}>"'
                )
            if offset > start:
                entities.append(_html_entity(tag, attrs, start, offset - start))
            continue
        name_start = index
        while index < size and not source[index].isspace() and source[index] != ">":
            index += 1
        if index >= size:
            raise fail(f"Unclosed start tag at byte offset {_byte_offset(source, begin)}")
        tag = source[name_start:index].lower()
        if tag not in _HTML_ENTITY_TYPES:
            raise fail(f'Unsupported start tag "{tag}" at byte offset {_byte_offset(source, begin)}')
        close = source.find(">", index)
        if close < 0:
            raise fail(f"Unclosed start tag at byte offset {_byte_offset(source, begin)}")
        attrs = {
            m.group(1).lower(): html.unescape(m.group(2) or m.group(3) or m.group(4) or "")
            for m in _HTML_ATTR_RE.finditer(source[index:close])
            if m.group(1)
        }
        if tag == "span" and attrs.get("class") != "tg-spoiler":
            raise fail(f'Tag "span" must have class "tg-spoiler" at byte offset {_byte_offset(source, begin)}')
        index = close + 1
        if tag == "code" and stack and stack[-1][0] == "pre" and attrs.get("class", "").startswith("language-"):
            stack[-1][1].setdefault("language", attrs["class"][len("language-") :])
        stack.append((tag, attrs, offset))
    if stack:
        raise fail(f'Can\'t find end tag corresponding to start tag "{stack[-1][0]}"')
    entities.sort(key=lambda entity: (entity["offset"], -entity["length"]))
    return "".join(out), entities


def _html_entity(tag: str, attrs: dict[str, str], offset: int, length: int) -> dict[str, Any]:
    kind = _HTML_ENTITY_TYPES[tag]
    if tag == "blockquote" and "expandable" in attrs:
        kind = "expandable_blockquote"
    entity: dict[str, Any] = {"type": kind, "offset": offset, "length": length}
    if kind == "text_link":
        entity["url"] = attrs.get("href", "")
    elif kind == "pre" and attrs.get("language"):
        entity["language"] = attrs["language"]
    elif kind == "custom_emoji":
        entity["custom_emoji_id"] = attrs.get("emoji-id", "")
    return entity


# ---------------------------------------------------------------------- small helpers


def _image_size(data: bytes) -> tuple[int, int] | None:
    """Width and height of a PNG, GIF or JPEG, or None."""
    if data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) >= 24:
        width, height = struct.unpack(">II", data[16:24])
        return int(width), int(height)
    if data[:6] in (b"GIF87a", b"GIF89a") and len(data) >= 10:
        width, height = struct.unpack("<HH", data[6:10])
        return int(width), int(height)
    if data[:2] == b"\xff\xd8":
        index = 2
        while index + 9 < len(data):
            if data[index] != 0xFF:
                index += 1
                continue
            marker = data[index + 1]
            if marker in (0xD8, 0x01, 0xFF) or 0xD0 <= marker <= 0xD7:
                index += 1 if marker == 0xFF else 2
                continue
            length = int.from_bytes(data[index + 2 : index + 4], "big")
            if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
                height, width = struct.unpack(">HH", data[index + 5 : index + 9])
                return int(width), int(height)
            index += 2 + length
    return None


def _scaled(size: tuple[int, int], limit: int) -> tuple[int, int]:
    width, height = size
    biggest = max(width, height, 1)
    if biggest <= limit:
        return max(width, 1), max(height, 1)
    return max(1, round(width * limit / biggest)), max(1, round(height * limit / biggest))


def _coerce(name: str, value: Any) -> Any:
    """Type a parameter back the way Telegram reads it (form fields are strings)."""
    if not isinstance(value, str):
        return value
    if name in _JSON_FIELDS:
        stripped = value.strip()
        if stripped[:1] in ("{", "[") or stripped == "null":
            try:
                return json.loads(stripped)
            except ValueError as exc:
                what = "reply keyboard markup" if name == "reply_markup" else name.replace("_", " ")
                raise _bad(f"can't parse {what} JSON object") from exc
        return value
    if name in _INT_FIELDS and re.fullmatch(r"-?\d+", value.strip()):
        return int(value.strip())
    if name in _BOOL_FIELDS and value.strip().lower() in ("true", "false", "1", "0"):
        return value.strip().lower() in ("true", "1")
    return value


def _is_price(item: Any) -> bool:
    return isinstance(item, dict) and isinstance(item.get("amount"), int) and bool(item.get("label"))


def _attach_key(value: Any) -> str | None:
    if isinstance(value, str) and value.startswith("attach://"):
        return value[len("attach://") :]
    return None


def _jsonable(value: Any) -> Any:
    if isinstance(value, bytes):
        return f"<{len(value)} bytes>"
    if isinstance(value, dict):
        return {str(key): _jsonable(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(item) for item in value]
    return value


# ---------------------------------------------------------------------- the fake

Handler = Callable[[Call], Awaitable[Any]]


class FakeTelegram:
    """The Bot API on a real local port.

    ``tokens=None`` accepts any well-formed ``<digits>:<secret>`` token. Attributes meant to be
    read (and, for the settings, changed) by tests: ``webhook`` state through
    :meth:`webhook_info`, ``deliveries``, ``files``, ``blocked`` (chat ids whose user blocked the
    bot: sends answer 403), ``strict_chats`` (sends to chats never seen in an update answer
    400 "chat not found"), ``fetch_urls`` (send* with an http(s) URL downloads it, as Telegram does).
    """

    _NO_MESSAGE: ClassVar[str] = "message to edit not found"

    def __init__(
        self,
        tokens: Iterable[str] | None = None,
        *,
        username: str = "trt_fake_bot",
        first_name: str = "TRT Fake",
        strict_chats: bool = False,
        fetch_urls: bool = True,
    ) -> None:
        self.tokens: set[str] | None = None if tokens is None else set(tokens)
        self.username = username
        self.first_name = first_name
        self.strict_chats = strict_chats
        self.fetch_urls = fetch_urls
        self.blocked: set[int] = set()
        self.deliveries: list[Delivery] = []
        self.internal_errors: list[Exception] = []  # exceptions the fake's own handlers raised (its bugs)
        self.files: dict[str, FileRecord] = {}
        self._files_by_path: dict[str, FileRecord] = {}
        self._calls: list[Call] = []
        self._faults: list[Fault] = []
        self._chats: dict[int, _Chat] = {}
        self._updates: list[dict[str, Any]] = []
        self._last_update_id = 0
        self._allowed_updates: list[str] = []
        self._webhook = _Webhook()
        self._poll: _Poll | None = None
        self._commands: dict[tuple[str, str], list[dict[str, Any]]] = {}
        self._menu_buttons: dict[int | None, dict[str, Any]] = {}
        self._answered_queries: set[str] = set()
        self._file_counter = 0
        self._media_group_counter = 0
        self._changed = asyncio.Event()
        self._stopping = asyncio.Event()
        self._runner: web.AppRunner | None = None
        self._session: aiohttp.ClientSession | None = None
        self._base_url: str | None = None
        self._handlers: dict[str, Handler] = {
            "getMe": self._get_me,
            "setWebhook": self._set_webhook,
            "getWebhookInfo": self._get_webhook_info,
            "deleteWebhook": self._delete_webhook,
            "getUpdates": self._get_updates,
            "sendMessage": self._send_message,
            "editMessageText": self._edit_message_text,
            "editMessageReplyMarkup": self._edit_message_reply_markup,
            "editMessageCaption": self._edit_message_caption,
            "deleteMessage": self._delete_message,
            "answerCallbackQuery": self._answer_callback_query,
            "answerPreCheckoutQuery": self._answer_pre_checkout_query,
            "sendPhoto": self._send_media,
            "sendVideo": self._send_media,
            "sendAudio": self._send_media,
            "sendDocument": self._send_media,
            "sendAnimation": self._send_media,
            "sendMediaGroup": self._send_media_group,
            "sendChatAction": self._send_chat_action,
            "sendInvoice": self._send_invoice,
            "setMyCommands": self._set_my_commands,
            "getMyCommands": self._get_my_commands,
            "deleteMyCommands": self._delete_my_commands,
            "setChatMenuButton": self._set_chat_menu_button,
            "getChatMenuButton": self._get_chat_menu_button,
            "getFile": self._get_file,
            "copyMessage": self._copy_message,
            "forwardMessage": self._forward_message,
            "getChat": self._get_chat,
        }

    # ------------------------------------------------------------------ lifecycle

    @property
    def base_url(self) -> str:
        if self._base_url is None:
            raise RuntimeError("FakeTelegram is not started")
        return self._base_url

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        """Listen on ``host:port`` (0 = a free port) and return the base URL."""
        if self._runner is not None:
            raise RuntimeError("FakeTelegram already started")
        self._stopping = asyncio.Event()
        self._changed = asyncio.Event()
        app = web.Application(client_max_size=_MAX_UPLOAD + 1024 * 1024)
        app.router.add_route("*", r"/bot{token:[^/]+}/{method:[^/]+}", self._api)
        app.router.add_get(r"/file/bot{token:[^/]+}/{path:.+}", self._download)
        app.router.add_post("/_fake/updates", self._control_update)
        app.router.add_get("/_fake/calls", self._control_calls)
        # handler_cancellation: a client that gives up (timeout) ends its hung or long-polling request
        runner = web.AppRunner(app, access_log=None, shutdown_timeout=2.0, handler_cancellation=True)
        await runner.setup()
        try:
            await web.TCPSite(runner, host, port).start()
        except BaseException:
            await runner.cleanup()
            raise
        bound_host, bound_port = runner.addresses[0][:2]
        self._runner = runner
        self._session = aiohttp.ClientSession(headers={"User-Agent": "TelegramBot (like TwitterBot)"})
        if host in ("", "0.0.0.0", "::"):
            shown = "127.0.0.1"
        else:
            shown = bound_host if ":" not in bound_host else f"[{bound_host}]"
        self._base_url = f"http://{shown}:{bound_port}"
        return self._base_url

    async def stop(self) -> None:
        """Release hung requests and long polls, close the server and the webhook client."""
        if self._runner is None:
            return
        self._stopping.set()
        self._notify()
        await self._runner.cleanup()
        self._runner = None
        if self._session is not None:
            await self._session.close()
            self._session = None
        self._notify()

    async def __aenter__(self) -> FakeTelegram:
        await self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()

    # ------------------------------------------------------------------ steering

    def inject(
        self,
        method: str = "*",
        status: int | None = None,
        description: str | None = None,
        count: int = 1,
        delay: float = 0.0,
        retry_after: int | None = None,
        hang: bool = False,
    ) -> Fault:
        """Fault the next ``count`` calls of ``method`` ("*" = any method); faults apply in order.

        * ``status`` (default 500; 429 when ``retry_after`` is given; no error at all when only
          ``delay`` or ``hang`` is given): answer that error with ``description`` (default:
          Telegram's, e.g. "Too Many Requests: retry after N" plus ``parameters.retry_after``);
        * ``delay``: wait that long first, then answer (the error, or normally);
        * ``hang``: never answer; the request ends when the client gives up or the fake stops.
        """
        if status is None and (retry_after is not None or not (delay > 0 or hang)):
            status = 429 if retry_after is not None else 500
        if status == 429 and retry_after is None:
            retry_after = 5
        fault = Fault(
            method=method,
            status=status,
            description=description,
            remaining=count,
            delay=delay,
            retry_after=retry_after,
            hang=hang,
        )
        self._faults.append(fault)
        return fault

    def next_update_id(self) -> int:
        """A fresh update_id, above every one seen so far."""
        self._last_update_id += 1
        return self._last_update_id

    def next_message_id(self, chat_id: int) -> int:
        """Reserve the next message_id of a chat (bot and user messages share the sequence)."""
        chat = self._chat(chat_id)
        chat.last_message_id += 1
        return chat.last_message_id

    def push_update(self, update: dict[str, Any]) -> dict[str, Any]:
        """Queue an update for getUpdates (``update_id`` is assigned when missing); returns it."""
        if "update_id" not in update:
            update = {"update_id": self.next_update_id(), **update}
        self._remember_update(update)
        self._updates.append(update)
        self._updates.sort(key=lambda item: int(item["update_id"]))
        self._notify()
        return update

    @property
    def pending_updates(self) -> list[dict[str, Any]]:
        """Updates queued and not yet confirmed by a getUpdates offset."""
        return list(self._updates)

    def user_message(self, chat_id: int, text: str, **kwargs: Any) -> dict[str, Any]:
        """:func:`message_update` with a fresh update_id and message_id (not queued: push or deliver it)."""
        kwargs.setdefault("message_id", self.next_message_id(chat_id))
        return message_update(self.next_update_id(), chat_id, text, **kwargs)

    def user_callback(self, chat_id: int, data: str, message_id: int | None = None, **kwargs: Any) -> dict[str, Any]:
        """:func:`callback_update` on a message the fake holds (default: the bot's latest in the chat)."""
        chat = self._chats.get(chat_id)
        stored: dict[str, Any] | None = None
        if chat is not None:
            if message_id is None:
                own = [m for m in chat.messages.values() if m.get("from", {}).get("is_bot")]
                stored = own[-1] if own else None
            else:
                stored = chat.messages.get(message_id)
        if stored is not None:
            kwargs.setdefault("message", json.loads(json.dumps(stored)))
            message_id = int(stored["message_id"])
        return callback_update(self.next_update_id(), chat_id, data, message_id or 1, **kwargs)

    def user_photo(
        self, chat_id: int, data: bytes, caption: str | None = None, **kwargs: Any
    ) -> tuple[dict[str, Any], FileRecord]:
        """A photo message from a user whose bytes the bot can getFile and download."""
        record = self.add_file(data, kind="photo")
        kwargs.setdefault("message_id", self.next_message_id(chat_id))
        update = photo_update(
            self.next_update_id(),
            chat_id,
            record.file_id,
            record.file_unique_id,
            caption=caption,
            width=record.width or 1280,
            height=record.height or 960,
            file_size=record.size,
            **kwargs,
        )
        return update, record

    def add_file(
        self, data: bytes | None, *, kind: str = "document", file_name: str | None = None, mime_type: str | None = None
    ) -> FileRecord:
        """Register a file (as if uploaded by someone) so getFile and downloads know it."""
        self._file_counter += 1
        number = self._file_counter
        extension = os.path.splitext(file_name or "")[1] or _DEFAULT_EXTENSIONS.get(kind, "")
        mime = mime_type or (mimetypes.guess_type(file_name)[0] if file_name else None) or _DEFAULT_MIME.get(kind)
        if kind == "photo":
            mime = None
        width = height = None
        if kind in ("photo", "video", "animation"):
            sniffed = _image_size(data or b"") if data else None
            width, height = _scaled(sniffed, 1280) if sniffed else (1280, 720 if kind != "photo" else 960)
        record = FileRecord(
            file_id=f"{_FILE_PREFIXES.get(kind, _FILE_PREFIXES['document'])}{number:05d}{secrets.token_urlsafe(24)}",
            file_unique_id=f"AQAD{secrets.token_urlsafe(9)}",
            kind=kind,
            file_path=f"{_FILE_FOLDERS.get(kind, 'documents')}/file_{number}{extension}",
            data=data,
            file_name=file_name,
            mime_type=mime,
            width=width,
            height=height,
            duration=5 if kind in ("video", "audio", "animation") else None,
        )
        self.files[record.file_id] = record
        self._files_by_path[record.file_path] = record
        return record

    def block(self, chat_id: int) -> None:
        """The user of ``chat_id`` blocked the bot: sends to it answer 403."""
        self.blocked.add(chat_id)

    def set_webhook_error(self, message: str | None, date: int | None = None) -> None:
        """What getWebhookInfo reports as last_error_message / last_error_date (None clears it)."""
        self._webhook.last_error_message = message
        self._webhook.last_error_date = None if message is None else (date or _now())
        self._notify()

    def reset(self) -> None:
        """Forget recorded calls, deliveries and pending faults (chats, webhook and updates stay)."""
        self._calls.clear()
        self._faults.clear()
        self.deliveries.clear()
        self._notify()

    # ------------------------------------------------------------------ observing

    def calls(self, method: str | None = None, chat_id: int | str | None = None) -> list[Call]:
        """Recorded calls in arrival order, optionally of one method (any case) and/or one chat."""
        wanted = None if method is None else method.lower()
        return [
            call
            for call in self._calls
            if (wanted is None or call.method.lower() == wanted)
            and (chat_id is None or str(call.params.get("chat_id")) == str(chat_id))
        ]

    def sent_messages(self, chat_id: int | str | None = None) -> list[Call]:
        """Successful sendMessage and media sends (photo, video, audio, document, animation, media group)."""
        return [call for call in self.calls(chat_id=chat_id) if call.method in SEND_METHODS and call.ok]

    def chat_messages(self, chat_id: int) -> list[dict[str, Any]]:
        """What the chat shows now: user and bot messages after edits and deletions, oldest first."""
        chat = self._chats.get(chat_id)
        return [] if chat is None else [chat.messages[key] for key in sorted(chat.messages)]

    def webhook_info(self) -> dict[str, Any]:
        """What getWebhookInfo answers now."""
        return self._webhook_info()

    def notify(self) -> None:
        """Wake :meth:`wait_for` waiters; call it when a predicate depends on state outside the fake."""
        self._notify()

    async def wait_for(
        self,
        predicate_or_count: Callable[[], T] | int,
        timeout: float = 5.0,
        *,
        method: str | None = None,
        chat_id: int | str | None = None,
        what: str | None = None,
    ) -> T | list[Call]:
        """Wait until ``predicate()`` is truthy (and return it), or until at least ``count`` calls
        (of ``method`` / ``chat_id``, if given) are recorded (and return them).

        Re-checked whenever the fake's state changes; raises TimeoutError describing the last calls.
        """
        if isinstance(predicate_or_count, int):
            count = predicate_or_count

            def enough() -> list[Call]:
                found = self.calls(method, chat_id)
                return found if len(found) >= count else []

            check: Callable[[], Any] = enough
            label = what or f"{count} call(s)" + (f" of {method}" if method else "") + (
                f" to chat {chat_id}" if chat_id is not None else ""
            )
        else:
            check = predicate_or_count
            label = what or getattr(predicate_or_count, "__qualname__", repr(predicate_or_count))
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            changed = self._changed
            result = check()
            if result:
                return result  # type: ignore[no-any-return]
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise TimeoutError(self._timeout_report(label, timeout))
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(remaining):
                    await changed.wait()

    def _timeout_report(self, label: str, timeout: float) -> str:
        def show(call: Call) -> str:
            chat = f" chat={call.params['chat_id']}" if "chat_id" in call.params else ""
            return f"{call.method}{chat} -> {call.status}" + (f" ({call.error})" if call.error else "")

        last = "; ".join(show(call) for call in self._calls[-10:]) or "none"
        pending = sum(fault.remaining for fault in self._faults)
        return (
            f"FakeTelegram.wait_for: {label} not reached within {timeout:g}s. "
            f"{len(self._calls)} call(s) so far, last: {last}. Queued updates: {len(self._updates)}. "
            f"Webhook: {self._webhook.url or 'none'}. Pending faults: {pending}."
        )

    def _notify(self) -> None:
        self._changed.set()
        self._changed = asyncio.Event()

    # ------------------------------------------------------------------ webhook push

    async def deliver(self, update: dict[str, Any], timeout: float = 60.0) -> int:
        """POST ``update`` to the webhook like Telegram does and return the HTTP status.

        Sends ``X-Telegram-Bot-Api-Secret-Token`` when a secret is set. A 2xx answer whose JSON body
        names a ``method`` is executed as that API call (recorded with source "webhook-reply").
        A non-2xx answer or a connection error becomes the webhook's last_error; connection errors
        are raised after being recorded.
        """
        if not self._webhook.url:
            raise RuntimeError("no webhook is set: the bot has not called setWebhook (or deleted it)")
        if self._session is None:
            raise RuntimeError("FakeTelegram is not started")
        if "update_id" not in update:
            update = {"update_id": self.next_update_id(), **update}
        self._remember_update(update)
        headers = {"Content-Type": "application/json"}
        if self._webhook.secret_token:
            headers["X-Telegram-Bot-Api-Secret-Token"] = self._webhook.secret_token
        delivery = Delivery(update=update, url=self._webhook.url, at=time.monotonic())
        self.deliveries.append(delivery)
        try:
            async with self._session.post(
                self._webhook.url,
                data=json.dumps(update, ensure_ascii=False).encode(),
                headers=headers,
                timeout=aiohttp.ClientTimeout(total=timeout),
            ) as response:
                delivery.body = await response.read()
                delivery.status = response.status
                reason = response.reason or ""
        except (aiohttp.ClientError, TimeoutError) as exc:
            delivery.error = f"{type(exc).__name__}: {exc}"
            refused = isinstance(exc, aiohttp.ClientConnectionError)
            self.set_webhook_error("Connection refused" if refused else "Read timeout expired")
            raise
        if not 200 <= delivery.status < 300:
            self.set_webhook_error(f"Wrong response from the webhook: {delivery.status} {reason}".strip())
        else:
            delivery.reply = await self._webhook_reply(delivery.body)
        self._notify()
        return delivery.status

    async def _webhook_reply(self, body: bytes) -> Call | None:
        try:
            payload = json.loads(body) if body.strip() else None
        except ValueError:
            return None
        if not isinstance(payload, dict) or not isinstance(payload.get("method"), str):
            return None
        name = str(payload.pop("method"))
        call = Call(
            method=_CANONICAL.get(name.lower(), name),
            params={},
            token=self._webhook.token or "",
            at=time.monotonic(),
            source="webhook-reply",
        )
        self._calls.append(call)
        try:
            call.params = {key: _coerce(key, value) for key, value in payload.items()}
            await self._execute(call, faults=False)
        except TelegramError as exc:
            self._finish(call, exc.status, error=exc.description)
        self._notify()
        return call

    # ------------------------------------------------------------------ HTTP plumbing

    async def _api(self, request: web.Request) -> web.StreamResponse:
        token = request.match_info["token"]
        name = request.match_info["method"]
        call = Call(method=_CANONICAL.get(name.lower(), name), params={}, token=token, at=time.monotonic())
        try:
            call.content_type = request.content_type if request.can_read_body else None
            call.host = request.host
            call.params, call.uploads = await self._read_params(request)
            call.files = self._file_sizes(call.params, call.uploads)
        except TelegramError as exc:
            self._calls.append(call)
            self._finish(call, exc.status, error=exc.description)
            return web.json_response(exc.payload(), status=exc.status)
        self._calls.append(call)
        self._notify()
        try:
            outcome = await self._execute(call, faults=True)
        except TelegramError as exc:
            self._finish(call, exc.status, error=exc.description)
            return web.json_response(exc.payload(), status=exc.status)
        if outcome is _HANG:
            if request.transport is not None:
                request.transport.close()
            return web.Response(status=499)
        body: dict[str, Any] = {"ok": True, "result": outcome}
        if call.description:
            body["description"] = call.description
        return web.json_response(body)

    async def _execute(self, call: Call, *, faults: bool) -> Any:
        """Authenticate, apply a fault, run the method; records the outcome on ``call``."""
        try:
            if self._bot_id(call.token) is None:
                raise TelegramError(401, "Unauthorized")
            handler = self._handlers.get(call.method)
            if handler is None:
                raise TelegramError(404, "Not Found")
            fault = self._take_fault(call.method) if faults else None
            if fault is not None:
                if fault.delay > 0:
                    await self._pause(fault.delay)
                if fault.hang:
                    await self._stopping.wait()
                    return _HANG
                if fault.status is not None:
                    description = fault.description
                    if description is None and fault.status == 429:
                        description = f"Too Many Requests: retry after {fault.retry_after}"
                    raise TelegramError(fault.status, description, fault.retry_after)
            result = await handler(call)
        except asyncio.CancelledError:
            self._notify()  # the client went away: status stays None
            raise
        except (TelegramError, aiohttp.ClientError):
            raise
        except Exception as exc:  # a bug of the fake: answer 500 and keep it for the test to see
            self.internal_errors.append(exc)
            raise TelegramError(500, f"Internal Server Error: fake failed with {type(exc).__name__}: {exc}") from exc
        self._finish(call, 200, result=result)
        return result

    def _finish(self, call: Call, status: int, *, result: Any = None, error: str | None = None) -> None:
        call.status = status
        call.result = result
        if error is not None:
            call.error = error
        self._notify()

    async def _read_params(self, request: web.Request) -> tuple[dict[str, Any], dict[str, Upload]]:
        raw: dict[str, Any] = dict(request.query)
        uploads: dict[str, Upload] = {}
        if request.content_length is not None and request.content_length > _MAX_UPLOAD:
            raise TelegramError(413, "Request Entity Too Large")
        content_type = request.content_type
        if request.method == "POST" and request.can_read_body:
            if content_type == "application/json":
                try:
                    body = json.loads(await request.read() or b"{}")
                except ValueError as exc:
                    raise _bad("can't parse JSON object") from exc
                if not isinstance(body, dict):
                    raise _bad("request body must be a JSON object")
                raw.update(body)
            elif content_type.startswith("multipart/"):
                total = 0
                reader = await request.multipart()
                async for part in reader:
                    if not isinstance(part, aiohttp.BodyPartReader) or not part.name:
                        continue
                    if part.filename is not None:
                        data = bytes(await part.read(decode=False))
                        total += len(data)
                        if total > _MAX_UPLOAD:
                            raise TelegramError(413, "Request Entity Too Large")
                        uploads[part.name] = Upload(
                            part=part.name,
                            filename=part.filename,
                            content_type=part.headers.get(aiohttp.hdrs.CONTENT_TYPE),
                            data=data,
                        )
                    else:
                        raw[part.name] = await part.text()
            else:
                try:
                    form = await request.post()
                except web.HTTPRequestEntityTooLarge as exc:
                    raise TelegramError(413, "Request Entity Too Large") from exc
                raw.update({key: value for key, value in form.items() if isinstance(value, str)})
        params = {key: _coerce(key, value) for key, value in raw.items()}
        return params, uploads

    @staticmethod
    def _file_sizes(params: dict[str, Any], uploads: dict[str, Upload]) -> dict[str, int]:
        sizes: dict[str, int] = {}
        claimed: set[str] = set()
        for name, value in params.items():
            key = _attach_key(value)
            if key in uploads:
                sizes[name] = len(uploads[key].data)
                claimed.add(key)
            if isinstance(value, list):
                for index, item in enumerate(value):
                    if not isinstance(item, dict):
                        continue
                    for sub, inner in item.items():
                        key = _attach_key(inner)
                        if key in uploads:
                            label = f"{name}[{index}]" if sub == "media" else f"{name}[{index}].{sub}"
                            sizes[label] = len(uploads[key].data)
                            claimed.add(key)
        for key, upload in uploads.items():
            if key not in claimed:
                sizes[key] = len(upload.data)
        return sizes

    def _bot_id(self, token: str) -> int | None:
        match = _TOKEN_RE.match(token)
        if match is None or (self.tokens is not None and token not in self.tokens):
            return None
        return int(match.group(1))

    def _take_fault(self, method: str) -> Fault | None:
        for fault in self._faults:
            if fault.matches(method):
                fault.remaining -= 1
                if fault.remaining <= 0:
                    self._faults.remove(fault)
                return fault
        return None

    async def _pause(self, seconds: float) -> None:
        """Wait ``seconds``, or less if the fake is stopping."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(seconds):
                await self._stopping.wait()

    async def _download(self, request: web.Request) -> web.StreamResponse:
        if self._bot_id(request.match_info["token"]) is None:
            return web.json_response(TelegramError(401).payload(), status=401)
        record = self._files_by_path.get(request.match_info["path"])
        if record is None or record.data is None:
            return web.json_response(TelegramError(404).payload(), status=404)
        content_type = record.mime_type or mimetypes.guess_type(record.file_path)[0] or "application/octet-stream"
        return web.Response(body=record.data, content_type=content_type)

    async def _control_update(self, request: web.Request) -> web.Response:
        try:
            body = await request.json()
        except ValueError:
            return web.json_response({"ok": False, "description": "JSON body expected"}, status=400)
        if not isinstance(body, dict):
            return web.json_response({"ok": False, "description": "JSON object expected"}, status=400)
        if "update_id" in body or not ({"chat_id", "text", "callback_data"} & body.keys()):
            update = body
        elif "callback_data" in body:
            update = self.user_callback(int(body["chat_id"]), str(body["callback_data"]))
        else:
            update = self.user_message(int(body["chat_id"]), str(body.get("text", "")))
        if self._webhook.url:
            try:
                status = await self.deliver(update)
            except (aiohttp.ClientError, TimeoutError) as exc:
                return web.json_response({"ok": False, "update": update, "description": str(exc)}, status=502)
            return web.json_response({"ok": True, "update": update, "webhook_status": status})
        return web.json_response({"ok": True, "update": self.push_update(update), "queued": len(self._updates)})

    async def _control_calls(self, request: web.Request) -> web.Response:
        chat = request.query.get("chat_id")
        found = self.calls(request.query.get("method") or None, chat)
        if request.query.get("count"):  # ?count=1: only how many, for pollers that watch progress
            return web.json_response({"count": len(found)})
        return web.json_response(
            [
                {
                    "method": call.method,
                    "params": _jsonable(call.params),
                    "files": call.files,
                    "status": call.status,
                    "result": _jsonable(call.result),
                    "error": call.error,
                    "source": call.source,
                    "at": call.at,  # time.monotonic() of arrival: comparable across local processes
                }
                for call in found
            ]
        )

    # ------------------------------------------------------------------ world state

    def _chat(self, chat_id: int, info: dict[str, Any] | None = None) -> _Chat:
        chat = self._chats.get(chat_id)
        if chat is None:
            chat = _Chat(info=dict(info) if info else _chat_dict(chat_id))
            self._chats[chat_id] = chat
        elif info:
            chat.info.update(info)
        return chat

    def _remember_message(self, message: Any) -> None:
        if not isinstance(message, dict) or not isinstance(message.get("chat"), dict):
            return
        chat_id = message["chat"].get("id")
        message_id = message.get("message_id")
        if not isinstance(chat_id, int) or not isinstance(message_id, int):
            return
        chat = self._chat(chat_id, message["chat"])
        chat.known = True
        if not (message.get("from") or {}).get("is_bot"):
            chat.messages[message_id] = message
        chat.last_message_id = max(chat.last_message_id, message_id)

    def _remember_update(self, update: dict[str, Any]) -> None:
        update_id = update.get("update_id")
        if isinstance(update_id, int):
            self._last_update_id = max(self._last_update_id, update_id)
        for key in ("message", "edited_message", "channel_post", "business_message"):
            self._remember_message(update.get(key))
        query = update.get("callback_query")
        if isinstance(query, dict) and isinstance(query.get("message"), dict):
            message = query["message"]
            chat_id = (message.get("chat") or {}).get("id")
            if isinstance(chat_id, int):
                chat = self._chat(chat_id, message["chat"])
                chat.known = True
                chat.last_message_id = max(chat.last_message_id, int(message.get("message_id") or 0))
        for key in ("my_chat_member", "chat_member"):
            member = update.get(key)
            if isinstance(member, dict) and isinstance(member.get("chat"), dict):
                self._chat(int(member["chat"]["id"]), member["chat"]).known = True

    def _bot(self, call: Call) -> dict[str, Any]:
        return _bot_user(self._bot_id(call.token) or 0, self.username, self.first_name)

    def _target_chat(self, call: Call, name: str = "chat_id", *, writing: bool = True) -> _Chat:
        value = call.params.get(name)
        if value is None or value == "":
            raise _bad(f"{name} is empty")
        chat_id: int | None = None
        if isinstance(value, int) and not isinstance(value, bool):
            chat_id = value
        elif isinstance(value, str) and value.startswith("@"):
            for known_id, known in self._chats.items():
                if str(known.info.get("username", "")).lower() == value[1:].lower():
                    chat_id = known_id
                    break
        if chat_id is None:
            raise _bad("chat not found")
        chat = self._chats.get(chat_id)
        if (chat is None or not chat.known) and self.strict_chats:
            raise _bad("chat not found")
        if writing and chat_id in self.blocked:
            raise TelegramError(403, "Forbidden: bot was blocked by the user")
        return self._chat(chat_id)

    @staticmethod
    def _int_param(call: Call, name: str, missing: str) -> int:
        value = call.params.get(name)
        if isinstance(value, bool) or not isinstance(value, int):
            raise _bad(missing)
        return value

    def _new_message(self, call: Call, chat: _Chat, content: dict[str, Any]) -> dict[str, Any]:
        chat.last_message_id += 1
        message: dict[str, Any] = {
            "message_id": chat.last_message_id,
            "from": self._bot(call),
            "chat": dict(chat.info),
            "date": _now(),
        }
        thread = call.params.get("message_thread_id")
        if isinstance(thread, int) and chat.info.get("type") != "private":
            message["message_thread_id"] = thread
        reply_to = call.params.get("reply_to_message_id")
        reply_parameters = call.params.get("reply_parameters")
        if isinstance(reply_parameters, dict):
            reply_to = reply_parameters.get("message_id", reply_to)
        if isinstance(reply_to, int):
            original = chat.messages.get(reply_to)
            if original is not None:
                message["reply_to_message"] = {k: v for k, v in original.items() if k != "reply_to_message"}
            else:
                allow = call.params.get("allow_sending_without_reply") or (
                    isinstance(reply_parameters, dict) and reply_parameters.get("allow_sending_without_reply")
                )
                if not allow:
                    raise _bad("message to be replied not found")
        message.update(content)
        markup = self._markup(call)
        if markup is not None:
            message["reply_markup"] = markup
        chat.messages[message["message_id"]] = message
        return message

    def _markup(self, call: Call) -> dict[str, Any] | None:
        """Validate ``reply_markup``; only an inline keyboard is echoed back in the Message."""
        markup = call.params.get("reply_markup")
        if markup is None:
            return None
        if not isinstance(markup, dict):
            raise _bad("can't parse reply keyboard markup JSON object")
        if "inline_keyboard" not in markup:
            if not {"keyboard", "remove_keyboard", "force_reply"} & markup.keys():
                raise _bad('can\'t find field "inline_keyboard"')
            return None
        rows = markup["inline_keyboard"]
        if not isinstance(rows, list) or any(not isinstance(row, list) for row in rows):
            raise _bad('field "inline_keyboard" of the InlineKeyboardMarkup must be an Array of Arrays')
        actions = (
            "url",
            "callback_data",
            "web_app",
            "login_url",
            "switch_inline_query",
            "switch_inline_query_current_chat",
            "switch_inline_query_chosen_chat",
            "copy_text",
            "callback_game",
            "pay",
        )
        for row in rows:
            for button in row:
                if not isinstance(button, dict) or not isinstance(button.get("text"), str) or not button["text"]:
                    raise _bad("can't parse inline keyboard button: Text buttons are unallowed in the inline keyboard")
                if not any(key in button for key in actions):
                    raise _bad("can't parse inline keyboard button: Text buttons are unallowed in the inline keyboard")
                data = button.get("callback_data")
                if data is not None and (not isinstance(data, str) or not 1 <= len(data.encode()) <= 64):
                    raise _bad("BUTTON_DATA_INVALID")
                url = button.get("url")
                if url is not None and not (isinstance(url, str) and re.match(r"^(https?|tg)://\S+$", url)):
                    raise _bad("inline keyboard button URL is invalid")
        return markup

    def _formatted(self, call: Call, name: str, entities_name: str, limit: int) -> tuple[str | None, list[Any]]:
        """The text/caption as Telegram stores it (parse_mode applied) and its entities."""
        value = call.params.get(name)
        if value is None:
            return None, []
        text = str(value)
        entities = call.params.get(entities_name)
        mode = call.params.get("parse_mode")
        if isinstance(mode, str) and mode:
            if mode.lower() == "html":
                text, entities = parse_html(text)
            elif mode.lower() not in ("markdown", "markdownv2"):
                raise _bad("unsupported parse_mode")
        if len(text) > limit:
            raise _bad("message is too long" if name == "text" else "message caption is too long")
        return text, entities if isinstance(entities, list) else []

    def _text_content(self, call: Call) -> dict[str, Any]:
        if not str(call.params.get("text") or "").strip():
            raise _bad("message text is empty")
        text, entities = self._formatted(call, "text", "entities", _TEXT_LIMIT)
        if not (text or "").strip():
            raise _bad("message text is empty")
        content: dict[str, Any] = {"text": text}
        if entities:
            content["entities"] = entities
        return content

    def _caption_content(self, call: Call) -> dict[str, Any]:
        caption, entities = self._formatted(call, "caption", "caption_entities", _CAPTION_LIMIT)
        content: dict[str, Any] = {}
        if caption:
            content["caption"] = caption
            if entities:
                content["caption_entities"] = entities
            if call.params.get("show_caption_above_media"):
                content["show_caption_above_media"] = True
        return content

    def _stored_message(self, call: Call, not_found: str) -> tuple[_Chat, dict[str, Any]] | None:
        """The message an edit/delete targets, or None for an inline message (inline_message_id)."""
        if call.params.get("inline_message_id") and "chat_id" not in call.params:
            return None
        chat = self._target_chat(call)
        message_id = self._int_param(call, "message_id", "message identifier is not specified")
        message = chat.messages.get(message_id)
        if message is None:
            raise _bad(not_found)
        return chat, message

    def _editable(self, call: Call) -> tuple[_Chat, dict[str, Any]] | None:
        found = self._stored_message(call, self._NO_MESSAGE)
        if found is not None and not (found[1].get("from") or {}).get("is_bot"):
            raise _bad("message can't be edited")
        return found

    async def _file_param(self, call: Call, name: str, kind: str, *, value: Any = None) -> FileRecord:
        """Resolve a file parameter: an upload (attach:// or a part of that name), a URL, or a file_id."""
        if value is None:
            value = call.params.get(name)
        key = _attach_key(value)
        upload = call.uploads.get(key) if key else (call.uploads.get(name) if value is None else None)
        if upload is not None:
            if not upload.data:
                raise _bad("file must be non-empty")
            file_name = upload.filename if kind in ("document", "audio", "video", "animation") else None
            mime = None if upload.content_type == "application/octet-stream" else upload.content_type
            return self.add_file(upload.data, kind=kind, file_name=file_name, mime_type=mime)
        if key is not None or value is None or value == "":
            raise _bad(f"there is no {name} in the request")
        if not isinstance(value, str):
            raise _bad(f"wrong {name} parameter")
        if value.startswith(("http://", "https://")):
            data, content_type = await self._fetch(value, kind)
            file_name = os.path.basename(value.split("?", 1)[0]) or None
            return self.add_file(data, kind=kind, file_name=file_name, mime_type=content_type)
        known = self.files.get(value)
        if known is None:
            raise _bad("wrong file identifier/HTTP URL specified")
        if known.kind != kind and not (kind == "document" or {known.kind, kind} <= {"video", "animation"}):
            raise _bad(f"can't use file of type {known.kind.capitalize()} as {kind.capitalize()}")
        return known

    async def _fetch(self, url: str, kind: str) -> tuple[bytes | None, str | None]:
        if not self.fetch_urls or self._session is None:
            return None, None
        try:
            async with self._session.get(url, timeout=aiohttp.ClientTimeout(total=15)) as response:
                if response.status != 200:
                    raise _bad("failed to get HTTP URL content")
                data = await response.read()
                content_type = response.content_type
        except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
            raise _bad("failed to get HTTP URL content") from exc
        if kind == "photo" and not content_type.startswith("image/"):
            raise _bad("wrong type of the web page content")
        return data, content_type

    @staticmethod
    def _media_object(record: FileRecord, call: Call | None = None) -> dict[str, Any]:
        obj: dict[str, Any] = {"file_id": record.file_id, "file_unique_id": record.file_unique_id}
        params = call.params if call is not None else {}
        if record.kind in ("video", "animation"):
            obj["width"] = params.get("width") if isinstance(params.get("width"), int) else record.width or 1280
            obj["height"] = params.get("height") if isinstance(params.get("height"), int) else record.height or 720
        if record.kind in ("video", "audio", "animation"):
            duration = params.get("duration")
            obj["duration"] = duration if isinstance(duration, int) else record.duration or 5
        if record.kind == "audio":
            for key in ("performer", "title"):
                if isinstance(params.get(key), str):
                    obj[key] = params[key]
        if record.file_name and record.kind != "photo":
            obj["file_name"] = record.file_name
        if record.mime_type and record.kind != "photo":
            obj["mime_type"] = record.mime_type
        if record.size is not None:
            obj["file_size"] = record.size
        return obj

    def _photo_sizes(self, record: FileRecord) -> list[dict[str, Any]]:
        full = (record.width or 1280, record.height or 960)
        thumb_w, thumb_h = _scaled(full, 90)
        thumb = self.add_file(record.data, kind="photo")
        thumb.width, thumb.height = thumb_w, thumb_h
        sizes = []
        for item, (width, height) in ((thumb, (thumb_w, thumb_h)), (record, full)):
            size: dict[str, Any] = {
                "file_id": item.file_id,
                "file_unique_id": item.file_unique_id,
                "width": width,
                "height": height,
            }
            if item.size is not None:
                size["file_size"] = item.size
            sizes.append(size)
        return sizes

    def _media_content(self, record: FileRecord, call: Call | None = None) -> dict[str, Any]:
        if record.kind == "photo":
            return {"photo": self._photo_sizes(record)}
        obj = self._media_object(record, call)
        if record.kind == "animation":
            return {"animation": obj, "document": dict(obj)}
        return {record.kind: obj}

    # ------------------------------------------------------------------ methods

    async def _get_me(self, call: Call) -> dict[str, Any]:
        return {
            **self._bot(call),
            "can_join_groups": True,
            "can_read_all_group_messages": False,
            "supports_inline_queries": False,
            "can_connect_to_business": False,
            "has_main_web_app": False,
        }

    async def _set_webhook(self, call: Call) -> bool:
        url = str(call.params.get("url") or "")
        if not url:
            return await self._delete_webhook(call)
        if not re.match(r"^https?://[^/\s]+", url):
            raise _bad("bad webhook: An HTTPS URL must be provided for webhook")
        secret = call.params.get("secret_token")
        if secret is not None and (not isinstance(secret, str) or not _SECRET_RE.match(secret)):
            raise _bad("secret token contains unallowed characters")
        max_connections = call.params.get("max_connections", 40)
        if not isinstance(max_connections, int) or not 1 <= max_connections <= 100:
            max_connections = 40
        allowed = call.params.get("allowed_updates")
        if allowed is not None and not isinstance(allowed, list):
            raise _bad("can't parse allowed updates JSON object")
        if call.params.get("drop_pending_updates"):
            self._updates.clear()
        same = self._webhook.url == url
        self._webhook = _Webhook(
            url=url,
            secret_token=secret or None,
            max_connections=max_connections,
            ip_address=call.params.get("ip_address") or None,
            token=call.token,
            last_error_date=self._webhook.last_error_date if same else None,
            last_error_message=self._webhook.last_error_message if same else None,
        )
        if allowed is not None:
            self._allowed_updates = [str(item) for item in allowed]
        if self._poll is not None:
            self._poll.terminated = _WEBHOOK_ACTIVE
        call.description = "Webhook is already set" if same else "Webhook was set"
        self._notify()
        return True

    def _webhook_info(self) -> dict[str, Any]:
        info: dict[str, Any] = {
            "url": self._webhook.url,
            "has_custom_certificate": False,
            "pending_update_count": len(self._updates),
        }
        if self._webhook.url:
            info["max_connections"] = self._webhook.max_connections
            if self._webhook.ip_address:
                info["ip_address"] = self._webhook.ip_address
            if self._allowed_updates:
                info["allowed_updates"] = list(self._allowed_updates)
        if self._webhook.last_error_message:
            info["last_error_date"] = self._webhook.last_error_date
            info["last_error_message"] = self._webhook.last_error_message
        return info

    async def _get_webhook_info(self, call: Call) -> dict[str, Any]:
        return self._webhook_info()

    async def _delete_webhook(self, call: Call) -> bool:
        had = bool(self._webhook.url)
        self._webhook = _Webhook()
        if call.params.get("drop_pending_updates"):
            self._updates.clear()
        call.description = "Webhook was deleted" if had else "Webhook is already deleted"
        self._notify()
        return True

    async def _get_updates(self, call: Call) -> list[dict[str, Any]]:
        if self._webhook.url:
            raise TelegramError(409, _WEBHOOK_ACTIVE)
        offset = call.params.get("offset")
        limit = call.params.get("limit")
        timeout = call.params.get("timeout")
        limit = limit if isinstance(limit, int) and 1 <= limit <= 100 else 100
        wait = float(timeout) if isinstance(timeout, int) and timeout > 0 else 0.0
        allowed = call.params.get("allowed_updates")
        if isinstance(allowed, list):
            self._allowed_updates = [str(item) for item in allowed]
        if isinstance(offset, int) and offset != 0:
            if offset > 0:
                self._updates = [u for u in self._updates if int(u["update_id"]) >= offset]
            else:
                self._updates = self._updates[offset:]
        if self._poll is not None:
            self._poll.terminated = (
                "Conflict: terminated by other getUpdates request; make sure that only one bot instance is running"
            )
            self._notify()
        poll = _Poll()
        self._poll = poll
        loop = asyncio.get_running_loop()
        deadline = loop.time() + wait
        try:
            while True:
                changed = self._changed
                if poll.terminated:
                    raise TelegramError(409, poll.terminated)
                ready = self._updates[:limit]
                remaining = deadline - loop.time()
                if ready or remaining <= 0 or self._stopping.is_set():
                    return [json.loads(json.dumps(update)) for update in ready]
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(remaining):
                        await changed.wait()
        finally:
            if self._poll is poll:
                self._poll = None

    async def _send_message(self, call: Call) -> dict[str, Any]:
        chat = self._target_chat(call)
        return self._new_message(call, chat, self._text_content(call))

    async def _send_media(self, call: Call) -> dict[str, Any]:
        name, kind = MEDIA_METHODS[call.method]
        chat = self._target_chat(call)
        content = self._caption_content(call)
        record = await self._file_param(call, name, kind)
        content.update(self._media_content(record, call))
        if call.params.get("has_spoiler"):
            content["has_media_spoiler"] = True
        return self._new_message(call, chat, content)

    async def _send_media_group(self, call: Call) -> list[dict[str, Any]]:
        chat = self._target_chat(call)
        media = call.params.get("media")
        if not isinstance(media, list) or not media:
            raise _bad('parameter "media" is required')
        if not 2 <= len(media) <= 10:
            raise _bad("wrong number of media in the group: must be 2-10")
        kinds = {item.get("type") if isinstance(item, dict) else None for item in media}
        if not kinds <= {"photo", "video", "audio", "document"}:
            raise _bad("unsupported media type in the group")
        if len(kinds) > 1 and not kinds <= {"photo", "video"}:
            raise _bad("documents and audio can't be mixed with other media types")
        self._media_group_counter += 1
        group_id = str(13_000_000_000_000_000 + self._media_group_counter)
        prepared: list[dict[str, Any]] = []
        for item in media:
            item_call = Call(method=call.method, params=dict(item), token=call.token, at=call.at, uploads=call.uploads)
            record = await self._file_param(item_call, "media", str(item["type"]), value=item.get("media"))
            content = {"media_group_id": group_id, **self._caption_content(item_call)}
            content.update(self._media_content(record, item_call))
            prepared.append(content)
        bare = Call(method=call.method, params={}, token=call.token, at=call.at)
        return [self._new_message(bare, chat, content) for content in prepared]

    async def _edit_message_text(self, call: Call) -> dict[str, Any] | bool:
        content = self._text_content(call)
        markup = self._markup(call)
        found = self._editable(call)
        if found is None:
            return True
        _, message = found
        if "text" not in message:
            raise _bad("there is no text in the message to edit")
        if (
            message.get("text") == content["text"]
            and message.get("entities", []) == content.get("entities", [])
            and message.get("reply_markup") == markup
        ):
            raise _bad(
                "message is not modified: specified new message content and reply markup are exactly the same "
                "as a current content and reply markup of the message"
            )
        message["text"] = content["text"]
        message.pop("entities", None)
        if "entities" in content:
            message["entities"] = content["entities"]
        self._set_markup(message, markup)
        return message

    async def _edit_message_caption(self, call: Call) -> dict[str, Any] | bool:
        content = self._caption_content(call)
        markup = self._markup(call)
        found = self._editable(call)
        if found is None:
            return True
        _, message = found
        if not {"photo", "video", "audio", "document", "animation"} & message.keys():
            raise _bad("there is no caption in the message to edit")
        if (
            message.get("caption") == content.get("caption")
            and message.get("caption_entities", []) == content.get("caption_entities", [])
            and message.get("reply_markup") == markup
        ):
            raise _bad(
                "message is not modified: specified new message content and reply markup are exactly the same "
                "as a current content and reply markup of the message"
            )
        for key in ("caption", "caption_entities", "show_caption_above_media"):
            message.pop(key, None)
        message.update(content)
        self._set_markup(message, markup)
        return message

    async def _edit_message_reply_markup(self, call: Call) -> dict[str, Any] | bool:
        markup = self._markup(call)
        found = self._editable(call)
        if found is None:
            return True
        _, message = found
        if message.get("reply_markup") == markup:
            raise _bad(
                "message is not modified: specified new message content and reply markup are exactly the same "
                "as a current content and reply markup of the message"
            )
        self._set_markup(message, markup)
        return message

    @staticmethod
    def _set_markup(message: dict[str, Any], markup: dict[str, Any] | None) -> None:
        message.pop("reply_markup", None)
        if markup is not None:
            message["reply_markup"] = markup
        message["edit_date"] = _now()

    async def _delete_message(self, call: Call) -> bool:
        found = self._stored_message(call, "message to delete not found")
        if found is None:
            raise _bad("message identifier is not specified")
        chat, message = found
        del chat.messages[int(message["message_id"])]
        return True

    async def _answer_callback_query(self, call: Call) -> bool:
        query_id = call.params.get("callback_query_id")
        if not query_id:
            raise _bad("query is too old and response timeout expired or query ID is invalid")
        text = call.params.get("text")
        if isinstance(text, str) and len(text) > 200:
            raise _bad("MESSAGE_TOO_LONG")
        key = f"callback:{query_id}"
        if key in self._answered_queries:
            raise _bad("query is too old and response timeout expired or query ID is invalid")
        self._answered_queries.add(key)
        return True

    async def _answer_pre_checkout_query(self, call: Call) -> bool:
        query_id = call.params.get("pre_checkout_query_id")
        if not query_id:
            raise _bad("QUERY_ID_INVALID")
        ok = call.params.get("ok")
        if not isinstance(ok, bool):
            raise _bad('parameter "ok" is required')
        if not ok and not call.params.get("error_message"):
            raise _bad("ERROR_MESSAGE_EMPTY")
        key = f"pre_checkout:{query_id}"
        if key in self._answered_queries:
            raise _bad("query is too old and response timeout expired or query ID is invalid")
        self._answered_queries.add(key)
        return True

    async def _send_chat_action(self, call: Call) -> bool:
        self._target_chat(call)
        if call.params.get("action") not in _CHAT_ACTIONS:
            raise _bad("wrong parameter action in request")
        return True

    async def _send_invoice(self, call: Call) -> dict[str, Any]:
        chat = self._target_chat(call)
        for name in ("title", "description", "payload", "currency"):
            if not call.params.get(name):
                raise _bad(f"{name} is empty" if name != "payload" else "INVOICE_PAYLOAD_INVALID")
        title, description = str(call.params["title"]), str(call.params["description"])
        if not 1 <= len(title) <= 32:
            raise _bad("INVOICE_TITLE_INVALID" if title else "title is empty")
        if not 1 <= len(description) <= 255:
            raise _bad("INVOICE_DESCRIPTION_INVALID")
        if not 1 <= len(str(call.params["payload"]).encode()) <= 128:
            raise _bad("INVOICE_PAYLOAD_INVALID")
        prices = call.params.get("prices")
        if not isinstance(prices, list) or not prices or not all(_is_price(item) for item in prices):
            raise _bad("can't parse prices JSON object")
        currency = str(call.params["currency"])
        if currency == "XTR" and (len(prices) != 1 or call.params.get("provider_token")):
            raise _bad("STARS_INVOICE_INVALID")
        total = sum(int(p["amount"]) for p in prices)
        if total <= 0:
            raise _bad("CURRENCY_TOTAL_AMOUNT_INVALID")
        start_parameter = call.params.get("start_parameter")
        invoice = {
            "title": title,
            "description": description,
            "start_parameter": start_parameter if isinstance(start_parameter, str) else "",
            "currency": currency,
            "total_amount": total,
        }
        return self._new_message(call, chat, {"invoice": invoice})

    @staticmethod
    def _commands_key(call: Call) -> tuple[str, str]:
        scope = call.params.get("scope")
        scope = scope if isinstance(scope, dict) else {"type": "default"}
        return json.dumps(scope, sort_keys=True), str(call.params.get("language_code") or "")

    async def _set_my_commands(self, call: Call) -> bool:
        commands = call.params.get("commands")
        if not isinstance(commands, list):
            raise _bad("can't parse commands JSON object")
        if len(commands) > 100:
            raise _bad("too many commands")
        for command in commands:
            if not isinstance(command, dict) or not _BOT_COMMAND_RE.match(str(command.get("command", ""))):
                raise _bad("BOT_COMMAND_INVALID")
            if not 1 <= len(str(command.get("description", ""))) <= 256:
                raise _bad("BOT_COMMAND_DESCRIPTION_INVALID")
        self._commands[self._commands_key(call)] = [
            {"command": str(c["command"]), "description": str(c["description"])} for c in commands
        ]
        return True

    async def _get_my_commands(self, call: Call) -> list[dict[str, Any]]:
        return list(self._commands.get(self._commands_key(call), []))

    async def _delete_my_commands(self, call: Call) -> bool:
        self._commands.pop(self._commands_key(call), None)
        return True

    async def _set_chat_menu_button(self, call: Call) -> bool:
        button = call.params.get("menu_button")
        if button is None:
            button = {"type": "default"}
        if not isinstance(button, dict) or button.get("type") not in ("default", "commands", "web_app"):
            raise _bad("can't parse menu button JSON object")
        if button["type"] == "web_app" and not (button.get("text") and isinstance(button.get("web_app"), dict)):
            raise _bad("BUTTON_TYPE_INVALID")
        chat_id = call.params.get("chat_id")
        self._menu_buttons[chat_id if isinstance(chat_id, int) else None] = button
        return True

    async def _get_chat_menu_button(self, call: Call) -> dict[str, Any]:
        chat_id = call.params.get("chat_id")
        key = chat_id if isinstance(chat_id, int) else None
        return self._menu_buttons.get(key) or self._menu_buttons.get(None) or {"type": "default"}

    async def _get_file(self, call: Call) -> dict[str, Any]:
        file_id = call.params.get("file_id")
        if not file_id:
            raise _bad("file_id is empty")
        record = self.files.get(str(file_id))
        if record is None:
            raise _bad("invalid file_id")
        result: dict[str, Any] = {"file_id": record.file_id, "file_unique_id": record.file_unique_id}
        if record.size is not None:
            result["file_size"] = record.size
            result["file_path"] = record.file_path
        return result

    def _source_message(self, call: Call, missing: str) -> dict[str, Any]:
        source = self._target_chat(call, "from_chat_id", writing=False)
        message_id = self._int_param(call, "message_id", "message identifier is not specified")
        message = source.messages.get(message_id)
        if message is None:
            raise _bad(missing)
        return message

    _CONTENT_KEYS: ClassVar[tuple[str, ...]] = (
        "text",
        "entities",
        "caption",
        "caption_entities",
        "photo",
        "video",
        "audio",
        "document",
        "animation",
        "has_media_spoiler",
        "show_caption_above_media",
    )

    async def _copy_message(self, call: Call) -> dict[str, Any]:
        original = self._source_message(call, "message to copy not found")
        chat = self._target_chat(call)
        if "invoice" in original or "successful_payment" in original:
            raise _bad("message can't be copied")
        content = {key: original[key] for key in self._CONTENT_KEYS if key in original}
        if "caption" in call.params:
            for key in ("caption", "caption_entities"):
                content.pop(key, None)
            content.update(self._caption_content(call))
        if "reply_markup" not in call.params and "reply_markup" in original:
            content["reply_markup"] = original["reply_markup"]
        message = self._new_message(call, chat, json.loads(json.dumps(content)))
        return {"message_id": message["message_id"]}

    async def _forward_message(self, call: Call) -> dict[str, Any]:
        original = self._source_message(call, "message to forward not found")
        chat = self._target_chat(call)
        content = {key: original[key] for key in self._CONTENT_KEYS if key in original}
        sender = original.get("from") or self._bot(call)
        content["forward_origin"] = {"type": "user", "date": original.get("date", _now()), "sender_user": sender}
        content["forward_date"] = original.get("date", _now())
        bare = Call(method=call.method, params={}, token=call.token, at=call.at)
        return self._new_message(bare, chat, json.loads(json.dumps(content)))

    async def _get_chat(self, call: Call) -> dict[str, Any]:
        chat = self._target_chat(call, writing=False)
        info = dict(chat.info)
        info.update(
            {
                "accent_color_id": 0,
                "max_reaction_count": 11,
                "accepted_gift_types": {
                    "unlimited_gifts": True,
                    "limited_gifts": True,
                    "unique_gifts": True,
                    "premium_subscription": True,
                    "gifts_from_channels": True,
                },
            }
        )
        return info


# ---------------------------------------------------------------------- CLI


async def _serve(args: argparse.Namespace) -> None:
    fake = FakeTelegram(tokens=args.token or None, fetch_urls=not args.no_fetch_urls)
    await fake.start(args.host, args.port)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    line = {
        "ts": datetime.now(UTC).isoformat(timespec="milliseconds"),
        "level": "info",
        "event": "fake_telegram_listening",
        "base_url": fake.base_url,
        "pid": os.getpid(),
    }
    print(json.dumps(line), flush=True)
    try:
        await stop.wait()
    finally:
        await fake.stop()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m fakes.telegram_api", description="Serve a fake Telegram Bot API.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument(
        "--token", action="append", help="accepted bot token (repeatable); default: any well-formed token"
    )
    parser.add_argument("--no-fetch-urls", action="store_true", help="do not download URLs sent as media")
    asyncio.run(_serve(parser.parse_args(argv)))


if __name__ == "__main__":
    main()
