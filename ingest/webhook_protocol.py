"""The port's protocol: Telegram's one request shape answered here, everything else by aiohttp.

Why: on the intake thread, aiohttp's server was most of an ack's CPU (bench.profile: about 50 of
90 µs per update: its request and response objects, a task per connection, the router and the
middleware), and every µs of it is GIL the dispatcher does not get and a time an ack waits.
Telegram sends one shape only: `POST /webhook HTTP/1.1`, a Content-Length body of JSON, kept
alive. This protocol answers exactly that shape itself: the head parsed strictly, the body read
whole, then WebhookIntake's secret check, parse and group commit, and the answer written.

Anything else on a connection (another path, a chunked or compressed body, Expect, HTTP/1.0, a
head this parser does not accept, a body past the limit) is handed with the bytes read so far to
aiohttp's own protocol (`transport.set_protocol`), which serves it and the rest of the connection
as it always did: the other routes, and every rule about a malformed request, stay aiohttp's.
Requests on one connection are answered in order: the next is parsed only after the answer to
the last was written.
"""

from __future__ import annotations

import asyncio
import functools
import re
import time
from collections.abc import Callable
from email.utils import formatdate
from typing import Any, cast

from ingest.webhook_intake import BODY_TIMEOUT, FAILED, Answer, WebhookIntake
from telemetry import logs
from telemetry.metrics import METRICS

log = logs.get("ingress")
ACK_SECONDS = METRICS.webhook_ack_seconds
REQUESTS: dict[int, Any] = {}  # status -> its child of trt_http_requests_total{route="/webhook"}, looked up once

ROUTE = "/webhook"
REQUEST_LINE = b"POST " + ROUTE.encode() + b" HTTP/1.1\r\n"
HEAD_END = b"\r\n\r\n"
MAX_HEAD = 8190  # aiohttp's limit on a request line or a header; a longer head is handed to it
KEEPALIVE = 3630.0  # aiohttp's keepalive_timeout: an idle connection is closed after this
PAUSE_ABOVE = 256 * 1024  # bytes buffered while an answer is pending past which reading pauses
# RFC 9110's token, a colon, optional whitespace, a value of visible characters, spaces and tabs
FIELD = re.compile(rb"([!#$%&'*+.^_`|~0-9A-Za-z-]+):[ \t]*([\t\x20-\x7e\x80-\xff]*?)[ \t]*")
SECRET = b"x-telegram-bot-api-secret-token"
REASONS = {200: "OK", 400: "Bad Request", 401: "Unauthorized", 408: "Request Timeout", 413: "Payload Too Large",
           500: "Internal Server Error", 503: "Service Unavailable"}

Fallback = Callable[[], asyncio.Protocol]  # aiohttp's protocol for one connection (web.Server is one)


def head_fields(head: bytes) -> dict[bytes, bytes] | None:
    """The header fields of a head that starts with REQUEST_LINE, names lowercased; None when a line
    is not a plain field or a name repeats (those heads are aiohttp's to judge)."""
    fields: dict[bytes, bytes] = {}
    for line in head[len(REQUEST_LINE):].split(b"\r\n"):
        match = FIELD.fullmatch(line)
        if match is None:
            return None
        name = match.group(1).lower()
        if name in fields:
            return None
        fields[name] = match.group(2)
    return fields


def lean(fields: dict[bytes, bytes], limit: int) -> tuple[int, bool] | None:
    """(the body's length, whether to close after) when this protocol can serve the request alone."""
    if b"host" not in fields or b"transfer-encoding" in fields or b"expect" in fields or b"upgrade" in fields:
        return None  # HTTP/1.1 without a Host is aiohttp's 400
    if fields.get(b"content-encoding", b"identity").lower() != b"identity":
        return None
    length = fields.get(b"content-length")
    if length is None or not length.isdigit() or len(length) > 12 or int(length) > limit:
        return None
    connection = fields.get(b"connection", b"keep-alive").lower()
    if connection not in (b"keep-alive", b"close"):
        return None
    return int(length), connection == b"close"


_date: list[object] = [0, b""]


def http_date() -> bytes:
    """The Date header's value, formatted once a second."""
    now = int(time.time())
    if _date[0] != now:
        _date[0], _date[1] = now, formatdate(now, usegmt=True).encode()
    value = _date[1]
    assert isinstance(value, bytes)
    return value


def render(answer: Answer, close: bool) -> bytes:
    """The answer as HTTP/1.1 bytes, what aiohttp would say minus its Server header."""
    body = answer.encoded()
    lines = [f"HTTP/1.1 {answer.status} {REASONS.get(answer.status, '')}".encode(),
             b"Content-Length: %d" % len(body), b"Date: " + http_date()]
    if answer.body is not None:
        lines.append(b"Content-Type: application/json; charset=utf-8")
    if answer.retry_after:
        lines.append(b"Retry-After: " + answer.retry_after.encode())
    if close:
        lines.append(b"Connection: close")
    return b"\r\n".join(lines) + HEAD_END + body


class WebhookProtocol(asyncio.Protocol):
    """One connection: webhook posts answered here until a request of another shape arrives."""

    def __init__(self, intake: WebhookIntake, fallback: Fallback, open_: set[WebhookProtocol]) -> None:
        self.intake = intake
        self.fallback = fallback
        self.open = open_  # the server's: what to close at shutdown
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray()
        self.source = "unknown"
        self.busy = False  # an answer is pending: what arrives meanwhile waits in the buffer
        self.paused = False
        self.handed = False
        # A request's part still to come: one timer, made only then (Telegram writes a post whole).
        self.timer: asyncio.TimerHandle | None = None
        self.waiting: Callable[[], None] | None = None  # what the timer will do
        # Idleness: one timer for the connection's life that checks a deadline each answer moves on,
        # as aiohttp does; a timer made and cancelled per request is a loop callback more per ack
        # (uvloop closes each handle in a callback of its own), each a turn at the GIL under load.
        self.idle_timer: asyncio.TimerHandle | None = None
        self.idle_until = 0.0
        self.serving = False  # inside _next's loop: an answer made meanwhile lets the loop go on
        self.drained: asyncio.Future[None] | None = None  # set by stop(): resolved when the pending answer is written

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is one without subclassing it
        peer = self.transport.get_extra_info("peername")
        self.source = str(peer[0]) if isinstance(peer, tuple) and peer else "unknown"
        self.open.add(self)
        loop = asyncio.get_running_loop()
        self.idle_until = loop.time() + KEEPALIVE
        self.idle_timer = loop.call_at(self.idle_until, self._idle)

    def connection_lost(self, exc: Exception | None) -> None:
        self.open.discard(self)
        self._disarm()
        self._stop_idle()
        self.transport = None  # an answer still pending is not written; its commit goes on

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        if self.busy:
            if len(self.buffer) > PAUSE_ABOVE and self.transport is not None and not self.paused:
                self.paused = True
                self.transport.pause_reading()
            return
        self._next()

    def _next(self) -> None:
        """Serve the buffer's requests in order: each answered at once (refused) is written and the
        next taken here, in a loop; one that waits for its commit is written from its callback,
        which comes back here. Stops to wait for the rest of a request, or hands the connection over."""
        self.serving = True
        try:
            while self.transport is not None and not self.transport.is_closing() and not self.busy \
                    and not self.handed:
                request = self._take()
                if request is None:
                    return
                given, raw, close = request
                began = time.perf_counter()
                self.busy = True
                try:
                    answer = self.intake.refuse(given, self.source)
                    if answer is None:  # answered by the callback, or at once when the update is bad
                        self.intake.accept_soon(raw, self.source, functools.partial(self._answered, close, began))
                        continue
                except Exception:  # a bug: answered as aiohttp's middleware answers one, the connection kept
                    log.exception("http_handler_failed", extra={"route": ROUTE})
                    answer = FAILED
                self._answered(close, began, answer)
        finally:
            self.serving = False

    def _take(self) -> tuple[bytes, bytes, bool] | None:
        """The buffer's next whole webhook post (secret, body, close after), taken out of it; None
        when there is none yet (a timer set for the rest) or the connection was handed over."""
        buffer = self.buffer
        if not buffer:
            self._disarm()
            self.idle_until = asyncio.get_running_loop().time() + KEEPALIVE
            return None
        if not buffer.startswith(REQUEST_LINE):
            if REQUEST_LINE.startswith(buffer):  # a webhook post's first bytes: wait for the rest
                self._arm_once(BODY_TIMEOUT, self.hand_over)
            else:
                self.hand_over()
            return None
        end = buffer.find(HEAD_END, 0, MAX_HEAD + len(HEAD_END))
        if end < 0:
            if len(buffer) > MAX_HEAD:
                self.hand_over()
            else:  # a head still coming past BODY_TIMEOUT is aiohttp's to wait for (or not)
                self._arm_once(BODY_TIMEOUT, self.hand_over)
            return None
        fields = head_fields(bytes(buffer[:end]))
        shape = None if fields is None else lean(fields, self.intake.settings.max_body_bytes)
        if fields is None or shape is None:
            self.hand_over()
            return None
        length, close = shape
        start = end + len(HEAD_END)
        if len(buffer) - start < length:
            self._arm_once(BODY_TIMEOUT, self._body_late)  # from the head's arrival, not the last byte's
            return None
        raw = bytes(buffer[start:start + length])
        del buffer[:start + length]
        if self.timer is not None:
            self._disarm()
        return fields.get(SECRET, b""), raw, close

    def _answered(self, close: bool, began: float, answer: Answer) -> None:
        """A request's answer is ready: counted, written, and the next request taken (unless this
        was called from _next's own loop, which goes on by itself)."""
        ACK_SECONDS.observe(time.perf_counter() - began)
        counted = REQUESTS.get(answer.status)
        if counted is None:
            counted = REQUESTS[answer.status] = METRICS.http_requests.labels(ROUTE, str(answer.status))
        counted.inc()
        self._write(answer, close)
        if not self.serving:
            self._next()

    def _write(self, answer: Answer, close: bool) -> None:
        transport = self.transport
        self.busy = False
        if self.drained is not None and not self.drained.done():
            self.drained.set_result(None)
        if transport is None or transport.is_closing():
            return
        transport.write(render(answer, close))
        if close:
            transport.close()
            return
        if self.paused:
            self.paused = False
            transport.resume_reading()

    def hand_over(self) -> None:
        """aiohttp serves this connection from here on, starting with what was read and not served."""
        transport = self.transport
        self._disarm()
        if self.handed or transport is None or transport.is_closing():
            return
        self.handed = True
        self.open.discard(self)
        self._stop_idle()  # aiohttp keeps its own
        protocol = self.fallback()
        transport.set_protocol(protocol)
        protocol.connection_made(transport)
        if self.buffer:
            data, self.buffer = bytes(self.buffer), bytearray()
            protocol.data_received(data)
        if self.paused:
            self.paused = False
            transport.resume_reading()

    def _body_late(self) -> None:
        """The head came and the body stopped short: a 408, and the connection closes (its framing
        is lost)."""
        self.busy = True
        METRICS.http_requests.labels(ROUTE, "408").inc()
        self._write(self.intake.body_timeout(self.source), close=True)

    def _idle(self) -> None:
        """The connection's one idle timer: closes it once KEEPALIVE passed with nothing to do, else
        looks again when the latest deadline is due."""
        self.idle_timer = None
        if self.transport is None or self.handed:
            return
        loop = asyncio.get_running_loop()
        now = loop.time()
        if self.busy or self.buffer:  # a request in hand is not idleness
            self.idle_until = now + KEEPALIVE
        if now < self.idle_until:
            self.idle_timer = loop.call_at(self.idle_until, self._idle)
            return
        self.transport.close()

    def _stop_idle(self) -> None:
        if self.idle_timer is not None:
            self.idle_timer.cancel()
            self.idle_timer = None

    def _arm(self, delay: float, then: Callable[[], None]) -> None:
        self._disarm()
        self.waiting = then
        self.timer = asyncio.get_running_loop().call_later(delay, self._fire)

    def _arm_once(self, delay: float, then: Callable[[], None]) -> None:
        """Arm unless already waiting to do `then`: bytes trickling in do not push a deadline back."""
        if self.waiting != then:
            self._arm(delay, then)

    def _fire(self) -> None:
        then, self.timer, self.waiting = self.waiting, None, None
        if then is not None:
            then()

    def _disarm(self) -> None:
        if self.timer is not None:
            self.timer.cancel()
        self.timer = self.waiting = None

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()


class WebhookServer:
    """The listening socket whose connections start as WebhookProtocol; aiohttp's `fallback`
    (the app runner's web.Server) takes over those that are not webhook posts."""

    def __init__(self, intake: WebhookIntake, fallback: Fallback) -> None:
        self.intake = intake
        self.fallback = fallback
        self.open: set[WebhookProtocol] = set()
        self.server: asyncio.AbstractServer | None = None

    async def start(self, host: str, port: int) -> None:
        loop = asyncio.get_running_loop()
        self.server = await loop.create_server(lambda: WebhookProtocol(self.intake, self.fallback, self.open),
                                               host, port, reuse_address=True, backlog=1024)

    async def stop(self, timeout: float) -> None:
        """Stop listening, let the answers being made finish (within `timeout`), close the rest."""
        if self.server is not None:
            self.server.close()
            self.server = None
        loop = asyncio.get_running_loop()
        pending = []
        for protocol in self.open:
            if protocol.busy:
                protocol.drained = loop.create_future()
                pending.append(protocol.drained)
        if pending:
            await asyncio.wait(pending, timeout=timeout)
        for protocol in list(self.open):
            protocol.close()
