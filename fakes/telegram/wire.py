"""The Bot API's vocabulary as the fake speaks it: method names, error answers, the records of calls.

Why it exists: every other module of the fake Telegram talks in these terms — a :class:`Call`
recorded for each request, a :class:`TelegramError` raised to answer ``{"ok": false, ...}``, a
:class:`FileRecord` for each file the fake knows — and parameters typed back from the wire the
way Telegram reads them (:func:`coerce`: form fields are strings, JSON-typed ones JSON strings).
"""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass, field
from typing import Any

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
    "setMyDescription",
    "getMyDescription",
    "setMyShortDescription",
    "getMyShortDescription",
    "setChatMenuButton",
    "getChatMenuButton",
    "getFile",
    "copyMessage",
    "forwardMessage",
    "getChat",
)
CANONICAL: dict[str, str] = {name.lower(): name for name in METHODS}

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


def bad(description: str) -> TelegramError:
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
    header the client sent, ``caller`` the name in a ``/_as/<caller>/`` prefix of the path (None
    without one): clients given base URLs ``<fake>/_as/a`` and ``<fake>/_as/b`` are told apart
    even on one host.
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
    caller: str | None = None  # the <caller> of a /_as/<caller>/bot<token>/... path

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


def now() -> int:
    return int(time.time())


def utf16_len(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


def coerce(name: str, value: Any) -> Any:
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
                raise bad(f"can't parse {what} JSON object") from exc
        return value
    if name in _INT_FIELDS and re.fullmatch(r"-?\d+", value.strip()):
        return int(value.strip())
    if name in _BOOL_FIELDS and value.strip().lower() in ("true", "false", "1", "0"):
        return value.strip().lower() in ("true", "1")
    return value


def attach_key(value: Any) -> str | None:
    if isinstance(value, str) and value.startswith("attach://"):
        return value[len("attach://") :]
    return None
