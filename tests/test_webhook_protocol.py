"""ingest/webhook_protocol.py: Telegram's posts answered by the lean protocol, the rest by aiohttp.

Real sockets against a real Ingress and PostgreSQL; which server answered is told by aiohttp's
`Server` header, which the lean protocol does not send.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest

import config
from actors.ingress import Ingress
from fakes.telegram_api import message_update
from ingest import webhook_intake, webhook_protocol
from ingest.kie_callbacks import KieCallbackIntake
from ingest.webhook_intake import WebhookIntake
from ingest.webhook_protocol import head_fields, lean
from store.database import Database
from tests.actors_kit import until
from tests.procs import FAKE_TOKEN, free_port

pytestmark = pytest.mark.timeout(60)
SECRET = "protocol-secret_0123"
LIMIT = 4096


@dataclass
class Served:
    port: int
    ingress: Ingress

    async def connect(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        return await asyncio.open_connection("127.0.0.1", self.port)


@pytest.fixture
async def served(db: Database) -> AsyncIterator[Served]:
    port = free_port()
    settings = config.load("serve", {"TELEGRAM_BOT_TOKEN": FAKE_TOKEN, "WEBHOOK_SECRET": SECRET, "PORT": str(port),
                                     "DATABASE_URL": db.url, "MAX_BODY_BYTES": str(LIMIT)})
    intake = WebhookIntake(settings, db, lambda batch, at: None, lambda user: "updating")
    ingress = Ingress(Ingress.new_mailbox("ingress"), settings, health=lambda: {"status": "ok"},
                      find_actor=lambda name: None, host="127.0.0.1", intake=intake,
                      kie_callbacks=KieCallbackIntake(settings, db, lambda: None))
    await ingress.on_start()
    try:
        yield Served(port, ingress)
    finally:
        await ingress.on_stop()


def body(update_id: int) -> bytes:
    return json.dumps(message_update(update_id, 700 + update_id % 100, "/start")).encode()


def post(raw: bytes, secret: str = SECRET, extra: str = "") -> bytes:
    head = (f"POST /webhook HTTP/1.1\r\nHost: bot.example\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(raw)}\r\nX-Telegram-Bot-Api-Secret-Token: {secret}\r\n{extra}\r\n")
    return head.encode() + raw


@dataclass
class Reply:
    status: int
    headers: dict[str, str]
    body: bytes

    @property
    def by_aiohttp(self) -> bool:
        return "aiohttp" in self.headers.get("server", "")


async def reply(reader: asyncio.StreamReader) -> Reply:
    async with asyncio.timeout(10):
        head = await reader.readuntil(b"\r\n\r\n")
        lines = head.decode().split("\r\n")
        headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:] if line)}
        content = await reader.readexactly(int(headers.get("content-length", "0")))
    return Reply(int(lines[0].split()[1]), headers, content)


async def rows(db: Database, *update_ids: int) -> int:
    return int(await db.require().fetchval("SELECT count(*) FROM inbox WHERE update_id = ANY($1::bigint[])",
                                           list(update_ids)))


async def closed(reader: asyncio.StreamReader) -> bool:
    async with asyncio.timeout(10):
        return await reader.read() == b""


async def test_posts_kept_alive_on_one_connection_are_each_committed_and_answered_by_the_lean_protocol(
        served: Served, db: Database) -> None:
    reader, writer = await served.connect()
    for update_id in (8001, 8002, 8003):
        writer.write(post(body(update_id)))
        answer = await reply(reader)
        assert (answer.status, answer.body, answer.by_aiohttp) == (200, b"", False)
        assert answer.headers["content-length"] == "0" and "date" in answer.headers
    writer.close()
    assert await rows(db, 8001, 8002, 8003) == 3


async def test_pipelined_posts_are_answered_in_the_order_they_came(served: Served, db: Database) -> None:
    reader, writer = await served.connect()
    writer.write(post(body(8011)) + post(body(8012), secret="wrong-secret") + post(body(8013)))
    answers = [await reply(reader) for _ in range(3)]
    assert [a.status for a in answers] == [200, 401, 200]
    assert json.loads(answers[1].body) == {"ok": False, "error": "unauthorized"}
    assert answers[1].headers["content-type"] == "application/json; charset=utf-8"
    writer.close()
    assert await rows(db, 8011, 8012, 8013) == 2


async def test_a_post_written_one_byte_at_a_time_is_answered_once_whole(served: Served, db: Database) -> None:
    reader, writer = await served.connect()
    for byte in post(body(8021)):
        writer.write(bytes([byte]))
        await writer.drain()
    answer = await reply(reader)
    assert (answer.status, answer.by_aiohttp) == (200, False)
    writer.close()
    assert await rows(db, 8021) == 1


async def test_a_missing_secret_is_a_401_and_nothing_is_committed(served: Served, db: Database) -> None:
    reader, writer = await served.connect()
    raw = body(8031)
    writer.write(f"POST /webhook HTTP/1.1\r\nHost: x\r\nContent-Length: {len(raw)}\r\n\r\n".encode() + raw)
    answer = await reply(reader)
    assert (answer.status, answer.by_aiohttp) == (401, False)
    writer.close()
    assert await rows(db, 8031) == 0


async def test_another_route_on_the_same_connection_is_handed_to_aiohttp_with_the_bytes_already_read(
        served: Served, db: Database) -> None:
    reader, writer = await served.connect()
    writer.write(post(body(8041)) + b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
    first, second = await reply(reader), await reply(reader)
    assert (first.status, first.by_aiohttp) == (200, False)
    assert (second.status, second.by_aiohttp, json.loads(second.body)) == (200, True, {"status": "ok"})
    writer.write(post(body(8042)))  # the connection is aiohttp's now, and it serves the route as ever
    third = await reply(reader)
    assert (third.status, third.by_aiohttp) == (200, True)
    writer.close()
    assert await rows(db, 8041, 8042) == 2


async def test_a_chunked_post_is_served_by_aiohttp_and_committed_too(served: Served, db: Database) -> None:
    reader, writer = await served.connect()
    raw = body(8051)
    writer.write(b"POST /webhook HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nX-Telegram-Bot-Api-Secret-Token: "
                 + SECRET.encode() + b"\r\n\r\n" + b"%x\r\n" % len(raw) + raw + b"\r\n0\r\n\r\n")
    answer = await reply(reader)
    assert (answer.status, answer.by_aiohttp) == (200, True)
    writer.close()
    assert await rows(db, 8051) == 1


async def test_a_body_over_the_limit_is_aiohttps_413_and_a_bad_update_the_lean_400(served: Served) -> None:
    reader, writer = await served.connect()
    writer.write(post(b"{" + b" " * LIMIT + b"}"))
    answer = await reply(reader)
    assert (answer.status, answer.by_aiohttp) == (413, True)
    writer.close()
    reader, writer = await served.connect()
    writer.write(post(b'{"no_update_id": 1}'))
    answer = await reply(reader)
    assert (answer.status, answer.by_aiohttp) == (400, False)
    writer.close()


async def test_a_body_that_stops_short_is_a_408_after_the_body_timeout_and_the_connection_closes(
        served: Served, db: Database, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(webhook_protocol, "BODY_TIMEOUT", 0.3)
    reader, writer = await served.connect()
    whole = post(body(8061))
    writer.write(whole[:-5])
    answer = await reply(reader)
    assert (answer.status, answer.headers.get("connection")) == (408, "close")
    assert await closed(reader)
    assert await rows(db, 8061) == 0


async def test_a_head_still_coming_after_the_body_timeout_is_handed_to_aiohttp_which_serves_it(
        served: Served, db: Database, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(webhook_protocol, "BODY_TIMEOUT", 0.2)
    server = served.ingress.webhook_server
    assert server is not None
    reader, writer = await served.connect()
    whole = post(body(8071))
    writer.write(whole[:30])
    await until(lambda: any(p.buffer for p in server.open), timeout=10, what="the head's first bytes read")
    await until(lambda: not server.open, timeout=10, what="the slow head handed over")
    writer.write(whole[30:])
    answer = await reply(reader)
    assert (answer.status, answer.by_aiohttp) == (200, True)
    writer.close()
    assert await rows(db, 8071) == 1


async def test_connection_close_is_honoured_after_the_answer(served: Served, db: Database) -> None:
    reader, writer = await served.connect()
    writer.write(post(body(8081), extra="Connection: close\r\n"))
    answer = await reply(reader)
    assert (answer.status, answer.headers.get("connection"), answer.by_aiohttp) == (200, "close", False)
    assert await closed(reader)


async def test_thousands_of_pipelined_refused_posts_are_answered_in_order_then_the_post_behind_them(
        served: Served, db: Database) -> None:
    reader, writer = await served.connect()
    refused = 3000  # each answered at once, in one loop: a call per answer would pass the recursion limit
    writer.write(post(body(8131), secret="wrong-secret") * refused + post(body(8132)))
    answers = [await reply(reader) for _ in range(refused + 1)]
    assert [a.status for a in answers] == [401] * refused + [200]
    assert not any(a.by_aiohttp for a in answers)
    writer.close()
    assert await rows(db, 8131, 8132) == 1


async def test_a_close_on_an_answer_given_at_once_drops_the_posts_pipelined_behind_it(
        served: Served, db: Database) -> None:
    reader, writer = await served.connect()
    writer.write(post(body(8141), secret="wrong-secret", extra="Connection: close\r\n") + post(body(8142)))
    answer = await reply(reader)
    assert (answer.status, answer.headers.get("connection")) == (401, "close")
    assert await closed(reader)
    assert await rows(db, 8141, 8142) == 0


async def test_a_commit_stuck_past_the_commit_timeout_is_a_503_and_the_update_commits_once_it_can(
        served: Served, db: Database) -> None:
    intake = served.ingress.intake
    assert intake is not None
    intake.commits.timeout = 0.3  # COMMIT_TIMEOUT, shortened: the group commit keeps the bound
    reader, writer = await served.connect()
    async with db.require().acquire() as holder, holder.transaction():
        await holder.execute("LOCK TABLE inbox IN EXCLUSIVE MODE")  # the commit waits behind this
        writer.write(post(body(8151)))
        answer = await reply(reader)
        assert (answer.status, answer.headers.get("retry-after")) == (503, "1")
        assert json.loads(answer.body) == {"ok": False, "error": "storage unavailable, retry"}
    await until_rows(db, 8151)
    writer.write(post(body(8152)))  # the connection goes on serving
    assert (await reply(reader)).status == 200
    writer.close()


async def test_a_bug_while_taking_a_post_is_a_500_and_the_connection_serves_the_next(
        served: Served, db: Database, monkeypatch: pytest.MonkeyPatch) -> None:
    real, calls = webhook_intake.parse, []

    def parse_failing_once(raw: bytes) -> Any:
        calls.append(raw)
        if len(calls) == 1:
            raise RuntimeError("a bug")
        return real(raw)

    monkeypatch.setattr(webhook_intake, "parse", parse_failing_once)
    reader, writer = await served.connect()
    writer.write(post(body(8161)) + post(body(8162)))
    answers = [await reply(reader) for _ in range(2)]
    assert [(a.status, a.by_aiohttp) for a in answers] == [(500, False), (200, False)]
    assert json.loads(answers[0].body) == {"error": "internal error"}
    writer.close()
    assert await rows(db, 8161, 8162) == 1


async def test_an_idle_connection_is_closed_after_the_keepalive_time(
        served: Served, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(webhook_protocol, "KEEPALIVE", 0.3)
    reader, writer = await served.connect()
    writer.write(post(body(8091)))
    assert (await reply(reader)).status == 200
    assert await closed(reader)


async def test_a_client_gone_before_its_answer_still_has_its_update_committed(served: Served, db: Database) -> None:
    server = served.ingress.webhook_server
    assert server is not None
    async with db.require().acquire() as holder, holder.transaction():
        await holder.execute("LOCK TABLE inbox IN EXCLUSIVE MODE")  # the commit waits behind this
        _, writer = await served.connect()
        writer.write(post(body(8101)))
        await until(lambda: any(p.busy for p in server.open), timeout=10, what="the post being committed")
        writer.close()
        await until(lambda: not server.open, timeout=10, what="the server seeing the client gone")
    await until_rows(db, 8101)


async def until_rows(db: Database, update_id: int) -> None:
    async with asyncio.timeout(10):
        while not await rows(db, update_id):  # noqa: ASYNC110 - the condition is in another connection's commit
            await asyncio.sleep(0.02)


async def test_stopping_lets_a_pending_answer_be_written_then_closes_the_connection(
        served: Served, db: Database) -> None:
    server = served.ingress.webhook_server
    assert server is not None
    reader, writer = await served.connect()
    async with db.require().acquire() as holder:
        async with holder.transaction():
            await holder.execute("LOCK TABLE inbox IN EXCLUSIVE MODE")
            writer.write(post(body(8111)))
            await until(lambda: any(p.busy for p in server.open), timeout=10, what="the post being committed")
            stopping = asyncio.create_task(served.ingress.on_stop())
            await until(lambda: server.server is None, timeout=10, what="the server no longer listening")
        answer = await reply(reader)  # the lock went: the commit ends, its answer is written
        assert answer.status == 200
        assert await closed(reader)
        await stopping
    await served.ingress.on_start()  # the fixture stops it again


async def test_an_unreachable_database_is_a_503_with_retry_after(served: Served, db: Database) -> None:
    db.mark_down(ConnectionRefusedError("the database went away"))
    try:
        reader, writer = await served.connect()
        writer.write(post(body(8121)))
        answer = await reply(reader)
        assert (answer.status, answer.headers.get("retry-after"), answer.by_aiohttp) == (503, "1", False)
        writer.close()
    finally:
        db.mark_up(None)


@pytest.mark.parametrize("head", [
    b"POST /webhook HTTP/1.1\r\nContent-Length: 2\r\nContent-Length: 2",  # a repeated field
    b"POST /webhook HTTP/1.1\r\nContent-Length: 2\r\n folded",  # obsolete line folding
    b"POST /webhook HTTP/1.1\r\nContent-Length : 2",  # whitespace before the colon
    b"POST /webhook HTTP/1.1\r\nContent-Length: 2\r\nX-Bad: a\x00b",  # a control character
])
def test_heads_this_parser_does_not_accept_whole_are_left_to_aiohttp(head: bytes) -> None:
    assert head_fields(head) is None


@pytest.mark.parametrize("fields", [
    {b"host": b"x", b"transfer-encoding": b"chunked", b"content-length": b"2"},
    {b"host": b"x", b"content-length": b"2", b"expect": b"100-continue"},
    {b"host": b"x", b"content-length": b"2", b"content-encoding": b"gzip"},
    {b"host": b"x", b"content-length": b"-2"},
    {b"host": b"x", b"content-length": b"2", b"connection": b"upgrade"},
    {b"host": b"x", b"content-length": b"%d" % (LIMIT + 1)},
    {b"content-length": b"2"},
    {b"host": b"x"},
])
def test_requests_of_another_shape_are_not_served_lean(fields: dict[bytes, bytes]) -> None:
    assert lean(fields, LIMIT) is None


def test_the_shape_telegram_sends_is_served_lean() -> None:
    fields = head_fields(post(b"{}").split(b"\r\n\r\n")[0])
    assert fields is not None and lean(fields, LIMIT) == (2, False)
    assert lean({b"host": b"x", b"content-length": b"2", b"connection": b"Close"}, LIMIT) == (2, True)
