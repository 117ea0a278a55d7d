"""Hostile input at the HTTP edges (/webhook, /kie-callback) of a real `run.py serve`.

An attacker who holds the webhook secret, or anyone at all for what aiohttp parses before our
handler runs (the request line, the headers, the chunked framing), must get a 4xx, leave one
warning line without a traceback, and leave the process serving: its inbox drains and a /start
afterwards still gets its menu. The seeds' bot listed "Error handling request" with a Traceback
as a forbidden log pattern; a deep JSON body used to answer 500 with a RecursionError.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
import pytest
import pytest_asyncio
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import config
from actors.ingress import Ingress
from fakes.telegram_api import FakeTelegram, message_update
from ingest.kie_callbacks import KieCallbackIntake
from ingest.webhook_intake import WebhookIntake
from tests.conftest import create_database, drop_database
from tests.procs import FAKE_TOKEN, TrtProcess, eventually, free_port

pytestmark = [pytest.mark.timeout(240), pytest.mark.asyncio(loop_scope="module")]

SECRET = "hostile-input-secret_0123"
CHAOS = "hostile-input-chaos_0123"
SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"
BOT_ID = int(FAKE_TOKEN.split(":")[0])
MAX_BODY = 512 * 1024
KIE_SETTINGS = config.load("serve", {"TELEGRAM_BOT_TOKEN": FAKE_TOKEN, "WEBHOOK_SECRET": SECRET,
                                     "DATABASE_URL": "postgresql://127.0.0.1:1/none"})


def kie_path(job: int) -> str:
    """Job `job`'s callback path, with its own token (a token opens one job only)."""
    return f"/kie-callback/{KIE_SETTINGS.kie_callback_token(job)}/{job}"


# update ids and chats the checks use; the fuzz stays out of them, so a fuzzed update can never
# shadow (same update_id) or queue ahead of (same chat) a check's /start
CHECK_IDS = 9_000_000_000_000
CHECK_CHATS = 8_000_000_000_000
FORBIDDEN = ("Traceback", "Error handling request", "http_handler_failed", "RecursionError")
ALLOWED = {200, 400, 401, 413}


@dataclass
class World:
    proc: TrtProcess
    fake: FakeTelegram
    database_url: str
    checks: int = 0

    def mark(self) -> int:
        """Where the log is now: lines written after it are the next step's."""
        return len(self.proc.log_text().splitlines())

    def lines_since(self, mark: int) -> list[str]:
        return self.proc.log_text().splitlines()[mark:]

    async def post(self, path: str, body: bytes, headers: dict[str, str] | None = None,
                   secret: str | None = SECRET) -> int:
        sent = {"Content-Type": "application/json", **(headers or {})}
        if secret is not None:
            sent[SECRET_HEADER] = secret
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=20)) as session, \
                session.post(self.proc.base + path, data=body, headers=sent) as response:
            await response.read()
            return response.status

    async def start_gets_its_menu(self) -> None:
        """A valid /start from a chat of its own is answered with the main menu: the bot still works."""
        self.checks += 1
        chat = CHECK_CHATS + self.checks
        update = message_update(CHECK_IDS + self.checks, chat, "/start")
        assert await self.post("/webhook", json.dumps(update).encode()) == 200
        await self.fake.wait_for(lambda: any(is_menu(c) for c in self.fake.sent_messages(chat)), timeout=30,
                                 what=f"the menu for chat {chat}")

    async def inbox_drained(self, timeout: float = 60.0) -> None:
        """Every stored update finished (handled, skipped or failed for good): none stuck."""
        async def empty() -> bool:
            conn = await asyncpg.connect(self.database_url)
            try:
                left = await conn.fetchval("SELECT count(*) FROM inbox WHERE bot_id = $1 AND state < 2", BOT_ID)
            finally:
                await conn.close()
            return left == 0

        await eventually(empty, timeout, "an empty inbox backlog", interval=0.2)

    def assert_alive(self) -> None:
        assert self.proc.proc is not None and self.proc.proc.poll() is None, self.proc.log_text()[-3000:]


def is_menu(call: Any) -> bool:
    markup = call.params.get("reply_markup") or {}
    return "menu:balance" in [b.get("callback_data") for row in markup.get("inline_keyboard", []) for b in row]


def forbidden_in(lines: list[str]) -> list[str]:
    return [line[:400] for line in lines if any(word in line for word in FORBIDDEN)]


def warnings_in(lines: list[str]) -> list[dict[str, Any]]:
    out = []
    for line in lines:
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if record.get("level") == "warning" and record.get("logger", "").startswith(("trt.ingress", "aiohttp")):
            out.append(record)
    return out


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def world(pg_server_url: str, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[World]:
    """One serving process for the whole module, on a database of its own, ACTIVE and consuming."""
    name, url = await create_database(pg_server_url)
    tmp: Path = tmp_path_factory.mktemp("hostile")
    async with FakeTelegram() as fake:
        proc = TrtProcess(tmp, {"TELEGRAM_BOT_TOKEN": FAKE_TOKEN, "DATABASE_URL": url,
                                "TELEGRAM_API_BASE": fake.base_url, "WEBHOOK_BASE_URL": "https://bot.example.com",
                                "BOT_MODE": "webhook", "WEBHOOK_SECRET": SECRET, "MAX_BODY_BYTES": str(MAX_BODY),
                                "TELEGRAM_RATE_GLOBAL": "0", "TELEGRAM_RATE_PER_CHAT": "0",
                                "INBOX_SWEEP_INTERVAL": "0.2", "CHAOS_TOKEN": CHAOS}, name="hostile").start()
        try:
            async def consuming() -> bool:
                body = await proc.health()
                return body["role"] == "ACTIVE" and bool(body["actors"]["dispatcher"].get("consuming"))

            await proc.wait_healthy()
            await eventually(consuming, 60, "ACTIVE and consuming")
            yield World(proc, fake, url)
        finally:
            proc.kill()
    await drop_database(pg_server_url, name)


DEEP = 50_000
DEEP_BODIES = {
    "arrays": b"[" * DEEP + b"]" * DEEP,
    "objects": b'{"a":' * DEEP + b"1" + b"}" * DEEP,
    "deep inside an update": b'{"update_id": 1, "message": {"text": ' + b"[" * DEEP + b"]" * DEEP + b"}}",
}


async def test_a_json_body_nested_fifty_thousand_deep_is_a_400_with_one_warning_and_no_traceback(
        world: World) -> None:
    for shape, body in DEEP_BODIES.items():
        mark = world.mark()
        assert await world.post("/webhook", body) == 400, shape
        lines = world.lines_since(mark)
        assert forbidden_in(lines) == [], shape
        warned = warnings_in(lines)
        if shape == "arrays":  # the first bad body from this source: later ones may be rate-limited
            assert [(w["event"], w.get("reason")) for w in warned] == [("webhook_bad_update", "too_deep")], lines
        else:
            assert len(warned) <= 1, (shape, lines)
    await world.start_gets_its_menu()


async def test_a_kie_callback_nested_deep_or_deep_in_result_json_is_a_400_without_traceback(world: World) -> None:
    deep_string = json.dumps({"code": 200, "data": {"taskId": "t1", "state": "success",
                                                    "resultJson": "[" * DEEP + "]" * DEEP}}).encode()
    for body in (*DEEP_BODIES.values(), deep_string):
        mark = world.mark()
        assert await world.post(kie_path(1), body, secret=None) == 400
        assert forbidden_in(world.lines_since(mark)) == []
    assert await world.post("/kie-callback/wrong-secret/1", b"{}", secret=None) == 401


async def test_an_update_nested_a_hundred_deep_decodes_but_is_refused_before_the_dispatcher_meets_it(
        world: World) -> None:
    """Deep enough to pass json at the door (a shallow stack), too deep for any real update: later
    decoders on deeper stacks (the dispatcher, aiogram's models) would be where it fails."""
    update = message_update(CHECK_IDS + 5000, CHECK_CHATS + 5000, "/start")
    update["message"]["reply_markup"] = json.loads("[" * 100 + "]" * 100)
    assert await world.post("/webhook", json.dumps(update).encode()) == 400


@pytest.mark.parametrize("task_id", ["a\\u0000b", "\\ud800", "t" * 300],
                         ids=["a NUL", "a lone surrogate", "300 characters"])
async def test_a_kie_task_id_postgresql_cannot_hold_is_a_400_not_a_503_or_500(world: World, task_id: str) -> None:
    body = b'{"code": 200, "data": {"taskId": "' + task_id.encode() + b'", "state": "success", "resultJson": "{}"}}'
    mark = world.mark()
    assert await world.post(kie_path(7), body, secret=None) == 400
    assert forbidden_in(world.lines_since(mark)) == []


async def raw_exchange(port: int, data: bytes, *, then: bytes = b"", close: bool = False,
                       timeout: float = 10.0) -> bytes:
    """Send `data` on a fresh connection, then `then` as a later segment (the handler is reading
    the body by then), then half-close it when `close`; read until the server closes or a whole
    response head came back, within `timeout`: what a broken client or an attacker's socket does."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    answer = b""
    try:
        writer.write(data)
        await writer.drain()
        if then:
            # not a wait for a condition: the gap only makes the kernel deliver `then` as a segment
            # of its own, so aiohttp meets the broken framing while the handler already reads the body
            await asyncio.sleep(0.3)
            writer.write(then)
            await writer.drain()
        if close:
            writer.write_eof()
        async with asyncio.timeout(timeout):
            while b"\r\n\r\n" not in answer:
                chunk = await reader.read(65536)
                if not chunk:
                    break
                answer += chunk
    except TimeoutError:
        return answer or b"(no answer, connection still open)"
    except ConnectionResetError:
        return answer
    finally:
        writer.close()
        try:
            await writer.wait_closed()
        except (ConnectionError, OSError):
            pass
    return answer


def head(extra: str = "", *, chunked: bool = True, path: str = "/webhook") -> bytes:
    lines = [f"POST {path} HTTP/1.1", "Host: x", f"{SECRET_HEADER}: {SECRET}", "Content-Type: application/json"]
    if chunked:
        lines.append("Transfer-Encoding: chunked")
    return ("\r\n".join(lines) + "\r\n" + extra + "\r\n").encode()


KIE_PATH = kie_path(1)
MALFORMED = {
    "a chunk size that is not hex": (head() + b"zz\r\nhello\r\n0\r\n\r\n", b"", False),
    "a negative chunk size": (head() + b"-5\r\nhello\r\n0\r\n\r\n", b"", False),
    "a huge chunk size": (head() + b"ffffffffffffffffffffffff\r\n{}\r\n0\r\n\r\n", b"", False),
    "a chunk longer than the limit": (head() + f"{MAX_BODY * 4:x}\r\n".encode() + b"[" * (MAX_BODY + 10), b"", False),
    "a chunk missing its CRLF": (head() + b"2\r\n{}XX0\r\n\r\n", b"", False),
    "a truncated chunk, then close": (head() + b"40\r\n{\"update_id\": 1", b"", True),
    "a truncated chunk on /kie-callback, then close": (head(path=KIE_PATH) + b"40\r\n{\"code\"", b"", True),
    "a bad chunk size on /kie-callback": (head(path=KIE_PATH) + b"zz\r\n{}\r\n0\r\n\r\n", b"", False),
    "both Content-Length and chunked": (head("Content-Length: 2\r\n") + b"2\r\n{}\r\n0\r\n\r\n", b"", False),
    "chunked twice": (head("Transfer-Encoding: chunked\r\n") + b"2\r\n{}\r\n0\r\n\r\n", b"", False),
    "an unknown transfer coding": (head("Transfer-Encoding: gzip, chunked\r\n", chunked=False) + b"0\r\n\r\n",
                                   b"", False),
    "a control byte in a header": (head("X-Bad: a\x01b\r\n") + b"0\r\n\r\n", b"", False),
    "a header without a colon": (head("NoColonHere\r\n") + b"0\r\n\r\n", b"", False),
    "a space before the header colon": (head("X-Odd : 1\r\n") + b"0\r\n\r\n", b"", False),
    "a header line over the limit": (head("X-Long: " + "a" * 20_000 + "\r\n") + b"0\r\n\r\n", b"", False),
    "a bad request line": (b"POST /webhook HTTP/1.1 extra\r\nHost: x\r\n\r\n", b"", False),
    "a bad HTTP version": (b"POST /webhook HTTP/9.Q\r\nHost: x\r\n\r\n", b"", False),
    "a bad Content-Length": (head("Content-Length: 1x\r\n", chunked=False) + b"{}", b"", False),
    "a negative Content-Length": (head("Content-Length: -1\r\n", chunked=False) + b"{}", b"", False),
    "a Content-Length longer than the body, then close": (head("Content-Length: 100\r\n", chunked=False) + b"{}",
                                                          b"", True),
    "binary garbage": (bytes(range(256)) * 4, b"", False),
    "bad gzip": (head("Content-Encoding: gzip\r\n") + b"4\r\nzzzz\r\n0\r\n\r\n", b"", False),
    "bad gzip on /kie-callback": (head("Content-Encoding: gzip\r\n", path=KIE_PATH) + b"4\r\nzzzz\r\n0\r\n\r\n",
                                  b"", False),
    "bad gzip on /chaos": (head("Content-Encoding: gzip\r\nX-Chaos-Token: " + CHAOS + "\r\n", path="/chaos/janitor")
                           + b"4\r\nzzzz\r\n0\r\n\r\n", b"", False),
}


# broken after the handler began reading the body: aiohttp's parser queues its 400 behind the
# request and never tells the body's reader, so the route's own body timeout answers (408)
MID_BODY = {
    "a bad chunk size after a good chunk, in a later segment": (head() + b"2\r\n[1", b"]\r\nzz\r\n", False),
    "a chunk missing its CRLF, in a later segment": (head() + b"2\r\n[1", b"]XX0\r\n\r\n", False),
    "a truncated chunk, then close, in a later segment": (head() + b"40\r\n[1", b",2", True),
    "bad gzip in a later segment": (head("Content-Encoding: gzip\r\n") + b"4\r\n\x1f\x8b\x08\x00",
                                    b"4\r\nzzzz\r\n0\r\n\r\n", False),
}


@pytest.mark.parametrize("variant", list(MALFORMED))
async def test_malformed_framing_is_answered_or_closed_with_one_warning_and_no_traceback(
        world: World, variant: str) -> None:
    data, then, close = MALFORMED[variant]
    mark = world.mark()
    answer = await raw_exchange(world.proc.port, data, then=then, close=close)
    status_line = answer.split(b"\r\n", 1)[0]
    assert answer == b"" or status_line.startswith((b"HTTP/1.1 400", b"HTTP/1.1 413", b"HTTP/1.0 400")), answer[:300]
    await world.start_gets_its_menu()
    lines = world.lines_since(mark)
    assert forbidden_in(lines) == []
    assert len(warnings_in(lines)) <= 1, lines
    world.assert_alive()


async def test_framing_broken_mid_body_is_answered_within_the_body_timeout_with_one_warning_each(
        world: World) -> None:
    mark = world.mark()
    answers = await asyncio.gather(*(raw_exchange(world.proc.port, data, then=then, close=close, timeout=25)
                                     for data, then, close in MID_BODY.values()))
    for variant, answer in zip(MID_BODY, answers, strict=True):
        status_line = answer.split(b"\r\n", 1)[0]
        assert answer == b"" or status_line.startswith((b"HTTP/1.1 400", b"HTTP/1.1 408")), (variant, answer[:300])
    await world.start_gets_its_menu()
    lines = world.lines_since(mark)
    assert forbidden_in(lines) == []
    assert len(warnings_in(lines)) <= len(MID_BODY), lines
    world.assert_alive()


class _Records(logging.Handler):
    """Every record that reaches the root, after the loggers' filters: what the log would show."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


class _NoDatabase:
    """Bodies that get past the checks are stored nowhere: these tests are about what comes before."""

    def require(self) -> Any:
        raise ConnectionRefusedError("no database in this test")


@pytest_asyncio.fixture(loop_scope="module")
async def in_process() -> AsyncIterator[tuple[int, _Records]]:
    """Ingress itself (its middleware, the filter it installs, both intakes) in this process, on a
    port of its own, with a fresh capture of the log: each variant is judged alone, with no
    process-wide rate limit of repeated lines to hide a traceback."""
    port = free_port()
    settings = config.load("serve", {"TELEGRAM_BOT_TOKEN": FAKE_TOKEN, "WEBHOOK_SECRET": SECRET, "PORT": str(port),
                                     "DATABASE_URL": "postgresql://127.0.0.1:1/none", "CHAOS_TOKEN": CHAOS,
                                     "MAX_BODY_BYTES": str(MAX_BODY)})
    database: Any = _NoDatabase()
    ingress = Ingress(Ingress.new_mailbox("ingress"), settings, health=dict, find_actor=lambda name: None,
                      host="127.0.0.1",
                      intake=WebhookIntake(settings, database, lambda batch, at: None, lambda user: "x"),
                      kie_callbacks=KieCallbackIntake(settings, database, lambda: None))
    capture = _Records()
    root = logging.getLogger()
    level = root.level
    root.addHandler(capture)
    root.setLevel(logging.INFO)
    await ingress.on_start()
    try:
        yield port, capture
    finally:
        await ingress.on_stop()
        root.removeHandler(capture)
        root.setLevel(level)


@pytest.mark.parametrize("variant", list(MALFORMED))
async def test_each_malformed_request_alone_leaves_at_most_one_warning_and_no_error_or_traceback(
        in_process: tuple[int, _Records], variant: str) -> None:
    port, capture = in_process
    data, then, close = MALFORMED[variant]
    answer = await raw_exchange(port, data, then=then, close=close)
    assert answer == b"" or answer.split(b"\r\n", 1)[0].startswith((b"HTTP/1.1 400", b"HTTP/1.1 413",
                                                                      b"HTTP/1.0 400")), answer[:300]
    # the server side may still be draining the body when the answer is in: wait until it let go
    await eventually(_idle(port), 15, "the server done with the connection")
    shown = [r for r in capture.records if r.levelno >= logging.WARNING]
    assert [(r.name, r.getMessage()) for r in shown if r.exc_info or r.levelno >= logging.ERROR] == []
    assert len(shown) <= 1, [(r.name, r.getMessage()) for r in shown]


def _idle(port: int) -> Callable[[], Awaitable[bool]]:
    """A probe: a fresh request is answered, so the server's loop is past the previous one's handling."""
    async def probe() -> bool:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as session, \
                session.get(f"http://127.0.0.1:{port}/health") as response:
            return response.status == 200
    return probe


# --- the fuzz: generated bodies, headers and update shapes against the one process ----------------

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=30),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=20,
)
weird_ints = st.one_of(st.integers(-(2**70), 2**70), st.sampled_from([0, -1, 2**31, 2**63 - 1, 2**63, -(2**63)]))
update_ids = st.one_of(st.integers(1, 10**6), st.integers(1, 10**6), weird_ints).filter(
    lambda n: not CHECK_IDS <= n < CHECK_IDS + 10_000)
chat_ids = st.one_of(weird_ints, st.text(max_size=5), st.none(), json_values).filter(
    lambda c: not (isinstance(c, int) and CHECK_CHATS <= c < CHECK_CHATS + 10_000))
texts = st.one_of(st.text(max_size=40), st.sampled_from(["/start", "/help", "/start ref_1", "\ud800", "a\x00b",
                                                         "/admin", "/" + "x" * 300]),
                  st.integers(), st.none(), json_values)
users = st.one_of(st.fixed_dictionaries({"id": weird_ints, "is_bot": st.booleans() | json_values,
                                         "first_name": texts}, optional={"language_code": texts}),
                  json_values)
messages = st.fixed_dictionaries(
    {"message_id": weird_ints | json_values, "date": weird_ints | json_values,
     "chat": st.fixed_dictionaries({"id": chat_ids, "type": st.sampled_from(["private", "group", "x"]) | texts}) |
     json_values},
    optional={"text": texts, "from": users, "entities": st.lists(
        st.fixed_dictionaries({"type": st.sampled_from(["bot_command", "bold"]) | texts,
                               "offset": weird_ints, "length": weird_ints}) | json_values, max_size=3),
        "photo": json_values, "successful_payment": json_values, "reply_to_message": json_values})
callback_queries = st.fixed_dictionaries(
    {"id": texts, "from": users, "chat_instance": texts},
    optional={"data": texts | st.sampled_from(["menu:open", "menu:balance", "menu:help", "wiz:confirm:x"]),
              "message": messages | json_values})
update_shapes = st.one_of(
    st.builds(lambda u, m: {"update_id": u, "message": m}, update_ids, messages),
    st.builds(lambda u, m: {"update_id": u, "edited_message": m}, update_ids, messages),
    st.builds(lambda u, q: {"update_id": u, "callback_query": q}, update_ids, callback_queries),
    st.builds(lambda u, k, v: {"update_id": u, k: v}, update_ids, st.text(max_size=12), json_values),
    st.builds(lambda u, v: {"update_id": u, "pre_checkout_query": v}, update_ids, json_values),
    st.builds(lambda u, rest: {"update_id": u, **rest}, update_ids | json_values,
              st.dictionaries(st.text(max_size=8), json_values, max_size=3)),
)


def _encode(value: Any, how: str) -> bytes:
    if how == "ascii":
        return json.dumps(value, ensure_ascii=True).encode()
    return json.dumps(value, ensure_ascii=False).encode("utf-8", "surrogatepass")  # lone surrogates as raw bytes


bodies = st.one_of(
    st.binary(max_size=300),
    st.builds(_encode, json_values, st.sampled_from(["ascii", "raw"])),
    st.builds(_encode, update_shapes, st.sampled_from(["ascii", "raw", "ascii", "ascii"])),
    st.integers(0, 3000).map(lambda n: b"[" * n + b"]" * n),
    st.sampled_from([MAX_BODY + 1, MAX_BODY * 2]).map(lambda n: b"x" * n),
)
headers = st.fixed_dictionaries(
    {},
    optional={
        "Content-Type": st.sampled_from(["application/json", "text/plain", "application/x-www-form-urlencoded",
                                         "multipart/form-data; boundary=x", "application/json; charset=latin-1",
                                         "", "garbage/;;;"]),
        "Content-Encoding": st.sampled_from(["gzip", "deflate", "br", "identity", "x-unknown"]),
        "X-Webhook-Signature": st.text(st.characters(codec="ascii", exclude_categories=["Cc"]), max_size=20),
        "X-Webhook-Timestamp": st.sampled_from(["", "1", "99999999999999999999", "-1", "abc"]),
    },
)
secrets = st.sampled_from([SECRET, SECRET, SECRET, None, "", "wrong", SECRET + "x", SECRET[:-1]])
paths = st.sampled_from(["/webhook", "/webhook", "/webhook", kie_path(1),
                         kie_path(999999999999999999), f"/kie-callback/{KIE_SETTINGS.kie_callback_token(1)}/x",
                         "/kie-callback/wrong/1"])


# mostly updates with the right secret (they reach the inbox and the dispatcher), the rest anything
well_addressed = st.fixed_dictionaries({
    "path": st.just("/webhook"), "secret": st.just(SECRET), "update": update_shapes,
    "encoding": st.sampled_from(["ascii", "ascii", "raw"]),
    "headers": st.sampled_from([{}, {"Content-Type": "application/json"}, {"Content-Type": "text/plain"}])})
anything = st.fixed_dictionaries({"path": paths, "secret": secrets, "body": bodies, "headers": headers})
SERIAL = itertools.count(10**7)


def body_of(request: dict[str, Any]) -> bytes:
    """The body to send; an ordinary update_id is made unique, so that most well-addressed updates
    are new ones the dispatcher must handle (Hypothesis favours a few small ids; the odd ones stay)."""
    if "body" in request:
        return bytes(request["body"])
    update = dict(request["update"])
    if isinstance(update.get("update_id"), int) and 0 < update["update_id"] <= 10**6:
        update["update_id"] = next(SERIAL)
    return _encode(update, request["encoding"])


@settings(max_examples=300, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                                 HealthCheck.data_too_large, HealthCheck.filter_too_much])
@given(request=st.one_of(well_addressed, well_addressed, anything))
async def test_fuzzed_requests_get_only_200_400_401_or_413(world: World, request: dict[str, Any]) -> None:
    path, body, sent_headers = request["path"], body_of(request), request["headers"]
    status = await world.post(path, body, sent_headers, secret=request["secret"] if path == "/webhook" else None)
    assert status in ALLOWED, (status, path, body[:200], sent_headers)


async def test_after_the_fuzz_no_traceback_the_process_serves_the_inbox_drains_and_start_gets_its_menu(
        world: World) -> None:
    assert forbidden_in(world.proc.log_text().splitlines()) == []
    world.assert_alive()
    assert (await world.proc.health())["status"] in ("pass", "warn")
    await world.inbox_drained()
    conn = await asyncpg.connect(world.database_url)
    try:
        outcomes = dict(await conn.fetch("SELECT outcome, count(*) FROM inbox WHERE bot_id = $1 GROUP BY 1", BOT_ID))
    finally:
        await conn.close()
    print("inbox outcomes after the fuzz:", outcomes)
    assert sum(outcomes.values()) >= 100, f"the fuzz should have stored updates for the dispatcher: {outcomes}"
    await world.start_gets_its_menu()
    await world.inbox_drained()
    assert forbidden_in(world.proc.log_text().splitlines()) == []

