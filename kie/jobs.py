"""KIE's Market ("jobs") API: createTask, recordInfo and their callbacks, built and parsed.

Why it exists: most models share this one interface, and its answers are loose — ``param`` and
``resultJson`` are JSON *strings*, resultJson holds ``resultUrls`` for media or ``resultObject``
for text, keys are absent while a task runs, ``failCode`` may come as a number, a callback may
say ``task_id`` or leave ``state`` out. :class:`JobsEndpoint` is the jobs family behind
:class:`~kie.endpoint.Endpoint`; the parsing tolerates all of that and nothing else reads KIE's
JSON for jobs.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from kie.endpoint import Request
from kie.errors import BadResponse
from kie.fields import as_int, as_text, callback_url_of, json_object, message_of, task_id_of
from kie.limiter import CREATE, RECORD
from kie.models import Callback, TaskRecord, TaskState
from kie.validate import check_callback_url, check_input, check_model, check_task_id

__all__ = ["CREATE_PATH", "JOBS", "RECORD_PATH", "JobsEndpoint", "parse_record"]

CREATE_PATH = "/api/v1/jobs/createTask"
RECORD_PATH = "/api/v1/jobs/recordInfo"


class JobsEndpoint:
    """The jobs family: ``POST createTask {model, callBackUrl, input}``, ``GET recordInfo?taskId=``."""

    @property
    def name(self) -> str:
        return "jobs"

    def create_request(self, model: str, task_input: Mapping[str, Any], callback_url: str | None) -> Request:
        body: dict[str, Any] = {"model": check_model(model), "input": check_input(task_input)}
        url = check_callback_url(callback_url)
        if url is not None:
            body["callBackUrl"] = url
        return Request("POST", CREATE_PATH, CREATE, json=body)

    def created_task_id(self, data: Any) -> str | None:
        return task_id_of(data) if isinstance(data, Mapping) else None

    def local_task_id(self, model: str, task_input: Mapping[str, Any]) -> str | None:
        return None

    def poll_floor(self, task_id: str) -> float:
        return 0.0

    def record_request(self, task_id: str) -> Request:
        return Request("GET", RECORD_PATH, RECORD, params={"taskId": check_task_id(task_id)})

    def record(self, data: Any, task_id: str) -> TaskRecord:
        return parse_record(data, task_id, endpoint=self.name)

    def callback_task_id(self, body: Mapping[str, Any]) -> str | None:
        data = body.get("data")
        return task_id_of(data) if isinstance(data, Mapping) else None

    def callback(self, body: Mapping[str, Any]) -> Callback:
        data = body.get("data")
        if not isinstance(data, Mapping):
            raise BadResponse("callback without a data object")
        code = as_int(body.get("code"))
        if data.get("state") is None and code is not None:
            # some callbacks leave the state out: the envelope's code tells success (200) from failure
            data = {**data, "state": "success" if code == 200 else "fail"}
        record = parse_record(data, None, endpoint=self.name)
        return Callback(
            record=record,
            code=code,
            message=message_of(body),
            consume_credits=as_int(data.get("consumeCredits")),
            remained_credits=as_int(data.get("remainedCredits")),
        )


JOBS = JobsEndpoint()


def parse_record(data: Any, task_id: str | None, *, endpoint: str = "jobs") -> TaskRecord:
    """A task's record from recordInfo's (or a callback's) ``data``; ``task_id`` is the one asked about."""
    if not isinstance(data, Mapping):
        raise BadResponse(f"task record is not an object ({type(data).__name__})")
    found = task_id or task_id_of(data)
    if not found:
        raise BadResponse("task record without a taskId")
    raw_state = data.get("state")
    result = json_object(data.get("resultJson"))
    param = json_object(data.get("param"))
    return TaskRecord(
        task_id=found,
        model=as_text(data.get("model")) or "",
        state=TaskState.parse(raw_state),
        result_urls=_urls(result.get("resultUrls")),
        result_object=result.get("resultObject"),
        fail_code=as_text(data.get("failCode")),
        fail_msg=as_text(data.get("failMsg")),
        cost_ms=as_int(data.get("costTime")),
        created_ms=as_int(data.get("createTime")),
        updated_ms=as_int(data.get("updateTime")),
        completed_ms=as_int(data.get("completeTime")),
        param=param or None,
        callback_url=callback_url_of(param),
        raw_state=raw_state if isinstance(raw_state, str) else None,
        endpoint=endpoint,
    )


def _urls(value: Any) -> list[str]:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list):
        return []
    return [url for url in value if isinstance(url, str) and url.strip()]
