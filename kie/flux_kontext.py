"""Flux Kontext (pro and max): its generate call, record-info and callback.

Why it exists: Flux Kontext is a dedicated family (DEDICATED.md §7) with an int ``successFlag``
(0 running, 1 done, 2 and 3 failed) and two result URLs: ``resultImageUrl``, kept 14 days, and
``originImageUrl``, which lives 10 minutes. The one we keep is always ``resultImageUrl``; the
other is only a fallback when a record lacks it (downloaded at once, it still arrives). A
failed callback carries empty strings rather than no ``info``. The safety tolerance's range
depends on the mode (0-6 for text to image, 0-2 for an edit) and KIE answers a wrong one with a
500, which would look retryable: it is refused here instead.
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
    check_flag,
    check_text,
    default_flag,
    failure_code,
    record_parts,
    split_model_id,
)
from kie.endpoint import Request
from kie.errors import InvalidRequest
from kie.fields import as_int, as_text, callback_url_of, json_object, message_of
from kie.limiter import CREATE
from kie.models import Callback, TaskRecord, TaskState
from kie.validate import check_url

__all__ = ["ASPECT_RATIOS", "CREATE_PATH", "FLUX_KONTEXT", "MODELS", "RECORD_PATH", "FluxKontextEndpoint"]

CREATE_PATH = "/api/v1/flux/kontext/generate"
RECORD_PATH = "/api/v1/flux/kontext/record-info"
OPERATIONS = ("generate", "edit")
MODELS = ("flux-kontext-pro", "flux-kontext-max")
ASPECT_RATIOS = ("21:9", "16:9", "4:3", "1:1", "3:4", "9:16")
OUTPUT_FORMATS = ("jpeg", "png")
SAFETY_MAX = {"generate": 6, "edit": 2}

_FLAG: Mapping[int, TaskState] = {0: TaskState.GENERATING, 1: TaskState.SUCCESS, 2: TaskState.FAIL, 3: TaskState.FAIL}


class FluxKontextEndpoint(DedicatedEndpoint):
    """Flux Kontext: text to image (``prompt``, ``aspectRatio``) or an edit (``prompt``, ``inputImage``)."""

    record_path = RECORD_PATH

    @property
    def name(self) -> str:
        return "flux-kontext"

    def create_request(self, model: str, task_input: Mapping[str, Any], callback_url: str | None) -> Request:
        operation, variant = split_model_id(model, self.name, OPERATIONS, MODELS)
        body = body_of(task_input, variant, callback_url)
        check_choice(body, "model", MODELS)
        check_text(body, "prompt", 100_000, required=True)
        if "inputImage" in body:
            check_url(body["inputImage"], "inputImage (one image URL)")
        elif operation == "edit":
            raise InvalidRequest("an edit needs inputImage (one image URL)")
        editing = operation == "edit" or "inputImage" in body  # KIE reads an input image as an edit
        check_choice(body, "aspectRatio", ASPECT_RATIOS)
        check_choice(body, "outputFormat", OUTPUT_FORMATS)
        check_choice(body, "safetyTolerance", range(SAFETY_MAX["edit" if editing else "generate"] + 1))
        check_flag(body, "promptUpsampling")
        # the text says translation is on by default; say so explicitly rather than trust a default
        default_flag(body, "enableTranslation", True)
        return Request("POST", CREATE_PATH, CREATE, json=body)

    def record(self, data: Any, task_id: str) -> TaskRecord:
        record, found = record_parts(data, task_id, "Flux Kontext")
        flag = as_int(record.get("successFlag"))
        state = _FLAG.get(flag, TaskState.UNKNOWN) if flag is not None else TaskState.UNKNOWN
        param = json_object(record.get("paramJson") or record.get("param"))
        return TaskRecord(
            task_id=found,
            model=as_text(param.get("model")) or "",
            state=state,
            result_urls=_image(record.get("response")),
            fail_code=failure_code(record.get("errorCode")),
            fail_msg=as_text(record.get("errorMessage")),
            created_ms=as_int(record.get("createTime")),
            completed_ms=as_int(record.get("completeTime")),
            param=param or None,
            callback_url=callback_url_of(param),
            raw_state=None if flag is None else str(flag),
            endpoint=self.name,
        )

    def callback(self, body: Mapping[str, Any]) -> Callback:
        data, task_id, code = callback_parts(body, "Flux Kontext")
        return callback_of(task_id, code, message_of(body), _image(data.get("info")), self.name)


def _image(holder: Any) -> list[str]:
    """``resultImageUrl`` (14 days), else ``originImageUrl`` (10 minutes); empty strings are none."""
    if not isinstance(holder, Mapping):
        return []
    for key in ("resultImageUrl", "originImageUrl"):
        value = holder.get(key)
        if isinstance(value, str) and value.strip():
            return [value.strip()]
    return []


FLUX_KONTEXT = FluxKontextEndpoint()
