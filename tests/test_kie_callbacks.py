"""KIE callbacks: real ones from the fake KIE checked and parsed, and every way a forged or odd one is refused."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import web

from fakes.kie_api import FakeKie
from kie import BadSignature, Callback, CallbackError, KieClient, MalformedCallback, TaskState, parse_callback
from kie.callbacks import sign

pytestmark = pytest.mark.timeout(30)

KEY = "kie-test-key-0123456789abcdef"
HMAC_KEY = "webhook-hmac-secret"
MODEL = "z-image"
NOW = 1_780_000_000


class Receiver:
    """The bot's callback route in miniature: parse_callback's verdict becomes the HTTP status."""

    def __init__(self, fake: FakeKie, hmac_key: str | None) -> None:
        self.fake = fake
        self.hmac_key = hmac_key
        self.parsed: list[Callback] = []
        self.refused: list[CallbackError] = []
        self.url = ""

    async def handle(self, request: web.Request) -> web.Response:
        try:
            self.parsed.append(parse_callback(await request.read(), request.headers, hmac_key=self.hmac_key))
            status = 200
        except CallbackError as exc:
            self.refused.append(exc)
            status = exc.status
        self.fake.notify()
        return web.json_response({"ok": status == 200}, status=status)


@pytest.fixture
async def fake() -> AsyncIterator[FakeKie]:
    async with FakeKie(api_key=KEY, duration=0.05, hmac_key=HMAC_KEY) as server:
        yield server


async def serve(receiver: Receiver) -> web.AppRunner:
    app = web.Application()
    app.router.add_post("/kie/callback/{job}", receiver.handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    host, port = runner.addresses[0][:2]
    receiver.url = f"http://{host}:{port}/kie/callback/j1"
    return runner


@pytest.mark.parametrize("outcome", ["success", "fail"])
async def test_the_fakes_signed_callbacks_are_accepted(fake: FakeKie, outcome: str) -> None:
    receiver = Receiver(fake, HMAC_KEY)
    runner = await serve(receiver)
    try:
        if outcome == "fail":
            fake.plan("*", "fail", duration=0.05, fail_code="501", fail_msg="generation failed")
        async with KieClient(KEY, fake.base_url, fake.base_url) as kie:
            task = await kie.create_task(MODEL, {"prompt": "a red fox"}, receiver.url)
        (attempt,) = await fake.wait_for_callbacks(1, task.task_id)
    finally:
        await runner.cleanup()
    assert attempt.status == 200 and receiver.refused == []
    (callback,) = receiver.parsed
    assert callback.signed and callback.task_id == task.task_id
    assert callback.record.model == MODEL and callback.record.param is not None
    assert callback.remained_credits == fake.credits
    if outcome == "success":
        assert (callback.code, callback.record.state) == (200, TaskState.SUCCESS)
        assert callback.record.result_urls and callback.record.result_urls[0].startswith(fake.base_url)
        assert callback.consume_credits == fake.default_price
    else:
        assert (callback.code, callback.record.state, callback.record.fail_code) == (501, TaskState.FAIL, "501")
        assert callback.message == "generation failed" and callback.consume_credits == 0


async def test_a_callback_signed_with_another_key_is_refused_401(fake: FakeKie) -> None:
    receiver = Receiver(fake, "not-the-key-kie-uses")
    runner = await serve(receiver)
    try:
        async with KieClient(KEY, fake.base_url, fake.base_url) as kie:
            task = await kie.create_task(MODEL, {"prompt": "x"}, receiver.url)
        (attempt,) = await fake.wait_for_callbacks(1, task.task_id)
    finally:
        await runner.cleanup()
    assert attempt.status == 401 and receiver.parsed == []
    assert isinstance(receiver.refused[0], BadSignature)


def body(task_key: str = "taskId", task_id: str = "task_z-image_1", **data: Any) -> dict[str, Any]:
    fields: dict[str, Any] = {
        task_key: task_id,
        "model": MODEL,
        "state": "success",
        "resultJson": json.dumps({"resultUrls": ["https://cdn.example/r.png"]}),
        "failCode": None,
        "failMsg": None,
        "param": json.dumps({"model": MODEL, "input": {"prompt": "x"}}),
        "costTime": 1200,
        "createTime": 1_700_000_000_000,
        "updateTime": 1_700_000_001_200,
        "completeTime": 1_700_000_001_200,
        "consumeCredits": 10,
        "remainedCredits": 90,
    }
    fields.update(data)
    return {"code": 200, "msg": "Playground task completed successfully.", "data": fields}


def signed(task_id: str, timestamp: int | str = NOW, key: str = HMAC_KEY) -> dict[str, str]:
    return {"X-Webhook-Timestamp": str(timestamp), "X-Webhook-Signature": sign(task_id, str(timestamp), key)}


@pytest.mark.parametrize("task_key", ["taskId", "task_id"])
def test_both_task_id_spellings_and_the_result_json_string(task_key: str) -> None:
    raw = json.dumps(body(task_key, "abc123")).encode()
    callback = parse_callback(raw, signed("abc123"), hmac_key=HMAC_KEY, now=NOW + 10)
    assert callback.signed and callback.task_id == "abc123"
    assert callback.record.result_urls == ["https://cdn.example/r.png"]
    assert callback.record.param == {"model": MODEL, "input": {"prompt": "x"}}
    assert (callback.record.cost_ms, callback.record.completed_ms) == (1200, 1_700_000_001_200)
    assert (callback.consume_credits, callback.remained_credits) == (10, 90)


def test_header_names_in_any_case() -> None:
    headers = {name.lower(): value for name, value in signed("t1").items()}
    assert parse_callback(body(task_id="t1"), headers, hmac_key=HMAC_KEY, now=NOW).signed


@pytest.mark.parametrize(
    ("headers", "now", "why"),
    [
        ({}, NOW, "unsigned"),
        ({"X-Webhook-Timestamp": str(NOW)}, NOW, "unsigned"),
        (signed("t1", key="another-key"), NOW, "does not match"),
        (signed("t2"), NOW, "does not match"),  # a signature of another task
        ({**signed("t1"), "X-Webhook-Timestamp": str(NOW + 1)}, NOW, "does not match"),
        (signed("t1"), NOW + 301, "stale"),
        (signed("t1"), NOW - 31, "future"),
        (signed("t1", "soon"), NOW, "not unix seconds"),
    ],
)
def test_bad_signatures_are_401(headers: dict[str, str], now: float, why: str) -> None:
    with pytest.raises(BadSignature, match=why) as caught:
        parse_callback(body(task_id="t1"), headers, hmac_key=HMAC_KEY, now=now)
    assert caught.value.status == 401
    assert HMAC_KEY not in str(caught.value)


def test_fresh_enough_and_millisecond_timestamps_pass() -> None:
    assert parse_callback(body(task_id="t1"), signed("t1"), hmac_key=HMAC_KEY, now=NOW + 299).signed
    assert parse_callback(body(task_id="t1"), signed("t1"), hmac_key=HMAC_KEY, now=NOW - 29).signed
    assert parse_callback(body(task_id="t1"), signed("t1", NOW * 1000), hmac_key=HMAC_KEY, now=NOW).signed


def test_without_a_key_nothing_is_checked() -> None:
    callback = parse_callback(json.dumps(body(task_id="t1")), {})
    assert not callback.signed and callback.task_id == "t1"


@pytest.mark.parametrize(
    "raw",
    [
        b"not json",
        b"\xff\xfe",
        b"[1, 2]",
        json.dumps({"code": 200, "msg": "ok"}).encode(),
        json.dumps({"code": 200, "data": "t1"}).encode(),
        json.dumps({"code": 200, "data": {"state": "success"}}).encode(),
        json.dumps({"code": 200, "data": {"taskId": "  "}}).encode(),
    ],
)
def test_malformed_bodies_are_400(raw: bytes) -> None:
    with pytest.raises(MalformedCallback) as caught:
        parse_callback(raw, {}, hmac_key=HMAC_KEY, now=NOW)
    assert caught.value.status == 400


def test_loose_shapes_are_tolerated() -> None:
    failed = body(task_id="t1", state=None, resultJson=None, failCode=422, failMsg="nsfw", consumeCredits="0")
    failed["code"], failed["message"] = 501, failed.pop("msg")
    callback = parse_callback(failed)
    assert (callback.code, callback.message) == (501, "Playground task completed successfully.")
    assert (callback.record.state, callback.record.fail_code, callback.consume_credits) == (TaskState.FAIL, "422", 0)

    as_object = body(task_id="t2", resultJson={"resultUrls": "https://cdn.example/one.mp4"}, costTime="1500.0")
    record = parse_callback(as_object).record
    assert (record.result_urls, record.cost_ms) == (["https://cdn.example/one.mp4"], 1500)

    odd = body(task_id="t3", state="Rendering", resultJson="{not json", param="[]")
    record = parse_callback(odd).record
    assert (record.state, record.raw_state, record.terminal) == (TaskState.UNKNOWN, "Rendering", False)
    assert (record.result_urls, record.param) == ([], None)


def test_a_real_clock_accepts_a_fresh_signature() -> None:
    stamp = int(time.time())
    assert parse_callback(body(task_id="t1"), signed("t1", stamp), hmac_key=HMAC_KEY).signed


# -- every family's callback reaches the door (DEDICATED.md §1.3: the id lives in three places) --


@pytest.mark.parametrize(
    ("body", "task_id"),
    [
        # Veo, Flux, 4o: data.taskId
        ({"code": 200, "msg": "Veo3.1 video generated successfully.",
          "data": {"taskId": "veo_task_abc", "info": {"resultUrls": "[\"https://x/v.mp4\"]"}}}, "veo_task_abc"),
        # Suno's stages: data.task_id, the songs under data.data
        ({"code": 200, "msg": "Text generation completed.",
          "data": {"callbackType": "text", "task_id": "2fac9f72", "data": []}}, "2fac9f72"),
        ({"code": 531, "msg": "Generation failed, credits refunded.",
          "data": {"callbackType": "error", "task_id": "2fac9f72", "data": None}}, "2fac9f72"),
        # Runway: snake_case
        ({"code": 200, "msg": "All generated successfully.",
          "data": {"task_id": "ee603959-debb", "video_id": "485d", "video_url": "https://x/v.mp4"}}, "ee603959-debb"),
        # Aleph's callbacks page: the id at the top level, data may be null
        ({"code": 400, "msg": "Your prompt was caught by our AI moderator", "data": None, "taskId": "ee60-aleph"},
         "ee60-aleph"),
        ({"code": 200, "msg": "success", "data": {"result_video_url": "https://x/a.mp4"}, "taskId": "ee60-aleph"},
         "ee60-aleph"),
    ],
)
def test_a_callback_of_any_family_is_read_for_its_task_id_and_signature(body: dict[str, Any], task_id: str) -> None:
    timestamp = str(NOW)
    headers = {"X-Webhook-Timestamp": timestamp, "X-Webhook-Signature": sign(task_id, timestamp, HMAC_KEY)}
    callback = parse_callback(json.dumps(body).encode(), headers, hmac_key=HMAC_KEY, now=NOW)
    assert callback.task_id == task_id and callback.signed
    # the signature covers the task id the body names: another id's signature is refused
    forged = {"X-Webhook-Timestamp": timestamp, "X-Webhook-Signature": sign("other", timestamp, HMAC_KEY)}
    with pytest.raises(BadSignature):
        parse_callback(json.dumps(body).encode(), forged, hmac_key=HMAC_KEY, now=NOW)
