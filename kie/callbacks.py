"""KIE's callbacks: a POSTed body checked (signature, freshness) and read into a typed Callback.

Why it exists: a callback is how a finished task reaches us first, and anyone who learns the URL
can POST to it. When KIE signs callbacks (an HMAC key set in KIE's settings, KIE_WEBHOOK_HMAC_KEY
here), ``X-Webhook-Signature`` must be base64(HMAC-SHA256(taskId + "." + X-Webhook-Timestamp,
key)), compared in constant time, and the timestamp must be recent and not from the future, so
a recorded callback cannot be replayed later. The taskId the signature covers is read from the
body (``data.taskId``, or ``data.task_id`` as some samples say). Duplicates are possible: parsing
is pure, the caller deduplicates.

The signature covers only taskId and timestamp, not the body: within its five minutes a signed
callback's body can be swapped for any other. That is harmless because a callback is a wake-up,
never a verdict: the jobs actor asks recordInfo (our key, over TLS) and acts only on its answer,
so nothing in a callback's body (state, resultUrls, failCode, credits) is believed. Signing still
adds a check worth having: an unsigned stranger cannot even wake a job.

Errors say what the HTTP route answers: :class:`MalformedCallback` is a 400,
:class:`BadSignature` a 401; neither message repeats the key or the signature.
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import hmac
import json
import re
import time
from collections.abc import Mapping
from typing import Any, ClassVar

from kie.endpoint import Endpoint
from kie.errors import KieError
from kie.fields import as_int, message_of, task_id_of
from kie.jobs import JOBS
from kie.models import Callback, TaskRecord, TaskState

__all__ = [
    "MAX_AGE",
    "MAX_SKEW",
    "SIGNATURE_HEADER",
    "TIMESTAMP_HEADER",
    "BadSignature",
    "CallbackError",
    "MalformedCallback",
    "callback_task_id",
    "parse_callback",
    "sign",
    "verify_signature",
]

SIGNATURE_HEADER = "X-Webhook-Signature"
TIMESTAMP_HEADER = "X-Webhook-Timestamp"
MAX_AGE = 300.0  # seconds a signed callback stays acceptable
MAX_SKEW = 30.0  # seconds a timestamp may lie in our future (clocks differ a little)
_DIGITS = re.compile(r"[0-9]{1,16}")


class CallbackError(ValueError):
    """A callback refused; ``status`` is the HTTP status the route answers with."""

    status: ClassVar[int] = 400


class MalformedCallback(CallbackError):
    """Not a callback body we can read (400)."""


class BadSignature(CallbackError):
    """Unsigned, wrongly signed, stale or future-dated while signing is on (401)."""

    status = 401


def sign(task_id: str, timestamp: str, key: str) -> str:
    """KIE's signature: base64(HMAC-SHA256(taskId + "." + timestamp, key))."""
    digest = hmac.new(key.encode(), f"{task_id}.{timestamp}".encode(), hashlib.sha256).digest()
    return base64.b64encode(digest).decode()


def verify_signature(
    task_id: str,
    headers: Mapping[str, str],
    key: str,
    *,
    now: float | None = None,
    max_age: float = MAX_AGE,
    max_skew: float = MAX_SKEW,
) -> None:
    """Raise BadSignature unless ``headers`` carry a fresh, matching signature of ``task_id``."""
    timestamp = (_header(headers, TIMESTAMP_HEADER) or "").strip()
    signature = (_header(headers, SIGNATURE_HEADER) or "").strip()
    if not timestamp or not signature:
        raise BadSignature(f"unsigned callback: {TIMESTAMP_HEADER} and {SIGNATURE_HEADER} are required")
    if not _DIGITS.fullmatch(timestamp):
        raise BadSignature(f"{TIMESTAMP_HEADER} is not unix seconds")
    expected = sign(task_id, timestamp, key)
    if not hmac.compare_digest(expected.encode(), signature.encode("utf-8", "replace")):
        raise BadSignature("callback signature does not match")
    seconds = int(timestamp)
    if seconds > 10**11:  # milliseconds, in case KIE ever sends them: the signature covered them as sent
        seconds //= 1000
    age = (time.time() if now is None else now) - seconds
    if age > max_age:
        raise BadSignature(f"stale callback: signed {age:.0f}s ago, more than {max_age:g}s")
    if -age > max_skew:
        raise BadSignature(f"callback signed {-age:.0f}s in the future")


def parse_callback(
    body: bytes | str | Mapping[str, Any],
    headers: Mapping[str, str] | None = None,
    *,
    hmac_key: str | None = None,
    endpoint: Endpoint | None = None,
    now: float | None = None,
    max_age: float = MAX_AGE,
    max_skew: float = MAX_SKEW,
) -> Callback:
    """The Callback in a POSTed body; with ``hmac_key`` set its signature is checked first.

    Without ``endpoint`` (the route's case: any family may call back) the task id is looked for
    where any family puts it (``data.taskId``, ``data.task_id``, Aleph's top-level ``taskId``),
    and a body the jobs API's parser cannot read still wakes its job (its state UNKNOWN): the
    body is never the verdict anyway. Raises MalformedCallback (400) or BadSignature (401).
    """
    if isinstance(body, Mapping):
        document: Any = body
    else:
        try:
            document = json.loads(body)
        except (ValueError, RecursionError):  # UnicodeDecodeError included; nested past the parser's depth
            raise MalformedCallback("callback body is not JSON") from None
    if not isinstance(document, Mapping):
        raise MalformedCallback("callback body is not a JSON object")
    task_id = callback_task_id(document) if endpoint is None else endpoint.callback_task_id(document)
    if task_id is None:
        raise MalformedCallback("callback without a task id (data.taskId, data.task_id or taskId)")
    if hmac_key:
        verify_signature(task_id, headers or {}, hmac_key, now=now, max_age=max_age, max_skew=max_skew)
    try:
        callback = (endpoint or JOBS).callback(document)
    except KieError as exc:
        if endpoint is not None:
            raise MalformedCallback(f"callback for {task_id}: {exc.message}") from None
        callback = Callback(record=TaskRecord(task_id, "", TaskState.UNKNOWN), code=as_int(document.get("code")),
                            message=message_of(document))
    if callback.task_id != task_id:
        callback = dataclasses.replace(callback, record=dataclasses.replace(callback.record, task_id=task_id))
    return dataclasses.replace(callback, signed=bool(hmac_key))


def callback_task_id(document: Mapping[str, Any]) -> str | None:
    """The task id a callback of any family names: ``data.taskId`` (Veo, Flux, 4o, jobs),
    ``data.task_id`` (Suno, Runway), or the top-level ``taskId`` of Aleph's callbacks."""
    data = document.get("data")
    found = task_id_of(data) if isinstance(data, Mapping) else None
    if found is None:
        top = document.get("taskId")
        found = top.strip() if isinstance(top, str) and top.strip() else None
    return found


def _header(headers: Mapping[str, str], name: str) -> str | None:
    """A header by name in any case (aiohttp's headers are case-insensitive already; a dict is not)."""
    value = headers.get(name)
    if value is not None:
        return value
    lowered = name.lower()
    for key, item in headers.items():
        if key.lower() == lowered:
            return item
    return None
