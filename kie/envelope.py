"""Reading any KIE answer: the ``{code, msg|message, data}`` envelope, or what came instead.

Why it exists: the business status is the body's ``code`` — behind an HTTP 200 as often as
mirrored in the HTTP status — the message is ``msg`` or ``message``, the upload service adds
``success``, and a CDN in front of KIE answers with HTML pages (a 502, a 520, a 429, a 200
challenge). :func:`read` turns every one of those into an :class:`Envelope` or a typed
:class:`~kie.errors.KieError`, so no caller ever looks at an HTTP status or a raw body.

What an answer *proves* matters as much as what it says: only KIE's own JSON envelope with a
``code`` of its own (:attr:`Envelope.coded`) is KIE speaking. Anything else — an HTML page
whatever its status, an empty body, JSON without a code — was written by something between us
and KIE, which cannot tell whether KIE acted on the request. :func:`read` still classifies such
an answer by its HTTP status (a read is simply asked again); the client treats it as
*ambiguous* for a call that must not run twice (createTask).
"""

from __future__ import annotations

import html
import json
import re
from dataclasses import dataclass
from typing import Any

from kie.errors import BadResponse, KieError, error_for_code
from kie.fields import as_int, message_of

__all__ = ["Envelope", "describe", "read", "retry_after_seconds"]

_TITLE = re.compile(rb"<title[^>]*>(.*?)</title>", re.I | re.S)


@dataclass(frozen=True)
class Envelope:
    """A KIE envelope: ``code`` 200 is success; anything else is :meth:`error`.

    ``coded``: the code is the body's own (KIE said it), not taken from the HTTP status or the
    upload service's ``success`` flag; only such a refusal proves that KIE refused.
    """

    http_status: int
    code: int
    message: str
    data: Any
    retry_after: float | None = None
    coded: bool = True

    @property
    def ok(self) -> bool:
        return self.code == 200

    def error(self) -> KieError | None:
        """The error this envelope reports, or None on success."""
        if self.ok:
            return None
        return error_for_code(self.code, self.message, http_status=self.http_status, retry_after=self.retry_after)


def read(http_status: int, body: bytes, content_type: str = "", retry_after: float | None = None) -> Envelope:
    """The envelope in an answer; raises KieError when the answer is no envelope.

    An answer that is not a JSON object is an error by its HTTP status (a CDN's 502 page is a
    ServerError, its 429 page RateLimited), or BadResponse behind a 2xx. An envelope without a
    ``code`` takes the HTTP status (or 200 from the upload service's ``success: true``). A
    ``code`` of 200 behind an HTTP error status is not trusted: the HTTP status decides.
    """
    try:
        parsed: Any = json.loads(body)
    except (ValueError, RecursionError):  # UnicodeDecodeError included; nested past the parser's depth
        parsed = None
    ok_status = 200 <= http_status < 300
    if not isinstance(parsed, dict):
        what = f"HTTP {http_status}, not KIE's JSON envelope: {describe(body, content_type)}"
        if ok_status:
            raise BadResponse(what, http_status=http_status)
        raise error_for_code(http_status, what, http_status=http_status, retry_after=retry_after)
    message = message_of(parsed)
    code = as_int(parsed.get("code"))
    coded = code is not None
    if code is None:
        if not ok_status:
            code = http_status
        elif parsed.get("success") is True:
            code = 200
        else:
            raise BadResponse(f"HTTP {http_status}, an envelope without a code: {describe(body, content_type)}",
                              http_status=http_status)
    if code == 200 and not ok_status:
        code, coded = http_status, False  # the body says success, the status says not: KIE did not say "no"
    elif code == 200 and parsed.get("success") is False:
        raise BadResponse(f"HTTP {http_status}, code 200 with success false: {message!r}", http_status=http_status)
    return Envelope(http_status=http_status, code=code, message=message, data=parsed.get("data"),
                    retry_after=retry_after, coded=coded)


def describe(body: bytes, content_type: str = "") -> str:
    """A short, printable account of a body that is not an envelope: its HTML title, or its start."""
    if not body:
        return "an empty body"
    match = _TITLE.search(body[:65536])
    raw = match.group(1) if match else body[:160]
    text = " ".join(html.unescape(raw.decode("utf-8", "replace")).split())
    text = "".join(c if c.isprintable() else "?" for c in text)[:160]
    kind = (content_type or "unknown type").split(";")[0].strip()
    return f"{len(body)} bytes of {kind}: {text!r}"


def retry_after_seconds(value: str | None) -> float | None:
    """A Retry-After header in seconds (its date form is ignored: KIE and its CDN send seconds)."""
    if not value:
        return None
    try:
        seconds = float(value.strip())
    except ValueError:
        return None
    return seconds if 0 <= seconds <= 3600 else None
