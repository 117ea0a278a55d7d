"""4o Image (GPT image): its generate call, record-info, callback and signed download link.

Why it exists: 4o Image is a dedicated family (DEDICATED.md §6) that reports its state twice —
a ``status`` word and an int ``successFlag``, either of which may be missing (and the flag may
come as a string) — and spells its result list ``resultUrls`` in the spec but ``result_urls`` in
the quickstart and the callback. Its files are fetched cross-origin through a 20-minute signed
URL from ``download-url``. :class:`Gpt4oEndpoint` turns all of it into the records every family
shares; ``progress`` is ignored (the status message shows stages, not percentages).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from kie.endpoint import Request
from kie.errors import BadResponse, InvalidRequest
from kie.family_wire import (
    body_of,
    callback_parts,
    callback_state,
    check_choice,
    check_http_url,
    check_length,
    data_object,
    failure_code,
    split_model,
    urls_of,
)
from kie.fields import as_int, as_text, json_object, message_of, task_id_of
from kie.limiter import CREATE, RECORD
from kie.models import Callback, TaskRecord, TaskState
from kie.validate import check_task_id

__all__ = ["CREATE_PATH", "DOWNLOAD_URL_PATH", "GPT4O", "RECORD_PATH", "SIZES", "Gpt4oEndpoint"]

CREATE_PATH = "/api/v1/gpt4o-image/generate"
RECORD_PATH = "/api/v1/gpt4o-image/record-info"
DOWNLOAD_URL_PATH = "/api/v1/gpt4o-image/download-url"
OPERATIONS = ("generate", "edit")
SIZES = ("1:1", "3:2", "2:3")
VARIANTS = (1, 2, 4)
MAX_FILES = 5

_STATUS: Mapping[str, TaskState] = {
    "GENERATING": TaskState.GENERATING,
    "SUCCESS": TaskState.SUCCESS,
    "CREATE_TASK_FAILED": TaskState.FAIL,
    "GENERATE_FAILED": TaskState.FAIL,
}
_FLAG: Mapping[int, TaskState] = {0: TaskState.GENERATING, 1: TaskState.SUCCESS, 2: TaskState.FAIL}


class Gpt4oEndpoint:
    """4o Image: generate and edit share one path; an edit is a generate with ``filesUrl``."""

    @property
    def name(self) -> str:
        return "gpt4o"

    def create_request(self, model: str, task_input: Mapping[str, Any], callback_url: str | None) -> Request:
        operation, _ = split_model(model, self.name, OPERATIONS)
        body = body_of(task_input, callback_url)
        if "size" not in body:
            raise InvalidRequest(f"size is required (one of {', '.join(SIZES)})")
        check_choice(body, "size", SIZES)
        check_choice(body, "nVariants", VARIANTS)
        if "fileUrl" in body:  # the deprecated single-file form: the newest spec lists only filesUrl
            single = body.pop("fileUrl")
            body.setdefault("filesUrl", [single])
        files = body.get("filesUrl")
        if files is not None:
            if not isinstance(files, list) or not 1 <= len(files) <= MAX_FILES:
                raise InvalidRequest(f"filesUrl must be a list of 1 to {MAX_FILES} image URLs")
            for index, url in enumerate(files):
                check_http_url(url, f"filesUrl[{index}]")
        if "maskUrl" in body:
            check_http_url(body["maskUrl"], "maskUrl")
        prompt = check_length(body, "prompt", 100_000)
        if operation == "edit" and not files:
            raise InvalidRequest("an edit needs filesUrl (1 to 5 images)")
        if prompt is None and not files:
            raise InvalidRequest("prompt or filesUrl is required")
        return Request("POST", CREATE_PATH, CREATE, json=body)

    def created_task_id(self, data: Any) -> str | None:
        return task_id_of(data) if isinstance(data, Mapping) else None

    def local_task_id(self, model: str, task_input: Mapping[str, Any]) -> str | None:
        return None

    def record_request(self, task_id: str) -> Request:
        return Request("GET", RECORD_PATH, RECORD, params={"taskId": check_task_id(task_id)})

    def download_url_request(self, task_id: str, url: str) -> Request | None:
        """The signed, 20-minute link to one of a task's files (the family's cross-origin download)."""
        return Request("POST", DOWNLOAD_URL_PATH, RECORD,
                       json={"taskId": check_task_id(task_id), "url": check_http_url(url, "result URL")})

    def record(self, data: Any, task_id: str) -> TaskRecord:
        record = data_object(data, "4o Image")
        found = task_id or task_id_of(record)
        if not found:
            raise BadResponse("4o Image record without a taskId")
        status = as_text(record.get("status"))
        flag = as_int(record.get("successFlag"))
        state = _state(status, flag)
        response = record.get("response")
        urls = _result_urls(response)
        param = json_object(record.get("param") or record.get("paramJson"))
        url = param.get("callBackUrl")
        return TaskRecord(
            task_id=found,
            model="",
            state=state,
            result_urls=urls,
            fail_code=failure_code(record.get("errorCode")),
            fail_msg=as_text(record.get("errorMessage")),
            created_ms=as_int(record.get("createTime")),
            completed_ms=as_int(record.get("completeTime")),
            param=param or None,
            callback_url=url if isinstance(url, str) and url else None,
            raw_state=status or (None if flag is None else f"successFlag={flag}"),
            endpoint=self.name,
        )

    def callback_task_id(self, body: Mapping[str, Any]) -> str | None:
        data = body.get("data")
        return task_id_of(data) if isinstance(data, Mapping) else None

    def callback(self, body: Mapping[str, Any]) -> Callback:
        data, task_id, code = callback_parts(body, "4o Image")
        urls = _result_urls(data.get("info"))
        state = callback_state(code, urls)
        return Callback(
            record=TaskRecord(
                task_id=task_id,
                model="",
                state=state,
                result_urls=urls,
                fail_code=str(code) if state is TaskState.FAIL and code is not None else None,
                fail_msg=message_of(body) if state is TaskState.FAIL else None,
                raw_state=None if code is None else str(code),
                endpoint=self.name,
            ),
            code=code,
            message=message_of(body),
        )


def _state(status: str | None, flag: int | None) -> TaskState:
    """The status word when it is one KIE documents, else the flag; neither known is UNKNOWN."""
    if status is not None and status.upper() in _STATUS:
        return _STATUS[status.upper()]
    if flag is not None and flag in _FLAG:
        return _FLAG[flag]
    return TaskState.UNKNOWN


def _result_urls(holder: Any) -> list[str]:
    """``resultUrls`` (the spec) or ``result_urls`` (the quickstart and callbacks), whichever is filled."""
    if not isinstance(holder, Mapping):
        return []
    return urls_of(holder.get("resultUrls")) or urls_of(holder.get("result_urls"))


GPT4O = Gpt4oEndpoint()
