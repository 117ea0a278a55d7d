"""Files and media: the files the fake knows, file parameters resolved, the media objects messages carry.

Why it exists: a photo, video or document can reach the fake as a multipart upload, an
``attach://`` reference, an http(s) URL the fake downloads, or a ``file_id`` it already knows —
and comes back as Telegram's ``PhotoSize`` list or media object with sizes sniffed from the
bytes. :class:`MediaMethods` does that for the send methods, and serves ``getFile``.
"""

from __future__ import annotations

import mimetypes
import os
import secrets
import struct
from typing import Any

import aiohttp

from fakes.telegram.updates import chat_dict, photo_update, user_dict
from fakes.telegram.wire import Call, FileRecord, attach_key, bad, now
from fakes.telegram.world import TelegramWorld

DOWNLOAD_LIMIT = 20 * 1024 * 1024  # the biggest file getFile lets a bot download (Bot API)
_FILE_PREFIXES = {
    "photo": "AgACAgIAAxkBAAI",
    "video": "BAACAgIAAxkBAAI",
    "audio": "CQACAgIAAxkBAAI",
    "document": "BQACAgIAAxkBAAI",
    "animation": "CgACAgIAAxkBAAI",
    "voice": "AwACAgIAAxkBAAI",
}
_FILE_FOLDERS = {
    "photo": "photos",
    "video": "videos",
    "audio": "music",
    "document": "documents",
    "animation": "animations",
    "voice": "voice",
}
_DEFAULT_EXTENSIONS = {"photo": ".jpg", "video": ".mp4", "audio": ".mp3", "document": "", "animation": ".mp4",
                       "voice": ".oga"}
_DEFAULT_MIME = {"video": "video/mp4", "audio": "audio/mpeg", "animation": "video/mp4", "voice": "audio/ogg"}


def image_size(data: bytes) -> tuple[int, int] | None:
    """Width and height of a PNG, GIF, WebP or JPEG, or None."""
    if data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) >= 24:
        width, height = struct.unpack(">II", data[16:24])
        return int(width), int(height)
    if data[:6] in (b"GIF87a", b"GIF89a") and len(data) >= 10:
        width, height = struct.unpack("<HH", data[6:10])
        return int(width), int(height)
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP" and len(data) >= 30:
        chunk = data[12:16]
        if chunk == b"VP8X":
            return 1 + int.from_bytes(data[24:27], "little"), 1 + int.from_bytes(data[27:30], "little")
        if chunk == b"VP8L":
            bits = int.from_bytes(data[21:25], "little")
            return 1 + (bits & 0x3FFF), 1 + ((bits >> 14) & 0x3FFF)
        if chunk == b"VP8 ":
            width, height = struct.unpack("<HH", data[26:30])
            return int(width & 0x3FFF), int(height & 0x3FFF)
        return None
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


def _boxes(data: bytes, start: int = 0, end: int | None = None) -> list[tuple[bytes, int, int]]:
    """An MP4's boxes at one level: (type, payload start, payload end); stops at a broken size."""
    found = []
    end = len(data) if end is None else end
    while start + 8 <= end:
        size, kind, header = int.from_bytes(data[start : start + 4], "big"), data[start + 4 : start + 8], 8
        if size == 1 and start + 16 <= end:
            size, header = int.from_bytes(data[start + 8 : start + 16], "big"), 16
        elif size == 0:
            size = end - start
        if size < header or start + size > end:
            break
        found.append((kind, start + header, start + size))
        start += size
    return found


def _child(data: bytes, parent: tuple[bytes, int, int], kind: bytes) -> tuple[bytes, int, int] | None:
    return next((box for box in _boxes(data, parent[1], parent[2]) if box[0] == kind), None)


def movie_facts(data: bytes) -> tuple[float | None, int | None, int | None]:
    """An MP4/MOV's length by its movie header and its video track's frame size (Nones where it has
    none): what Telegram reads from a video it stores, so a sent clip is described as it plays."""
    if data[4:8] != b"ftyp":
        return None, None, None
    moov = next((box for box in _boxes(data) if box[0] == b"moov"), None)
    if moov is None:
        return None, None, None
    seconds: float | None = None
    mvhd = _child(data, moov, b"mvhd")
    if mvhd is not None and mvhd[2] - mvhd[1] >= 32:
        body = data[mvhd[1] : mvhd[2]]
        scale, length = struct.unpack(">IQ", body[20:32]) if body[0] == 1 else struct.unpack(">II", body[12:20])
        seconds = length / scale if scale else None
    for trak in (box for box in _boxes(data, moov[1], moov[2]) if box[0] == b"trak"):
        tkhd, mdia = _child(data, trak, b"tkhd"), _child(data, trak, b"mdia")
        hdlr = _child(data, mdia, b"hdlr") if mdia is not None else None
        if tkhd is None or hdlr is None or data[hdlr[1] + 8 : hdlr[1] + 12] != b"vide" or tkhd[2] - tkhd[1] < 8:
            continue
        width, height = (value >> 16 for value in struct.unpack(">II", data[tkhd[2] - 8 : tkhd[2]]))
        if width and height:
            return seconds, width, height
    return seconds, None, None


def has_video_track(data: bytes) -> bool:
    """An MP4/MOV with a picture (a film), not only sound (an M4A)."""
    return movie_facts(data)[1] is not None


def _scaled(size: tuple[int, int], limit: int) -> tuple[int, int]:
    width, height = size
    biggest = max(width, height, 1)
    if biggest <= limit:
        return max(width, 1), max(height, 1)
    return max(1, round(width * limit / biggest)), max(1, round(height * limit / biggest))


class MediaMethods(TelegramWorld):
    """File registry and media handling, shared by every method that sends or reads a file."""

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
        duration = 5 if kind in ("video", "audio", "animation") else None
        if kind in ("video", "animation") and data:
            seconds, film_w, film_h = movie_facts(data)  # a real clip is described as it plays
            if seconds is not None:
                duration = int(seconds + 0.5)
            if film_w and film_h:
                width, height = film_w, film_h
        if kind in ("photo", "video", "animation") and width is None:
            sniffed = image_size(data or b"") if data else None
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
            duration=duration,
        )
        self.files[record.file_id] = record
        self._files_by_path[record.file_path] = record
        return record

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

    def user_audio(
        self,
        chat_id: int,
        data: bytes,
        *,
        voice: bool,
        duration: int,
        mime_type: str,
        file_name: str | None = None,
        caption: str | None = None,
        **kwargs: Any,
    ) -> tuple[dict[str, Any], FileRecord]:
        """A user's voice message (``voice``: OGG/Opus recorded in the app, no file name) or music
        file (``audio``), with the ``duration`` the user's client measured, whose bytes the bot can
        getFile and download."""
        kind = "voice" if voice else "audio"
        record = self.add_file(data, kind=kind, file_name=None if voice else file_name, mime_type=mime_type)
        record.duration = duration
        kwargs.setdefault("message_id", self.next_message_id(chat_id))
        update = media_update(self.next_update_id(), chat_id, record, caption=caption, **kwargs)
        return update, record

    def user_video(
        self,
        chat_id: int,
        data: bytes,
        *,
        duration: int,
        width: int,
        height: int,
        mime_type: str,
        file_name: str | None = None,
        caption: str | None = None,
        **kwargs: Any,
    ) -> tuple[dict[str, Any], FileRecord]:
        """A user's video (``Video``: the length and frame size the user's client measured), whose
        bytes the bot can getFile and download."""
        record = self.add_file(data, kind="video", file_name=file_name, mime_type=mime_type)
        record.duration, record.width, record.height = duration, width, height
        kwargs.setdefault("message_id", self.next_message_id(chat_id))
        update = media_update(self.next_update_id(), chat_id, record, caption=caption, **kwargs)
        return update, record

    def user_document(
        self,
        chat_id: int,
        data: bytes,
        *,
        file_name: str,
        mime_type: str | None,
        caption: str | None = None,
        **kwargs: Any,
    ) -> tuple[dict[str, Any], FileRecord]:
        """A user's file sent as a file (``Document``: any bytes, a picture uncompressed), whose
        bytes the bot can getFile and download."""
        record = self.add_file(data, kind="document", file_name=file_name, mime_type=mime_type)
        kwargs.setdefault("message_id", self.next_message_id(chat_id))
        update = media_update(self.next_update_id(), chat_id, record, caption=caption, **kwargs)
        return update, record

    async def _file_param(self, call: Call, name: str, kind: str, *, value: Any = None) -> FileRecord:
        """Resolve a file parameter: an upload (attach:// or a part of that name), a URL, or a file_id."""
        if value is None:
            value = call.params.get(name)
        key = attach_key(value)
        upload = call.uploads.get(key) if key else (call.uploads.get(name) if value is None else None)
        if upload is not None:
            if not upload.data:
                raise bad("file must be non-empty")
            file_name = upload.filename if kind in ("document", "audio", "video", "animation") else None
            mime = None if upload.content_type == "application/octet-stream" else upload.content_type
            return self.add_file(upload.data, kind=kind, file_name=file_name, mime_type=mime)
        if key is not None or value is None or value == "":
            raise bad(f"there is no {name} in the request")
        if not isinstance(value, str):
            raise bad(f"wrong {name} parameter")
        if value.startswith(("http://", "https://")):
            data, content_type = await self._fetch(value, kind)
            file_name = os.path.basename(value.split("?", 1)[0]) or None
            return self.add_file(data, kind=kind, file_name=file_name, mime_type=content_type)
        known = self.files.get(value)
        if known is None:
            raise bad("wrong file identifier/HTTP URL specified")
        if known.kind != kind and not (kind == "document" or {known.kind, kind} <= {"video", "animation"}):
            raise bad(f"can't use file of type {known.kind.capitalize()} as {kind.capitalize()}")
        return known

    async def _fetch(self, url: str, kind: str) -> tuple[bytes | None, str | None]:
        if not self.fetch_urls or self._session is None:
            return None, None
        try:
            async with self._session.get(url, timeout=aiohttp.ClientTimeout(total=15)) as response:
                if response.status != 200:
                    raise bad("failed to get HTTP URL content")
                data = await response.read()
                content_type = response.content_type
        except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
            raise bad("failed to get HTTP URL content") from exc
        if kind == "photo" and not content_type.startswith("image/"):
            raise bad("wrong type of the web page content")
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

    async def _get_file(self, call: Call) -> dict[str, Any]:
        file_id = call.params.get("file_id")
        if not file_id:
            raise bad("file_id is empty")
        record = self.files.get(str(file_id))
        if record is None:
            raise bad("invalid file_id")
        if record.size is not None and record.size > DOWNLOAD_LIMIT:
            raise bad("file is too big")
        result: dict[str, Any] = {"file_id": record.file_id, "file_unique_id": record.file_unique_id}
        if record.size is not None:
            result["file_size"] = record.size
            result["file_path"] = record.file_path
        return result


def media_update(
    update_id: int,
    chat_id: int,
    record: FileRecord,
    *,
    caption: str | None = None,
    user_id: int | None = None,
    language_code: str | None = "ru",
    first_name: str = "Test",
    message_id: int | None = None,
) -> dict[str, Any]:
    """An update with the user's ``record`` as Telegram's ``Voice``, ``Audio``, ``Video`` or
    ``Document`` (by its kind): ``duration`` always for sound and film, as the Bot API guarantees,
    ``width`` and ``height`` for a film; a file name for anything but a voice message."""
    user = user_dict(user_id or (chat_id if chat_id > 0 else 100_001), first_name, language_code)
    media: dict[str, Any] = {"file_id": record.file_id, "file_unique_id": record.file_unique_id}
    if record.kind == "video":
        media["width"], media["height"] = record.width or 0, record.height or 0
    if record.kind in ("voice", "audio", "video"):
        media["duration"] = record.duration or 0
    if record.kind != "voice" and record.file_name:
        media["file_name"] = record.file_name
    if record.mime_type:
        media["mime_type"] = record.mime_type
    if record.size is not None:
        media["file_size"] = record.size
    message: dict[str, Any] = {
        "message_id": update_id if message_id is None else message_id,
        "from": user,
        "chat": chat_dict(chat_id, user),
        "date": now(),
        record.kind if record.kind in ("voice", "audio", "video") else "document": media,
    }
    if caption is not None:
        message["caption"] = caption
    return {"update_id": update_id, "message": message}
