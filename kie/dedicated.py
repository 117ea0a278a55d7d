"""What every dedicated KIE family (Veo, Runway, Aleph, Suno, 4o Image, Flux Kontext) shares.

Why it exists: the dedicated families each have their own paths and status words, but they
split a catalog id ``<family>/<operation>[/<variant>]`` the same way, build their bodies by one
rule (issue 20: the task input minus our ``_`` keys, plus the variant as ``model``, plus
``callBackUrl``), check the same kinds of fields (texts, enums, flags, whole numbers, URLs) and
read the same loose shapes back (URL lists as arrays, JSON strings or bare URLs; codes of 0 or
200 that are no failure; a callback's ``data`` and task id). Written once here, one function an
idea, so each adapter states only what is its own.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Collection, Mapping
from typing import Any

from kie.endpoint import Request
from kie.errors import BadResponse, InvalidRequest
from kie.fields import as_int, as_text, task_id_of
from kie.limiter import RECORD
from kie.models import Callback, ResultItem, TaskRecord, TaskState
from kie.validate import check_callback_url, check_input, check_model, check_task_id, check_url

__all__ = [
    "DedicatedEndpoint",
    "as_float",
    "body_of",
    "callback_of",
    "callback_parts",
    "check_choice",
    "check_flag",
    "check_text",
    "check_url_list",
    "default_flag",
    "failure_code",
    "first_text",
    "items_of",
    "one_of",
    "record_parts",
    "require_int",
    "require_task_id",
    "split_model_id",
    "url_list",
]


class DedicatedEndpoint:
    """The :class:`~kie.endpoint.Endpoint` methods every dedicated family answers alike: the create
    answer's and a callback's ``data.taskId`` (or ``task_id``), the status as ``GET <record_path>?taskId=``,
    and no local tasks (Veo's 1080p is the one exception and overrides :meth:`local_task_id`)."""

    record_path = ""  # the family's status path; each subclass names its own

    def record_request(self, task_id: str) -> Request:
        return Request("GET", self.record_path, RECORD, params={"taskId": check_task_id(task_id)})

    def created_task_id(self, data: Any) -> str | None:
        return task_id_of(data) if isinstance(data, Mapping) else None

    def local_task_id(self, model: str, task_input: Mapping[str, Any]) -> str | None:
        return None

    def poll_floor(self, task_id: str) -> float:
        return 0.0

    def callback_task_id(self, body: Mapping[str, Any]) -> str | None:
        data = body.get("data")
        return task_id_of(data) if isinstance(data, Mapping) else None


# ---------------------------------------------------------------------- requests


def split_model_id(model: str, family: str, operations: Collection[str],
                   variants: Collection[str] | None = ()) -> tuple[str, str | None]:
    """The operation and the variant a catalog id names (``suno/generate/V5`` -> ("generate", "V5")).

    ``variants`` are the ones the family sends as ``model`` (empty: the family takes none). None
    leaves the variant to the adapter: Veo's depend on the operation (veo3_* to generate,
    fast|quality|lite to extend) and are checked with the body's ``model``.
    """
    parts = check_model(model).split("/")
    if parts[0] != family or not 2 <= len(parts) <= 3 or not all(parts):
        raise InvalidRequest(f"model id must be {family}/<operation>[/<variant>]")
    operation = parts[1]
    if operation not in operations:
        raise InvalidRequest(f"{family} has no operation {operation!r} (one of {', '.join(sorted(operations))})")
    variant = parts[2] if len(parts) == 3 else None
    if variant is not None and variants is not None and variant not in variants:
        raise InvalidRequest(f"{family}/{operation} has no variant {variant!r}"
                             + (f" (one of {', '.join(variants)})" if variants else ""))
    return operation, variant


def body_of(task_input: Mapping[str, Any], variant: str | None, callback_url: str | None) -> dict[str, Any]:
    """The body rule: the input minus our ``_`` keys and unset values, the variant as ``model``
    when there is one, and ``callBackUrl`` when given.

    Unset is None or a blank string (a wizard's skipped optional field): these families read an
    empty field as absent anyway, and an instrumental song's empty lyrics must not look like a
    blank prompt. A required field left blank is refused by the adapter's own check.
    """
    if not isinstance(task_input, Mapping):
        raise InvalidRequest("input must be a JSON object (a dict)")
    kept = {key: value for key, value in task_input.items()
            if not (isinstance(key, str) and key.startswith("_"))
            and value is not None and not (isinstance(value, str) and not value.strip())}
    body = check_input(kept)
    if variant is not None:
        body["model"] = variant
    url = check_callback_url(callback_url)
    if url is not None:
        body["callBackUrl"] = url
    return body


def check_text(body: Mapping[str, Any], key: str, limit: int | None = None, *, required: bool = False,
               what: str | None = None) -> str | None:
    """``body[key]`` as a non-blank string of at most ``limit`` characters (None when absent and optional)."""
    name = what or key
    value = body.get(key)
    if value is None or (isinstance(value, str) and not value.strip()):
        if required:
            raise InvalidRequest(f"{name} is required")
        return None
    if not isinstance(value, str):
        raise InvalidRequest(f"{name} must be a string")
    if limit is not None and len(value) > limit:
        raise InvalidRequest(f"{name} is {len(value)} characters, over {limit}")
    return value


def require_task_id(body: Mapping[str, Any], key: str = "taskId") -> str:
    """A required task id field (the parent task an action works on)."""
    if key not in body:
        raise InvalidRequest(f"{key} is required (the task to act on)")
    return check_task_id(body[key])


def require_int(value: Any, what: str, *, low: int | None = None, high: int | None = None) -> int:
    """An integer (a numeric string from the wizard too, never a bool or a fraction) within bounds."""
    number: int | None = None
    if isinstance(value, int) and not isinstance(value, bool):
        number = value
    elif (isinstance(value, float) and value.is_integer()) or \
            (isinstance(value, str) and re.fullmatch(r"\s*-?\d{1,9}\s*", value)):
        number = int(value)
    if number is None:
        raise InvalidRequest(f"{what} must be a whole number")
    if (low is not None and number < low) or (high is not None and number > high):
        raise InvalidRequest(f"{what} must be between {low} and {high}")
    return number


def one_of(value: Any, allowed: Collection[Any], what: str) -> Any:
    """``value`` when it is one of ``allowed`` (bools never pass for ints); InvalidRequest naming them otherwise."""
    if isinstance(value, bool) or value not in allowed:
        raise InvalidRequest(f"{what} must be one of {', '.join(str(item) for item in allowed)}")
    return value


def check_choice(body: Mapping[str, Any], key: str, choices: Collection[Any]) -> None:
    """An optional enum field: ``body[key]``, when present, is one of ``choices``."""
    if key in body:
        one_of(body[key], choices, key)


def check_flag(body: Mapping[str, Any], key: str) -> bool | None:
    """``body[key]`` as a JSON boolean, None when absent; a string or a number is refused."""
    if key not in body:
        return None
    value = body[key]
    if not isinstance(value, bool):
        raise InvalidRequest(f"{key} must be true or false")
    return value


def default_flag(body: dict[str, Any], key: str, default: bool) -> bool:
    """A flag sent explicitly: the input's (checked) or ``default``. For documented defaults we do
    not trust to stay (enableTranslation: a Russian prompt is the norm here)."""
    body.setdefault(key, default)
    return bool(check_flag(body, key))


def check_url_list(value: Any, what: str, *, low: int, high: int) -> list[str]:
    """A list of ``low``..``high`` absolute http(s) URLs."""
    if not isinstance(value, list | tuple) or not low <= len(value) <= high:
        raise InvalidRequest(f"{what} must be a list of {low} to {high} URLs")
    return [check_url(url, f"{what}[{index}]") for index, url in enumerate(value)]


# ---------------------------------------------------------------------- records and callbacks


def record_parts(data: Any, task_id: str | None, what: str) -> tuple[Mapping[str, Any], str]:
    """A record's ``data`` object and its task id (the asked one, else the record's own), or
    BadResponse: a report without either says nothing."""
    if not isinstance(data, Mapping):
        raise BadResponse(f"{what} record is not an object ({type(data).__name__})")
    found = task_id or task_id_of(data)
    if not found:
        raise BadResponse(f"{what} record without a taskId")
    return data, found


def url_list(value: Any) -> list[str]:
    """Result URLs however KIE spells the list: an array, a JSON string of one, a single URL, or
    the bracketed-but-unquoted ``"[http://a.mp4]"`` of Veo's callback schema example."""
    if isinstance(value, str):
        text = value.strip()
        if text.startswith("["):
            try:
                value = json.loads(text)
            except (ValueError, RecursionError):
                inner = text[1:-1] if text.endswith("]") else text[1:]
                value = [part.strip().strip("'\"") for part in inner.split(",")]
        else:
            value = [text]
    if not isinstance(value, list):
        return []
    return [url.strip() for url in value if isinstance(url, str) and url.strip()]


def first_text(holder: Mapping[str, Any], *keys: str) -> str | None:
    """The first of ``keys`` holding a non-blank string, trimmed (records spell one field several ways)."""
    for key in keys:
        value = holder.get(key)
        if isinstance(value, str) and value.strip():
            return value.strip()
    return None


def items_of(urls: list[str], cover_url: str | None = None) -> tuple[ResultItem, ...]:
    """One item per result URL, each with the family's cover picture when it gives one."""
    return tuple(ResultItem(url, cover_url=cover_url) for url in urls)


def failure_code(value: Any) -> str | None:
    """An ``errorCode`` as text; 0 and 200 (what success records carry) are no failure code."""
    text = as_text(value)
    return None if text is None or as_int(text) in (0, 200) else text


def as_float(value: Any) -> float | None:
    """A number that may come as a string; anything else (or not finite) is None."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, str):
        try:
            value = float(value.strip())
        except ValueError:
            return None
    if isinstance(value, int | float) and math.isfinite(value):
        return float(value)
    return None


def callback_parts(body: Mapping[str, Any], family: str) -> tuple[Mapping[str, Any], str, int | None]:
    """A callback's ``data`` object, the task id in it and the envelope's code (BadResponse without them)."""
    data = body.get("data")
    if not isinstance(data, Mapping):
        raise BadResponse(f"{family} callback without a data object")
    task_id = task_id_of(data)
    if task_id is None:
        raise BadResponse(f"{family} callback without a task id in data")
    return data, task_id, as_int(body.get("code"))


def callback_of(task_id: str, code: int | None, message: str, urls: list[str], endpoint: str, *,
                cover_url: str | None = None, param: Mapping[str, Any] | None = None) -> Callback:
    """A one-shot callback (all but Suno's stages) as a record: a code but 200 fails; 200 with a
    file succeeds; 200 without one says nothing (UNKNOWN). Only a wake-up either way: the job's
    record call decides (generation.follow never believes a callback's state)."""
    failed = code is not None and code != 200
    state = TaskState.FAIL if failed else TaskState.SUCCESS if urls else TaskState.UNKNOWN
    record = TaskRecord(
        task_id=task_id,
        model="",
        state=state,
        result_urls=urls,
        items=items_of(urls, cover_url),
        fail_code=str(code) if failed else None,
        fail_msg=(message or None) if failed else None,
        param=dict(param) if param else None,
        raw_state=None if code is None else str(code),
        endpoint=endpoint,
    )
    return Callback(record=record, code=code, message=message)
