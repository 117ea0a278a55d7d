"""KIE's dedicated endpoint families as the fake speaks them: paths, body rules, records, callbacks.

Why it exists: Veo, Suno, Runway, Aleph, 4o Image and Flux Kontext do not go through createTask;
each has its own paths, status field and words (DEDICATED.md §1.2), record shape and callback
shape, and KIE's documents show odd shapes the bot must survive (Veo's ``resultUrls`` as a JSON
string, 4o's ``result_urls`` and string ``successFlag``, Aleph's ``successFlag`` 0 both running and
failed and its top-level ``taskId``, Suno's camelCase record vs snake_case staged callbacks). This
module is that wire format as pure functions of a :class:`FamilyTask`; :mod:`fakes.kie.dedicated`
serves them and runs the tasks. A task's ``odd`` flag picks the documented odd shape.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from fakes.kie.results import requested_ratio
from fakes.kie.wire import FakeTask

# (family, operation) by create path; the record path of each family
CREATE_ROUTES: dict[str, tuple[str, str]] = {
    "/api/v1/veo/generate": ("veo", "generate"),
    "/api/v1/veo/extend": ("veo", "extend"),
    "/api/v1/veo/get-4k-video": ("veo", "4k"),
    "/api/v1/generate": ("suno", "generate"),
    "/api/v1/generate/extend": ("suno", "extend"),
    "/api/v1/generate/upload-cover": ("suno", "upload-cover"),
    "/api/v1/generate/upload-extend": ("suno", "upload-extend"),
    "/api/v1/lyrics": ("suno-lyrics", "generate"),
    "/api/v1/runway/generate": ("runway", "generate"),
    "/api/v1/runway/extend": ("runway", "extend"),
    "/api/v1/aleph/generate": ("aleph", "generate"),
    "/api/v1/gpt4o-image/generate": ("gpt4o", "generate"),
    "/api/v1/flux/kontext/generate": ("flux-kontext", "generate"),
}
RECORD_ROUTES: dict[str, str] = {
    "/api/v1/veo/record-info": "veo",
    "/api/v1/generate/record-info": "suno",
    "/api/v1/lyrics/record-info": "suno-lyrics",
    "/api/v1/runway/record-detail": "runway",
    "/api/v1/aleph/record-info": "aleph",
    "/api/v1/gpt4o-image/record-info": "gpt4o",
    "/api/v1/flux/kontext/record-info": "flux-kontext",
}
VEO_HD_PATH = "/api/v1/veo/get-1080p-video"
GPT4O_DOWNLOAD_PATH = "/api/v1/gpt4o-image/download-url"
FAMILIES = ("veo", "suno", "suno-lyrics", "runway", "aleph", "gpt4o", "flux-kontext")

VEO_MODELS = ("veo3", "veo3_fast", "veo3_lite")
VEO_EXTEND_MODELS = ("fast", "quality", "lite")
SUNO_MODELS = ("V4", "V4_5", "V4_5PLUS", "V4_5ALL", "V5", "V5_5")
FLUX_MODELS = ("flux-kontext-pro", "flux-kontext-max")
SUNO_STAGES = ("text", "first")  # before "complete"; "error" ends a failed task
HD_PROCESSING = "1080P is processing. It is expected to be completed in 1-2 minutes. Please check back shortly."
CREDITS_REFUNDED = "Generation failed, your credits have been refunded."  # Suno's code 531

_SUNO_TYPES = {"generate": "GENERATE", "extend": "EXTEND", "upload-cover": "UPLOAD_COVER",
               "upload-extend": "UPLOAD_EXTEND"}


@dataclass
class FamilyTask(FakeTask):
    """A dedicated family's task: the jobs-style ``state`` drives it; the family's words are derived."""

    operation: str = "generate"  # "generate", "extend", "4k", "upload-cover", "upload-extend"
    odd: bool = False  # answer in the documented odd shape (see the module doc)
    parent_id: str | None = None  # Veo/Runway extend and Veo 4K: the task acted on
    stage: str | None = None  # Suno: None (PENDING), "text", "first", "complete"
    raws: list[str] = field(default_factory=list)  # the family's status word/flag each time it changed
    # result files: url, plus image (cover/thumbnail/origin), id, title, duration, tags, prompt, stream
    items: list[dict[str, Any]] = field(default_factory=list)
    full_urls: list[str] = field(default_factory=list)  # Veo extend: the whole video after extension
    file_names: list[str] = field(default_factory=list)  # the files served for it (file_faults by index)

    @property
    def urls(self) -> list[str]:
        return [item["url"] for item in self.items]

    @property
    def code(self) -> int:
        """The failure code as an int (KIE's dedicated records and callbacks carry numbers)."""
        try:
            return int(self.fail_code or 500)
        except ValueError:
            return 500


# ---------------------------------------------------------------------- request rules

Problem = tuple[int, str]  # (envelope code, message) a create is refused with


def check_body(family: str, operation: str, body: Mapping[str, Any]) -> Problem | None:
    """What KIE documents each create body must hold; None when it holds it."""
    check = _CHECKS.get((family, operation))
    return None if check is None else check(body)


def _text(body: Mapping[str, Any], key: str, limit: int | None = None) -> str | None:
    value = body.get(key)
    if not isinstance(value, str) or not value.strip():
        return f"{key} is required"
    if limit is not None and len(value) > limit:
        return f"{key} cannot exceed {limit} characters"
    return None


def _one_of(body: Mapping[str, Any], key: str, choices: tuple[Any, ...], required: bool = False) -> str | None:
    if key not in body:
        return f"{key} is required" if required else None
    value = body[key]
    if isinstance(value, bool) or value not in choices:
        return f"{key} must be one of {', '.join(str(c) for c in choices)}"
    return None


def _flag(body: Mapping[str, Any], key: str, required: bool = True) -> str | None:
    if key not in body:
        return f"{key} is required" if required else None
    return None if isinstance(body[key], bool) else f"{key} must be a boolean"


def _url(body: Mapping[str, Any], key: str) -> str | None:
    value = body.get(key)
    if not (isinstance(value, str) and value.startswith(("http://", "https://"))):
        return f"{key} must be an http(s) URL"
    return None


def _first(*problems: str | None) -> Problem | None:
    for problem in problems:
        if problem:
            return 422, problem
    return None


def _veo_generate(body: Mapping[str, Any]) -> Problem | None:
    images = body.get("imageUrls", [])
    kind = body.get("generationType")
    image_problem = None
    if not isinstance(images, list) or not all(isinstance(url, str) for url in images):
        image_problem = "imageUrls must be a list of URLs"
    elif len(images) > (2 if kind == "FIRST_AND_LAST_FRAMES_2_VIDEO" else 3):
        image_problem = "too many imageUrls"
    elif kind == "REFERENCE_2_VIDEO" and body.get("model", "veo3_fast") == "veo3":
        image_problem = "REFERENCE_2_VIDEO is only supported by veo3_fast and veo3_lite"
    return _first(
        _text(body, "prompt"),
        _one_of(body, "model", VEO_MODELS),
        _one_of(body, "aspectRatio", ("16:9", "9:16", "Auto")),
        _one_of(body, "resolution", ("720p", "1080p", "4k")),
        _one_of(body, "duration", (4, 6, 8)),
        _one_of(body, "generationType", ("TEXT_2_VIDEO", "FIRST_AND_LAST_FRAMES_2_VIDEO", "REFERENCE_2_VIDEO")),
        _flag(body, "enableTranslation", required=False),
        image_problem,
    )


def _veo_4k(body: Mapping[str, Any]) -> Problem | None:
    index = body.get("index", 0)
    return _first(_text(body, "taskId"),
                  None if isinstance(index, int) and not isinstance(index, bool) and index >= 0
                  else "index must be a non-negative integer")


def _suno_modes(body: Mapping[str, Any], prompt_limit: int) -> str | None:
    if body.get("customMode") is True:
        return (_text(body, "style") or _text(body, "title", 100)
                or (None if body.get("instrumental") is True else _text(body, "prompt", 5000)))
    return _text(body, "prompt", prompt_limit)


def _suno_generate(body: Mapping[str, Any]) -> Problem | None:
    return _first(_flag(body, "customMode"), _flag(body, "instrumental"),
                  _one_of(body, "model", SUNO_MODELS, required=True), _suno_modes(body, 500))


def _suno_extend(body: Mapping[str, Any]) -> Problem | None:
    custom = body.get("defaultParamFlag") is True
    continue_at = body.get("continueAt")
    return _first(
        _text(body, "audioId"), _flag(body, "defaultParamFlag"), _one_of(body, "model", SUNO_MODELS, required=True),
        (_text(body, "style") or _text(body, "title", 100)
         or (None if isinstance(continue_at, (int, float)) and not isinstance(continue_at, bool) and continue_at > 0
             else "continueAt must be a positive number of seconds")) if custom else None,
    )


def _suno_upload_cover(body: Mapping[str, Any]) -> Problem | None:
    return _first(_url(body, "uploadUrl"), _flag(body, "customMode"), _flag(body, "instrumental"),
                  _one_of(body, "model", SUNO_MODELS, required=True), _suno_modes(body, 500))


def _suno_upload_extend(body: Mapping[str, Any]) -> Problem | None:
    return _first(_url(body, "uploadUrl"), _flag(body, "defaultParamFlag"),
                  _one_of(body, "model", SUNO_MODELS, required=True))


def _runway_generate(body: Mapping[str, Any]) -> Problem | None:
    return _first(
        _text(body, "prompt", 1800),
        _one_of(body, "duration", (5, 10), required=True),
        _one_of(body, "quality", ("720p", "1080p"), required=True),
        "1080p is not available for 10-second videos" if body.get("quality") == "1080p" and body.get("duration") == 10
        else None,
        None if body.get("imageUrl") else _one_of(body, "aspectRatio", ("16:9", "4:3", "1:1", "3:4", "9:16"),
                                                   required=True),
    )


def _gpt4o(body: Mapping[str, Any]) -> Problem | None:
    files = body.get("filesUrl")
    files_problem = None
    if files is not None and (not isinstance(files, list) or not 1 <= len(files) <= 5):
        files_problem = "filesUrl must hold 1 to 5 image URLs"
    has_prompt = isinstance(body.get("prompt"), str) and body["prompt"].strip()
    return _first(
        _one_of(body, "size", ("1:1", "3:2", "2:3"), required=True),
        None if has_prompt or files else "prompt or filesUrl is required",
        files_problem,
        _one_of(body, "nVariants", (1, 2, 4)),
    )


def _flux(body: Mapping[str, Any]) -> Problem | None:
    found = _first(
        _text(body, "prompt"),
        _one_of(body, "model", FLUX_MODELS),
        _one_of(body, "aspectRatio", ("21:9", "16:9", "4:3", "1:1", "3:4", "9:16")),
        _one_of(body, "outputFormat", ("jpeg", "png")),
    )
    if found:
        return found
    tolerance = body.get("safetyTolerance")
    if tolerance is not None:
        top = 2 if body.get("inputImage") else 6
        if isinstance(tolerance, bool) or not isinstance(tolerance, int) or not 0 <= tolerance <= top:
            return 500, "safetyTolerance should be 0-2 or 0-6"
    return None


_CHECKS: dict[tuple[str, str], Callable[[Mapping[str, Any]], Problem | None]] = {
    ("veo", "generate"): _veo_generate,
    ("veo", "extend"): lambda b: _first(_text(b, "taskId"), _text(b, "prompt"), _one_of(b, "model", VEO_EXTEND_MODELS)),
    ("veo", "4k"): _veo_4k,
    ("suno", "generate"): _suno_generate,
    ("suno", "extend"): _suno_extend,
    ("suno", "upload-cover"): _suno_upload_cover,
    ("suno", "upload-extend"): _suno_upload_extend,
    ("suno-lyrics", "generate"): lambda b: _first(_text(b, "prompt")),
    ("runway", "generate"): _runway_generate,
    ("runway", "extend"): lambda b: _first(_text(b, "taskId"), _text(b, "prompt", 1800),
                                           _one_of(b, "quality", ("720p", "1080p"), required=True)),
    ("aleph", "generate"): lambda b: _first(_text(b, "prompt"), _url(b, "videoUrl")),
    ("gpt4o", "generate"): _gpt4o,
    ("flux-kontext", "generate"): _flux,
}


def plan_keys(family: str, operation: str, body: Mapping[str, Any]) -> tuple[str, ...]:
    """The plan keys of a task, narrowest first: ``veo/generate/veo3_fast``, ``veo/generate``, ``veo``."""
    model = body.get("model")
    if family == "veo" and operation == "generate" and not model:
        model = "veo3_fast"  # KIE's default
    if family == "flux-kontext" and not model:
        model = "flux-kontext-pro"
    keys = [f"{family}/{operation}", family]
    if isinstance(model, str) and model:
        keys.insert(0, f"{family}/{operation}/{model}")
    return tuple(keys)


# ---------------------------------------------------------------------- status words

def clock(ms_epoch: int | None) -> str | None:
    """KIE's "YYYY-MM-DD HH:mm:ss" (UTC) for a ms epoch."""
    if ms_epoch is None:
        return None
    return datetime.fromtimestamp(ms_epoch / 1000, UTC).strftime("%Y-%m-%d %H:%M:%S")


def _flag_value(task: FamilyTask) -> int:
    """Veo/Flux successFlag: 0 running, 1 done, 2 failed early (a 400), 3 failed generating."""
    if task.state == "success":
        return 1
    if task.state != "fail":
        return 0
    raw = task.plan.raw_state
    if raw is not None and raw.isdigit():
        return int(raw)
    return 2 if task.code == 400 else 3


def _suno_word(task: FamilyTask) -> str:
    if task.state == "success":
        return task.plan.raw_state or "SUCCESS"  # CALLBACK_EXCEPTION: done, but KIE could not call us back
    if task.state == "fail":
        if task.plan.raw_state:
            return task.plan.raw_state
        if task.code == 400:
            return "SENSITIVE_WORD_ERROR"
        return "GENERATE_LYRICS_FAILED" if task.family == "suno-lyrics" else "GENERATE_AUDIO_FAILED"
    return {"text": "TEXT_SUCCESS", "first": "FIRST_SUCCESS"}.get(task.stage or "", "PENDING")


def _gpt4o_word(task: FamilyTask) -> str:
    if task.state == "success":
        return "SUCCESS"
    if task.state == "fail":
        return task.plan.raw_state or "GENERATE_FAILED"
    return "GENERATING"


_RUNWAY_WORDS = {"waiting": "wait", "queuing": "queueing", "generating": "generating", "success": "success",
                 "fail": "fail"}


def raw_word(task: FamilyTask) -> str:
    """The family's own status as its record shows it (a flag as its digits)."""
    if task.family in ("suno", "suno-lyrics"):
        return _suno_word(task)
    if task.family == "gpt4o":
        return _gpt4o_word(task)
    if task.family == "runway":
        return _RUNWAY_WORDS[task.state]
    if task.family == "aleph":
        return "1" if task.state == "success" else "0"
    return str(_flag_value(task))


# ---------------------------------------------------------------------- records

def record(task: FamilyTask) -> dict[str, Any]:
    """What the family's status call answers in ``data``."""
    return _RECORDS[task.family](task)


def _failed(task: FamilyTask) -> tuple[int | None, str]:
    return (task.code, task.fail_msg or "") if task.state == "fail" else (None, "")


def _veo_urls(task: FamilyTask, urls: list[str]) -> Any:
    """Veo's resultUrls: an array, or (the odd shape KIE's schema types it as) a JSON string of one."""
    return json.dumps(urls) if task.odd else urls


def _veo_info(task: FamilyTask) -> dict[str, Any]:
    urls = task.urls
    info: dict[str, Any] = {"resultUrls": _veo_urls(task, urls),
                            "originUrls": urls if requested_ratio(task.input) not in (None, (16, 9)) else None,
                            "resolution": "4k" if task.operation == "4k" else task.input.get("resolution", "720p")}
    if task.operation == "4k":
        info["imageUrls"] = [item["image"] for item in task.items]
    return info


def _veo_record(task: FamilyTask) -> dict[str, Any]:
    code, message = _failed(task)
    response: dict[str, Any] | None = None
    if task.state == "success":
        response = {"taskId": task.task_id, **_veo_info(task)}
        if task.operation == "extend":
            response["fullResultUrls"] = list(task.full_urls)
        if task.operation == "4k":
            response["mediaIds"] = [item["id"] for item in task.items]
    data: dict[str, Any] = {
        "taskId": task.task_id, "paramJson": task.param, "completeTime": clock(task.complete_time),
        "createTime": clock(task.create_time), "response": response, "successFlag": _flag_value(task),
        "errorCode": code, "errorMessage": message,
    }
    if task.operation != "4k":
        data["fallbackFlag"] = False
    return data


def _shown(task: FamilyTask, stage: str | None) -> list[dict[str, Any]]:
    """Suno's songs as they stand at ``stage``: words at "text", the first song at "first", all at the end."""
    if stage not in ("text", "first", "complete"):
        return []
    shown = []
    for index, item in enumerate(task.items):
        ready = stage == "complete" or (stage == "first" and index == 0)
        streaming = ready or stage == "first"
        shown.append({**item, "url": item["url"] if ready else "", "stream": item["stream"] if streaming else "",
                      "image": item["image"] if ready else "", "duration": item["duration"] if ready else None})
    return shown


def _suno_stage(task: FamilyTask) -> str | None:
    return "complete" if task.state == "success" else (None if task.state == "fail" else task.stage)


def _suno_song(item: Mapping[str, Any], upload: bool, snake: bool) -> dict[str, Any]:
    names = (("id", "id"), ("audio_url", "audioUrl"), ("stream_audio_url", "streamAudioUrl"),
             ("image_url", "imageUrl"), ("prompt", "prompt"), ("model_name", "modelName"), ("title", "title"),
             ("tags", "tags"), ("createTime", "createTime"), ("duration", "duration"))
    values = {"id": item["id"], "audio_url": item["url"], "stream_audio_url": item["stream"],
              "image_url": item["image"], "prompt": item["prompt"], "model_name": item["model_name"],
              "title": item["title"], "tags": item["tags"], "createTime": item["create_time"],
              "duration": item["duration"]}
    song = {(snake_name if snake else camel): values[snake_name] for snake_name, camel in names}
    if upload:  # upload-cover / upload-extend songs also name their source copies
        for snake_name, camel in (("source_audio_url", "sourceAudioUrl"),
                                  ("source_stream_audio_url", "sourceStreamAudioUrl"),
                                  ("source_image_url", "sourceImageUrl")):
            song[snake_name if snake else camel] = values[snake_name.removeprefix("source_")]
    return song


def _suno_record(task: FamilyTask) -> dict[str, Any]:
    code, message = _failed(task)
    upload = task.operation.startswith("upload")
    response: dict[str, Any] = {
        "taskId": task.task_id,
        "sunoData": [_suno_song(item, upload, snake=False) for item in _shown(task, _suno_stage(task))],
    }
    if task.state == "fail":
        response["errorMessage"] = message
    return {
        "taskId": task.task_id, "parentMusicId": task.input.get("audioId") or "", "param": task.param,
        "response": response, "status": _suno_word(task), "type": _SUNO_TYPES.get(task.operation, "GENERATE"),
        "operationType": task.operation.replace("-", "_"), "errorCode": code, "errorMessage": message or None,
    }


def _lyrics_record(task: FamilyTask) -> dict[str, Any]:
    code, message = _failed(task)
    variants = [{"text": item["text"], "title": item["title"], "status": "complete", "errorMessage": ""}
                for item in task.items] if task.state == "success" else []
    return {"taskId": task.task_id, "param": task.param, "response": {"taskId": task.task_id, "data": variants},
            "status": _suno_word(task), "type": "LYRICS", "errorCode": code, "errorMessage": message or None}


def _runway_record(task: FamilyTask) -> dict[str, Any]:
    code, message = _failed(task)
    video = None
    if task.state == "success":
        item = task.items[0]
        video = {"videoId": item["id"], "taskId": task.task_id, "videoUrl": item["url"], "imageUrl": item["image"]}
    return {
        "taskId": task.task_id, "parentTaskId": task.parent_id or "",
        "generateParam": {"prompt": task.input.get("prompt", ""), "imageUrl": task.input.get("imageUrl", ""),
                          "expandPrompt": True},
        "state": _RUNWAY_WORDS[task.state], "generateTime": clock(task.create_time), "videoInfo": video,
        "failCode": code, "failMsg": message, "expireFlag": 0,
    }


def _aleph_record(task: FamilyTask) -> dict[str, Any]:
    # successFlag 0 both while running and on failure: only errorCode/errorMessage tell them apart
    response = None
    if task.state == "success":
        item = task.items[0]
        response = {"taskId": task.task_id, "resultVideoUrl": item["url"], "resultImageUrl": item["image"]}
    return {
        "taskId": task.task_id, "paramJson": task.param, "response": response,
        "completeTime": clock(task.complete_time), "createTime": clock(task.create_time),
        "successFlag": 1 if task.state == "success" else 0,
        "errorCode": 0 if task.state == "success" else (task.code if task.state == "fail" else None),
        "errorMessage": "" if task.state == "success" else (task.fail_msg if task.state == "fail" else None),
    }


_PROGRESS = {"waiting": "0.00", "queuing": "0.25", "generating": "0.50", "success": "1.00"}


def _gpt4o_record(task: FamilyTask) -> dict[str, Any]:
    code, message = _failed(task)
    response = None
    if task.state == "success":
        response = {"result_urls" if task.odd else "resultUrls": task.urls}
    flag = {"success": 1, "fail": 2}.get(task.state, 0)
    return {
        "taskId": task.task_id, "paramJson": task.param, "completeTime": task.complete_time,
        "createTime": task.create_time, "response": response,
        "successFlag": str(flag) if task.odd else flag, "status": _gpt4o_word(task),
        "errorCode": code, "errorMessage": message,
        "progress": _PROGRESS.get(task.states[-2] if task.state == "fail" and len(task.states) > 1 else task.state,
                                  "0.00"),
    }


def _flux_record(task: FamilyTask) -> dict[str, Any]:
    code, message = _failed(task)
    response = None
    if task.state == "success":
        item = task.items[0]
        response = {"originImageUrl": item["image"], "resultImageUrl": item["url"]}
    return {
        "taskId": task.task_id, "paramJson": task.param, "completeTime": clock(task.complete_time),
        "createTime": clock(task.create_time), "response": response, "successFlag": _flag_value(task),
        "errorCode": code, "errorMessage": message,
    }


_RECORDS: dict[str, Callable[[FamilyTask], dict[str, Any]]] = {
    "veo": _veo_record, "suno": _suno_record, "suno-lyrics": _lyrics_record, "runway": _runway_record,
    "aleph": _aleph_record, "gpt4o": _gpt4o_record, "flux-kontext": _flux_record,
}


# ---------------------------------------------------------------------- callbacks

def callback(task: FamilyTask, stage: str | None = None) -> dict[str, Any] | None:
    """The body KIE POSTs for the task's end (or, for Suno, for ``stage``); None when it sends none."""
    if task.family in ("suno", "suno-lyrics"):
        return suno_callback(task, stage or ("complete" if task.state == "success" else "error"))
    return _CALLBACKS[task.family](task)


def suno_callback(task: FamilyTask, stage: str) -> dict[str, Any]:
    """Suno's staged body, snake_case: "text" (no songs yet), "first", "complete", "error"."""
    if stage == "error" or (stage == "complete" and task.state == "fail"):
        return {"code": task.code, "msg": task.fail_msg or "Generation failed",
                "data": {"callbackType": "error", "task_id": task.task_id, "data": None}}
    if task.family == "suno-lyrics":
        variants = [{"text": item["text"], "title": item["title"], "status": "complete", "error_message": ""}
                    for item in task.items]
        return {"code": 200, "msg": "All generated successfully.",
                "data": {"callbackType": "complete", "task_id": task.task_id, "data": variants}}
    upload = task.operation.startswith("upload")
    songs = [] if stage == "text" else [_suno_song(item, upload, snake=True) for item in _shown(task, stage)]
    message = {"text": "Text generation completed.", "first": "First track generated successfully."}
    return {"code": 200, "msg": message.get(stage, "All generated successfully."),
            "data": {"callbackType": stage, "task_id": task.task_id, "data": songs}}


def _veo_callback(task: FamilyTask) -> dict[str, Any]:
    if task.operation == "4k":
        if task.state == "fail":
            return {"code": task.code, "msg": task.fail_msg, "data": {"taskId": task.task_id}}
        images = [item["image"] for item in task.items]
        if task.odd:  # the OpenAPI callback schema's shape
            return {"code": 200, "msg": "4K Video generated successfully.",
                    "data": {"task_id": task.task_id, "result_urls": task.urls,
                             "media_ids": [item["id"] for item in task.items], "image_urls": images}}
        return {"code": 200, "msg": "4K Video generated successfully.",
                "data": {"taskId": task.task_id, "info": {"resultUrls": task.urls, "imageUrls": images}}}
    if task.state == "fail":
        return {"code": task.code, "msg": task.fail_msg, "data": {"taskId": task.task_id, "fallbackFlag": False}}
    return {"code": 200, "msg": "Veo3.1 video generated successfully.",
            "data": {"taskId": task.task_id, "promptJson": json.dumps({"prompt": task.input.get("prompt", "")}),
                     "info": _veo_info(task), "fallbackFlag": False}}


def _runway_callback(task: FamilyTask) -> dict[str, Any]:
    if task.state == "fail":
        data: dict[str, Any] = {"task_id": task.task_id}
        if task.operation != "extend":  # an extend's failure names only the task
            data.update(video_id="", video_url="", image_url="")
        return {"code": task.code, "msg": task.fail_msg, "data": data}
    item = task.items[0]
    return {"code": 200, "msg": "All generated successfully.",
            "data": {"task_id": task.task_id, "video_id": item["id"], "video_url": item["url"],
                     "image_url": item["image"]}}


def _aleph_callback(task: FamilyTask) -> dict[str, Any]:
    item = task.items[0] if task.items else {"id": "", "url": "", "image": ""}
    if task.odd:  # the OpenAPI schema's shape, as Runway's
        return {"code": 200 if task.state == "success" else task.code,
                "msg": "success" if task.state == "success" else task.fail_msg,
                "data": {"task_id": task.task_id, "video_id": item["id"], "video_url": item["url"],
                         "image_url": item["image"]}}
    if task.state == "fail":  # the callbacks page's shape: the task id at the top
        return {"code": task.code, "msg": task.fail_msg, "data": None, "taskId": task.task_id}
    return {"code": 200, "msg": "success", "data": {"result_video_url": item["url"], "result_image_url": item["image"]},
            "taskId": task.task_id}


def _gpt4o_callback(task: FamilyTask) -> dict[str, Any]:
    if task.state == "fail":
        return {"code": task.code, "msg": task.fail_msg, "data": {"taskId": task.task_id, "info": None}}
    return {"code": 200, "msg": "success", "data": {"taskId": task.task_id, "info": {"result_urls": task.urls}}}


def _flux_callback(task: FamilyTask) -> dict[str, Any]:
    if task.state == "fail":
        return {"code": task.code, "msg": task.fail_msg,
                "data": {"taskId": task.task_id, "info": {"originImageUrl": "", "resultImageUrl": ""}}}
    item = task.items[0]
    return {"code": 200, "msg": "BFL image generated successfully.",
            "data": {"taskId": task.task_id, "info": {"originImageUrl": item["image"], "resultImageUrl": item["url"]}}}


_CALLBACKS: dict[str, Callable[[FamilyTask], dict[str, Any]]] = {
    "veo": _veo_callback, "runway": _runway_callback, "aleph": _aleph_callback, "gpt4o": _gpt4o_callback,
    "flux-kontext": _flux_callback,
}
