"""The demo page and the user's actions over HTTP, served by the demo's fake Telegram.

Why it exists: the page plays a Telegram user, so each of its actions must reach the bot the way
a real user's does: as an update built by the fake's own builders (a message, a button press on a
message the bot really sent, a file whose bytes the bot can getFile, a payment) and delivered to
the bot's webhook by the fake, secret header and all. The page reads the chat back through a long
poll (:func:`fakes.webchat.view.chat_view`) and the files through the fake's file store.

Routes (same origin only for actions; JSON bodies, files as multipart):

* ``GET /demo`` the page; ``GET /demo/chat.css``, ``GET /demo/chat.js`` its files;
* ``GET /demo/api/state?chat=&calls=&digest=&wait=`` the chat, once it differs from ``digest``
  or a button press was answered with a toast (waits at most ``wait`` seconds, 25 at most);
* ``POST /demo/api/message {chat, text, lang}``, ``POST /demo/api/press {chat, message_id, data, lang}``,
  ``POST /demo/api/file`` (chat, lang, caption, file, as=auto|photo|video|audio|voice|document, and
  the page's own measure of a film or sound: duration, width, height) any file as the message kind
  Telegram makes of it; ``POST /demo/api/photo`` (as=photo) and ``POST /demo/api/audio``
  (as=audio|voice) the same for one kind; ``POST /demo/api/sample {chat, lang, kind, caption}`` a sample
  picture, clip or sound as the user's own; ``POST /demo/api/pay {chat, message_id, lang}`` (an invoice message),
  ``POST /demo/api/pay-link {chat, url, lang}`` (a ``t.me/$...`` invoice link the bot created: a
  subscription's is paid as its first recurring payment);
* ``GET /demo/api/file/<file_id>`` a file's bytes, as a download unless it is a picture, video or sound.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import mimetypes
import secrets
import time
from collections.abc import Callable
from importlib import resources
from typing import Any

import aiohttp
import mutagen
from aiohttp import web

from fakes.kie import results
from fakes.telegram.fake import FakeTelegram
from fakes.telegram.media import has_video_track, image_size, movie_facts
from fakes.telegram.updates import message_update, pre_checkout_update, successful_payment_update
from fakes.telegram.wire import FileRecord
from fakes.webchat.view import FILE_PATH, Press, chat_view

DEFAULT_CHAT = 1002  # the page's user (the demo's scripted user is 1001)
USER_NAME = "Guest"
LANGUAGES = ("ru", "en")
LONGEST_WAIT = 25.0  # a long poll's bound: under every browser's and proxy's idle timeout
DELIVERY_SECONDS = 15.0  # the webhook's answer to one update
PAYMENT_SECONDS = 10.0  # Telegram gives the bot 10 s to answer a pre-checkout query
PHOTO_BYTES = 10 * 1024 * 1024  # Telegram's limit for a photo: a bigger picture goes as a file
UPLOAD_BYTES = 50 * 1024 * 1024  # the page's limit; past 20 MB the bot sees the file but cannot getFile it
PHOTO_SIDES = 10_000  # Telegram's photo limits: width + height, and at most 20 times as long as wide
MEASURED_MOST = 24 * 3600  # a length or side the page measured, bounded (anything else counts as unknown)
FORM_SLACK = 64 * 1024  # a form's other fields and part headers around the file
TEXT_LIMIT = 4096  # Telegram's limit of one message: a client sends a longer text as several
TYPED_LIMIT = 4 * TEXT_LIMIT  # what the page's field takes: cut into messages as a Telegram client cuts it
KEPT_PRESSES = 200  # a chat's presses remembered for the answers' markers (as many as messages shown)
_PAGE_FILES = {"page.html": "text/html", "chat.css": "text/css", "chat.js": "text/javascript"}
_STATIC = {name: resources.files(__package__).joinpath(name).read_bytes() for name in _PAGE_FILES}
_PAGE_POLICY = ("default-src 'self'; img-src 'self' data:; media-src 'self' blob:; style-src 'self'; "
                "script-src 'self'; connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'none'; "
                "frame-ancestors 'none'")
# the samples the page offers: a file name, its media type, its bytes (the fake KIE's own results)
_SAMPLES: dict[str, tuple[str, str | None, Callable[[], bytes]]] = {
    "photo": ("sample.png", None, lambda: results.picture("a sample photo", {"aspect_ratio": "3:4"})),
    "video": ("sample.mp4", "video/mp4", results.clip),
    "audio": ("sample.mp3", "audio/mpeg", results.sound),
}
_SEND_AS = ("auto", "photo", "video", "audio", "voice", "document")
_INLINE_KINDS = ("image/png", "image/jpeg", "image/gif", "image/webp", "video/", "audio/")


class Refused(Exception):
    """An action the page cannot do: answered with ``status`` and a sentence the page shows."""

    def __init__(self, status: int, description: str) -> None:
        super().__init__(description)
        self.status = status
        self.description = description


class WebChat:
    """The routes of the page on ``telegram``'s server, and which button presses came from it."""

    def __init__(self, telegram: FakeTelegram) -> None:
        self.telegram = telegram
        self.queries: dict[str, int] = {}  # callback query id -> chat: whose toast an answer is
        self.presses: dict[int, list[Press]] = {}  # chat -> its button presses, oldest first (the newest kept)

    def install(self, app: web.Application) -> None:
        app.router.add_get("/demo", self._page)
        app.router.add_get("/demo/", self._page)
        app.router.add_get("/demo/chat.css", self._static)
        app.router.add_get("/demo/chat.js", self._static)
        app.router.add_get("/demo/api/state", self._state)
        app.router.add_post("/demo/api/message", self._message)
        app.router.add_post("/demo/api/press", self._press)
        app.router.add_post("/demo/api/photo", self._photo)
        app.router.add_post("/demo/api/audio", self._audio)
        app.router.add_post("/demo/api/file", self._any_file)
        app.router.add_post("/demo/api/sample", self._sample)
        app.router.add_post("/demo/api/pay", self._pay)
        app.router.add_post("/demo/api/pay-link", self._pay_link)
        app.router.add_get(FILE_PATH + "{file_id}", self._file)

    # ------------------------------------------------------------------ the page

    async def _page(self, request: web.Request) -> web.Response:
        return _static_response("page.html")

    async def _static(self, request: web.Request) -> web.Response:
        return _static_response(request.path.rsplit("/", 1)[1])

    async def _state(self, request: web.Request) -> web.Response:
        try:
            chat = _chat(request.query.get("chat"))
            since = int(request.query.get("calls") or 0)
            wait = float(request.query.get("wait") or 0)
            if not 0 <= wait <= LONGEST_WAIT:  # NaN and infinity too
                wait = 0.0 if not wait > 0 else LONGEST_WAIT
        except (Refused, ValueError):
            return _refused(Refused(400, "chat, calls and wait must be numbers"))
        digest = request.query.get("digest", "")

        def changed() -> dict[str, Any] | None:
            view = chat_view(self.telegram, chat, since, self.queries, self.presses.get(chat, ()))
            return view if view["digest"] != digest or view["toasts"] else None

        try:
            view = await self.telegram.wait_for(changed, timeout=wait, what="a change in the demo chat")
        except TimeoutError:
            view = chat_view(self.telegram, chat, since, self.queries, self.presses.get(chat, ()))
        return web.json_response(view, headers={"Cache-Control": "no-store"})

    async def _file(self, request: web.Request) -> web.Response:
        record = self.telegram.files.get(request.match_info["file_id"])
        if record is None or record.data is None:
            return web.json_response({"ok": False, "description": "no such file"}, status=404)
        kind = _content_type(record)
        inline = kind.startswith(_INLINE_KINDS)
        headers = {
            "Cache-Control": "private, max-age=3600",
            "X-Content-Type-Options": "nosniff",
            "Content-Security-Policy": "default-src 'none'; sandbox",  # a file never runs as this page
        }
        if not inline:
            name = (record.file_name or record.file_path.rsplit("/", 1)[-1]).replace('"', "")
            headers["Content-Disposition"] = f'attachment; filename="{name}"'
        return web.Response(body=record.data, content_type=kind if inline else "application/octet-stream",
                            headers=headers)

    # ------------------------------------------------------------------ the user's actions

    async def _message(self, request: web.Request) -> web.Response:
        try:
            body = await _json_body(request)
            chat, lang = _chat(body.get("chat")), _lang(body.get("lang"))
            text = str(body.get("text") or "").strip()
            if not text or len(text) > TYPED_LIMIT:
                raise Refused(400, f"the page sends 1 to {TYPED_LIMIT} characters")
            response = None
            for part in client_parts(text):  # back to back, as a Telegram client sends a long text
                update = message_update(self._update_id(), chat, part, language_code=lang, first_name=USER_NAME,
                                        message_id=self.telegram.next_message_id(chat))
                response = await self._deliver(update)
            assert response is not None
            return response
        except Refused as exc:
            return _refused(exc)

    async def _press(self, request: web.Request) -> web.Response:
        try:
            body = await _json_body(request)
            chat, lang = _chat(body.get("chat")), _lang(body.get("lang"))
            data, message_id = body.get("data"), body.get("message_id")
            if not isinstance(data, str) or not isinstance(message_id, int):
                raise Refused(400, "a press names the message and the button's data")
            label = self._button(chat, message_id, data)
            if label is None:
                raise Refused(409, "that button is not on the message any more")
            query_id = str(secrets.randbelow(10**18) + 10**17)
            self.queries[query_id] = chat
            shown = [int(m["message_id"]) for m in self.telegram.chat_messages(chat) if "message_id" in m]
            pressed = self.presses.setdefault(chat, [])
            pressed.append(Press(message_id, data, label, max(shown, default=0)))
            del pressed[:-KEPT_PRESSES]
            update = self.telegram.user_callback(chat, data, message_id=message_id, language_code=lang,
                                                 first_name=USER_NAME, query_id=query_id)
            update["update_id"] = self._update_id()
            return await self._deliver(update)
        except Refused as exc:
            return _refused(exc)

    async def _photo(self, request: web.Request) -> web.Response:
        return await self._upload(request, lambda asked: "photo")

    async def _audio(self, request: web.Request) -> web.Response:
        return await self._upload(request, lambda asked: "voice" if asked == "voice" else "audio")

    async def _any_file(self, request: web.Request) -> web.Response:
        return await self._upload(request, lambda asked: asked if asked in _SEND_AS else "auto")

    async def _upload(self, request: web.Request, mode: Callable[[str], str]) -> web.Response:
        """A file from disk sent as a Telegram client sends it: a picture as a photo, a film as a
        video, a sound as a music file (or a voice message when asked: OGG/Opus, as the app records
        them), anything else, or anything the user sends "as a file", as a document; with the length
        and frame size read from the file here (or, where the file's format is one this server cannot
        read, as the page's browser measured them: what a Telegram client does)."""
        try:
            _same_origin(request)
            if (request.content_length or 0) > UPLOAD_BYTES + FORM_SLACK:
                raise Refused(413, "a file is 50 MB at most in the demo")
            fields, data, name, part_type = await _form(request, UPLOAD_BYTES, "a file is 50 MB at most in the demo")
            chat, lang = _chat(fields.get("chat")), _lang(fields.get("lang"))
            if not data:
                raise Refused(400, "the file is empty")
            kind, mime = _message_kind(mode(fields.get("as", "auto")), data, name, part_type)
            caption = fields.get("caption", "").strip()[:1024] or None
            return await self._send_file(chat, lang, kind, mime, data, name, caption, fields)
        except Refused as exc:
            return _refused(exc)

    async def _sample(self, request: web.Request) -> web.Response:
        """A sample file sent as the user's own (a picture, a clip, a sound: the fake KIE's), so a
        newcomer can try a flow that takes a file without one at hand."""
        try:
            body = await _json_body(request)
            chat, lang = _chat(body.get("chat")), _lang(body.get("lang"))
            kind = body.get("kind")
            if kind not in _SAMPLES:
                raise Refused(400, f"a sample is one of: {', '.join(_SAMPLES)}")
            name, mime, make = _SAMPLES[kind]
            caption = str(body.get("caption") or "").strip()[:1024] or None
            return await self._send_file(chat, lang, kind, mime, make(), name, caption, {})
        except Refused as exc:
            return _refused(exc)

    async def _send_file(self, chat: int, lang: str, kind: str, mime: str | None, data: bytes, name: str | None,
                         caption: str | None, measured: dict[str, str]) -> web.Response:
        """The user's message of ``kind`` with the file, its length and frame size read from it
        (``measured``: the page's own measure, for a format this server cannot read), delivered."""
        who: dict[str, Any] = {"caption": caption, "language_code": lang, "first_name": USER_NAME}
        if kind == "photo":
            update, _ = self.telegram.user_photo(chat, data, **who)
        elif kind in ("audio", "voice"):
            seconds = await asyncio.to_thread(_sound_seconds, data) or _measured(measured.get("duration"))
            update, _ = self.telegram.user_audio(chat, data, voice=kind == "voice", duration=seconds,
                                                 mime_type=mime or "audio/mpeg", file_name=_file_name(name, mime),
                                                 **who)
        elif kind == "video":
            length, width, height = movie_facts(data)
            update, _ = self.telegram.user_video(
                chat, data, duration=int(length + 0.5) if length is not None else _measured(measured.get("duration")),
                width=width or _measured(measured.get("width")), height=height or _measured(measured.get("height")),
                mime_type=mime or "video/mp4", file_name=_file_name(name, mime), **who)
        else:
            update, _ = self.telegram.user_document(chat, data, file_name=_file_name(name, mime), mime_type=mime, **who)
        update["update_id"] = self._update_id()
        return await self._deliver(update)

    async def _pay(self, request: web.Request) -> web.Response:
        """Pay an invoice as Telegram does: a pre-checkout query the bot must confirm within 10 s,
        then the successful payment as a message from the user."""
        try:
            body = await _json_body(request)
            chat, lang = _chat(body.get("chat")), _lang(body.get("lang"))
            return await self._checkout(chat, lang, self._invoice(chat, body.get("message_id")))
        except Refused as exc:
            return _refused(exc)

    async def _pay_link(self, request: web.Request) -> web.Response:
        try:
            body = await _json_body(request)
            chat, lang = _chat(body.get("chat")), _lang(body.get("lang"))
            return await self._checkout(chat, lang, self._invoice_link(str(body.get("url") or "")))
        except Refused as exc:
            return _refused(exc)

    async def _checkout(self, chat: int, lang: str, sent: dict[str, Any]) -> web.Response:
        """The pre-checkout query, its answer awaited, then the payment (a subscription's first)."""
        total = sum(int(price["amount"]) for price in sent["prices"])
        query_id = str(secrets.randbelow(10**18) + 10**17)
        query = pre_checkout_update(self._update_id(), chat, total, str(sent["payload"]), str(sent["currency"]),
                                    query_id=query_id, language_code=lang, first_name=USER_NAME)
        refused = await self._deliver(query)
        if refused.status != 200:
            return refused

        def answered() -> Any:
            return next((call for call in self.telegram.calls("answerPreCheckoutQuery")
                         if call.ok and str(call.params.get("pre_checkout_query_id")) == query_id), None)
        try:
            answer = await self.telegram.wait_for(answered, timeout=PAYMENT_SECONDS, what="the pre-checkout answer")
        except TimeoutError:
            raise Refused(504, "the bot did not confirm the payment within 10 s") from None
        if not answer.params.get("ok"):
            raise Refused(402, str(answer.params.get("error_message") or "the bot refused the payment"))
        period = sent.get("subscription_period")
        paid = successful_payment_update(
            self._update_id(), chat, total, str(sent["payload"]), str(sent["currency"]), language_code=lang,
            first_name=USER_NAME, message_id=self.telegram.next_message_id(chat),
            subscription_expiration_date=int(time.time()) + int(period) if period else None,
            is_first_recurring=bool(period))
        return await self._deliver(paid)

    # ------------------------------------------------------------------ helpers

    def _update_id(self) -> int:
        """Above every update id this bot saw: the embedded database keeps an earlier demo's ids,
        and the bot drops a repeated one as a duplicate (the scripted user does the same)."""
        return max(int(time.time()), self.telegram.next_update_id())

    def _button(self, chat: int, message_id: int, data: str) -> str | None:
        """The label of the button with ``data`` on the message, None when it shows no such button."""
        for message in self.telegram.chat_messages(chat):
            if message.get("message_id") == message_id:
                rows = (message.get("reply_markup") or {}).get("inline_keyboard") or []
                return next((str(b.get("text", "")) for row in rows for b in row
                             if isinstance(b, dict) and b.get("callback_data") == data), None)
        return None

    def _invoice(self, chat: int, message_id: Any) -> dict[str, Any]:
        """The sendInvoice call that made message ``message_id``: the payload lives only there."""
        for call in self.telegram.calls("sendInvoice", chat):
            if call.ok and isinstance(call.result, dict) and call.result.get("message_id") == message_id:
                return call.params
        raise Refused(404, "no such invoice in this chat")

    def _invoice_link(self, url: str) -> dict[str, Any]:
        """The createInvoiceLink call that made link ``url``."""
        for call in self.telegram.calls("createInvoiceLink"):
            if call.ok and call.result == url:
                return call.params
        raise Refused(404, "no such invoice link")

    async def _deliver(self, update: dict[str, Any]) -> web.Response:
        if not self.telegram.webhook_info().get("url"):
            raise Refused(503, "the bot has not set its webhook yet: it is still starting")
        try:
            status = await self.telegram.deliver(update, timeout=DELIVERY_SECONDS)
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise Refused(502, f"the bot's webhook did not answer: {type(exc).__name__}") from None
        if status != 200:
            raise Refused(502, f"the bot's webhook answered {status}")
        return web.json_response({"ok": True, "update_id": update["update_id"]})


class ChatTelegram(FakeTelegram):
    """The fake Telegram Bot API that also serves the demo's web chat (``/demo``)."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.webchat = WebChat(self)

    def _build_app(self) -> web.Application:
        app = super()._build_app()
        self.webchat.install(app)
        return app


def client_parts(text: str, limit: int = TEXT_LIMIT) -> list[str]:
    """A text as a Telegram client sends it: messages of at most `limit` characters, each cut after
    the last newline or space that keeps it whole (a word is never split unless it is longer)."""
    out: list[str] = []
    while len(text) > limit:
        cut = max(text.rfind("\n", 0, limit), text.rfind(" ", 0, limit))
        cut = cut + 1 if cut > 0 else limit
        out.append(text[:cut])
        text = text[cut:]
    return [*out, text] if text else out


def _static_response(name: str) -> web.Response:
    if name not in _STATIC:
        raise web.HTTPNotFound()
    headers = {"Cache-Control": "no-cache", "X-Content-Type-Options": "nosniff"}
    if name == "page.html":
        headers.update({"Content-Security-Policy": _PAGE_POLICY, "Referrer-Policy": "no-referrer"})
    return web.Response(body=_STATIC[name], content_type=_PAGE_FILES[name], charset="utf-8", headers=headers)


def _refused(exc: Refused) -> web.Response:
    return web.json_response({"ok": False, "description": exc.description}, status=exc.status)


def _same_origin(request: web.Request) -> None:
    """Another site open in the same browser must not act as the user (a form posted across sites)."""
    origin = request.headers.get("Origin")
    if origin is not None and origin != f"{request.scheme}://{request.host}":
        raise Refused(403, "actions come from the demo page only")


async def _json_body(request: web.Request) -> dict[str, Any]:
    _same_origin(request)
    if request.content_type != "application/json":  # a cross-site JSON post needs a preflight we never allow
        raise Refused(415, "a JSON body is expected")
    body: Any = None
    with contextlib.suppress(ValueError):
        body = await request.json()
    if not isinstance(body, dict):
        raise Refused(400, "a JSON object is expected")
    return body


def _chat(value: Any) -> int:
    """The page's chat: a private chat, so a positive id (the user's own)."""
    try:
        chat = int(value) if value is not None and not isinstance(value, bool) else DEFAULT_CHAT
    except (TypeError, ValueError):
        raise Refused(400, "chat must be a number") from None
    if not 0 < chat < 2**52:
        raise Refused(400, "chat must be a positive number")
    return chat


def _lang(value: Any) -> str:
    return value if value in LANGUAGES else LANGUAGES[0]


def _picture_kind(data: bytes) -> str | None:
    """The media type of a picture a browser shows, by its first bytes (a photo's record has none)."""
    if data[:8] == b"\x89PNG\r\n\x1a\n":
        return "image/png"
    if data[:3] == b"\xff\xd8\xff":
        return "image/jpeg"
    if data[:6] in (b"GIF87a", b"GIF89a"):
        return "image/gif"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    return None


async def _form(request: web.Request, most: int, too_big: str
                ) -> tuple[dict[str, str], bytes, str | None, str | None]:
    """A multipart form's text fields, its ``file`` part's bytes (read in chunks, refused with 413
    past ``most``: never held whole when too big), that file's name and the type the browser gave it."""
    fields: dict[str, str] = {}
    data = bytearray()
    name: str | None = None
    part_type: str | None = None
    try:
        reader = await request.multipart()
        async for part in reader:
            if not isinstance(part, aiohttp.BodyPartReader) or not part.name:
                continue
            if part.name == "file":
                name = part.filename
                part_type = part.headers.get(aiohttp.hdrs.CONTENT_TYPE)
                while chunk := await part.read_chunk(64 * 1024):
                    data += chunk
                    if len(data) > most:
                        raise Refused(413, too_big)
            else:
                fields[part.name] = (await part.text())[:TEXT_LIMIT]
    except (AssertionError, ValueError, KeyError) as exc:  # not multipart, or a broken body
        raise Refused(400, "a file comes as multipart/form-data with a file part") from exc
    return fields, bytes(data), name, part_type


def _sound_kind(data: bytes) -> str | None:
    """The media type of a sound file by its first bytes, as a Telegram client labels it."""
    if data[:3] == b"ID3":
        return "audio/mpeg"
    if data[:4] == b"OggS":
        return "audio/ogg"
    if data[:4] == b"RIFF" and data[8:12] == b"WAVE":
        return "audio/x-wav"
    if data[:4] == b"fLaC":
        return "audio/flac"
    if data[4:8] == b"ftyp":
        return None if has_video_track(data) else "audio/mp4"
    if len(data) >= 2 and data[0] == 0xFF and data[1] & 0xE0 == 0xE0:  # an MPEG audio frame's sync
        return "audio/aac" if data[1] & 0x06 == 0 else "audio/mpeg"  # layer 00: an ADTS AAC frame
    return None


def _sound_seconds(data: bytes) -> int:
    """The length a Telegram client puts in ``duration``: measured from the file and rounded to
    whole seconds; 0 when it cannot tell (the bot then asks for another file)."""
    try:
        parsed = mutagen.File(io.BytesIO(data))
        length = float(parsed.info.length) if parsed is not None else 0.0
    except Exception:  # hostile or broken bytes are a file of unknown length, never a crash
        return 0
    return int(length + 0.5) if 0 < length < 2**31 else 0


def _file_name(name: str | None, mime: str | None) -> str:
    """The file's name as a client sends it: its base name, or one from its type."""
    base = (name or "").replace("\\", "/").rsplit("/", 1)[-1].strip()[:255]
    extensions = {"audio/mpeg": ".mp3", "audio/ogg": ".ogg", "audio/x-wav": ".wav", "audio/flac": ".flac",
                  "audio/mp4": ".m4a", "audio/aac": ".aac", "video/mp4": ".mp4", "video/quicktime": ".mov",
                  "video/webm": ".webm"}
    if base:
        return base
    stem = "audio" if (mime or "").startswith("audio/") else "video" if (mime or "").startswith("video/") else "file"
    return stem + extensions.get(mime or "", "")


def _film_kind(data: bytes) -> str | None:
    """The media type of a film a browser and Telegram play (MP4/MOV with a picture, WebM), or None."""
    if data[4:8] == b"ftyp" and has_video_track(data):
        return "video/quicktime" if data[8:12] == b"qt  " else "video/mp4"
    if data[:4] == b"\x1aE\xdf\xa3" and b"webm" in data[:64]:
        return "video/webm"
    return None


def _photo_fits(data: bytes) -> bool:
    """Whether Telegram keeps this picture as a photo (else a client sends it as a file)."""
    size = image_size(data)
    if size is None or len(data) > PHOTO_BYTES:
        return False
    width, height = size
    return min(width, height) > 0 and width + height <= PHOTO_SIDES and max(width, height) <= 20 * min(width, height)


def _message_kind(mode: str, data: bytes, name: str | None, part_type: str | None) -> tuple[str, str | None]:
    """Which Telegram message a file from disk becomes, and its media type, for what the user asked:
    ``auto`` (the 📎: by what the file is), ``photo``, ``video``, ``audio``, ``voice`` or ``document``
    (sent as a file, a picture uncompressed); a file that is not what was asked for is refused."""
    picture, film = _picture_kind(data), _film_kind(data)
    sound = None if film else _sound_kind(data)
    if mode == "photo":
        if picture is None:
            raise Refused(415, "that file is not a picture (PNG, JPEG, GIF or WebP)")
        if len(data) > PHOTO_BYTES:
            raise Refused(413, "a photo is 10 MB at most: send it as a file")
        return "photo", None
    if mode == "video":
        if film is None:
            raise Refused(415, "that file is not a video (MP4, MOV or WebM): send it as a file")
        return "video", film
    if mode in ("audio", "voice"):
        if sound is None:
            raise Refused(415, "that file is not a sound (MP3, OGG, WAV, FLAC or M4A)")
        if mode == "voice" and sound != "audio/ogg":
            raise Refused(415, "a voice message is OGG/Opus: send this file as an audio file")
        return mode, sound
    declared = part_type if part_type and part_type != "application/octet-stream" else None
    guessed = mimetypes.guess_type(name or "")[0]
    if mode != "document":
        if picture in ("image/png", "image/jpeg", "image/webp") and _photo_fits(data):
            return "photo", None
        if film is not None:
            return "video", film
        if sound is not None:
            return "audio", sound
    return "document", declared or guessed or picture or film or sound


def _measured(value: str | None) -> int:
    """A length or side the page's browser measured (whole, rounded), 0 when it has none."""
    try:
        number = float(value or 0)
    except ValueError:
        return 0
    return int(number + 0.5) if 0 < number < MEASURED_MOST else 0


def _content_type(record: FileRecord) -> str:
    picture = _picture_kind(record.data or b"")
    if picture is not None or record.kind == "photo":
        return picture or "application/octet-stream"
    return record.mime_type or "application/octet-stream"
