"""A fake of KIE AI's Market ("jobs") API, served by a real aiohttp server on 127.0.0.1.

Why it exists: the end-to-end tests and the demo mode must drive the bot's real KIE client over
real HTTP — envelopes whose business status lives in the body's ``code``, ``param`` and
``resultJson`` sent as JSON *strings*, the waiting → queuing → generating → success|fail
progression, signed and duplicated callbacks, short-lived result URLs, file uploads — without
spending KIE credits or touching the network. Point the bot at it with ``KIE_API_BASE=<base_url>``
(the file upload service, a separate host at KIE, is served from the same base URL here).

The behaviour follows KIE's documented wire format:

* ``POST /api/v1/jobs/createTask`` (Bearer key; ``{model, callBackUrl, input}``) → ``data.taskId``;
* ``GET /api/v1/jobs/recordInfo?taskId=`` → the task record;
* ``GET /api/v1/chat/credit`` → credits left (an int);
* ``POST /api/file-stream-upload`` (multipart ``file``, ``uploadPath``, ``fileName``) → ``data.fileUrl``;
* ``GET /files/<name>`` serves generated results (a small PNG, MP4-ish or MP3-ish bytes) and uploads.

Tests steer it with :meth:`FakeKie.plan` (outcome and duration of the next tasks),
:meth:`FakeKie.inject` (error envelopes, delays, hangs, a connection dropped after the task was
created), :meth:`FakeKie.finish` (complete a held task), and observe it through
:meth:`FakeKie.calls`, :attr:`FakeKie.tasks`, :attr:`FakeKie.callback_attempts` and
:meth:`FakeKie.wait_for`, which wakes on every change instead of sleeping blindly.

Standalone: ``python -m fakes.kie_api --port 8082`` prints ``{"base_url": ...}`` as one JSON line
and serves until SIGINT or SIGTERM.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import hashlib
import hmac
import json
import mimetypes
import os
import re
import signal
import struct
import time
import uuid
import zlib
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import TracebackType
from typing import Any, Literal, TypeVar
from urllib.parse import quote

import aiohttp
from aiohttp import web

__all__ = [
    "CREATE_PATH",
    "CREDIT_PATH",
    "JOB_MODELS",
    "RECORD_PATH",
    "UPLOAD_PATH",
    "Call",
    "CallbackAttempt",
    "FakeKie",
    "FakeTask",
    "Injection",
    "Plan",
    "media_kind",
    "sign_callback",
]

CREATE_PATH = "/api/v1/jobs/createTask"
RECORD_PATH = "/api/v1/jobs/recordInfo"
CREDIT_PATH = "/api/v1/chat/credit"
UPLOAD_PATH = "/api/file-stream-upload"
FILES_PREFIX = "/files/"

# Market ("jobs") model ids known to KIE (from models_reference.yaml); FakeKie(models=...) overrides.
_JOB_MODEL_IDS = """
flux-2/pro-image-to-image flux-2/pro-text-to-image flux-2/flex-image-to-image flux-2/flex-text-to-image
gpt-image/1.5-text-to-image gpt-image/1.5-image-to-image gpt-image-2-text-to-image gpt-image-2-image-to-image
nano-banana-2 google/imagen4-fast google/imagen4-ultra google/imagen4 google/nano-banana-edit
google/nano-banana nano-banana-pro grok-imagine/text-to-image grok-imagine/image-to-image
ideogram/character-edit ideogram/character-remix ideogram/character ideogram/v3-text-to-image
ideogram/v3-edit ideogram/v3-remix qwen/text-to-image qwen/image-to-image qwen/image-edit qwen2/image-edit
qwen2/text-to-image recraft/remove-background recraft/crisp-upscale bytedance/seedream
bytedance/seedream-v4-text-to-image bytedance/seedream-v4-edit seedream/4.5-text-to-image seedream/4.5-edit
seedream/5-lite-text-to-image seedream/5-lite-image-to-image topaz/image-upscale wan/2-7-image
wan/2-7-image-pro z-image elevenlabs/text-to-dialogue-v3 elevenlabs/text-to-speech-turbo-2-5
elevenlabs/text-to-speech-multilingual-v2 elevenlabs/audio-isolation bytedance/seedance-2
bytedance/seedance-2-fast bytedance/seedance-2-mini bytedance/seedance-1.5-pro
bytedance/v1-pro-fast-image-to-video bytedance/v1-pro-image-to-video bytedance/v1-pro-text-to-video
bytedance/v1-lite-image-to-video bytedance/v1-lite-text-to-video gemini-omni-video grok-imagine/text-to-video
grok-imagine/image-to-video grok-imagine/upscale grok-imagine/extend grok-imagine-video-1-5-preview
hailuo/2-3-image-to-video-pro hailuo/2-3-image-to-video-standard hailuo/02-text-to-video-pro
hailuo/02-image-to-video-pro hailuo/02-text-to-video-standard hailuo/02-image-to-video-standard
happyhorse/text-to-video happyhorse/image-to-video happyhorse/reference-to-video happyhorse/video-edit
happyhorse-1-1/image-to-video happyhorse-1-1/text-to-video happyhorse-1-1/reference-to-video
infinitalk/from-audio kling-2.6/text-to-video kling-2.6/image-to-video kling/v2-5-turbo-image-to-video-pro
kling/v2-5-turbo-text-to-video-pro kling/ai-avatar-standard kling/ai-avatar-pro
kling/v2-1-master-image-to-video kling/v2-1-master-text-to-video kling/v2-1-pro kling/v2-1-standard
kling-2.6/motion-control kling-3.0/motion-control kling/v3-turbo-text-to-video kling/v3-turbo-image-to-video
omnihuman-1-5 omnihuman-1-5/human-identification omnihuman-1-5/subject-detection topaz/video-upscale
volcengine/video-to-video-lip-sync wan/2-6-image-to-video wan/2-6-text-to-video wan/2-6-video-to-video
wan/2-2-a14b-image-to-video-turbo wan/2-2-a14b-text-to-video-turbo wan/2-2-a14b-speech-to-video-turbo
wan/2-2-animate-move wan/2-2-animate-replace wan/2-6-flash-image-to-video wan/2-6-flash-video-to-video
wan/2-5-image-to-video wan/2-5-text-to-video wan/2-7-text-to-video wan/2-7-image-to-video wan/2-7-videoedit
wan/2-7-r2v kling-3.0/video sora-2-text-to-video sora-2-image-to-video sora-2-pro-text-to-video
sora-2-pro-image-to-video sora-2-pro-storyboard sora-watermark-remover ideogram/v3-reframe
elevenlabs/sound-effect-v2 elevenlabs/speech-to-text
"""
JOB_MODELS: frozenset[str] = frozenset(_JOB_MODEL_IDS.split())

Outcome = Literal["success", "fail"]
MediaKind = Literal["image", "video", "audio"]
T = TypeVar("T")

RUNNING_STATES = ("waiting", "queuing", "generating")
TERMINAL_STATES = ("success", "fail")
_STATE_ORDER = {state: index for index, state in enumerate((*RUNNING_STATES, *TERMINAL_STATES))}

DEFAULT_MESSAGES: dict[int, str] = {
    200: "success",
    400: "Bad request",
    401: "You do not have access permissions",
    402: "Credits insufficient",
    404: "Not found",
    422: "Validation error",
    429: "Rate limited: too many requests",
    433: "Sub-key usage limit exceeded",
    455: "Service under maintenance",
    500: "Server error",
    501: "Generation failed",
    505: "Feature disabled",
}
SUCCESS_CALLBACK_MSG = "Playground task completed successfully."

_VIDEO_WORDS = (
    "veo",
    "kling",
    "hailuo",
    "wan/",
    "sora",
    "seedance",
    "happyhorse",
    "omnihuman",
    "infinitalk",
    "lip-sync",
    "grok-imagine/extend",
    "grok-imagine/upscale",
)
_CONTENT_TYPES: dict[MediaKind, tuple[str, str]] = {
    "image": ("image/png", "png"),
    "video": ("video/mp4", "mp4"),
    "audio": ("audio/mpeg", "mp3"),
}


def _ms() -> int:
    return int(time.time() * 1000)


def media_kind(model: str) -> MediaKind:
    """Guess what a model produces: "video" ids win, then "image" ids, then known video families."""
    lowered = model.lower()
    if "video" in lowered:
        return "video"
    if "image" in lowered:
        return "image"
    if any(word in lowered for word in _VIDEO_WORDS):
        return "video"
    if "elevenlabs" in lowered or "suno" in lowered:
        return "audio"
    return "image"


def sign_callback(task_id: str, timestamp: str, key: str) -> str:
    """KIE's webhook signature: base64(HMAC-SHA256(taskId + "." + timestamp, key))."""
    digest = hmac.new(key.encode(), f"{task_id}.{timestamp}".encode(), hashlib.sha256).digest()
    return base64.b64encode(digest).decode()


def _png(seed: str, size: int = 16) -> bytes:
    """A valid solid-colour RGB PNG whose colour depends on ``seed``."""
    red, green, blue = hashlib.sha256(seed.encode()).digest()[:3]
    raw = (b"\x00" + bytes((red, green, blue)) * size) * size

    def chunk(tag: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", size, size, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b"")


def _mp4(seed: str) -> bytes:
    """MP4-looking bytes (ftyp + mdat boxes): enough for content sniffing, not for playback."""

    def box(tag: bytes, payload: bytes) -> bytes:
        return struct.pack(">I", 8 + len(payload)) + tag + payload

    ftyp = box(b"ftyp", b"isom" + struct.pack(">I", 0x200) + b"isomiso2avc1mp41")
    return ftyp + box(b"free", b"") + box(b"mdat", hashlib.sha256(seed.encode()).digest() * 32)


def _mp3(seed: str) -> bytes:
    """MP3-looking bytes: an empty ID3v2 tag followed by a few silent 128 kbit/s frames."""
    frame = b"\xff\xfb\x90\x64" + bytes(413)
    return b"ID3\x03\x00\x00\x00\x00\x00\x00" + frame * 4


_GENERATORS: dict[MediaKind, Callable[[str], bytes]] = {"image": _png, "video": _mp4, "audio": _mp3}


@dataclass
class Call:
    """One request the fake received (the Authorization value is never kept)."""

    method: str
    path: str
    query: dict[str, str]
    json: Any
    headers: dict[str, str]
    at: float
    form: dict[str, str] | None = None
    status: int | None = None  # HTTP status answered; None while running, or when hung/dropped


@dataclass
class Plan:
    """How the next tasks of a model (or of every model, ``"*"``) behave."""

    outcome: Outcome = "success"
    duration: float | None = None  # seconds to the terminal state; None = FakeKie.duration
    fail_code: str = "500"
    fail_msg: str = "Internal error, please try again later."
    result_urls: list[str] | None = None  # verbatim resultUrls instead of files served by the fake
    result_object: Any = None  # {"resultObject": ...} instead of media (text models)
    result_count: int = 1
    kind: MediaKind | None = None  # media served; None = media_kind(model)
    hold: bool = False  # stop at "generating" until FakeKie.finish(task_id)
    remaining: int | None = None  # tasks left to apply to; None = all subsequent tasks


@dataclass
class Injection:
    """A fault for the next ``remaining`` requests whose path ends with ``path`` ("*" = any)."""

    path: str
    code: int | None = None
    http_status: int | None = None
    remaining: int = 1
    delay: float = 0.0
    hang: bool = False
    msg: str | None = None
    drop_after_create: bool = False
    body: str | bytes | None = None
    content_type: str = "text/html"

    def matches(self, path: str) -> bool:
        return self.remaining > 0 and (self.path == "*" or path.endswith(self.path))


@dataclass
class CallbackAttempt:
    """One callback POST the fake made: ``status`` is the receiver's HTTP status, or ``error``."""

    task_id: str
    url: str
    copy: int  # 0 for the first delivery, 1.. for duplicates
    body: dict[str, Any]
    headers: dict[str, str]
    at: float
    status: int | None = None
    error: str | None = None


@dataclass
class FakeTask:
    """A task as the fake keeps it; :meth:`record` is what recordInfo answers."""

    task_id: str
    model: str
    input: dict[str, Any]
    callback_url: str | None
    param: str
    plan: Plan
    price: int
    state: str = "waiting"
    create_time: int = field(default_factory=_ms)
    update_time: int = field(default_factory=_ms)
    complete_time: int | None = None
    result_urls: list[str] | None = None
    result_object: Any = None
    fail_code: str | None = None
    fail_msg: str | None = None
    consume_credits: int = 0
    states: list[str] = field(default_factory=lambda: ["waiting"])  # every state the task went through

    @property
    def terminal(self) -> bool:
        return self.state in TERMINAL_STATES

    @property
    def result_json(self) -> str | None:
        if self.state != "success":
            return None
        if self.result_object is not None:
            return json.dumps({"resultObject": self.result_object})
        return json.dumps({"resultUrls": list(self.result_urls or [])})

    @property
    def cost_time(self) -> int | None:
        return None if self.complete_time is None else self.complete_time - self.create_time

    def record(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "taskId": self.task_id,
            "model": self.model,
            "state": self.state,
            "param": self.param,
            "createTime": self.create_time,
            "updateTime": self.update_time,
        }
        if self.state == "success":
            data["resultJson"] = self.result_json
        if self.state == "fail":
            data["failCode"] = self.fail_code
            data["failMsg"] = self.fail_msg
        if self.terminal:
            data["costTime"] = self.cost_time
            data["completeTime"] = self.complete_time
        return data

    def callback_data(self, remained_credits: int) -> dict[str, Any]:
        return {
            "taskId": self.task_id,
            "model": self.model,
            "state": self.state,
            "resultJson": self.result_json,
            "failCode": self.fail_code,
            "failMsg": self.fail_msg,
            "param": self.param,
            "costTime": self.cost_time,
            "createTime": self.create_time,
            "updateTime": self.update_time,
            "completeTime": self.complete_time,
            "consumeCredits": self.consume_credits,
            "remainedCredits": remained_credits,
        }


_CALL_KEY: Any = web.RequestKey("fake_kie_call", Call) if hasattr(web, "RequestKey") else "fake_kie_call"


class FakeKie:
    """KIE's jobs API on a real local port. ``api_key=None`` accepts any non-empty Bearer token.

    Attributes meant to be read (and, for the settings, changed) by tests: ``tasks``,
    ``callback_attempts``, ``files``, ``credits``, ``models``, ``prices``, ``duration``,
    ``callbacks``, ``callback_duplicates``, ``hmac_key``, ``mirror_http_status``.
    """

    def __init__(
        self,
        api_key: str | None = None,
        *,
        duration: float = 1.0,
        credits: int = 10_000,
        default_price: int = 10,
        prices: Mapping[str, int] | None = None,
        models: Iterable[str] | None = None,
        callbacks: bool = True,
        callback_duplicates: int = 0,
        callback_timeout: float = 15.0,
        hmac_key: str | None = None,
        mirror_http_status: bool = True,
        msg_field: str = "msg",
        public_base_url: str | None = None,
    ) -> None:
        self.api_key = api_key
        self.duration = duration
        self.credits = credits
        self.default_price = default_price
        self.prices: dict[str, int] = dict(prices or {})
        self.models: set[str] = set(JOB_MODELS if models is None else models)  # "*" in it accepts any model
        self.callbacks = callbacks
        self.callback_duplicates = callback_duplicates  # extra copies of each callback
        self.callback_timeout = callback_timeout
        self.hmac_key = hmac_key
        self.mirror_http_status = mirror_http_status  # False: built-in errors answer HTTP 200 + code in body
        self.msg_field = msg_field  # KIE sometimes says "message"
        self.public_base_url = public_base_url  # host name result URLs use, if the bot sees the fake elsewhere

        self.tasks: dict[str, FakeTask] = {}
        self.callback_attempts: list[CallbackAttempt] = []
        self.files: dict[str, tuple[bytes, str]] = {}
        self._calls: list[Call] = []
        self._plans: dict[str, list[Plan]] = {}  # counted plans, used first, in order
        self._standing_plans: dict[str, Plan] = {}  # count=None plans
        self._injections: list[Injection] = []
        self._timers: dict[str, list[asyncio.TimerHandle]] = {}
        self._background: set[asyncio.Task[None]] = set()
        self._changed = asyncio.Event()
        self._stopping = asyncio.Event()
        self._runner: web.AppRunner | None = None
        self._session: aiohttp.ClientSession | None = None
        self._base_url: str | None = None
        self._task_counter = 0

    # ------------------------------------------------------------------ lifecycle

    @property
    def base_url(self) -> str:
        if self._base_url is None:
            raise RuntimeError("FakeKie is not started")
        return self._base_url

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        """Listen on ``host:port`` (0 = a free port) and return the base URL."""
        if self._runner is not None:
            raise RuntimeError("FakeKie already started")
        self._stopping = asyncio.Event()
        self._changed = asyncio.Event()
        app = web.Application(middlewares=[self._middleware], client_max_size=64 * 1024 * 1024)
        app.router.add_post(CREATE_PATH, self._create_task)
        app.router.add_get(RECORD_PATH, self._record_info)
        app.router.add_get(CREDIT_PATH, self._credit)
        app.router.add_post(UPLOAD_PATH, self._upload)
        app.router.add_get(FILES_PREFIX + "{name:.+}", self._file)
        runner = web.AppRunner(app, access_log=None, shutdown_timeout=2.0)
        await runner.setup()
        try:
            await web.TCPSite(runner, host, port).start()
        except BaseException:
            await runner.cleanup()
            raise
        bound_host, bound_port = runner.addresses[0][:2]
        self._runner = runner
        self._session = aiohttp.ClientSession(headers={"User-Agent": "KIE-Webhook-Fake/1.0"})
        shown_host = (
            "127.0.0.1" if host in ("", "0.0.0.0", "::") else bound_host if ":" not in bound_host else f"[{bound_host}]"
        )
        self._base_url = f"http://{shown_host}:{bound_port}"
        return self._base_url

    async def stop(self) -> None:
        """Cancel timers and callbacks, release hung requests, close the server."""
        if self._runner is None:
            return
        self._stopping.set()
        for handles in self._timers.values():
            for handle in handles:
                handle.cancel()
        self._timers.clear()
        pending = list(self._background)
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
        await self._runner.cleanup()
        self._runner = None
        if self._session is not None:
            await self._session.close()
            self._session = None
        self._notify()

    async def __aenter__(self) -> FakeKie:
        await self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()

    # ------------------------------------------------------------------ steering

    def plan(
        self,
        model: str = "*",
        outcome: Outcome = "success",
        *,
        duration: float | None = None,
        fail_code: str = "500",
        fail_msg: str = "Internal error, please try again later.",
        result_urls: list[str] | None = None,
        result_object: Any = None,
        result_count: int = 1,
        kind: MediaKind | None = None,
        hold: bool = False,
        count: int | None = None,
    ) -> Plan:
        """Set how subsequent tasks of ``model`` ("*" = any model without its own plan) behave.

        ``count`` limits the plan to that many tasks; counted plans queue up and are used before
        the standing plan (``count=None``, which replaces the previous standing plan of that model).
        A model's own plans win over "*" plans. ``hold`` stops the task at "generating" until
        :meth:`finish`.
        """
        if outcome not in TERMINAL_STATES:
            raise ValueError(f"outcome must be 'success' or 'fail', not {outcome!r}")
        new = Plan(
            outcome=outcome,
            duration=duration,
            fail_code=str(fail_code),
            fail_msg=fail_msg,
            result_urls=None if result_urls is None else list(result_urls),
            result_object=result_object,
            result_count=result_count,
            kind=kind,
            hold=hold,
            remaining=count,
        )
        if count is None:
            self._standing_plans[model] = new
        else:
            self._plans.setdefault(model, []).append(new)
        return new

    def inject(
        self,
        path: str = "*",
        *,
        code: int | None = None,
        http_status: int | None = None,
        count: int = 1,
        delay: float = 0.0,
        hang: bool = False,
        msg: str | None = None,
        drop_after_create: bool = False,
        body: str | bytes | None = None,
        content_type: str = "text/html",
    ) -> Injection:
        """Fault the next ``count`` requests whose path ends with ``path`` ("*" = every path).

        * ``code``: answer ``{"code": code, "msg": msg, "data": null}`` with HTTP ``http_status``
          (default: ``code`` itself; pass 200 for KIE's "HTTP 200, error in the body" style);
        * ``body``: answer these raw bytes instead (e.g. a CDN's HTML 502), HTTP ``http_status`` or 502;
        * ``delay``: wait that long first (then fault, or answer normally when nothing else is set);
        * ``hang``: never answer; the connection is closed when the fake stops;
        * ``drop_after_create``: handle the request for real (the task is created and kept in
          ``tasks``), then close the connection instead of answering (with ``hang``: hang instead).
        """
        injection = Injection(
            path=path,
            code=code,
            http_status=http_status,
            remaining=count,
            delay=delay,
            hang=hang,
            msg=msg,
            drop_after_create=drop_after_create,
            body=body,
            content_type=content_type,
        )
        self._injections.append(injection)
        return injection

    def finish(
        self,
        task_id: str,
        outcome: Outcome = "success",
        *,
        fail_code: str | None = None,
        fail_msg: str | None = None,
    ) -> FakeTask:
        """Bring a running task (typically a held one) to its terminal state now."""
        task = self.tasks[task_id]
        if task.terminal:
            raise ValueError(f"task {task_id} is already {task.state}")
        self._complete(task, outcome, fail_code=fail_code, fail_msg=fail_msg)
        return task

    def add_file(self, name: str, data: bytes, content_type: str = "application/octet-stream") -> str:
        """Serve ``data`` under ``/files/<name>`` and return its URL."""
        self.files[name] = (data, content_type)
        return self._file_url(name)

    def reset(self) -> None:
        """Forget calls, plans, injections and callback attempts (tasks and credits stay)."""
        self._calls.clear()
        self._plans.clear()
        self._standing_plans.clear()
        self._injections.clear()
        self.callback_attempts.clear()
        self._notify()

    # ------------------------------------------------------------------ observing

    def calls(self, path: str | None = None) -> list[Call]:
        """Recorded requests, optionally only those whose path ends with ``path``."""
        return [call for call in self._calls if path is None or call.path.endswith(path)]

    def callbacks_for(self, task_id: str) -> list[CallbackAttempt]:
        return [attempt for attempt in self.callback_attempts if attempt.task_id == task_id]

    def notify(self) -> None:
        """Wake :meth:`wait_for` waiters; call it when a predicate depends on state outside the fake."""
        self._notify()

    async def wait_for(self, predicate: Callable[[], T], timeout: float = 5.0, what: str | None = None) -> T:
        """Return ``predicate()`` once truthy; it is re-checked whenever the fake's state changes.

        Raises TimeoutError describing the tasks, the last calls and callback attempts.
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            changed = self._changed
            result = predicate()
            if result:
                return result
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise TimeoutError(self._timeout_report(predicate, timeout, what))
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(remaining):
                    await changed.wait()

    async def wait_for_state(self, task_id: str, *states: str, timeout: float = 5.0) -> FakeTask:
        """Wait until the task exists and is in one of ``states`` (default: a terminal state)."""
        wanted = states or TERMINAL_STATES

        def reached() -> FakeTask | None:
            task = self.tasks.get(task_id)
            return task if task is not None and task.state in wanted else None

        return await self.wait_for(reached, timeout, f"task {task_id} in {'/'.join(wanted)}")

    async def wait_for_callbacks(self, count: int, task_id: str | None = None, timeout: float = 5.0) -> list[Any]:
        """Wait until at least ``count`` callback attempts (for ``task_id``, if given) finished."""

        def done() -> list[CallbackAttempt]:
            attempts = self.callback_attempts if task_id is None else self.callbacks_for(task_id)
            return attempts if len(attempts) >= count else []

        return await self.wait_for(
            done, timeout, f"{count} callback attempt(s)" + (f" for {task_id}" if task_id else "")
        )

    def _timeout_report(self, predicate: Callable[[], Any], timeout: float, what: str | None) -> str:
        name = what or getattr(predicate, "__qualname__", repr(predicate))
        tasks = ", ".join(f"{task.task_id}={task.state}" for task in self.tasks.values()) or "none"
        calls = "; ".join(f"{c.method} {c.path} -> {c.status}" for c in self._calls[-8:]) or "none"
        attempts = (
            "; ".join(f"{a.task_id}#{a.copy} -> {a.status or a.error}" for a in self.callback_attempts[-8:]) or "none"
        )
        return (
            f"FakeKie.wait_for: {name} not reached within {timeout}s. "
            f"Tasks: {tasks}. Last calls: {calls}. Callback attempts: {attempts}. "
            f"Pending injections: {sum(i.remaining for i in self._injections)}."
        )

    def _notify(self) -> None:
        self._changed.set()
        self._changed = asyncio.Event()

    # ------------------------------------------------------------------ HTTP plumbing

    @web.middleware
    async def _middleware(
        self, request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        call = await self._record(request)
        request[_CALL_KEY] = call
        injection = self._take_injection(request.path)
        try:
            if injection is not None:
                if injection.delay > 0:
                    await self._pause(injection.delay)
                if injection.hang and not injection.drop_after_create:
                    await self._stopping.wait()
                    return self._drop(request)
                if injection.body is not None:
                    body = injection.body.encode() if isinstance(injection.body, str) else injection.body
                    response = web.Response(
                        body=body, status=injection.http_status or 502, content_type=injection.content_type
                    )
                    call.status = response.status
                    return response
                if injection.code is not None:
                    response = self._envelope(injection.code, injection.msg, http_status=injection.http_status)
                    call.status = response.status
                    return response
            try:
                response = await handler(request)
            except web.HTTPException as exc:
                if request.path.startswith("/api/"):
                    response = self._envelope(exc.status, exc.reason, http_status=exc.status)
                else:
                    raise
            if injection is not None and injection.drop_after_create:
                if injection.hang:
                    await self._stopping.wait()
                return self._drop(request)
            call.status = response.status
            return response
        except web.HTTPException as exc:
            call.status = exc.status
            raise
        finally:
            self._notify()

    async def _record(self, request: web.Request) -> Call:
        headers = {
            name: ("<redacted>" if name.lower() == "authorization" else value)
            for name, value in request.headers.items()
        }
        body: Any = None
        if request.can_read_body and not request.content_type.startswith("multipart/"):
            raw = await request.read()
            try:
                body = json.loads(raw) if raw else None
            except ValueError:
                body = None
        call = Call(
            method=request.method,
            path=request.path,
            query=dict(request.query),
            json=body,
            headers=headers,
            at=time.time(),
        )
        self._calls.append(call)
        return call

    def _take_injection(self, path: str) -> Injection | None:
        for injection in self._injections:
            if injection.matches(path):
                injection.remaining -= 1
                if injection.remaining <= 0:
                    self._injections.remove(injection)
                return injection
        return None

    async def _pause(self, seconds: float) -> None:
        """Wait ``seconds``, or less if the fake is stopping."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(seconds):
                await self._stopping.wait()

    @staticmethod
    def _drop(request: web.Request) -> web.StreamResponse:
        """Close the connection without an answer (the returned response is never written)."""
        if request.transport is not None:
            request.transport.close()
        return web.Response(status=499)

    def _envelope(
        self, code: int, msg: str | None = None, data: Any = None, *, http_status: int | None = None
    ) -> web.Response:
        body = {"code": code, self.msg_field: msg or DEFAULT_MESSAGES.get(code, "error"), "data": data}
        if http_status is None:
            http_status = code if code != 200 and self.mirror_http_status and 100 <= code <= 599 else 200
        return web.json_response(body, status=http_status)

    def _authorized(self, request: web.Request) -> bool:
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            return False
        return self.api_key is None or hmac.compare_digest(token.encode(), self.api_key.encode())

    def _unauthorized(self) -> web.Response:
        return self._envelope(401, http_status=401)

    def _file_url(self, name: str) -> str:
        return f"{self.public_base_url or self.base_url}{FILES_PREFIX}{quote(name)}"

    # ------------------------------------------------------------------ handlers

    async def _create_task(self, request: web.Request) -> web.Response:
        if not self._authorized(request):
            return self._unauthorized()
        body = request[_CALL_KEY].json
        if not isinstance(body, dict):
            return self._envelope(422, "Request body must be a JSON object")
        model = body.get("model")
        if not isinstance(model, str) or not model.strip():
            return self._envelope(422, "model is required")
        if "*" not in self.models and model not in self.models:
            return self._envelope(422, f"The model name you specified ({model}) is not supported")
        task_input = body.get("input")
        if not isinstance(task_input, dict):
            return self._envelope(422, "input is required and must be an object")
        callback_url = body.get("callBackUrl") or None
        if callback_url is not None and not (
            isinstance(callback_url, str) and callback_url.startswith(("http://", "https://"))
        ):
            return self._envelope(422, "callBackUrl must be an http(s) URL")
        price = self.prices.get(model, self.default_price)
        if self.credits < price:
            return self._envelope(402)
        self.credits -= price
        task = self._new_task(model, task_input, callback_url, json.dumps(body, ensure_ascii=False), price)
        return self._envelope(200, "success", {"taskId": task.task_id})

    async def _record_info(self, request: web.Request) -> web.Response:
        if not self._authorized(request):
            return self._unauthorized()
        task_id = request.query.get("taskId", "").strip()
        if not task_id:
            return self._envelope(422, "taskId is required")
        task = self.tasks.get(task_id)
        if task is None:
            return self._envelope(404, f"Task not found: {task_id}")
        return self._envelope(200, "success", task.record())

    async def _credit(self, request: web.Request) -> web.Response:
        if not self._authorized(request):
            return self._unauthorized()
        return self._envelope(200, "success", self.credits)

    async def _upload(self, request: web.Request) -> web.Response:
        def answer(code: int, msg: str, data: Any = None) -> web.Response:
            body = {"success": code == 200, "code": code, "msg": msg, "data": data}
            return web.json_response(body, status=code if self.mirror_http_status else 200)

        if not self._authorized(request):
            return answer(401, DEFAULT_MESSAGES[401])
        if not request.content_type.startswith("multipart/"):
            return answer(400, "multipart/form-data expected")
        fields: dict[str, str] = {}
        data: bytes | None = None
        part_name: str | None = None
        part_type: str | None = None
        reader = await request.multipart()
        async for part in reader:
            if not isinstance(part, aiohttp.BodyPartReader):
                continue
            if part.name == "file":
                data = bytes(await part.read(decode=False))
                part_name = part.filename
                part_type = part.headers.get(aiohttp.hdrs.CONTENT_TYPE)
            elif part.name:
                fields[part.name] = await part.text()
        call: Call = request[_CALL_KEY]
        call.form = {**fields, "file": "<missing>" if data is None else f"<{len(data)} bytes {part_name or ''}>"}
        if data is None:
            return answer(400, "file is required")
        file_name = _safe_name(fields.get("fileName") or part_name or "upload.bin")
        upload_path = "/".join(_safe_name(segment) for segment in fields.get("uploadPath", "").split("/") if segment)
        content_type = (
            part_type
            if part_type and part_type != "application/octet-stream"
            else mimetypes.guess_type(file_name)[0] or "application/octet-stream"
        )
        stored = "/".join(filter(None, ("uploads", uuid.uuid4().hex[:12], upload_path, file_name)))
        url = self.add_file(stored, data, content_type)
        return answer(
            200,
            "File uploaded successfully",
            {
                "fileName": file_name,
                "filePath": "/".join(filter(None, (upload_path, file_name))),
                "downloadUrl": url,
                "fileUrl": url,
                "fileSize": len(data),
                "mimeType": content_type,
                "uploadedAt": datetime.now(UTC).isoformat(),
            },
        )

    async def _file(self, request: web.Request) -> web.Response:
        stored = self.files.get(request.match_info["name"])
        if stored is None:
            raise web.HTTPNotFound(text="file not found")
        data, content_type = stored
        return web.Response(body=data, content_type=content_type)

    # ------------------------------------------------------------------ task lifecycle

    def _take_plan(self, model: str) -> Plan:
        for key in (model, "*"):
            queue = self._plans.get(key)
            if queue:
                chosen = queue[0]
                chosen.remaining = (chosen.remaining or 1) - 1
                if chosen.remaining <= 0:
                    queue.pop(0)
                return chosen
            if key in self._standing_plans:
                return self._standing_plans[key]
        return Plan()

    def _new_task_id(self, model: str, now: int) -> str:
        self._task_counter += 1
        if self._task_counter % 2 == 0:
            return uuid.uuid4().hex
        slug = re.sub(r"[^A-Za-z0-9]+", "-", model).strip("-") or "model"
        stamp = now
        while f"task_{slug}_{stamp}" in self.tasks:
            stamp += 1
        return f"task_{slug}_{stamp}"

    def _new_task(
        self, model: str, task_input: dict[str, Any], callback_url: str | None, param: str, price: int
    ) -> FakeTask:
        plan = self._take_plan(model)
        now = _ms()
        task = FakeTask(
            task_id=self._new_task_id(model, now),
            model=model,
            input=task_input,
            callback_url=callback_url,
            param=param,
            plan=plan,
            price=price,
            create_time=now,
            update_time=now,
        )
        self.tasks[task.task_id] = task
        duration = max(0.0, self.duration if plan.duration is None else plan.duration)
        loop = asyncio.get_running_loop()
        handles = [
            loop.call_later(duration * 0.25, self._advance, task, "queuing"),
            loop.call_later(duration * 0.5, self._advance, task, "generating"),
        ]
        if not plan.hold:
            handles.append(loop.call_later(duration, self._complete, task, plan.outcome))
        self._timers[task.task_id] = handles
        return task

    def _advance(self, task: FakeTask, state: str) -> None:
        if _STATE_ORDER[state] <= _STATE_ORDER[task.state]:
            return
        task.state = state
        task.states.append(state)
        task.update_time = max(_ms(), task.create_time)
        self._notify()

    def _complete(
        self, task: FakeTask, outcome: Outcome, *, fail_code: str | None = None, fail_msg: str | None = None
    ) -> None:
        if task.terminal:
            return
        for handle in self._timers.pop(task.task_id, []):
            handle.cancel()
        if outcome == "success":
            plan = task.plan
            if plan.result_object is not None:
                task.result_object = plan.result_object
            elif plan.result_urls is not None:
                task.result_urls = list(plan.result_urls)
            else:
                kind = plan.kind or media_kind(task.model)
                content_type, extension = _CONTENT_TYPES[kind]
                task.result_urls = [
                    self.add_file(
                        f"results/{task.task_id}_{index}.{extension}", _GENERATORS[kind](task.task_id), content_type
                    )
                    for index in range(max(1, plan.result_count))
                ]
            task.consume_credits = task.price
        else:
            task.fail_code = str(fail_code or task.plan.fail_code)
            task.fail_msg = fail_msg or task.plan.fail_msg
            task.consume_credits = 0
            self.credits += task.price  # failed tasks are not billed
        task.state = outcome
        task.states.append(outcome)
        task.complete_time = max(_ms(), task.create_time)
        task.update_time = task.complete_time
        self._notify()
        if self.callbacks and task.callback_url and self._session is not None and not self._stopping.is_set():
            background = asyncio.get_running_loop().create_task(self._send_callbacks(task))
            self._background.add(background)
            background.add_done_callback(self._background.discard)

    async def _send_callbacks(self, task: FakeTask) -> None:
        assert self._session is not None and task.callback_url is not None
        success = task.state == "success"
        body = {
            "code": 200 if success else 501,
            "msg": SUCCESS_CALLBACK_MSG if success else (task.fail_msg or DEFAULT_MESSAGES[501]),
            "data": task.callback_data(self.credits),
        }
        payload = json.dumps(body, ensure_ascii=False).encode()
        for copy in range(1 + max(0, self.callback_duplicates)):
            headers = {"Content-Type": "application/json"}
            if self.hmac_key:
                timestamp = str(int(time.time()))
                headers["X-Webhook-Timestamp"] = timestamp
                headers["X-Webhook-Signature"] = sign_callback(task.task_id, timestamp, self.hmac_key)
            attempt = CallbackAttempt(
                task_id=task.task_id, url=task.callback_url, copy=copy, body=body, headers=headers, at=time.time()
            )
            try:
                async with self._session.post(
                    task.callback_url,
                    data=payload,
                    headers=headers,
                    timeout=aiohttp.ClientTimeout(total=self.callback_timeout),
                ) as response:
                    await response.read()
                    attempt.status = response.status
            except (aiohttp.ClientError, TimeoutError) as exc:
                attempt.error = f"{type(exc).__name__}: {exc}"
            self.callback_attempts.append(attempt)
            self._notify()


def _safe_name(name: str) -> str:
    cleaned = re.sub(r"[^A-Za-z0-9._-]+", "_", os.path.basename(name.replace("\\", "/"))).strip("._")
    return cleaned or "file"


# ---------------------------------------------------------------------- CLI


async def _serve(args: argparse.Namespace) -> None:
    fake = FakeKie(
        api_key=args.api_key,
        duration=args.duration,
        credits=args.credits,
        hmac_key=args.hmac_key,
        public_base_url=args.public_base_url,
    )
    await fake.start(args.host, args.port)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    print(json.dumps({"base_url": fake.base_url, "pid": os.getpid()}), flush=True)
    try:
        await stop.wait()
    finally:
        await fake.stop()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m fakes.kie_api", description="Serve a fake KIE jobs API.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--api-key", default=os.environ.get("KIE_API_KEY") or None, help="default: accept any key")
    parser.add_argument("--duration", type=float, default=3.0, help="seconds until a task finishes")
    parser.add_argument("--credits", type=int, default=100_000)
    parser.add_argument("--hmac-key", default=None, help="sign callbacks with this key")
    parser.add_argument("--public-base-url", default=None, help="base URL used in result/file URLs")
    asyncio.run(_serve(parser.parse_args(argv)))


if __name__ == "__main__":
    main()
