"""KIE's Market ("jobs") API as the fake speaks it: paths, models, task states, and the records kept.

Why it exists: the routes, the task simulation and the tests share these terms — a :class:`Call`
per request, a :class:`Plan` saying how the next tasks end, an :class:`Injection` faulting the
next requests, a :class:`FakeTask` whose :meth:`FakeTask.record` is what ``recordInfo`` answers,
a :class:`CallbackAttempt` per callback POST — and KIE's envelope codes and callback signature.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from dataclasses import dataclass, field
from typing import Any, Literal

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

RUNNING_STATES = ("waiting", "queuing", "generating")
TERMINAL_STATES = ("success", "fail")

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


def ms() -> int:
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
    injected: str | None = None  # the fault applied: "code", "body", "body_after_create", "hang", "drop", "delay"


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
    # result file index -> (HTTP status its download answers, for how many seconds after the task
    # ended; None = for good): a partial delivery (the second of two files 404, or 503 for a while)
    file_faults: dict[int, tuple[int, float | None]] | None = None
    # the dedicated families (fakes/kie/families.py); the jobs API ignores these
    raw_state: str | None = None  # the family's terminal word/flag ("CALLBACK_EXCEPTION", "2", "CREATE_TASK_FAILED")
    odd_shapes: bool | None = None  # the documented odd shapes (Veo's URL string...); None = every other task
    stages: tuple[str, ...] | None = None  # Suno's stages before the end; None = text, first (none on a failure)
    stage_order: tuple[str, ...] | None = None  # Suno: send these stage callbacks at the end, in this order
    duplicates: int | None = None  # extra copies of each callback; None = FakeKie.callback_duplicates


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
    headers: dict[str, str] | None = None  # extra headers on the faulted answer (e.g. Retry-After)
    # with ``body``: handle the request for real first (createTask makes its task), then answer
    # the raw body instead of KIE's envelope (a CDN's 502/520 page after the origin did the work)
    after_create: bool = False

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
    stage: str | None = None  # Suno's callbackType ("text", "first", "complete", "error"); None elsewhere


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
    create_time: int = field(default_factory=ms)
    update_time: int = field(default_factory=ms)
    complete_time: int | None = None
    result_urls: list[str] | None = None
    result_object: Any = None
    fail_code: str | None = None
    fail_msg: str | None = None
    consume_credits: int = 0
    states: list[str] = field(default_factory=lambda: ["waiting"])  # every state the task went through
    family: str = "jobs"  # the endpoint family that made it (fakes/kie/families.py); recordInfo knows only "jobs"

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
