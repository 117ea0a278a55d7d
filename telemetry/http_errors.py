"""A request aiohttp cannot parse is the client's fault: one warning line, not an error with a traceback.

Why it exists: aiohttp answers a malformed request (a bad request line, an invalid header, broken
chunked framing, a line over its limit) with a 400 and logs "Error handling request" at error
level with the parser's traceback, on the ``aiohttp.server`` logger; a body it cannot decode
(bad gzip) fails the handler's read and then, once more, aiohttp's own draining of the body
("Unhandled exception"). Anyone can send such bytes, before any secret is checked, and a
traceback in the log is what operators and the seeds' log check treat as a bug. This filter
rewrites those records into one ``http_bad_request`` warning with the source and a short reason,
and drops the second record of an error a route has logged already (:func:`reported`). Records
whose exception is not a client error (a genuine bug) keep their traceback.
"""

from __future__ import annotations

import logging

from aiohttp.http_exceptions import HttpProcessingError
from aiohttp.web_protocol import RequestPayloadError

__all__ = ["CLIENT_ERRORS", "EVENT", "ClientErrorFilter", "describe", "install", "is_client_error", "reported"]

LOGGER = "aiohttp.server"
EVENT = "http_bad_request"
DETAIL_CHARS = 120
_REPORTED = "_trt_reported"
# what a route's `await request.read()` raises for a body that was broken on the wire or cut short
CLIENT_ERRORS = (HttpProcessingError, RequestPayloadError, ConnectionResetError)


def _cause(exc: BaseException) -> BaseException:
    """The parser's own error behind the RequestPayloadError a route's read raises, when it has one."""
    if isinstance(exc, RequestPayloadError) and isinstance(exc.__cause__, HttpProcessingError):
        return exc.__cause__
    return exc


def is_client_error(exc: BaseException | None) -> bool:
    """A request the client got wrong (aiohttp answers 4xx), not a bug of ours."""
    exc = None if exc is None else _cause(exc)
    return isinstance(exc, RequestPayloadError) or (isinstance(exc, HttpProcessingError) and 400 <= exc.code < 500)


def describe(exc: BaseException) -> tuple[str, str]:
    """(reason, detail): the error's class name and the first line of its message, bounded (the
    parser quotes the offending bytes: enough to recognise, never a whole header)."""
    exc = _cause(exc)
    message = exc.message if isinstance(exc, HttpProcessingError) else str(exc)
    first = (str(message).strip().splitlines() or [""])[0]
    return type(exc).__name__, first[:DETAIL_CHARS]


def reported(exc: BaseException) -> None:
    """A route logged `exc`: aiohttp's later record of the same error (draining the body) is dropped."""
    try:
        setattr(exc, _REPORTED, True)
    except AttributeError:  # pragma: no cover - exceptions take attributes; a slotted one just logs twice
        pass


class ClientErrorFilter(logging.Filter):
    """Turns aiohttp's error record of a client's malformed request into one warning line."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        if exc is None or not is_client_error(exc):
            return True
        if getattr(exc, _REPORTED, False):
            return False
        reason, detail = describe(exc)
        source = record.args[0] if isinstance(record.args, tuple) and record.args else None
        record.msg, record.args = EVENT, ()
        record.levelno, record.levelname = logging.WARNING, logging.getLevelName(logging.WARNING)
        record.exc_info, record.exc_text = None, None
        record.source = str(source) if source is not None else "unknown"
        record.reason = reason
        record.detail = detail
        return True


def install() -> None:
    """Idempotent: ingress calls it at every start, and a restart must not stack filters."""
    logger = logging.getLogger(LOGGER)
    if not any(isinstance(f, ClientErrorFilter) for f in logger.filters):
        logger.addFilter(ClientErrorFilter())
