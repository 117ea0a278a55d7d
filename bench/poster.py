"""An open-loop webhook poster light enough not to be what it measures.

Why: bench.ingress measures an app's ack latency at a fixed rate, and its first client (aiohttp's,
~100-150 µs of CPU a post) shared the other core with PostgreSQL and the fake Telegram: at 1,100
posts a second that core was 82-88% busy and the client's own event loop lagged 5-10 ms at p99
(up to 30 ms), which it counted as the app's. This one writes prepared bytes on kept-alive
connections and reads each answer's status and Content-Length only. Latency still counts from each
post's scheduled time (no coordinated omission): a post due while every connection waits for an
answer waits too, and that wait is charged to the app.
"""

from __future__ import annotations

import asyncio
import collections
import time
from collections.abc import Callable
from typing import cast
from urllib.parse import urlsplit

HEAD_END = b"\r\n\r\n"


class _Connection(asyncio.Protocol):
    """One keep-alive connection, one post at a time."""

    def __init__(self, answered: Callable[[_Connection, int], None], lost: Callable[[_Connection], None]) -> None:
        self.answered = answered
        self.lost = lost
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray()
        self.due = 0.0  # the post in flight's scheduled time

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # create_connection's: a stream transport

    def send(self, request: bytes, due: float) -> None:
        self.due = due
        assert self.transport is not None
        self.transport.write(request)

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        end = self.buffer.find(HEAD_END)
        if end < 0:
            return
        lines = bytes(self.buffer[:end]).split(b"\r\n")
        length = 0
        for line in lines[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        if len(self.buffer) < end + 4 + length:
            return
        status = int(lines[0][9:12])
        del self.buffer[:end + 4 + length]
        self.answered(self, status)

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None
        self.lost(self)


async def post_at_rate(base: str, requests: list[bytes], rate: float, conns: int) -> tuple[list[float], dict[int, int]]:
    """Send `requests` at `rate` a second over `conns` connections; each one's latency (seconds from
    its scheduled time to its whole answer) and the count of each status (0: the connection was lost)."""
    loop = asyncio.get_running_loop()
    url = urlsplit(base)
    host, port = url.hostname or "127.0.0.1", url.port or 80
    latencies: list[float] = []
    statuses: dict[int, int] = collections.Counter()
    free: list[_Connection] = []
    waiting: collections.deque[tuple[int, float]] = collections.deque()
    left = [len(requests)]
    finished = loop.create_future()

    def settle(connection: _Connection | None, status: int) -> None:
        latencies.append(time.monotonic() - (connection.due if connection else 0.0))
        statuses[status] += 1
        left[0] -= 1
        if left[0] == 0 and not finished.done():
            finished.set_result(None)

    def answered(connection: _Connection, status: int) -> None:
        settle(connection, status)
        if waiting:
            number, due = waiting.popleft()
            connection.send(requests[number], due)
        else:
            free.append(connection)

    def lost(connection: _Connection) -> None:
        if connection in free:
            free.remove(connection)
        elif connection.due:
            settle(connection, 0)

    async def connect() -> _Connection:
        _, connection = await loop.create_connection(lambda: _Connection(answered, lost), host, port)
        return connection

    free.extend(await asyncio.gather(*(connect() for _ in range(conns))))
    began = time.monotonic()
    for number in range(len(requests)):
        due = began + number / rate
        delay = due - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        if free:
            free.pop().send(requests[number], due)
        else:
            waiting.append((number, due))
    try:
        async with asyncio.timeout(60):
            await finished
    finally:
        for connection in list(free):
            if connection.transport is not None:
                connection.transport.close()
    return latencies, dict(statuses)


def webhook_request(host: str, body: bytes, headers: dict[str, str]) -> bytes:
    """A POST /webhook as Telegram writes one."""
    lines = [f"POST /webhook HTTP/1.1\r\nHost: {host}\r\nContent-Length: {len(body)}\r\n"]
    lines += [f"{name}: {value}\r\n" for name, value in headers.items()]
    return "".join(lines).encode() + b"\r\n" + body
