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

from kie.dedicated import (
    DedicatedEndpoint,
    body_of,
    callback_of,
    callback_parts,
    check_choice,
    check_text,
    check_url_list,
    failure_code,
    record_parts,
    split_model_id,
    url_list,
)
from kie.endpoint import Request
from kie.errors import InvalidRequest
from kie.fields import as_int, as_text, callback_url_of, json_object, message_of
from kie.limiter import CREATE, RECORD
from kie.models import Callback, TaskRecord, TaskState
from kie.validate import check_task_id, check_url

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


class Gpt4oEndpoint(DedicatedEndpoint):
    """4o Image: generate and edit share one path; an edit is a generate with ``filesUrl``."""

    record_path = RECORD_PATH

    @property
    def name(self) -> str:
        return "gpt4o"

    def create_request(self, model: str, task_input: Mapping[str, Any], callback_url: str | None) -> Request:
        operation, _ = split_model_id(model, self.name, OPERATIONS)
        body = body_of(task_input, None, callback_url)
        if "size" not in body:
            raise InvalidRequest(f"size is required (one of {', '.join(SIZES)})")
        check_choice(body, "size", SIZES)
        check_choice(body, "nVariants", VARIANTS)
        if "fileUrl" in body:  # the deprecated single-file form: the newest spec lists only filesUrl
            single = body.pop("fileUrl")
            body.setdefault("filesUrl", [single])
        files = body.get("filesUrl")
        if files is not None:
            check_url_list(files, "filesUrl", low=1, high=MAX_FILES)
        if "maskUrl" in body:
            check_url(body["maskUrl"], "maskUrl")
        prompt = check_text(body, "prompt", 100_000)
        if operation == "edit" and not files:
            raise InvalidRequest("an edit needs filesUrl (1 to 5 images)")
        if prompt is None and not files:
            raise InvalidRequest("prompt or filesUrl is required")
        return Request("POST", CREATE_PATH, CREATE, json=body)

    def download_url_request(self, task_id: str, url: str) -> Request | None:
        """The signed, 20-minute link to one of a task's files (the family's cross-origin download)."""
        return Request("POST", DOWNLOAD_URL_PATH, RECORD,
                       json={"taskId": check_task_id(task_id), "url": check_url(url, "result URL")})

    def record(self, data: Any, task_id: str) -> TaskRecord:
        record, found = record_parts(data, task_id, "4o Image")
        status = as_text(record.get("status"))
        flag = as_int(record.get("successFlag"))
        state = _state(status, flag)
        response = record.get("response")
        urls = _result_urls(response)
        param = json_object(record.get("param") or record.get("paramJson"))
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
            callback_url=callback_url_of(param),
            raw_state=status or (None if flag is None else f"successFlag={flag}"),
            endpoint=self.name,
        )

    def callback(self, body: Mapping[str, Any]) -> Callback:
        data, task_id, code = callback_parts(body, "4o Image")
        return callback_of(task_id, code, message_of(body), _result_urls(data.get("info")), self.name)


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
    return url_list(holder.get("resultUrls")) or url_list(holder.get("result_urls"))


GPT4O = Gpt4oEndpoint()
