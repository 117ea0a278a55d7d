"""The KIE client against the fake KIE over real HTTP on 127.0.0.1: results, errors, retries, limits, secrecy."""

from __future__ import annotations

import asyncio
import json
import logging
import math
import socket
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import pytest
from aiohttp import web

from fakes.kie_api import CREATE_PATH, CREDIT_PATH, RECORD_PATH, UPLOAD_PATH, FakeKie
from kie import (
    CREATE,
    BadResponse,
    Disabled,
    GenerationFailed,
    InvalidRequest,
    KieClient,
    KieError,
    Limiter,
    NotFound,
    OutOfCredits,
    Rate,
    RateLimited,
    Rejected,
    RetryPolicy,
    ServerError,
    SubKeyLimit,
    TaskCreated,
    TaskState,
    Timeout,
    TooLarge,
    Transport,
    Unauthorized,
)
from kie import envelope as kie_envelope
from kie.jobs import JobsEndpoint

pytestmark = pytest.mark.timeout(60)

KEY = "kie-test-key-0123456789abcdef"
MODEL = "z-image"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
FAST_RETRY = RetryPolicy(attempts=4, base=0.01, cap=0.05)
HTML_502 = "<html><head><title>502 Bad Gateway</title></head><body>cloudflare</body></html>"


@pytest.fixture
async def fake() -> AsyncIterator[FakeKie]:
    async with FakeKie(api_key=KEY, duration=0.1) as server:
        yield server


@pytest.fixture
async def kie(fake: FakeKie) -> AsyncIterator[KieClient]:
    async with KieClient(KEY, fake.base_url, fake.base_url, timeout=5, retry=FAST_RETRY,
                         download_trusted_hosts=[urlsplit(fake.base_url).netloc]) as client:
        yield client


# ---------------------------------------------------------------------- a task's life


async def test_create_then_record_to_success_and_download(fake: FakeKie, kie: KieClient) -> None:
    task = await kie.create_task(MODEL, {"prompt": "a red fox", "aspect_ratio": "1:1"}, "https://bot.example/kie/j1")
    assert task == TaskCreated(task.task_id, "jobs") and task.task_id in fake.tasks

    (call,) = fake.calls(CREATE_PATH)
    assert call.json == {"model": MODEL, "input": {"prompt": "a red fox", "aspect_ratio": "1:1"},
                         "callBackUrl": "https://bot.example/kie/j1"}
    assert call.headers["Authorization"] == "<redacted>"  # sent (the fake never keeps its value)
    assert call.headers["User-Agent"].startswith("TRT/") and "aiohttp/" in call.headers["User-Agent"]

    running = await kie.record(task)
    assert running.state in (TaskState.WAITING, TaskState.QUEUING, TaskState.GENERATING) and not running.terminal
    assert running.result_urls == [] and running.completed_ms is None and running.fail_code is None

    await fake.wait_for_state(task.task_id)
    done = await kie.record_info(task.task_id)
    assert done.succeeded and done.terminal and done.state is TaskState.SUCCESS
    assert (done.task_id, done.model, done.endpoint) == (task.task_id, MODEL, "jobs")
    assert done.param is not None and done.param["input"]["prompt"] == "a red fox"  # param: a JSON string, parsed
    assert done.created_ms is not None and done.completed_ms is not None and done.cost_ms is not None
    assert done.cost_ms == done.completed_ms - done.created_ms
    (url,) = done.result_urls
    assert (await kie.download(url, max_bytes=1_000_000, kind="photo")).startswith(PNG_MAGIC)
    (file_call,) = fake.calls("/files/results/" + url.rsplit("/", 1)[1])
    assert "Authorization" not in file_call.headers, "the key never goes to a result host"


async def test_create_then_record_to_fail(fake: FakeKie, kie: KieClient) -> None:
    fake.plan(MODEL, "fail", duration=0.05, fail_code="422", fail_msg="content rejected", count=1)
    task = await kie.create_task(MODEL, {"prompt": "something refused"})
    await fake.wait_for_state(task.task_id)
    record = await kie.record(task)
    assert record.failed and record.terminal and not record.succeeded
    assert (record.fail_code, record.fail_msg, record.result_urls) == ("422", "content rejected", [])


async def test_text_result_object(fake: FakeKie, kie: KieClient) -> None:
    fake.plan("*", duration=0.05, result_object={"text": "hello"}, count=1)
    task = await kie.create_task(MODEL, {"prompt": "say hello"})
    await fake.wait_for_state(task.task_id)
    record = await kie.record(task)
    assert record.succeeded and record.result_object == {"text": "hello"} and record.result_urls == []


async def test_credits(fake: FakeKie, kie: KieClient) -> None:
    before = await kie.credits()
    assert before == fake.credits
    await kie.create_task(MODEL, {"prompt": "x"})
    assert await kie.credits() == before - fake.default_price


# ---------------------------------------------------------------------- errors


@pytest.mark.parametrize("mirror", [True, False])
async def test_out_of_credits_is_permanent_and_not_retried(mirror: bool) -> None:
    async with FakeKie(api_key=KEY, credits=5, mirror_http_status=mirror) as fake, \
            KieClient(KEY, fake.base_url, fake.base_url, retry=FAST_RETRY) as kie:
        with pytest.raises(OutOfCredits) as caught:
            await kie.create_task(MODEL, {"prompt": "x"})
        assert (caught.value.code, caught.value.retryable, caught.value.ambiguous) == (402, False, False)
        assert len(fake.calls(CREATE_PATH)) == 1 and fake.tasks == {}


async def test_refusals_are_retried_and_the_task_created_once(fake: FakeKie, kie: KieClient) -> None:
    fake.inject("createTask", code=429)
    fake.inject("createTask", code=500)
    fake.inject("createTask", code=455, http_status=200, msg="maintenance")
    kie.retry = RetryPolicy(attempts=5, base=0.01, cap=0.05)
    task = await kie.create_task(MODEL, {"prompt": "x"})
    assert [call.status for call in fake.calls(CREATE_PATH)] == [429, 500, 200, 200]
    assert list(fake.tasks) == [task.task_id]


async def test_retries_are_bounded(fake: FakeKie, kie: KieClient) -> None:
    fake.inject("createTask", code=500, count=10)
    with pytest.raises(ServerError) as caught:
        await kie.create_task(MODEL, {"prompt": "x"})
    assert caught.value.retryable and not caught.value.ambiguous
    assert len(fake.calls(CREATE_PATH)) == FAST_RETRY.attempts and fake.tasks == {}


async def test_retry_after_is_honoured(fake: FakeKie, kie: KieClient) -> None:
    fake.inject("createTask", code=429, headers={"Retry-After": "0.4"})
    await kie.create_task(MODEL, {"prompt": "x"})
    first, second = fake.calls(CREATE_PATH)
    assert second.at - first.at >= 0.4 - 0.01  # a lower bound only: the client slept at least that long


async def test_a_hang_times_out_ambiguously_without_a_retry(fake: FakeKie, kie: KieClient) -> None:
    fake.inject("createTask", hang=True)
    with pytest.raises(Timeout) as caught:
        await kie.create_task(MODEL, {"prompt": "x"}, timeout=0.3)
    assert caught.value.ambiguous and "reconcile" in str(caught.value)
    assert len(fake.calls(CREATE_PATH)) == 1


async def test_a_dropped_connection_after_create_is_ambiguous(fake: FakeKie, kie: KieClient) -> None:
    fake.inject("createTask", drop_after_create=True)
    with pytest.raises(Transport) as caught:
        await kie.create_task(MODEL, {"prompt": "x"})
    assert caught.value.ambiguous
    assert len(fake.calls(CREATE_PATH)) == 1 and len(fake.tasks) == 1  # the task exists: the caller reconciles


async def test_an_error_naming_a_task_is_ambiguous(fake: FakeKie, kie: KieClient) -> None:
    body = json.dumps({"code": 500, "msg": "internal error", "data": {"taskId": "t-123"}})
    fake.inject("createTask", body=body, http_status=500, content_type="application/json")
    with pytest.raises(ServerError) as caught:
        await kie.create_task(MODEL, {"prompt": "x"})
    assert (caught.value.ambiguous, caught.value.task_id) == (True, "t-123")
    assert len(fake.calls(CREATE_PATH)) == 1


async def test_an_edge_page_is_ambiguous_for_create_and_retried_for_record(fake: FakeKie, kie: KieClient) -> None:
    fake.inject("createTask", body=HTML_502, http_status=502)
    with pytest.raises(ServerError) as caught:
        await kie.create_task(MODEL, {"prompt": "x"})
    assert caught.value.ambiguous and len(fake.calls(CREATE_PATH)) == 1

    fake.inject("createTask", body="<title>504 Gateway Time-out</title>", http_status=504)
    with pytest.raises(ServerError) as caught:
        await kie.create_task(MODEL, {"prompt": "x"})
    assert caught.value.ambiguous and len(fake.calls(CREATE_PATH)) == 2

    task = await kie.create_task(MODEL, {"prompt": "x"})
    fake.inject("recordInfo", body="<title>504 Gateway Time-out</title>", http_status=504)
    assert (await kie.record(task)).task_id == task.task_id
    assert [call.status for call in fake.calls(RECORD_PATH)] == [504, 200]


async def test_a_200_html_page(fake: FakeKie, kie: KieClient) -> None:
    page = "<!DOCTYPE html><html><head><title>Just a moment...</title></head><body>checking</body></html>"
    fake.inject("createTask", body=page, http_status=200)
    with pytest.raises(BadResponse) as caught:
        await kie.create_task(MODEL, {"prompt": "x"})
    assert caught.value.ambiguous and "Just a moment" in caught.value.message
    assert len(fake.calls(CREATE_PATH)) == 1

    task = await kie.create_task(MODEL, {"prompt": "x"})
    fake.inject("recordInfo", body=page, http_status=200)
    assert (await kie.record(task)).task_id == task.task_id  # a read is simply asked again
    assert len(fake.calls(RECORD_PATH)) == 2


@pytest.mark.parametrize("mirror", [True, False])
async def test_message_instead_of_msg(mirror: bool) -> None:
    async with FakeKie(api_key=KEY, msg_field="message", mirror_http_status=mirror) as fake, \
            KieClient(KEY, fake.base_url, fake.base_url, retry=FAST_RETRY) as kie:
        with pytest.raises(Rejected) as caught:
            await kie.create_task("no-such/model", {"prompt": "x"})
        assert caught.value.code == 422 and "not supported" in caught.value.message
        assert caught.value.http_status == (422 if mirror else 200)
        fake.inject("createTask", code=429, msg="slow down")
        assert (await kie.create_task(MODEL, {"prompt": "x"})).task_id in fake.tasks


@pytest.mark.parametrize("mirror", [True, False])
async def test_record_of_an_unknown_task_is_not_found(mirror: bool) -> None:
    async with FakeKie(api_key=KEY, mirror_http_status=mirror) as fake, \
            KieClient(KEY, fake.base_url, fake.base_url, retry=FAST_RETRY) as kie:
        with pytest.raises(NotFound) as caught:
            await kie.record_info("0123456789abcdef0123456789abcdef")
        assert not caught.value.retryable and len(fake.calls(RECORD_PATH)) == 1


async def test_documented_codes_map_to_errors(fake: FakeKie, kie: KieClient) -> None:
    expected: list[tuple[int, type[KieError], bool]] = [
        (401, Unauthorized, False), (404, NotFound, False), (422, Rejected, False), (433, SubKeyLimit, False),
        (501, GenerationFailed, False), (505, Disabled, False),
    ]
    for code, cls, retryable in expected:
        fake.inject("chat/credit", code=code, http_status=200)
        with pytest.raises(cls) as caught:
            await kie.credits()
        assert (caught.value.code, caught.value.retryable) == (code, retryable)
    assert len(fake.calls(CREDIT_PATH)) == len(expected), "no permanent code is retried"


async def test_a_wrong_key_is_unauthorized(fake: FakeKie) -> None:
    async with KieClient("another-key-42", fake.base_url, fake.base_url, retry=FAST_RETRY) as kie:
        with pytest.raises(Unauthorized):
            await kie.credits()
        with pytest.raises(Unauthorized):
            await kie.upload(b"x", "a.png", "image/png")


async def test_a_refused_connection_is_certainly_unsent() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    base = f"http://127.0.0.1:{port}"  # nothing listens there now
    async with KieClient(KEY, base, base, retry=FAST_RETRY) as kie:
        with pytest.raises(Transport) as caught:
            await kie.create_task(MODEL, {"prompt": "x"})
    assert caught.value.retryable and not caught.value.ambiguous


# ---------------------------------------------------------------------- checked before any call


@pytest.mark.parametrize(
    ("model", "task_input", "callback_url"),
    [
        ("", {"prompt": "x"}, None),
        ("z image", {"prompt": "x"}, None),
        (MODEL, ["prompt", "x"], None),
        (MODEL, {"prompt": ""}, None),
        (MODEL, {"prompt": "   "}, None),
        (MODEL, {"text": 5}, None),
        (MODEL, {"prompt": "x", "strength": math.nan}, None),
        (MODEL, {"prompt": "x", "tags": {"a", "b"}}, None),
        (MODEL, {"prompt": "x", 1: "one"}, None),
        (MODEL, {"prompt": "x\ud800"}, None),
        (MODEL, {"prompt": "x"}, "ftp://bot.example/cb"),
        (MODEL, {"prompt": "x"}, "/kie/callback"),
        (MODEL, {"prompt": "x"}, "https://"),
        (MODEL, {"prompt": "x"}, "https://bot.example:99999/cb"),
    ],
)
async def test_invalid_requests_are_refused_before_any_call(
    fake: FakeKie, kie: KieClient, model: str, task_input: Any, callback_url: str | None
) -> None:
    with pytest.raises(InvalidRequest):
        await kie.create_task(model, task_input, callback_url)
    assert fake.calls() == []


async def test_a_telegram_file_url_never_reaches_kie(fake: FakeKie, kie: KieClient) -> None:
    token = "123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw"
    url = f"https://api.telegram.org/file/bot{token}/photos/file_1.jpg"
    with pytest.raises(InvalidRequest) as caught:
        await kie.create_task("google/nano-banana-edit", {"prompt": "x", "image_urls": [url]})
    assert token not in str(caught.value) and "image_urls[0]" in str(caught.value)
    assert fake.calls() == []


async def test_invalid_task_ids_uploads_and_endpoints(fake: FakeKie, kie: KieClient) -> None:
    for task_id in ("", "a b", "x" * 300):
        with pytest.raises(InvalidRequest):
            await kie.record_info(task_id)
    with pytest.raises(InvalidRequest):
        await kie.record(TaskCreated("t1", "midjourney"))  # a family this client was not given (KIE no longer sells it)
    for args in ((b"", "a.png", "image/png"), (b"x", "", "image/png"), (b"x", "../a.png", "image/png"),
                 (b"x", "a.png", "png")):
        with pytest.raises(InvalidRequest):
            await kie.upload(*args)
    assert fake.calls() == []


async def test_another_endpoint_family_plugs_in(fake: FakeKie) -> None:
    class Alt(JobsEndpoint):
        @property
        def name(self) -> str:
            return "alt"

    async with KieClient(KEY, fake.base_url, fake.base_url, endpoints={"alt": Alt()}) as kie:
        task = await kie.create_task(MODEL, {"prompt": "x"}, endpoint="alt")
        assert task.endpoint == "alt"
        assert (await kie.record(task)).endpoint == "alt"
        with pytest.raises(InvalidRequest):
            await kie.create_task(MODEL, {"prompt": "x"})  # "jobs" was not given to this client


# ---------------------------------------------------------------------- files


async def test_upload_as_the_service_expects_and_download_back(fake: FakeKie, kie: KieClient) -> None:
    payload = b"\xff\xd8\xff\xe0" + bytes(range(256)) * 8
    upload = await kie.upload(payload, "user-42.jpg", "image/jpeg", upload_path="trt/inputs")
    (call,) = fake.calls(UPLOAD_PATH)
    assert call.form is not None
    assert (call.form["uploadPath"], call.form["fileName"]) == ("trt/inputs", "user-42.jpg")
    assert call.form["file"] == f"<{len(payload)} bytes user-42.jpg>"
    assert call.headers["Authorization"] == "<redacted>" and call.headers["User-Agent"].startswith("TRT/")
    assert (upload.file_name, upload.size, upload.mime) == ("user-42.jpg", len(payload), "image/jpeg")
    assert upload.download_url == upload.file_url
    assert timedelta(days=3) - timedelta(minutes=1) < upload.expires - datetime.now(UTC) <= timedelta(days=3)
    assert await kie.download(upload.file_url, max_bytes=len(payload), kind="photo") == payload


async def test_download_over_the_bound_stops(fake: FakeKie, kie: KieClient) -> None:
    url = fake.add_file("results/big.bin", b"\0" * 1_000_000)
    with pytest.raises(TooLarge) as caught:
        await kie.download(url, max_bytes=1000)
    assert not caught.value.retryable and len(fake.calls("results/big.bin")) == 1
    with pytest.raises(NotFound):
        await kie.download(fake.base_url + "/files/results/gone.png", max_bytes=1000)


async def test_download_of_an_endless_stream_stops_at_the_bound() -> None:
    """No Content-Length: the bound is counted while reading, and the connection is closed there."""
    ended = asyncio.Event()
    sent: list[int] = [0]

    async def endless(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse()
        response.enable_chunked_encoding()
        await response.prepare(request)
        try:
            while True:
                await response.write(b"\0" * 65536)
                sent[0] += 65536
        finally:
            ended.set()

    app = web.Application()
    app.router.add_get("/result.mp4", endless)
    runner = web.AppRunner(app, access_log=None, handler_cancellation=True)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    host, port = runner.addresses[0][:2]
    try:
        with pytest.raises(TooLarge):
            async with KieClient(KEY, download_trusted_hosts=[f"{host}:{port}"]) as kie:
                await kie.download(f"http://{host}:{port}/result.mp4", max_bytes=200_000)
        await asyncio.wait_for(ended.wait(), 10)  # the server saw the reader go away
    finally:
        await runner.cleanup()
    assert sent[0] < 64 * 1024 * 1024


# ---------------------------------------------------------------------- the limiter at the fake


async def test_a_burst_of_creates_keeps_within_the_limit_at_the_fake(fake: FakeKie) -> None:
    """40 create_task at once under a scaled limit (6 per 0.5 s, the same code as 18 per 10 s): every
    window of 0.5 s at the fake, by its recorded arrival times, holds at most 6 createTask calls."""
    count, per = 6, 0.5
    limiter = Limiter({CREATE: Rate(count, per, margin=0.1)})
    async with KieClient(KEY, fake.base_url, fake.base_url, limiter=limiter, timeout=30) as kie:
        created = await asyncio.gather(*(kie.create_task(MODEL, {"prompt": f"fox {i}"}) for i in range(40)))
    assert len({task.task_id for task in created}) == 40
    arrivals = sorted(call.at for call in fake.calls(CREATE_PATH))
    assert len(arrivals) == 40
    busiest = max(sum(1 for t in arrivals if start <= t < start + per) for start in arrivals)
    assert busiest <= count
    assert busiest == count, "the limiter lets full windows through, it does not just go slow"


async def test_a_queue_longer_than_the_deadline_fails_fast_and_sends_nothing(fake: FakeKie) -> None:
    limiter = Limiter({CREATE: Rate(2, 60.0)})
    async with KieClient(KEY, fake.base_url, fake.base_url, limiter=limiter, timeout=1) as kie:
        await kie.create_task(MODEL, {"prompt": "1"})
        await kie.create_task(MODEL, {"prompt": "2"})
        with pytest.raises(KieError) as caught:
            await kie.create_task(MODEL, {"prompt": "3"})
    assert caught.value.kind == "throttled" and not caught.value.ambiguous
    assert len(fake.calls(CREATE_PATH)) == 2


# ---------------------------------------------------------------------- the key stays secret


async def test_the_key_never_shows(fake: FakeKie, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    errors: list[KieError] = []
    async with KieClient(KEY, fake.base_url, fake.base_url, retry=FAST_RETRY) as kie:
        assert KEY not in repr(kie) and KEY not in str(kie)
        fake.inject("createTask", code=500, msg=f"upstream refused key {KEY}", count=FAST_RETRY.attempts)
        fake.inject("recordInfo", code=401, msg=f"Bearer {KEY} is not valid")
        fake.inject("createTask", hang=True)
        for call in (
            kie.create_task(MODEL, {"prompt": "x"}),
            kie.record_info("t1"),
            kie.create_task(MODEL, {"prompt": "x"}, timeout=0.2),
        ):
            with pytest.raises(KieError) as caught:
                await call
            errors.append(caught.value)
    assert [type(e) for e in errors] == [ServerError, Unauthorized, Timeout]
    for error in errors:
        assert KEY not in str(error) and KEY not in repr(error) and KEY not in repr(error.args)
    assert "***" in errors[0].message
    shown = " ".join(f"{r.getMessage()} {r.__dict__}" for r in caplog.records)
    assert "kie_retry" in shown and "kie_create_ambiguous" in shown
    assert KEY not in shown


# ---------------------------------------------------------------------- the envelope, unit by unit


@pytest.mark.parametrize(
    ("status", "body", "expected", "code"),
    [
        (502, HTML_502.encode(), ServerError, 502),
        (429, b"<html>rate limited</html>", RateLimited, 429),
        (503, b"", ServerError, 503),
        (200, b"<html><title>ok?</title></html>", BadResponse, None),
        (200, b"[1, 2]", BadResponse, None),
        (200, b'{"msg": "no code"}', BadResponse, None),
        (200, b'{"code": 402, "message": "Credits insufficient"}', OutOfCredits, 402),
        (200, b'{"code": "429", "msg": "slow"}', RateLimited, 429),
        (200, b'{"code": 433, "msg": "sub-key"}', SubKeyLimit, 433),
        (200, b'{"code": 455, "msg": "maintenance"}', None, 455),
        (500, b'{"code": 200, "msg": "success"}', ServerError, 500),
        (200, b'{"code": 418, "msg": "teapot"}', Rejected, 418),
        (200, b'{"code": 599, "msg": "odd"}', ServerError, 599),
        (200, b'{"code": 200, "success": false, "msg": "?"}', BadResponse, None),
    ],
)
def test_reading_answers(status: int, body: bytes, expected: type[KieError] | None, code: int | None) -> None:
    try:
        envelope = kie_envelope.read(status, body, "text/html", retry_after=2.0)
    except KieError as exc:
        assert expected is not None and type(exc) is expected
        assert exc.code == code and exc.http_status == status
        if isinstance(exc, RateLimited):
            assert exc.retry_after == 2.0
        return
    error = envelope.error()
    assert error is not None and error.code == code
    if expected is not None:
        assert type(error) is expected


def test_reading_successes() -> None:
    upload = kie_envelope.read(200, b'{"success": true, "msg": "ok", "data": {"fileUrl": "u"}}')
    assert upload.ok and upload.data == {"fileUrl": "u"} and upload.error() is None
    credit = kie_envelope.read(200, b'{"code": 200, "message": "success", "data": 12}')
    assert (credit.ok, credit.message, credit.data) == (True, "success", 12)
    assert kie_envelope.retry_after_seconds("3") == 3.0
    assert kie_envelope.retry_after_seconds("Wed, 21 Oct 2015 07:28:00 GMT") is None


# ---------------------------------------------------------------------- the intent before the wire


async def test_the_intent_runs_once_after_the_limiter_slot_and_before_the_request(fake: FakeKie) -> None:
    seen: list[int] = []

    async def intent() -> None:
        seen.append(len(fake.calls(CREATE_PATH)))

    fake.inject(CREATE_PATH, http_status=500, count=1)  # a certain refusal: retried, the intent not again
    async with KieClient(KEY, fake.base_url, fake.base_url, timeout=5, retry=FAST_RETRY) as kie:
        task = await kie.create_task(MODEL, {"prompt": "a fox"}, before_send=intent)
    assert task.task_id in fake.tasks
    assert seen == [0], "once, before anything reached KIE, and not again for the retry"


async def test_an_intent_that_fails_sends_nothing_and_a_throttled_call_runs_no_intent(fake: FakeKie) -> None:
    class Refused(Exception):
        pass

    async def refuse() -> None:
        raise Refused("the fence said no")

    async def must_not_run() -> None:
        raise AssertionError("an intent for a request that never left")

    limiter = Limiter({CREATE: Rate(1, 60.0)})
    async with KieClient(KEY, fake.base_url, fake.base_url, timeout=1, retry=FAST_RETRY, limiter=limiter) as kie:
        with pytest.raises(Refused):
            await kie.create_task(MODEL, {"prompt": "a fox"}, before_send=refuse)
        assert fake.calls(CREATE_PATH) == []
        with pytest.raises(KieError):  # the window's one slot is spent: no slot within the deadline
            await kie.create_task(MODEL, {"prompt": "a fox"}, before_send=must_not_run)
    assert fake.calls(CREATE_PATH) == []


async def test_a_reserved_slot_is_sent_with_at_once_and_only_a_retry_takes_another(fake: FakeKie) -> None:
    """A Confirm that committed createTask's intent holds a slot (sql/025): the request must not
    queue behind the limiter with its intent standing, nor take a second slot."""
    limiter = Limiter({CREATE: Rate(3, 60.0)})
    async with KieClient(KEY, fake.base_url, fake.base_url, timeout=5, retry=FAST_RETRY, limiter=limiter) as kie:
        slot = limiter.reserve(CREATE)
        task = await kie.create_task(MODEL, {"prompt": "a fox"}, slot=slot)
        assert task.task_id in fake.tasks and limiter.taken(CREATE) == 1, "sent with the reserved slot"
        fake.inject(CREATE_PATH, code=500, count=1)  # a certain refusal: the retry waits for its own slot
        again = await kie.create_task(MODEL, {"prompt": "a fox"}, slot=limiter.reserve(CREATE))
        assert again.task_id in fake.tasks and limiter.taken(CREATE) == 3
    assert len(fake.calls(CREATE_PATH)) == 3


async def test_a_reserved_slot_no_request_went_out_with_is_given_back(fake: FakeKie) -> None:
    limiter = Limiter({CREATE: Rate(1, 60.0)})
    async with KieClient(KEY, fake.base_url, fake.base_url, timeout=5, retry=FAST_RETRY, limiter=limiter) as kie:
        with pytest.raises(InvalidRequest):  # refused before anything was sent
            await kie.create_task(MODEL, {"prompt": "a fox"}, endpoint="no-such-family", slot=limiter.reserve(CREATE))
        assert limiter.taken(CREATE) == 0
        with pytest.raises(InvalidRequest):
            await kie.create_task(MODEL, {"prompt": float("nan")}, slot=limiter.reserve(CREATE))
        assert limiter.taken(CREATE) == 0 and fake.calls(CREATE_PATH) == []
