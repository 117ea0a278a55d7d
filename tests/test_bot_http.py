"""The lean Bot API client (ingest/bot_http.py) against real servers on 127.0.0.1: aiohttp's (as
Telegram's nginx answers: Content-Length, chunks, TLS) and raw sockets that answer the ways a
server or a network can, split, cut short, closed while idle, never. Each call gets its own
answer, and a connection that cannot be trusted for the next one is never reused."""

from __future__ import annotations

import asyncio
import json
import shutil
import ssl
import subprocess
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
from aiogram.exceptions import TelegramNetworkError
from aiohttp import web

from ingest import bot_api
from ingest.bot_http import BotHttp, HttpError
from tests.procs import eventually

pytestmark = pytest.mark.timeout(30)

TOKEN = "123456:SECRET-token-never-shown"
Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


@asynccontextmanager
async def aiohttp_server(app: web.Application, context: ssl.SSLContext | None = None) -> AsyncIterator[str]:
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=context)
    await site.start()
    port = runner.addresses[0][1]
    try:
        yield f"{'https' if context else 'http'}://{'localhost' if context else '127.0.0.1'}:{port}/bot{TOKEN}"
    finally:
        await runner.cleanup()


@asynccontextmanager
async def raw_server(handler: Handler) -> AsyncIterator[tuple[str, list[asyncio.StreamWriter]]]:
    """A server that answers with whatever bytes `handler` writes; the connections it accepted."""
    accepted: list[asyncio.StreamWriter] = []

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        accepted.append(writer)
        try:
            await handler(reader, writer)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}/bot{TOKEN}", accepted
    finally:
        for writer in accepted:
            writer.close()
        server.close()


async def read_request(reader: asyncio.StreamReader) -> bytes:
    head = await reader.readuntil(b"\r\n\r\n")
    length = next(int(line.split(b":")[1]) for line in head.split(b"\r\n")
                  if line.lower().startswith(b"content-length"))
    return await reader.readexactly(length)


def echo_app() -> web.Application:
    async def echo(request: web.Request) -> web.Response:
        body = await request.json()
        return web.json_response({"ok": True, "result": {"method": request.match_info["method"], "got": body,
                                                         "type": request.headers["Content-Type"],
                                                         "host": request.headers["Host"]}})

    app = web.Application()
    app.router.add_post(f"/bot{TOKEN}/{{method}}", echo)
    return app


async def post(http: BotHttp, base: str, method: str, body: object) -> tuple[int, dict[str, object]]:
    async with asyncio.timeout(10):
        status, raw = await http.post(f"{base}/{method}", json.dumps(body).encode())
    return status, json.loads(raw)


async def test_calls_in_a_row_reuse_one_kept_alive_connection_and_say_what_they_send() -> None:
    http = BotHttp()
    async with aiohttp_server(echo_app()) as base:
        for n in range(5):
            status, answer = await post(http, base, "sendMessage", {"chat_id": 5, "text": f"n{n}"})
            assert status == 200
            assert answer["result"] == {"method": "sendMessage", "got": {"chat_id": 5, "text": f"n{n}"},
                                        "type": "application/json", "host": base.split("/")[2]}
        assert http.opened == 1
    http.close()


async def test_concurrent_calls_each_get_their_own_answer() -> None:
    http = BotHttp()
    async with aiohttp_server(echo_app()) as base:
        answers = await asyncio.gather(*(post(http, base, f"m{n}", {"n": n}) for n in range(60)))
        assert [a["result"]["got"] for _, a in answers] == [{"n": n} for n in range(60)]  # type: ignore[index]  # JSON
        assert 1 <= http.opened <= 60
        again = await asyncio.gather(*(post(http, base, "x", {"n": n}) for n in range(10)))
        assert [a["result"]["got"] for _, a in again] == [{"n": n} for n in range(10)]  # type: ignore[index]  # JSON
        assert http.opened <= 60, "the second round reused kept connections"
    http.close()


async def test_a_chunked_answer_is_read_whole_and_its_connection_reused() -> None:
    async def chunked(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "application/json"})
        response.enable_chunked_encoding()
        await response.prepare(request)
        for piece in (b'{"ok": true, ', b'"result": ', b'"' + b"z" * 5000 + b'"}'):
            await response.write(piece)
        await response.write_eof()
        return response

    app = web.Application()
    app.router.add_post(f"/bot{TOKEN}/getMe", chunked)
    http = BotHttp()
    async with aiohttp_server(app) as base:
        for _ in range(2):
            status, answer = await post(http, base, "getMe", {})
            assert status == 200 and answer == {"ok": True, "result": "z" * 5000}
        assert http.opened == 1
    http.close()


async def test_an_answer_split_byte_by_byte_is_parsed_whole() -> None:
    answer = b'{"ok":true,"result":1}'
    wire = (b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: "
            + str(len(answer)).encode() + b"\r\n\r\n" + answer)

    async def trickle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            await read_request(reader)
            for byte in range(len(wire)):
                writer.write(wire[byte:byte + 1])
                await writer.drain()

    http = BotHttp()
    async with raw_server(trickle) as (base, accepted):
        assert await post(http, base, "a", {}) == (200, {"ok": True, "result": 1})
        assert await post(http, base, "b", {}) == (200, {"ok": True, "result": 1})
        assert len(accepted) == 1
    http.close()


async def test_chunks_split_anywhere_with_extensions_and_trailers_are_read_whole() -> None:
    wire = (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
            b"5;ext=1\r\n{\"ok\"\r\n" b"E\r\n:true,\"result\"\r\n" b"3\r\n:2}\r\n" b"0\r\nX-Trailer: y\r\n\r\n")

    async def split(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            await read_request(reader)
            for at in range(0, len(wire), 7):
                writer.write(wire[at:at + 7])
                await writer.drain()

    http = BotHttp()
    async with raw_server(split) as (base, accepted):
        for _ in range(2):
            assert await post(http, base, "a", {}) == (200, {"ok": True, "result": 2})
        assert len(accepted) == 1
    http.close()


async def test_an_answer_framed_by_the_connections_end_is_read_whole_and_the_connection_not_reused() -> None:
    async def until_close(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b'HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n\r\n{"ok":true,"result":3}')
        await writer.drain()
        writer.close()

    http = BotHttp()
    async with raw_server(until_close) as (base, accepted):
        assert await post(http, base, "a", {}) == (200, {"ok": True, "result": 3})
        assert await post(http, base, "a", {}) == (200, {"ok": True, "result": 3})
        assert len(accepted) == 2 and http.opened == 2
    http.close()


async def test_connection_close_in_an_answer_is_honoured() -> None:
    async def closing(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            await read_request(reader)
            writer.write(b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\n{}")
            await writer.drain()

    http = BotHttp()
    async with raw_server(closing) as (base, accepted):
        for _ in range(3):
            assert await post(http, base, "a", {}) == (200, {})
        assert http.opened == 3 and len(accepted) == 3
    http.close()


async def test_a_connection_the_server_closed_while_idle_is_never_written_to_again() -> None:
    async def once(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}")  # keep-alive by default...
        await writer.drain()
        writer.close()  # ...and yet closed once idle, as a server's idle timeout does

    http = BotHttp()
    async with raw_server(once) as (base, accepted):
        assert await post(http, base, "a", {}) == (200, {})

        async def noticed() -> bool:
            return all(c.closed for kept in http.idle.values() for c in kept)

        await eventually(noticed, 5, "the client saw the idle connection's end")
        assert await post(http, base, "a", {}) == (200, {})
        assert http.opened == 2 and len(accepted) == 2
    http.close()


async def test_an_idle_connection_past_the_keep_time_is_dropped_not_reused() -> None:
    now = [100.0]
    http = BotHttp(clock=lambda: now[0])
    async with aiohttp_server(echo_app()) as base:
        await post(http, base, "a", {})
        now[0] += 14.0
        await post(http, base, "a", {})
        assert http.opened == 1
        now[0] += 16.0
        await post(http, base, "a", {})
        assert http.opened == 2
    http.close()


async def test_a_connection_lost_mid_answer_fails_the_call_and_the_next_call_opens_another() -> None:
    calls = []

    async def cut(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            await read_request(reader)
            calls.append(1)
            if len(calls) == 1:
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n{\"ok\":")
                await writer.drain()
                writer.close()
                return
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}")
            await writer.drain()

    http = BotHttp()
    async with raw_server(cut) as (base, _):
        with pytest.raises(HttpError, match="closed the connection before the answer was complete"):
            await post(http, base, "a", {})
        assert await post(http, base, "a", {}) == (200, {})
        assert http.opened == 2
    http.close()


async def test_what_is_not_an_http_answer_is_an_error_and_the_connection_goes() -> None:
    answers = [b"garbage\r\n\r\n", b"HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n",
               b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n",
               b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\n{}",
               b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n"]

    async def bad(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(answers.pop(0))
        await writer.drain()
        await reader.read()  # until the client closes

    http = BotHttp()
    async with raw_server(bad) as (base, accepted):
        for _ in range(5):
            with pytest.raises(HttpError):
                await post(http, base, "a", {})
        assert not any(http.idle.values()) and len(accepted) == 5
    http.close()


async def test_an_interim_100_continue_is_skipped_and_no_content_has_no_body() -> None:
    async def interim(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}")
        await read_request(reader)
        writer.write(b"HTTP/1.1 204 No Content\r\nContent-Length: 0\r\n\r\n")
        await reader.read()

    http = BotHttp()
    async with raw_server(interim) as (base, _):
        assert await post(http, base, "a", {}) == (200, {})
        async with asyncio.timeout(10):
            assert await http.post(f"{base}/b", b"{}") == (204, b"")
    http.close()


async def test_a_call_past_its_deadline_closes_its_connection_and_leaves_nothing_to_reuse() -> None:
    ended = asyncio.Event()

    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        await reader.read()  # never answers; returns once the client closed
        ended.set()

    http = BotHttp()
    async with raw_server(silent) as (base, _):
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(0.2):
                await http.post(f"{base}/a", b"{}")
        async with asyncio.timeout(5):
            await ended.wait()
        assert not any(http.idle.values())
    http.close()


async def test_errors_never_carry_the_url_or_its_token() -> None:
    server = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    server.close()
    await server.wait_closed()
    http = BotHttp()
    with pytest.raises(HttpError) as caught:
        async with asyncio.timeout(10):
            await http.post(f"http://127.0.0.1:{port}/bot{TOKEN}/sendMessage", b"{}")
    assert TOKEN not in str(caught.value) and "SECRET" not in repr(caught.value)
    with pytest.raises(HttpError) as caught:
        await http.post(f"ftp://example.org/bot{TOKEN}/sendMessage", b"{}")
    assert TOKEN not in str(caught.value)


async def test_the_bots_session_turns_a_lost_connection_and_a_deadline_into_aiograms_network_error() -> None:
    async def cut(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.close()

    async with raw_server(cut) as (base, _):
        made = bot_api.make_bot(TOKEN, base.rsplit("/bot", 1)[0], timeout=5)
        try:
            with pytest.raises(TelegramNetworkError) as caught:
                await made.send_message(5, "hello")
            assert "HttpError" in str(caught.value) and TOKEN not in str(caught.value)
        finally:
            await made.session.close()

    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read()

    async with raw_server(silent) as (base, _):
        made = bot_api.make_bot(TOKEN, base.rsplit("/bot", 1)[0], timeout=1)
        try:
            with pytest.raises(TelegramNetworkError, match="Request timeout error"):
                await made.send_message(5, "hello")
        finally:
            await made.session.close()


def certificate(directory: Path) -> tuple[Path, Path]:
    """A self-signed certificate for localhost, made by the openssl tool."""
    if shutil.which("openssl") is None:
        pytest.skip("the openssl tool is not installed: cannot make a certificate for the TLS test")
    cert, key = directory / "cert.pem", directory / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=localhost",
                    "-addext", "subjectAltName=DNS:localhost", "-keyout", str(key), "-out", str(cert)],
                   check=True, capture_output=True, timeout=60)
    return cert, key


async def test_https_is_spoken_to_a_trusted_server_and_refused_to_an_untrusted_one(tmp_path: Path) -> None:
    cert, key = certificate(tmp_path)
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_context.load_cert_chain(cert, key)
    trusting = ssl.create_default_context(cafile=str(cert))
    async with aiohttp_server(echo_app(), server_context) as base:
        http = BotHttp(ssl_context=trusting)
        for n in range(2):
            status, answer = await post(http, base, "getMe", {"n": n})
            assert status == 200 and answer["result"]["got"] == {"n": n}  # type: ignore[index]  # JSON
        assert http.opened == 1
        http.close()
        with pytest.raises(HttpError, match="could not connect"):
            await post(BotHttp(), base, "getMe", {})  # the system's trust store does not know this certificate
