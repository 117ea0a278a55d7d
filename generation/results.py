"""What a job's result is, apart from any chat: the words kept of it (jobs.result) and read
back, what of it reached the chat, a file's name, a cover's size, Telegram's word for "too big".

Pure functions, so generation.deliver (which talks to Telegram and the store) stays about the
order of sending and settling, and these can be read and tested alone.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import urlsplit

from aiogram.exceptions import TelegramAPIError, TelegramBadRequest, TelegramEntityTooLarge

from kie import ResultItem
from store.job_parts import Part
from store.jobs import Job

MAX_RESULTS = 10  # result files sent for one job
TOO_BIG = ("too big", "too large", "entity too large")  # Telegram's 400 words for an oversized file
SETTLED = ("document", "video", "audio", "link", "missing", "text")  # a result with one of these is done
TITLE_MAX = 200  # characters of a file's title kept in the job's result
TEXT_MAX = 4000  # characters of one text result (a lyrics variant) sent and kept: one message, a few KB


def too_big(exc: TelegramAPIError) -> bool:
    """Telegram says the request or the file is over its limit (a 413, or a 400 saying so)."""
    return isinstance(exc, TelegramEntityTooLarge) or (
        isinstance(exc, TelegramBadRequest) and any(word in exc.message.lower() for word in TOO_BIG))


def openable(url: str) -> bool:
    """A result URL the user can open themselves (a link is worth sending)."""
    parts = urlsplit(url)
    return parts.scheme in ("https", "http") and bool(parts.hostname)


def settled(parts: dict[str, Part], index: int) -> bool:
    return any(f"{index}:{suffix}" in parts for suffix in SETTLED)


def reached(parts: dict[str, Part]) -> bool:
    return any(p.reached for p in parts.values())


def summary(parts: dict[str, Part], count: int) -> list[dict[str, Any]]:
    """What of each result reached the chat, as kept in the job's result."""
    sent: list[dict[str, Any]] = []
    for index in range(count):
        mine = {key.split(":", 1)[1]: part for key, part in parts.items() if key.startswith(f"{index}:")}
        main = next((s for s in ("photo", "video", "audio", "document", "text", "link") if s in mine), None)
        if main is None:
            sent.append({"as": "missing", "file_id": None})
            continue
        entry: dict[str, Any] = {"as": main, "file_id": mine[main].file_id}
        if "document" in mine:
            entry["document_file_id"] = mine["document"].file_id
        sent.append(entry)
    return sent


def file_name(job: Job, url: str, kind: str) -> str:
    """The name a result file carries in the chat: the job and the extension of its URL."""
    path = urlsplit(url).path
    dot = path.rfind(".")
    extension = path[dot:].lower() if dot > path.rfind("/") and len(path) - dot <= 6 else ""
    if not extension[1:].isalnum():
        extension = {"photo": ".png", "video": ".mp4", "audio": ".mp3"}.get(kind, "")
    return f"result-{job.id}{extension}"


def text_results(result_object: object) -> list[dict[str, str]]:
    """A text result as messages to send: Suno's lyrics ([{title, text}], 2-3 variants), or one
    {"text": ...} or a bare string; each cut to TEXT_MAX characters (one message, a few KB kept)."""
    found = result_object if isinstance(result_object, list) else [result_object]
    out: list[dict[str, str]] = []
    for entry in found[:MAX_RESULTS]:
        if isinstance(entry, str):
            entry = {"text": entry}
        if not isinstance(entry, dict) or not isinstance(entry.get("text"), str) or not entry["text"].strip():
            continue
        text = entry["text"].strip()
        if len(text) > TEXT_MAX:
            text = text[:TEXT_MAX - 1].rstrip() + "…"
        title = entry.get("title")
        out.append({"title": title.strip()[:TITLE_MAX] if isinstance(title, str) else "", "text": text})
    return out


def stored_result(urls: list[str], kind: str, files: list[ResultItem], task_id: str | None,
                  words: Sequence[Mapping[str, str]]) -> dict[str, Any]:
    """What a job keeps of its result (jobs.result): the URLs, each file's details that actions
    name (Suno's audioId as ref, its title, cover and length), KIE's task id, a text result's
    words. Kept small: no lyrics of songs, titles cut."""
    result: dict[str, Any] = {"urls": urls, "kind": kind, "task_id": task_id, "items": [
        {"url": item.url, "title": item.title[:TITLE_MAX] if item.title else None, "cover": item.cover_url,
         "ref": item.ref, "duration": item.duration} for item in files]}
    if words:
        result["texts"] = [dict(w) for w in words]
    return result


def stored_items(result: Mapping[str, Any] | None) -> list[ResultItem]:
    """The files a job's kept result names, as items (a later step sends the rest with their titles)."""
    items: list[ResultItem] = []
    for entry in (result or {}).get("items") or []:
        if not isinstance(entry, dict) or not isinstance(entry.get("url"), str):
            return []  # not ours: the URLs alone
        duration = entry.get("duration")
        items.append(ResultItem(entry["url"], title=_text(entry.get("title")), cover_url=_text(entry.get("cover")),
                                ref=_text(entry.get("ref")),
                                duration=float(duration) if isinstance(duration, int | float) else None))
    return items


def stored_words(result: Mapping[str, Any] | None) -> list[dict[str, str]]:
    return text_results((result or {}).get("texts") or [])


def _text(value: object) -> str | None:
    return value if isinstance(value, str) else None


def jpeg_size(data: bytes) -> tuple[int, int] | None:
    """A JPEG's (width, height) from its frame header, or None when it is not a JPEG (no image
    library needed: Telegram takes only a JPEG thumbnail, and only its size is checked)."""
    if not data.startswith(b"\xff\xd8"):
        return None
    at = 2
    while at + 4 <= len(data):
        if data[at] != 0xFF:
            return None
        marker = data[at + 1]
        if marker == 0xFF:  # fill byte
            at += 1
            continue
        if marker in (0x01, *range(0xD0, 0xD8)):  # markers without a length
            at += 2
            continue
        length = int.from_bytes(data[at + 2:at + 4], "big")
        if length < 2:
            return None
        if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
            if at + 9 > len(data):
                return None
            height = int.from_bytes(data[at + 5:at + 7], "big")
            width = int.from_bytes(data[at + 7:at + 9], "big")
            return (width, height) if width and height else None
        if marker in (0xD9, 0xDA):  # the end, or the scan before any frame header
            return None
        at += 2 + length
    return None
