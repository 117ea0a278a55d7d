"""Pieces every dedicated KIE family shares: the catalog id split, the body rule, loose URL lists, enums.

Why it exists: the dedicated families (Veo, Runway, Aleph, ...) each have their own paths and
status words, but build their bodies by one rule (issue 20: the task input minus our ``_`` keys,
plus the variant as ``model``, plus ``callBackUrl``) and meet the same loose shapes (a URL list
that is an array, a JSON *string* of one, or a bracketed list that is not even JSON). Written
once here so each adapter states only what is its own.
"""

from __future__ import annotations

import json
import re
from collections.abc import Collection, Mapping
from typing import Any

from kie.errors import InvalidRequest
from kie.models import ResultItem, TaskState
from kie.validate import check_callback_url, check_input, check_model, check_task_id, check_url

__all__ = ["body_of", "check_url_list", "items_of", "one_of", "require_int", "require_task_id", "require_text",
           "split_model_id", "state_of_code", "url_list"]


def split_model_id(model: str, family: str) -> tuple[str, str | None]:
    """``<family>/<operation>[/<variant>]`` (the family prefix may be left out) -> (operation, variant)."""
    parts = check_model(model).split("/")
    if parts[0] == family:
        parts = parts[1:]
    if not 1 <= len(parts) <= 2 or not all(parts):
        raise InvalidRequest(f"a {family} model id is {family}/<operation>[/<variant>]")
    return parts[0], (parts[1] if len(parts) == 2 else None)


def body_of(task_input: Mapping[str, Any], variant: str | None, callback_url: str | None) -> dict[str, Any]:
    """The body by issue 20's rule: the input minus keys starting with ``_`` (ours, never sent),
    the variant as ``model`` when there is one, and ``callBackUrl`` when given."""
    checked = check_input(task_input)
    body = {key: value for key, value in checked.items() if not key.startswith("_")}
    if variant is not None:
        body["model"] = variant
    url = check_callback_url(callback_url)
    if url is not None:
        body["callBackUrl"] = url
    return body


def require_text(body: Mapping[str, Any], key: str, *, max_len: int | None = None) -> str:
    """A required non-blank string field, at most ``max_len`` characters."""
    value = body.get(key)
    if not isinstance(value, str) or not value.strip():
        raise InvalidRequest(f"{key} is required (a non-empty string)")
    if max_len is not None and len(value) > max_len:
        raise InvalidRequest(f"{key} is {len(value)} characters, over {max_len}")
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
    """``value`` when it is one of ``allowed``; InvalidRequest naming the allowed ones otherwise."""
    if isinstance(value, bool) or value not in allowed:
        raise InvalidRequest(f"{what} must be one of {', '.join(str(item) for item in allowed)}")
    return value


def check_url_list(value: Any, what: str, *, low: int, high: int) -> list[str]:
    """A list of ``low``..``high`` absolute http(s) URLs."""
    if not isinstance(value, list | tuple) or not low <= len(value) <= high:
        raise InvalidRequest(f"{what} must be a list of {low} to {high} URLs")
    return [check_url(url, what) for url in value]


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


def items_of(urls: list[str], cover_url: str | None = None) -> tuple[ResultItem, ...]:
    """One item per result URL, each with the family's cover picture when it gives one."""
    return tuple(ResultItem(url, cover_url=cover_url) for url in urls)


def state_of_code(code: int | None) -> TaskState:
    """A callback's verdict by its envelope code: 200 success, any other code failure."""
    if code is None:
        return TaskState.UNKNOWN
    return TaskState.SUCCESS if code == 200 else TaskState.FAIL
