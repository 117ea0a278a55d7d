"""Tolerant readers for KIE's loose JSON: numbers as strings or floats, JSON inside strings, msg or message.

Why it exists: KIE's answers vary by endpoint and over time in small ways that must not break a
parser (API.md's pitfalls: a callback parser that broke on another shape left videos
undelivered). Each reader returns None (or empty) for what it cannot read; the caller decides
whether that field was required.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import Any

__all__ = ["as_int", "as_text", "json_object", "message_of", "task_id_of"]


def as_int(value: Any) -> int | None:
    """An integer field that may come as a float or a numeric string; anything else is None."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str):
        try:
            value = float(value.strip())
        except ValueError:
            return None
    if isinstance(value, float) and math.isfinite(value):
        return int(value)
    return None


def as_text(value: Any) -> str | None:
    """A string field that may come as a number (failCode); blank is None."""
    if isinstance(value, bool) or value is None or not isinstance(value, int | float | str):
        return None
    return str(value).strip() or None


def message_of(body: Mapping[str, Any]) -> str:
    """The envelope's message: ``msg``, or ``message`` as some answers say."""
    for key in ("msg", "message"):
        value = body.get(key)
        if isinstance(value, str) and value:
            return value
    return ""


def task_id_of(data: Mapping[str, Any]) -> str | None:
    """A task id from ``taskId`` (or ``task_id``, as some callbacks say); opaque, only trimmed."""
    for key in ("taskId", "task_id"):
        value = data.get(key)
        if isinstance(value, str) and value.strip():
            return value.strip()
        if isinstance(value, int) and not isinstance(value, bool):
            return str(value)
    return None


def json_object(value: Any) -> dict[str, Any]:
    """A JSON *string* holding an object (resultJson, param), or such an object already; else empty."""
    if isinstance(value, str) and value.strip():
        try:
            value = json.loads(value)
        except (ValueError, RecursionError):  # a hostile or broken resultJson is no result
            return {}
    return dict(value) if isinstance(value, Mapping) else {}


def callback_url_of(param: Mapping[str, Any]) -> str | None:
    """The ``callBackUrl`` a record's remembered request holds (adopting a task needs it)."""
    url = param.get("callBackUrl")
    return url if isinstance(url, str) and url else None
