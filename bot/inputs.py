"""What the user typed or sent, checked against the field the wizard asks for: a value, or the
reason it cannot be one (a text key and its values, answered with the same step again).

Files are never downloaded here: a file becomes a FileRef (Telegram's file_id, type, size and
length from the message's metadata) that the jobs actor resolves when it submits the task. The
length is the sender's word: a missing or non-positive one is unknown (a per-second price asks for
another file), and the jobs actor measures the bytes before anything goes to KIE.
"""

from __future__ import annotations

import mimetypes
import re
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

from aiogram.types import Message

from catalog.model import Field, Model
from catalog.payload import FileRef, file_ref

# the Bot API lets a bot download files up to 20 MB (getFile), and the jobs actor downloads every
# file it passes on to KIE: a bigger one would be accepted here and fail after Confirm
BOT_API_DOWNLOAD_LIMIT = 20_000_000
NUMBER_TEXT_MAX = 64  # characters of a typed number: more is no number a person means
NUMBER_EXPONENT_MAX = 18  # |a typed number| stays within 10**-18..10**18 (an int64, as KIE's JSON takes it)


@dataclass(frozen=True, slots=True)
class Bad:
    """Why the input cannot be taken: a key of bot/texts.py and what fills it."""

    key: str
    values: dict[str, Any] = field(default_factory=dict)


def text_value(item: Field, text: str) -> Any:
    """The value of a typed answer, or Bad. A text's limit counts characters, as KIE does."""
    if item.kind in ("int", "float"):
        return _number(item, text)
    value = text.strip()
    if not value:
        return Bad("bad_empty")
    if item.max_length is not None and len(value) > item.max_length:
        return Bad("bad_too_long_text", {"got": len(value), "limit": item.max_length})
    if item.min_length is not None and len(value) < item.min_length:
        return Bad("bad_too_short_text", {"got": len(value), "limit": item.min_length})
    if item.pattern is not None and not re.fullmatch(item.pattern, value):
        return Bad("bad_pattern")
    return value


def _number(item: Field, text: str) -> Any:
    """A typed number, compared with the field's bounds as an exact Decimal before it becomes an
    int or a float: int(Decimal("1e1000000")) builds a million-digit integer (~25 s of CPU on the
    event loop). A field without bounds still refuses what no model means (over 10**18 or below
    10**-18 but not zero), and text longer than any number a person types is refused unread."""
    bad = Bad("bad_number", {"low": item.minimum, "high": item.maximum})
    raw = text.strip().replace(",", ".").replace(" ", "")
    if len(raw) > NUMBER_TEXT_MAX:
        return bad
    try:
        number = Decimal(raw)
    except InvalidOperation:
        return bad
    if not number.is_finite():  # NaN, sNaN, Infinity
        return bad
    if (item.minimum is not None and number < Decimal(str(item.minimum))) or (
            item.maximum is not None and number > Decimal(str(item.maximum))):
        return bad
    if number and not -NUMBER_EXPONENT_MAX <= number.adjusted() <= NUMBER_EXPONENT_MAX:
        return bad
    if item.kind == "int":
        if number != number.to_integral_value():
            return bad
        return int(number)
    return float(number)


@dataclass(frozen=True, slots=True)
class Sent:
    """A file in a message: what Telegram calls it (photo, document, video...), and its reference."""

    kind: str
    family: str  # image, video, audio, or "" for a document of another type
    ref: FileRef


def sent_file(message: Message) -> Sent | None:
    """The file a message carries (a photo's largest size), or None when it carries none."""
    if message.photo:
        size = message.photo[-1]
        return Sent("photo", "image", file_ref(size.file_id, "image/jpeg", size.file_size or 0))
    if message.video is not None:
        v = message.video
        return Sent("video", "video", file_ref(v.file_id, v.mime_type or "video/mp4", v.file_size or 0,
                                               float(v.duration)))
    if message.animation is not None:  # a GIF: Telegram turns it into an MP4 without sound
        a = message.animation
        return Sent("animation", "video", file_ref(a.file_id, a.mime_type or "video/mp4", a.file_size or 0,
                                                   float(a.duration)))
    if message.video_note is not None:
        n = message.video_note
        return Sent("video_note", "video", file_ref(n.file_id, "video/mp4", n.file_size or 0, float(n.duration)))
    if message.audio is not None:
        au = message.audio
        return Sent("audio", "audio", file_ref(au.file_id, au.mime_type or _guess(au.file_name) or "audio/mpeg",
                                               au.file_size or 0, float(au.duration)))
    if message.voice is not None:
        vo = message.voice
        return Sent("voice", "audio", file_ref(vo.file_id, vo.mime_type or "audio/ogg", vo.file_size or 0,
                                               float(vo.duration)))
    if message.document is not None:
        d = message.document
        mime = (d.mime_type or _guess(d.file_name) or "application/octet-stream").lower()
        family = mime.split("/", 1)[0] if mime.split("/", 1)[0] in ("image", "video", "audio") else ""
        return Sent("document", family, file_ref(d.file_id, mime, d.file_size or 0))
    return None


def _guess(name: str | None) -> str | None:
    return mimetypes.guess_type(name)[0] if name else None


def check_file(model: Model, item: Field, sent: Sent) -> Bad | None:
    """None when the file fits the field: its type, the field's MIME types, size and length."""
    ref = sent.ref
    if sent.family != item.kind:
        return Bad("bad_file_kind", {"want": item.kind})
    if item.mime and ref["mime"] not in item.mime:
        return Bad("bad_mime", {"allowed": formats(item)})
    if ref["bytes"] > size_limit(item):
        return Bad("bad_too_big", {"size": _mb(ref["bytes"]), "limit": _mb(size_limit(item))})
    seconds = ref["seconds"]
    if seconds is not None and item.max_seconds is not None and seconds > item.max_seconds:
        return Bad("bad_too_long_media", {"got": round(seconds), "limit": _whole(item.max_seconds)})
    if seconds is None and _metered(model, item):  # never a 0 ₽ price: another file, or as audio/video
        return Bad("bad_no_length" if sent.kind == "document" else "bad_unknown_length")
    return None


def _metered(model: Model, item: Field) -> bool:
    """The field's length sets the price, so a file whose length Telegram does not tell cannot be priced."""
    return any(sku.unit == "second" and sku.of == item.name for sku in model.skus)


def formats(item: Field) -> str:
    """The file types a field takes, as people name them: "JPG, PNG, WEBP"."""
    return ", ".join(dict.fromkeys(_short(m) for m in item.mime))


def size_limit(item: Field) -> int:
    return min(item.max_bytes or BOT_API_DOWNLOAD_LIMIT, BOT_API_DOWNLOAD_LIMIT)


def limit_mb(item: Field) -> str:
    return _mb(size_limit(item))


def _short(mime: str) -> str:
    kind = mime.split("/", 1)[1].upper()
    return {"JPEG": "JPG", "QUICKTIME": "MOV", "X-MATROSKA": "MKV", "MPEG": "MP3", "X-WAV": "WAV"}.get(kind, kind)


def _mb(size: int) -> str:
    return f"{size / 1_000_000:.1f}".rstrip("0").rstrip(".")


def _whole(number: float) -> int | float:
    return int(number) if float(number).is_integer() else number
