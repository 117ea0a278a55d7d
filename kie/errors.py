"""What can go wrong talking to KIE, as exceptions the caller can act on without reading codes.

Why it exists: KIE states its business status in the body's ``code`` (sometimes as the HTTP
status too, sometimes behind an HTTP 200), a CDN in front of it answers with HTML pages, and the
network drops requests half-way. The caller needs two answers from any failure: may the same
request be tried again later (``retryable``), and may the request have taken effect anyway
(``ambiguous``: a createTask that timed out or lost its connection may have created, and billed,
a task; reconcile through the callback or the job's record before creating another).

KIE's codes (API.md): permanent 401, 402, 404, 422, 433, 505; retry later 429, 455, 500.
"""

from __future__ import annotations

from typing import ClassVar

__all__ = [
    "BadResponse",
    "Disabled",
    "DownloadRefused",
    "GenerationFailed",
    "InvalidRequest",
    "KieError",
    "Maintenance",
    "NotFound",
    "OutOfCredits",
    "RateLimited",
    "Rejected",
    "ServerError",
    "SubKeyLimit",
    "Throttled",
    "Timeout",
    "TooLarge",
    "Transport",
    "Unauthorized",
    "error_for_code",
]


class KieError(Exception):
    """A failed KIE call.

    ``code`` is KIE's business code (or the HTTP status when no envelope came back; None for
    failures without an answer), ``message`` KIE's msg/message or what happened, ``http_status``
    the HTTP status when there was an answer. ``retryable``: the same request may succeed later.
    ``ambiguous``: the request may have taken effect although it failed (createTask only);
    ``task_id`` is set when an error answer nevertheless named a task.
    """

    default_code: ClassVar[int | None] = None
    default_retryable: ClassVar[bool] = False

    def __init__(
        self,
        message: str = "",
        *,
        code: int | None = None,
        http_status: int | None = None,
        retryable: bool | None = None,
        ambiguous: bool = False,
        task_id: str | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.code = self.default_code if code is None else code
        self.http_status = http_status
        self.retryable = self.default_retryable if retryable is None else retryable
        self.ambiguous = ambiguous
        self.task_id = task_id
        self.retry_after = retry_after  # seconds the server asked us to wait (Retry-After), if it did

    @property
    def kind(self) -> str:
        """A stable name for logs and metrics: the class name in snake case."""
        name = type(self).__name__
        return "".join(f"_{c.lower()}" if c.isupper() and i else c.lower() for i, c in enumerate(name))

    def redacted(self, secret: str) -> KieError:
        """The same error with ``secret`` masked in its message (a server may echo what it was sent)."""
        if secret and secret in self.message:
            self.message = self.message.replace(secret, "***")
            self.args = (self.message,)
        return self

    def __str__(self) -> str:
        code = "" if self.code is None else f" {self.code}"
        text = f"KIE{code}: {self.message or self.kind}"
        if self.ambiguous:
            text += " (the request may have taken effect: reconcile before repeating it)"
        return text

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(code={self.code!r}, message={self.message!r}, http_status={self.http_status!r}, "
            f"retryable={self.retryable!r}, ambiguous={self.ambiguous!r})"
        )


class Unauthorized(KieError):
    """401: the API key is wrong or revoked."""

    default_code = 401


class OutOfCredits(KieError):
    """402: the KIE account has too few credits; an operator must top it up."""

    default_code = 402


class NotFound(KieError):
    """404: no such task (or endpoint, or an expired result file)."""

    default_code = 404


class Rejected(KieError):
    """422 (or another 4xx): KIE refused the request's content; sending it again will not help."""

    default_code = 422


class SubKeyLimit(KieError):
    """433: the sub-key's usage limit is used up."""

    default_code = 433


class RateLimited(KieError):
    """429: KIE dropped the request (it never queues); try again after a pause."""

    default_code = 429
    default_retryable = True


class Maintenance(KieError):
    """455: KIE is under maintenance; try again later."""

    default_code = 455
    default_retryable = True


class ServerError(KieError):
    """500 or another 5xx (also a CDN's HTML error page): try again later."""

    default_code = 500
    default_retryable = True


class GenerationFailed(KieError):
    """501: the generation failed."""

    default_code = 501


class Disabled(KieError):
    """505: the feature is disabled at KIE."""

    default_code = 505


class Timeout(KieError):
    """The call's deadline passed before an answer came (ambiguous for createTask)."""

    default_retryable = True


class Transport(KieError):
    """The connection failed or was dropped (ambiguous for createTask unless nothing was sent)."""

    default_retryable = True


class BadResponse(KieError):
    """An answer that is not KIE's envelope: not JSON, an HTML page, a missing field."""

    default_retryable = True


class Throttled(KieError):
    """Our own limiter could not grant a slot within the call's deadline; nothing was sent."""

    default_retryable = True


class InvalidRequest(KieError):
    """Refused locally, before any call: the request could not be valid on the wire."""


class TooLarge(KieError):
    """A download is larger than the caller's bound; reading stopped there."""


class DownloadRefused(KieError):
    """A download that cannot be a result: a scheme, host, address, redirect or content type outside
    the rules (:mod:`kie.download`). Never retried: the same URL is refused again."""


_BY_CODE: dict[int, type[KieError]] = {
    cls.default_code: cls
    for cls in (
        Unauthorized,
        OutOfCredits,
        NotFound,
        Rejected,
        SubKeyLimit,
        RateLimited,
        Maintenance,
        ServerError,
        GenerationFailed,
        Disabled,
    )
    if cls.default_code is not None
}


def error_for_code(
    code: int, message: str, *, http_status: int | None = None, retry_after: float | None = None
) -> KieError:
    """The exception for KIE's business ``code`` (or an HTTP status where no envelope came back).

    Codes KIE does not document fall into the nearest family: other 4xx are refusals (permanent),
    other 5xx server errors (retry later), anything else is a bad answer.
    """
    cls = _BY_CODE.get(code)
    if cls is None:
        if 400 <= code < 500:
            cls = Rejected
        elif 500 <= code < 600:
            cls = ServerError
        else:
            cls = BadResponse
    return cls(message, code=code, http_status=http_status, retry_after=retry_after)
