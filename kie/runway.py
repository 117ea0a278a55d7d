"""KIE's Runway (Gen video) and Runway Aleph (video to video) families, built and parsed (DEDICATED.md §5).

Why it exists: neither is on the jobs API, and the two differ from each other as much as from
it. Runway reports ``state`` wait|queueing|generating|success|fail at ``record-detail`` (note
"queueing", not the jobs API's "queuing") with the video under ``videoInfo`` and keeps no
callback URL in its record; its callbacks are snake_case. Aleph reports ``successFlag`` 0|1
where 0 means "in progress *or* failed" (the error fields decide), remembers its request as
``paramJson``, and its callbacks come in two documented shapes (``data.task_id`` with
``video_url``, or ``data.result_video_url`` with the task id at the *top* level).

Catalog ids: ``runway/generate`` and ``runway/animate`` (image to video: ``imageUrl``),
``runway/extend`` (input ``taskId``, ``prompt``, ``quality``), ``aleph/generate``. Neither family
has a model field, so neither takes a variant.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from kie.dedicated import (
    DedicatedEndpoint,
    body_of,
    callback_of,
    callback_parts,
    check_choice,
    check_text,
    failure_code,
    first_text,
    items_of,
    one_of,
    record_parts,
    require_int,
    require_task_id,
    split_model_id,
    url_list,
)
from kie.endpoint import Request
from kie.errors import BadResponse, InvalidRequest
from kie.fields import as_int, as_text, callback_url_of, json_object, message_of, task_id_of
from kie.limiter import CREATE
from kie.models import Callback, TaskRecord, TaskState
from kie.validate import check_url

__all__ = ["ALEPH", "ALEPH_ASPECT_RATIOS", "ALEPH_GENERATE_PATH", "ALEPH_RECORD_PATH", "ASPECT_RATIOS",
           "DURATIONS", "EXTEND_PATH", "GENERATE_PATH", "MAX_PROMPT", "QUALITIES", "RECORD_PATH", "RUNWAY",
           "AlephEndpoint", "RunwayEndpoint", "parse_aleph_record", "parse_runway_record"]

GENERATE_PATH = "/api/v1/runway/generate"
EXTEND_PATH = "/api/v1/runway/extend"
RECORD_PATH = "/api/v1/runway/record-detail"  # record-DETAIL, not record-info
ALEPH_GENERATE_PATH = "/api/v1/aleph/generate"
ALEPH_RECORD_PATH = "/api/v1/aleph/record-info"  # the spec's path; its page's own curl says record-detail

MAX_PROMPT = 1800
# "an empty string adds no watermark" (KIE's spec); without the field KIE's default is not documented
NO_WATERMARK = ""
DURATIONS = (5, 10)
QUALITIES = ("720p", "1080p")
ASPECT_RATIOS = ("16:9", "4:3", "1:1", "3:4", "9:16")
ALEPH_ASPECT_RATIOS = ("16:9", "9:16", "4:3", "3:4", "1:1", "21:9")
_STATES = {"wait": TaskState.WAITING, "waiting": TaskState.WAITING, "queueing": TaskState.QUEUING,
           "queuing": TaskState.QUEUING, "generating": TaskState.GENERATING, "success": TaskState.SUCCESS,
           "fail": TaskState.FAIL}


class RunwayEndpoint(DedicatedEndpoint):
    """Runway: ``POST runway/generate`` (text or one image), ``POST runway/extend``, ``GET record-detail``."""

    record_path = RECORD_PATH

    @property
    def name(self) -> str:
        return "runway"

    def create_request(self, model: str, task_input: Mapping[str, Any], callback_url: str | None) -> Request:
        operation, _ = split_model_id(model, self.name, ("generate", "animate", "extend"))
        if operation in ("generate", "animate"):
            return Request("POST", GENERATE_PATH, CREATE, json=_runway_generate_body(operation, task_input,
                                                                                    callback_url))
        return Request("POST", EXTEND_PATH, CREATE, json=_runway_extend_body(task_input, callback_url))

    def record(self, data: Any, task_id: str) -> TaskRecord:
        return parse_runway_record(data, task_id, endpoint=self.name)

    def callback(self, body: Mapping[str, Any]) -> Callback:
        """``data.{task_id, video_id, video_url, image_url}``; a failure has empty URLs or none."""
        data, task_id, code = callback_parts(body, "runway")
        return callback_of(task_id, code, message_of(body), url_list(data.get("video_url")), self.name,
                           cover_url=first_text(data, "image_url"))


class AlephEndpoint(DedicatedEndpoint):
    """Runway Aleph: ``POST aleph/generate {prompt, videoUrl}``, ``GET aleph/record-info``."""

    record_path = ALEPH_RECORD_PATH

    @property
    def name(self) -> str:
        return "aleph"

    def create_request(self, model: str, task_input: Mapping[str, Any], callback_url: str | None) -> Request:
        split_model_id(model, self.name, ("generate",))
        body = body_of(task_input, None, callback_url)
        check_text(body, "prompt", required=True)
        check_url(body.get("videoUrl"), "videoUrl")
        if "referenceImage" in body:
            check_url(body["referenceImage"], "referenceImage")
        check_choice(body, "aspectRatio", ALEPH_ASPECT_RATIOS)
        if "seed" in body:
            body["seed"] = require_int(body["seed"], "seed", low=0)
        body.setdefault("waterMark", NO_WATERMARK)
        return Request("POST", ALEPH_GENERATE_PATH, CREATE, json=body)

    def record(self, data: Any, task_id: str) -> TaskRecord:
        return parse_aleph_record(data, task_id, endpoint=self.name)

    def callback_task_id(self, body: Mapping[str, Any]) -> str | None:
        return super().callback_task_id(body) or task_id_of(body)

    def callback(self, body: Mapping[str, Any]) -> Callback:
        """Both documented shapes: the schema's ``data.{task_id, video_url, image_url}`` and the
        callbacks page's ``{data: {result_video_url, result_image_url} | null, taskId}``."""
        task_id = self.callback_task_id(body)
        if task_id is None:
            raise BadResponse("callback without a task id (data.task_id or taskId)")
        data = body.get("data")
        data = data if isinstance(data, Mapping) else {}
        urls = url_list(data.get("video_url") or data.get("result_video_url"))
        return callback_of(task_id, as_int(body.get("code")), message_of(body), urls, self.name,
                           cover_url=first_text(data, "image_url", "result_image_url"))


RUNWAY = RunwayEndpoint()
ALEPH = AlephEndpoint()


def parse_runway_record(data: Any, task_id: str | None, *, endpoint: str = "runway") -> TaskRecord:
    """A task's record from ``record-detail``'s ``data``. Runway's record names no callback URL."""
    data, found = record_parts(data, task_id, "runway")
    raw_state = as_text(data.get("state"))
    state = _STATES.get(raw_state.lower(), TaskState.UNKNOWN) if raw_state else TaskState.UNKNOWN
    video = json_object(data.get("videoInfo"))
    urls = url_list(video.get("videoUrl"))
    param = json_object(data.get("generateParam"))
    return TaskRecord(
        task_id=found,
        model="",
        state=state,
        result_urls=urls,
        items=items_of(urls, first_text(video, "imageUrl")),
        fail_code=as_text(data.get("failCode")) if state is TaskState.FAIL else None,
        fail_msg=as_text(data.get("failMsg")),
        param=param or None,
        raw_state=raw_state,
        endpoint=endpoint,
    )


def parse_aleph_record(data: Any, task_id: str | None, *, endpoint: str = "aleph") -> TaskRecord:
    """A task's record from Aleph's ``record-info``: successFlag 1 is success; 0 is failure when
    an errorCode (other than 0) or an errorMessage is there, and still running otherwise."""
    data, found = record_parts(data, task_id, "aleph")
    flag = as_int(data.get("successFlag"))
    error_code = failure_code(data.get("errorCode"))
    error_message = as_text(data.get("errorMessage"))
    if flag == 1:
        state = TaskState.SUCCESS
    elif flag == 0:
        state = TaskState.FAIL if (error_code or error_message) else TaskState.GENERATING
    elif flag in (2, 3):  # not in Aleph's spec; every sibling family means failure by them
        state = TaskState.FAIL
    else:
        state = TaskState.UNKNOWN
    response = json_object(data.get("response"))
    urls = url_list(response.get("resultVideoUrl"))
    param = json_object(data.get("paramJson"))
    return TaskRecord(
        task_id=found,
        model="",
        state=state,
        result_urls=urls,
        items=items_of(urls, first_text(response, "resultImageUrl")),
        fail_code=error_code if state is not TaskState.SUCCESS else None,
        fail_msg=error_message if state is not TaskState.SUCCESS else None,
        param=param or None,
        callback_url=callback_url_of(param),
        raw_state=as_text(data.get("successFlag")),
        endpoint=endpoint,
    )


def _runway_generate_body(operation: str, task_input: Mapping[str, Any], callback_url: str | None) -> dict[str, Any]:
    body = body_of(task_input, None, callback_url)
    check_text(body, "prompt", MAX_PROMPT, required=True)
    # duration and quality are required by KIE: the shortest and the cheapest when the input is silent
    body["duration"] = one_of(require_int(body.get("duration", 5), "duration"), DURATIONS, "duration")
    body["quality"] = one_of(body.get("quality", "720p"), QUALITIES, "quality")
    if body["quality"] == "1080p" and body["duration"] == 10:
        raise InvalidRequest("1080p is not made in 10-second videos")
    if operation == "animate" and "imageUrl" not in body:
        raise InvalidRequest("runway/animate needs an imageUrl")
    if "imageUrl" in body:
        check_url(body["imageUrl"], "imageUrl")
    elif "aspectRatio" not in body:
        raise InvalidRequest("aspectRatio is required for a video from text alone")
    check_choice(body, "aspectRatio", ASPECT_RATIOS)
    body.setdefault("waterMark", NO_WATERMARK)
    return body


def _runway_extend_body(task_input: Mapping[str, Any], callback_url: str | None) -> dict[str, Any]:
    body = body_of(task_input, None, callback_url)
    require_task_id(body)
    check_text(body, "prompt", MAX_PROMPT, required=True)
    body["quality"] = one_of(body.get("quality", "720p"), QUALITIES, "quality")
    body.setdefault("waterMark", NO_WATERMARK)
    return body
