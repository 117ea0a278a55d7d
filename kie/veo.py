"""KIE's Veo 3.1 family: generate, extend, 1080p and 4K, built and parsed (DEDICATED.md §2).

Why it exists: Veo is not on the jobs API. It reports ``successFlag`` 0/1/2/3 instead of a
state, its result URLs come as an array or as a JSON *string* of one (``fullResultUrls`` after an
extension, ``resultUrls`` otherwise), its request is remembered as ``paramJson`` (a string), its
callbacks put the URLs under ``data.info`` (the 4K one also as snake_case ``data.result_urls``),
and its 1080p version is no task at all but a GET that answers once the file is ready.
:class:`VeoEndpoint` hides all that behind :class:`~kie.endpoint.Endpoint`.

Catalog ids: ``veo/generate|frames|reference[/veo3|veo3_fast|veo3_lite]`` (the variant is sent
as ``model``), ``veo/extend`` (input ``taskId``, ``prompt``, ``model`` fast|quality|lite),
``veo/1080p`` and ``veo/4k`` (input ``taskId``, ``index``).
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from kie.dedicated import (
    DedicatedEndpoint,
    body_of,
    callback_of,
    callback_parts,
    check_choice,
    check_text,
    check_url_list,
    default_flag,
    failure_code,
    items_of,
    one_of,
    record_parts,
    require_int,
    require_task_id,
    split_model_id,
    url_list,
)
from kie.endpoint import Request
from kie.errors import InvalidRequest
from kie.fields import as_int, as_text, callback_url_of, json_object, message_of
from kie.limiter import CREATE, RECORD
from kie.models import Callback, TaskRecord, TaskState
from kie.validate import check_task_id

__all__ = ["ASPECT_RATIOS", "DURATIONS", "EXTEND_MODELS", "EXTEND_PATH", "GENERATE_PATH", "HD1080_PATH",
           "LOCAL_PREFIX", "MODELS", "RECORD_PATH", "RESOLUTIONS", "UHD4K_PATH", "VEO", "VeoEndpoint",
           "parse_record"]

GENERATE_PATH = "/api/v1/veo/generate"
EXTEND_PATH = "/api/v1/veo/extend"
RECORD_PATH = "/api/v1/veo/record-info"
HD1080_POLL_SECONDS = 20.0  # DEDICATED.md §2.6: retry every 20-30 s until the 1080p file is ready
HD1080_PATH = "/api/v1/veo/get-1080p-video"
UHD4K_PATH = "/api/v1/veo/get-4k-video"

MODELS = ("veo3", "veo3_fast", "veo3_lite")  # quality, fast, lite; KIE's default is veo3_fast
REFERENCE_MODELS = ("veo3_fast", "veo3_lite")  # REFERENCE_2_VIDEO: not on quality
EXTEND_MODELS = ("fast", "quality", "lite")  # extend's own names, not veo3_*
ASPECT_RATIOS = ("16:9", "9:16", "Auto")
RESOLUTIONS = ("720p", "1080p", "4k")
DURATIONS = (4, 6, 8)
GENERATION_TYPES = {"generate": None, "frames": "FIRST_AND_LAST_FRAMES_2_VIDEO", "reference": "REFERENCE_2_VIDEO"}
OPERATIONS = (*GENERATION_TYPES, "extend", "1080p", "4k")
ALL_GENERATION_TYPES = ("TEXT_2_VIDEO", "FIRST_AND_LAST_FRAMES_2_VIDEO", "REFERENCE_2_VIDEO")
MAX_IMAGES = {"FIRST_AND_LAST_FRAMES_2_VIDEO": 2, "REFERENCE_2_VIDEO": 3, None: 3}
# a 1080p "task" is the GET on its parent: veo1080p~<parent taskId>~<index>~<random hex>; the
# random token makes each job's id its own (two users asking the same parent's 1080p)
LOCAL_PREFIX = "veo1080p~"
_SUCCESS_FLAGS = {0: TaskState.GENERATING, 1: TaskState.SUCCESS, 2: TaskState.FAIL, 3: TaskState.FAIL}


class VeoEndpoint(DedicatedEndpoint):
    """The Veo 3.1 family. Status of generate, extend and 4K tasks: ``GET record-info?taskId=``.

    The 1080p version is a local task (:meth:`local_task_id`): nothing is created at KIE, and
    its record is ``GET get-1080p-video?taskId=<parent>&index=<i>``, whose ``data.resultUrl``
    means SUCCESS and whose absence GENERATING. Until the file is ready KIE answers that GET with
    a non-200 code (400 "1080P is processing"), which the client raises as a KieError: the
    poller counts it as a failed poll and asks again later, which is exactly what KIE asks for
    ("retry every 20-30 s"). A parent KIE will never upscale (422: older than 14 days, not a
    success) therefore ends by the job's deadline, not by a FAIL record.
    """

    record_path = RECORD_PATH

    @property
    def name(self) -> str:
        return "veo"

    def create_request(self, model: str, task_input: Mapping[str, Any], callback_url: str | None) -> Request:
        operation, variant = split_model_id(model, self.name, OPERATIONS, variants=None)
        if operation in GENERATION_TYPES:
            return Request("POST", GENERATE_PATH, CREATE, json=_generate_body(operation, variant, task_input,
                                                                             callback_url))
        if operation == "extend":
            return Request("POST", EXTEND_PATH, CREATE, json=_extend_body(variant, task_input, callback_url))
        if operation == "4k":
            return Request("POST", UHD4K_PATH, CREATE, json=_uhd_body(variant, task_input, callback_url))
        raise InvalidRequest("veo/1080p is fetched, not created (a local task)")

    def local_task_id(self, model: str, task_input: Mapping[str, Any]) -> str | None:
        operation, variant = split_model_id(model, self.name, OPERATIONS, variants=None)
        if operation != "1080p":
            return None
        if variant is not None:
            raise InvalidRequest("veo/1080p has no variant")
        parent = require_task_id(task_input)
        if LOCAL_PREFIX in parent or len(parent) > 200:
            raise InvalidRequest("taskId must be the id of a Veo generation (at most 200 characters)")
        index = require_int(task_input.get("index", 0), "index", low=0, high=99)
        return check_task_id(f"{LOCAL_PREFIX}{parent}~{index}~{secrets.token_hex(6)}")

    def record_request(self, task_id: str) -> Request:
        local = _local_parts(check_task_id(task_id))
        if local is not None:
            parent, index = local
            return Request("GET", HD1080_PATH, RECORD, params={"taskId": parent, "index": str(index)})
        return super().record_request(task_id)

    def poll_floor(self, task_id: str) -> float:
        """KIE: the 1080p file comes 1-3 min after the original, "retry every 20-30 s" meanwhile."""
        return HD1080_POLL_SECONDS if _local_parts(task_id) is not None else 0.0

    def record(self, data: Any, task_id: str) -> TaskRecord:
        if _local_parts(task_id) is not None:
            return _hd1080_record(data, task_id, self.name)
        return parse_record(data, task_id, endpoint=self.name)

    def callback(self, body: Mapping[str, Any]) -> Callback:
        """Generate and extend: ``data.info.resultUrls`` (array or string); 4K: the same, or the
        OpenAPI schema's ``data.result_urls`` beside ``data.task_id``. A failure carries only the
        task id and the envelope's code and message."""
        data, task_id, code = callback_parts(body, "veo")
        info = json_object(data.get("info"))
        urls = (url_list(info.get("resultUrls")) or url_list(info.get("result_urls"))
                or url_list(data.get("resultUrls")) or url_list(data.get("result_urls")))
        return callback_of(task_id, code, message_of(body), urls, self.name,
                           param=json_object(data.get("promptJson")))


VEO = VeoEndpoint()


def parse_record(data: Any, task_id: str | None, *, endpoint: str = "veo") -> TaskRecord:
    """A task's record from ``record-info``'s ``data`` (generate, extend and 4K alike)."""
    data, found = record_parts(data, task_id, "veo")
    flag = as_int(data.get("successFlag"))
    state = _SUCCESS_FLAGS.get(flag, TaskState.UNKNOWN) if flag is not None else TaskState.UNKNOWN
    response = json_object(data.get("response"))
    # after an extension resultUrls is only the new part; fullResultUrls ("all of the video after
    # extension") is the whole: one stitched file or its segments in order, each delivered
    urls = url_list(response.get("fullResultUrls")) or url_list(response.get("resultUrls"))
    param = json_object(data.get("paramJson"))
    return TaskRecord(
        task_id=found,
        model=as_text(param.get("model")) or "",
        state=state,
        result_urls=urls,
        items=items_of(urls),
        fail_code=failure_code(data.get("errorCode")),
        fail_msg=as_text(data.get("errorMessage")),
        created_ms=_ms(data.get("createTime")),
        completed_ms=_ms(data.get("completeTime")),
        param=param or None,
        callback_url=callback_url_of(param),
        raw_state=as_text(data.get("successFlag")),
        endpoint=endpoint,
    )


def _generate_body(operation: str, variant: str | None, task_input: Mapping[str, Any],
                   callback_url: str | None) -> dict[str, Any]:
    body = body_of(task_input, variant, callback_url)
    body.pop("enableFallback", None)  # deprecated: KIE asks to "remove it from requests"
    check_text(body, "prompt", required=True)
    model = one_of(body.get("model", "veo3_fast"), MODELS, "model")
    generation_type = GENERATION_TYPES[operation]
    if generation_type is None and "generationType" in body:
        generation_type = one_of(body["generationType"], ALL_GENERATION_TYPES, "generationType")
    if generation_type is not None:
        body["generationType"] = generation_type
    check_choice(body, "aspectRatio", ASPECT_RATIOS)
    check_choice(body, "resolution", RESOLUTIONS)
    if "duration" in body:
        body["duration"] = one_of(require_int(body["duration"], "duration"), DURATIONS, "duration")
    if "seeds" in body:
        body["seeds"] = require_int(body["seeds"], "seeds", low=10000, high=99999)
    wants_images = generation_type in ("FIRST_AND_LAST_FRAMES_2_VIDEO", "REFERENCE_2_VIDEO")
    if "imageUrls" in body or wants_images:
        if generation_type == "TEXT_2_VIDEO":
            raise InvalidRequest("a text-to-video generation takes no imageUrls")
        body["imageUrls"] = check_url_list(body.get("imageUrls"), "imageUrls", low=1,
                                           high=MAX_IMAGES.get(generation_type, 3))
    if generation_type == "REFERENCE_2_VIDEO":
        if model not in REFERENCE_MODELS:
            raise InvalidRequest("reference-to-video runs only on veo3_fast or veo3_lite")
        if body.get("duration", 8) != 8:
            raise InvalidRequest("reference-to-video makes only 8-second videos")
    default_flag(body, "enableTranslation", True)
    return body


def _extend_body(variant: str | None, task_input: Mapping[str, Any], callback_url: str | None) -> dict[str, Any]:
    body = body_of(task_input, variant, callback_url)
    body.pop("enableFallback", None)
    if _local_parts(require_task_id(body)) is not None:
        raise InvalidRequest("a 1080p version cannot be extended (KIE extends only its own generations)")
    check_text(body, "prompt", required=True)
    check_choice(body, "model", EXTEND_MODELS)
    if "seeds" in body:
        body["seeds"] = require_int(body["seeds"], "seeds", low=10000, high=99999)
    # not in extend's spec, but the contract sends it with every prompt: a Russian prompt is the norm here
    default_flag(body, "enableTranslation", True)
    return body


def _uhd_body(variant: str | None, task_input: Mapping[str, Any], callback_url: str | None) -> dict[str, Any]:
    if variant is not None:
        raise InvalidRequest("veo/4k has no variant")
    body = body_of(task_input, None, callback_url)
    body["index"] = require_int(body.get("index", 0), "index", low=0, high=99)
    local = _local_parts(require_task_id(body))
    if local is not None:  # the 4K of a 1080p version is the 4K of the video it came from
        body["taskId"], body["index"] = local
    return body


def _local_parts(task_id: str) -> tuple[str, int] | None:
    """(parent taskId, index) of a local 1080p task id, or None for a task KIE named."""
    if not task_id.startswith(LOCAL_PREFIX):
        return None
    parts = task_id[len(LOCAL_PREFIX):].rsplit("~", 2)
    if len(parts) != 3 or not parts[0] or not parts[1].isdigit():
        raise InvalidRequest("a malformed local 1080p task id")
    return parts[0], int(parts[1])


def _hd1080_record(data: Any, task_id: str, endpoint: str) -> TaskRecord:
    """get-1080p-video's ``data``: ``resultUrl`` once the file is ready, nothing before."""
    url = data.get("resultUrl") if isinstance(data, Mapping) else None
    if isinstance(url, str) and url.strip():
        urls = [url.strip()]
        return TaskRecord(task_id=task_id, model="", state=TaskState.SUCCESS, result_urls=urls,
                          items=items_of(urls), raw_state="ready", endpoint=endpoint)
    return TaskRecord(task_id=task_id, model="", state=TaskState.GENERATING, raw_state="pending", endpoint=endpoint)


def _ms(value: Any) -> int | None:
    """A time as ms since the epoch: a number, or the schema's ISO date-time with its zone
    (``2024-03-20T10:30:00Z``); the examples' zoneless ``"2025-06-06 10:30:00"`` is left out
    rather than guessed (nothing here needs it)."""
    if not isinstance(value, str) or value.strip().isdigit():
        return as_int(value)
    try:
        moment = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        return None
    return None if moment.tzinfo is None else int(moment.timestamp() * 1000)
