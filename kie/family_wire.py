"""Small readers and builders the dedicated families (Suno, 4o Image, Flux Kontext) share.

Why it exists: every dedicated adapter turns a catalog id ``<family>/<operation>[/<variant>]``
into a path and a model field, builds its body by the same rule (the task input minus our
``_`` keys, plus the variant and the callback URL), and reads the same loose shapes back (URL
lists that come as arrays, JSON strings or one bare URL; flags as ints or strings; a code of 200
or 0 that is no failure). Writing those once keeps each adapter about its family's own rules.
"""

from __future__ import annotations

import json
import math
from collections.abc import Collection, Mapping
from typing import Any

from kie.errors import BadResponse, InvalidRequest
from kie.fields import as_int, as_text, task_id_of
from kie.models import TaskState
from kie.validate import check_callback_url, check_input, check_model, check_url

__all__ = [
    "as_float",
    "body_of",
    "callback_parts",
    "callback_state",
    "check_choice",
    "check_flag",
    "check_http_url",
    "check_length",
    "data_object",
    "failure_code",
    "split_model",
    "urls_of",
]


def split_model(model: str, family: str, operations: Collection[str],
                variants: Collection[str] = ()) -> tuple[str, str | None]:
    """The operation and the variant a catalog id names (``suno/generate/V5`` -> ("generate", "V5"))."""
    parts = check_model(model).split("/")
    if parts[0] != family or not 2 <= len(parts) <= 3:
        raise InvalidRequest(f"model id must be {family}/<operation>[/<variant>]")
    operation = parts[1]
    if operation not in operations:
        raise InvalidRequest(f"{family} has no operation {operation!r} (one of {', '.join(sorted(operations))})")
    variant = parts[2] if len(parts) == 3 else None
    if variant is not None and variant not in variants:
        raise InvalidRequest(f"{family}/{operation} has no variant {variant!r}"
                             + (f" (one of {', '.join(variants)})" if variants else ""))
    return operation, variant


def body_of(task_input: Mapping[str, Any], callback_url: str | None) -> dict[str, Any]:
    """The body rule: the input minus our ``_`` keys and unset values, plus ``callBackUrl`` when given.

    Unset is None or a blank string (a wizard's skipped optional field): these families read an
    empty field as absent anyway, and an instrumental song's empty lyrics must not look like a
    blank prompt.
    """
    if not isinstance(task_input, Mapping):
        raise InvalidRequest("input must be a JSON object (a dict)")
    kept = {key: value for key, value in task_input.items()
            if not (isinstance(key, str) and key.startswith("_"))
            and value is not None and not (isinstance(value, str) and not value.strip())}
    body = check_input(kept)
    url = check_callback_url(callback_url)
    if url is not None:
        body["callBackUrl"] = url
    return body


def check_http_url(value: Any, what: str) -> str:
    """An absolute http(s) URL KIE can fetch (InvalidRequest otherwise)."""
    return check_url(value, what)


def check_choice(body: Mapping[str, Any], key: str, choices: Collection[Any]) -> None:
    """``body[key]``, when present, is one of ``choices`` (bools never pass for ints)."""
    if key in body:
        value = body[key]
        if isinstance(value, bool) or value not in choices:
            raise InvalidRequest(f"{key} must be one of {', '.join(str(c) for c in choices)}")


def check_flag(body: Mapping[str, Any], key: str) -> bool | None:
    """``body[key]`` as a JSON boolean, None when absent; a string or a number is refused."""
    if key not in body:
        return None
    value = body[key]
    if not isinstance(value, bool):
        raise InvalidRequest(f"{key} must be true or false")
    return value


def check_length(body: Mapping[str, Any], key: str, limit: int, *, required: bool = False,
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
    if len(value) > limit:
        raise InvalidRequest(f"{name} is {len(value)} characters, over {limit}")
    return value


def data_object(data: Any, what: str) -> Mapping[str, Any]:
    """A record's ``data`` object, or BadResponse: a report without one says nothing."""
    if not isinstance(data, Mapping):
        raise BadResponse(f"{what} record is not an object ({type(data).__name__})")
    return data


def urls_of(value: Any) -> list[str]:
    """A URL list however it comes: an array, a JSON string holding one, or one bare URL."""
    if isinstance(value, str):
        text = value.strip()
        if text.startswith("["):
            try:
                value = json.loads(text)
            except (ValueError, RecursionError):
                return []
        else:
            value = [text]
    if not isinstance(value, list):
        return []
    return [url.strip() for url in value if isinstance(url, str) and url.strip()]


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


def callback_state(code: int | None, urls: list[str]) -> TaskState:
    """A one-shot callback's verdict: a code but 200 fails; 200 with a file succeeds; 200 without one
    says nothing (UNKNOWN: the record decides anyway)."""
    if code is not None and code != 200:
        return TaskState.FAIL
    return TaskState.SUCCESS if urls else TaskState.UNKNOWN
