"""A lean HTTP/1.1 client for the Bot API's JSON calls: kept-alive connections, one request on
each at a time.

Why: every update the bot answers is at least one such call, made on the dispatcher's thread,
whose CPU is the process's ceiling (one GIL). aiohttp's ClientSession builds a request, its
headers, timers, a response object and its stream for each, ~55 µs of that thread per call in
bench.profile (a twentieth of a /start); this client writes the request's bytes at once and
parses the answer from one buffer.

What it speaks, and nothing more: a POST with a Content-Length body; an answer framed by
Content-Length, by chunks, or by the connection's end; keep-alive unless the server says
`Connection: close`. No redirects, cookies, compression (none is asked for), proxies or uploads
(multipart goes through aiohttp). An idle connection is dropped after KEEP_IDLE seconds, before
servers drop theirs (nginx: 75 s), so a request is never written into one the server already
closed; one the server closed anyway is seen as closed (its end was read) and never reused.

Errors are HttpError (or TimeoutError from the caller's deadline) and never carry the URL: it
holds the bot's token. A connection that failed or was abandoned mid-exchange is closed, never
reused: what it would read next belongs to the abandoned request.
"""

from __future__ import annotations

import asyncio
import ssl
import time
from collections import deque
from collections.abc import Callable
from typing import cast
from urllib.parse import urlsplit

KEEP_IDLE = 15.0  # seconds an idle connection is kept (aiohttp's default keepalive_timeout)
LIMIT = 100  # connections open at once (aiohttp's default connector limit)
MAX_HEAD = 64 * 1024  # status line and headers
MAX_BODY = 64 * 1024 * 1024  # an answer's body (getUpdates' hundred updates are a few MB)
USER_AGENT = "trt-bot"

Origin = tuple[str, str, int]  # scheme, host, port


class HttpError(Exception):
    """The exchange failed: the connection could not be opened, was lost, or the answer was not HTTP."""


class _Connection(asyncio.Protocol):
    """One connection and the answer it is reading (at most one request is out on it)."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray()
        self.waiter: asyncio.Future[tuple[int, bytes, bool]] | None = None
        self.closed = False  # lost, ended by the server, or closed by us: never used again
        self.idle_since = 0.0
        # the answer being read
        self.status = 0
        self.keep = True
        self.length: int | None = None  # Content-Length, when framed by it
        self.chunked = False
        self.head_done = False
        self.body = bytearray()

    # asyncio's callbacks

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not asyncio's class, but has its methods

    def data_received(self, data: bytes) -> None:
        if self.waiter is None:  # bytes nobody asked for: the connection is not in a state we know
            self.close()
            return
        self.buffer += data
        try:
            self._parse()
        except HttpError as exc:
            self._fail(exc)

    def eof_received(self) -> bool:
        self.closed = True
        if self.waiter is not None and self.head_done and self.length is None and not self.chunked:
            self.body, self.buffer = self.buffer, bytearray()  # framed by the connection's end: this is it
            self._done()
        else:
            self._fail(HttpError("the server closed the connection before the answer was complete"))
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self._fail(HttpError(f"the connection was lost ({type(exc).__name__})" if exc else "the connection was lost"))

    # the exchange

    def usable(self, now: float) -> bool:
        transport = self.transport
        return (not self.closed and transport is not None and not transport.is_closing()
                and now - self.idle_since < KEEP_IDLE)

    async def exchange(self, request: bytes) -> tuple[int, bytes, bool]:
        """Write `request`, and read its answer: (status, body, whether the connection may be reused)."""
        assert self.transport is not None and self.waiter is None
        self.waiter = asyncio.get_running_loop().create_future()
        self.status, self.keep, self.length, self.chunked, self.head_done = 0, True, None, False, False
        self.body = bytearray()
        self.transport.write(request)
        return await self.waiter

    def close(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.close()
        self._fail(HttpError("the connection was closed"))

    def _fail(self, exc: HttpError) -> None:
        waiter, self.waiter = self.waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_exception(exc)
        if not self.closed:
            self.close()

    def _done(self) -> None:
        waiter, self.waiter = self.waiter, None
        if self.buffer:  # bytes past the answer: not a server we understand; never reuse
            self.keep = False
        if waiter is not None and not waiter.done():
            waiter.set_result((self.status, bytes(self.body), self.keep and not self.closed))

    def _parse(self) -> None:
        while not self.head_done:
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                if len(self.buffer) > MAX_HEAD:
                    raise HttpError("the answer's head is too large")
                return
            self._head(bytes(self.buffer[:end]))
            del self.buffer[:end + 4]
            if 100 <= self.status < 200:  # an interim answer (100 Continue): the real one follows
                self.keep, self.length, self.chunked, self.head_done = True, None, False, False
            elif self.status in (204, 304):  # no body, whatever the head says
                self.length, self.chunked = 0, False
        if self.chunked:
            self._chunks()
        elif self.length is not None:
            if len(self.buffer) >= self.length:
                self.body = self.buffer[:self.length]
                del self.buffer[:self.length]
                self._done()
        elif len(self.buffer) > MAX_BODY:
            raise HttpError("the answer's body is too large")

    def _head(self, head: bytes) -> None:
        lines = head.split(b"\r\n")
        parts = lines[0].split(b" ", 2)
        if len(parts) < 2 or not parts[0].startswith(b"HTTP/1.") or not parts[1].isdigit() or len(parts[1]) != 3:
            raise HttpError("the answer is not HTTP/1.x")
        self.status = int(parts[1])
        self.keep = parts[0] != b"HTTP/1.0"
        for line in lines[1:]:
            name, sep, value = line.partition(b":")
            if not sep:
                raise HttpError("a malformed header in the answer")
            key = name.strip().lower()
            if key == b"content-length":
                text = value.strip()
                if not text.isdigit():
                    raise HttpError("a malformed Content-Length in the answer")
                length = int(text)
                if length > MAX_BODY:
                    raise HttpError("the answer's body is too large")
                if self.length is not None and self.length != length:
                    raise HttpError("two different Content-Lengths in the answer")
                self.length = length
            elif key == b"transfer-encoding":
                codings = [c.strip() for c in value.lower().split(b",")]
                if codings[-1] != b"chunked" or len(codings) > 1:
                    raise HttpError("a transfer coding this client does not speak")
                self.chunked = True
            elif key == b"connection":
                tokens = {t.strip() for t in value.lower().split(b",")}
                if b"close" in tokens:
                    self.keep = False
                elif b"keep-alive" in tokens:
                    self.keep = True
        if self.chunked:
            self.length = None  # chunks win over a Content-Length (RFC 9112 6.3)
        elif self.length is None:
            self.keep = False  # read to the connection's end
        self.head_done = True

    def _chunks(self) -> None:
        while True:
            end = self.buffer.find(b"\r\n")
            if end < 0:
                if len(self.buffer) > MAX_HEAD:
                    raise HttpError("a malformed chunk in the answer")
                return
            size_text = bytes(self.buffer[:end]).split(b";", 1)[0].strip()
            try:
                size = int(size_text, 16)
            except ValueError:
                raise HttpError("a malformed chunk in the answer") from None
            if size == 0:  # the last chunk; then trailers, up to an empty line
                rest = self.buffer.find(b"\r\n\r\n", end)
                if self.buffer[end:end + 4] == b"\r\n\r\n" or rest >= 0:
                    stop = end + 4 if self.buffer[end:end + 4] == b"\r\n\r\n" else rest + 4
                    del self.buffer[:stop]
                    self._done()
                return
            if len(self.body) + size > MAX_BODY:
                raise HttpError("the answer's body is too large")
            if len(self.buffer) < end + 2 + size + 2:
                return
            start = end + 2
            if self.buffer[start + size:start + size + 2] != b"\r\n":
                raise HttpError("a malformed chunk in the answer")
            self.body += self.buffer[start:start + size]
            del self.buffer[:start + size + 2]


class BotHttp:
    """Connections by origin, each kept while idle for KEEP_IDLE seconds; at most LIMIT open."""

    def __init__(self, limit: int = LIMIT, ssl_context: ssl.SSLContext | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.idle: dict[Origin, deque[_Connection]] = {}
        self.slots = asyncio.Semaphore(limit)
        self.ssl_context = ssl_context
        self.clock = clock
        self.opened = 0  # connections opened so far (for tests and benches)
        self._targets: dict[str, tuple[Origin, str, bytes]] = {}

    async def post(self, url: str, body: bytes, content_type: str = "application/json") -> tuple[int, bytes]:
        """POST `body` to `url`: the answer's status and body. The caller bounds the time
        (asyncio.timeout); cancelled or failed mid-exchange, the connection is closed."""
        origin, target, host = self._split(url)
        request = b"".join((b"POST ", target.encode(), b" HTTP/1.1\r\nHost: ", host, b"\r\nContent-Type: ",
                            content_type.encode(), b"\r\nContent-Length: ", str(len(body)).encode(),
                            b"\r\nAccept: application/json\r\nUser-Agent: " + USER_AGENT.encode() + b"\r\n\r\n",
                            body))
        async with self.slots:
            connection = self._take(origin) or await self._open(origin)
            try:
                status, answer, keep = await connection.exchange(request)
            except BaseException:
                connection.close()
                raise
            if keep:
                connection.idle_since = self.clock()
                self.idle.setdefault(origin, deque()).append(connection)
            else:
                connection.close()
            return status, answer

    def close(self) -> None:
        """Close every idle connection (those in use close when their exchange ends)."""
        for connections in self.idle.values():
            for connection in connections:
                connection.close()
        self.idle.clear()

    def _take(self, origin: Origin) -> _Connection | None:
        connections = self.idle.get(origin)
        now = self.clock()
        while connections:
            connection = connections.pop()  # the most recently used: the least likely to be stale
            if connection.usable(now):
                return connection
            connection.close()
        return None

    async def _open(self, origin: Origin) -> _Connection:
        scheme, host, port = origin
        context: ssl.SSLContext | None = None
        if scheme == "https":
            if self.ssl_context is None:
                self.ssl_context = ssl.create_default_context()
            context = self.ssl_context
        try:
            _, connection = await asyncio.get_running_loop().create_connection(
                _Connection, host, port, ssl=context, server_hostname=host if context else None)
        except (OSError, ssl.SSLError) as exc:
            raise HttpError(f"could not connect to {host}:{port} ({type(exc).__name__})") from None
        self.opened += 1
        return connection

    def _split(self, url: str) -> tuple[Origin, str, bytes]:
        """(origin, request target, Host header) of `url`, kept for the few URLs a bot calls."""
        base, _, method = url.rpartition("/")
        kept = self._targets.get(base)
        if kept is None:
            parts = urlsplit(base)
            if parts.scheme not in ("http", "https") or not parts.hostname:
                raise HttpError("the Bot API base is not an http(s) URL")
            port = parts.port or (443 if parts.scheme == "https" else 80)
            netloc = parts.netloc.rpartition("@")[2]
            kept = ((parts.scheme, parts.hostname, port), (parts.path or "") + "/", netloc.encode())
            if len(self._targets) < 64:
                self._targets[base] = kept
        origin, path, host = kept
        return origin, path + method, host
