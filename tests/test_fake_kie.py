"""The KIE fake speaks KIE's wire format over real HTTP: these tests pin that down for the e2e suite."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import io
import json
import os
import re
import shutil
import signal
import struct
import sys
import time
import zlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import mutagen
import pytest
from aiohttp import web

from fakes.kie_api import CREATE_PATH, CREDIT_PATH, RECORD_PATH, UPLOAD_PATH, FakeKie

ROOT = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.timeout(30)

KEY = "test-kie-key"
IMAGE_MODEL = "z-image"
VIDEO_MODEL = "kling-2.6/text-to-video"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture
async def fake() -> AsyncIterator[FakeKie]:
    async with FakeKie(api_key=KEY, duration=0.1) as server:
        yield server


@pytest.fixture
async def client() -> AsyncIterator[aiohttp.ClientSession]:
    headers = {"Authorization": f"Bearer {KEY}", "User-Agent": "trt-tests/1.0"}
    async with aiohttp.ClientSession(headers=headers) as session:
        yield session


@dataclass
class Receiver:
    """A tiny callback endpoint standing in for the bot's webhook server."""

    url: str
    received: list[tuple[dict[str, str], bytes]] = field(default_factory=list)
    status: int = 200


@pytest.fixture
async def receiver(fake: FakeKie) -> AsyncIterator[Receiver]:
    box: list[Receiver] = []

    async def handle(request: web.Request) -> web.Response:
        box[0].received.append((dict(request.headers), await request.read()))
        fake.notify()
        return web.json_response({"ok": True}, status=box[0].status)

    app = web.Application()
    app.router.add_post("/kie/callback", handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    host, port = runner.addresses[0][:2]
    box.append(Receiver(url=f"http://{host}:{port}/kie/callback"))
    yield box[0]
    await runner.cleanup()


async def create(
    client: aiohttp.ClientSession,
    fake: FakeKie,
    model: str | None = IMAGE_MODEL,
    callback_url: str | None = None,
    task_input: dict[str, Any] | None = None,
) -> tuple[int, dict[str, Any]]:
    body: dict[str, Any] = {"input": {"prompt": "a red fox"} if task_input is None else task_input}
    if model is not None:
        body["model"] = model
    if callback_url is not None:
        body["callBackUrl"] = callback_url
    async with client.post(fake.base_url + CREATE_PATH, json=body) as response:
        return response.status, await response.json()


async def create_ok(client: aiohttp.ClientSession, fake: FakeKie, **kwargs: Any) -> str:
    status, body = await create(client, fake, **kwargs)
    assert (status, body["code"], body["msg"]) == (200, 200, "success"), body
    task_id = body["data"]["taskId"]
    assert isinstance(task_id, str)
    return task_id


async def record(client: aiohttp.ClientSession, fake: FakeKie, task_id: str) -> tuple[int, dict[str, Any]]:
    async with client.get(fake.base_url + RECORD_PATH, params={"taskId": task_id}) as response:
        return response.status, await response.json()


async def credits(client: aiohttp.ClientSession, fake: FakeKie) -> int:
    async with client.get(fake.base_url + CREDIT_PATH) as response:
        body = await response.json()
    assert body["code"] == 200
    assert isinstance(body["data"], int)
    return body["data"]


def expected_signature(task_id: str, timestamp: str, key: str) -> str:
    return base64.b64encode(hmac.new(key.encode(), f"{task_id}.{timestamp}".encode(), hashlib.sha256).digest()).decode()


async def test_task_runs_to_success_and_results_download(fake: FakeKie, client: aiohttp.ClientSession) -> None:
    task_id = await create_ok(client, fake, task_input={"prompt": "a red fox", "aspect_ratio": "1:1"})

    status, body = await record(client, fake, task_id)
    assert (status, body["code"]) == (200, 200)
    running = body["data"]
    assert running["taskId"] == task_id
    assert running["model"] == IMAGE_MODEL
    assert running["state"] in ("waiting", "queuing", "generating")
    assert not {"resultJson", "failCode", "completeTime"} & running.keys()
    assert isinstance(running["param"], str)
    assert json.loads(running["param"]) == {
        "model": IMAGE_MODEL,
        "input": {"prompt": "a red fox", "aspect_ratio": "1:1"},
    }

    task = await fake.wait_for_state(task_id, "success")
    assert task.states == ["waiting", "queuing", "generating", "success"]

    _, body = await record(client, fake, task_id)
    done = body["data"]
    assert done["state"] == "success"
    assert isinstance(done["resultJson"], str)
    assert done["completeTime"] >= done["createTime"]
    assert done["costTime"] == done["completeTime"] - done["createTime"]
    urls = json.loads(done["resultJson"])["resultUrls"]
    assert len(urls) == 1
    assert urls[0].startswith(fake.base_url + "/files/")
    async with client.get(urls[0]) as response:
        assert response.status == 200
        assert response.content_type == "image/png"
        assert (await response.read()).startswith(PNG_MAGIC)


async def test_video_model_result_is_mp4_and_task_ids_are_opaque(fake: FakeKie, client: aiohttp.ClientSession) -> None:
    first = await create_ok(client, fake, model=VIDEO_MODEL)
    second = await create_ok(client, fake, model=VIDEO_MODEL)
    shapes = {bool(re.fullmatch(r"task_[A-Za-z0-9-]+_\d+", t)) for t in (first, second)}
    assert shapes == {True, False}
    assert any(re.fullmatch(r"[0-9a-f]{32}", t) for t in (first, second))

    await fake.wait_for(lambda: all(fake.tasks[t].terminal for t in (first, second)), what="both tasks done")
    _, body = await record(client, fake, first)
    url = json.loads(body["data"]["resultJson"])["resultUrls"][0]
    async with client.get(url) as response:
        assert response.content_type == "video/mp4"
        assert (await response.read())[4:8] == b"ftyp"


def boxes(data: bytes, start: int = 0, end: int | None = None) -> dict[bytes, bytes]:
    """An MP4's boxes at one level: type -> payload (the first of each type)."""
    found: dict[bytes, bytes] = {}
    end = len(data) if end is None else end
    while start + 8 <= end:
        size, kind = int.from_bytes(data[start:start + 4], "big"), data[start + 4:start + 8]
        header = 8
        if size == 1:
            size, header = int.from_bytes(data[start + 8:start + 16], "big"), 16
        if size < header or start + size > end:
            break
        found.setdefault(kind, data[start + header:start + size])
        start += size
    return found


def movie(data: bytes) -> tuple[float, list[tuple[bytes, int, int]]]:
    """An MP4's length by its movie header, and each track's sample format and frame size."""
    top = boxes(data)
    moov = boxes(top[b"moov"])
    mvhd = moov[b"mvhd"]
    if mvhd[0] == 1:
        scale, length = struct.unpack(">IQ", mvhd[20:32])
    else:
        scale, length = struct.unpack(">II", mvhd[12:20])
    tracks = []
    start = 0
    body = top[b"moov"]
    while start + 8 <= len(body):  # every trak, not only the first
        size, kind = int.from_bytes(body[start:start + 4], "big"), body[start + 4:start + 8]
        if kind == b"trak":
            trak = boxes(body[start + 8:start + size])
            tkhd = trak[b"tkhd"]
            width, height = (v >> 16 for v in struct.unpack(">II", tkhd[-8:]))
            stsd = boxes(boxes(boxes(trak[b"mdia"])[b"minf"])[b"stbl"])[b"stsd"]
            tracks.append((stsd[12:16], width, height))
        start += size
    return length / scale, tracks


async def result_bytes(client: aiohttp.ClientSession, fake: FakeKie, task_id: str) -> tuple[str, bytes]:
    await fake.wait_for_state(task_id, "success")
    _, body = await record(client, fake, task_id)
    url = json.loads(body["data"]["resultJson"])["resultUrls"][0]
    async with client.get(url) as response:
        assert response.status == 200
        return response.content_type, await response.read()


async def test_a_video_result_is_a_real_h264_clip_of_a_few_seconds_in_the_frame_asked_for(
        fake: FakeKie, client: aiohttp.ClientSession, tmp_path: Path) -> None:
    wide = await create_ok(client, fake, model=VIDEO_MODEL, task_input={"prompt": "waves", "aspect_ratio": "16:9"})
    tall = await create_ok(client, fake, model=VIDEO_MODEL, task_input={"prompt": "waves", "aspect_ratio": "9:16"})
    for task_id, (want_w, want_h) in ((wide, (16, 9)), (tall, (9, 16))):
        content_type, data = await result_bytes(client, fake, task_id)
        assert content_type == "video/mp4" and data[4:8] == b"ftyp" and len(data) < 1024 * 1024
        seconds, tracks = movie(data)
        assert 2 <= seconds <= 10, f"a few seconds long: {seconds}"
        [(codec, width, height)] = [track for track in tracks if track[1]]
        assert codec == b"avc1", "H.264: every browser and Telegram plays it"
        assert width * want_h == height * want_w, f"{width}x{height} for {want_w}:{want_h}"
        ffprobe = shutil.which("ffprobe")
        if ffprobe:  # the decoder's own word, where the machine has one
            clip = tmp_path / f"{task_id}.mp4"
            clip.write_bytes(data)
            probe = await asyncio.create_subprocess_exec(
                ffprobe, "-v", "error", "-count_frames", "-select_streams", "v:0", "-show_entries",
                "stream=codec_name,nb_read_frames:format=duration", "-of", "json", str(clip),
                stdout=asyncio.subprocess.PIPE)
            out, _ = await asyncio.wait_for(probe.communicate(), 20)
            shown = json.loads(out)
            assert shown["streams"][0]["codec_name"] == "h264" and int(shown["streams"][0]["nb_read_frames"]) > 24
            assert float(shown["format"]["duration"]) > 0


async def test_a_picture_result_has_the_aspect_ratio_the_task_asked_for(
        fake: FakeKie, client: aiohttp.ClientSession) -> None:
    asked = {"16:9": (1280, 720), "9:16": (720, 1280), "1:1": (1280, 1280), "4:3": (1280, 960),
             "landscape_16_9": (1280, 720), "portrait_4_3": (960, 1280), "auto": (1280, 1280)}
    tasks = {shape: await create_ok(client, fake, task_input={
        "prompt": "a fox", ("image_size" if "_" in shape else "aspect_ratio"): shape}) for shape in asked}
    for shape, task_id in tasks.items():
        content_type, data = await result_bytes(client, fake, task_id)
        assert content_type == "image/png" and data.startswith(PNG_MAGIC)
        assert struct.unpack(">II", data[16:24]) == asked[shape], shape
        assert zlib.decompress(boxes_png_idat(data)), "a whole PNG"


def boxes_png_idat(data: bytes) -> bytes:
    """A PNG's image data (its IDAT chunks joined), every chunk's CRC checked on the way."""
    index, idat = 8, b""
    while index < len(data):
        length = int.from_bytes(data[index:index + 4], "big")
        tag, body = data[index + 4:index + 8], data[index + 8:index + 8 + length]
        assert zlib.crc32(tag + body) & 0xFFFFFFFF == int.from_bytes(data[index + 8 + length:index + 12 + length],
                                                                     "big")
        if tag == b"IDAT":
            idat += body
        index += 12 + length
    return idat


async def test_an_audio_result_is_a_real_mp3_that_plays_for_seconds(
        fake: FakeKie, client: aiohttp.ClientSession) -> None:
    task_id = await create_ok(client, fake, model="elevenlabs/text-to-speech-turbo-2-5", task_input={"text": "hi"})
    content_type, data = await result_bytes(client, fake, task_id)
    assert content_type == "audio/mpeg"
    parsed = mutagen.File(io.BytesIO(data))
    assert parsed is not None and type(parsed).__name__ == "MP3" and 1 <= parsed.info.length <= 10


async def test_fail_plan_reports_fail_code_and_refunds(fake: FakeKie, client: aiohttp.ClientSession) -> None:
    before = await credits(client, fake)
    fake.plan(IMAGE_MODEL, "fail", duration=0.05, fail_code="422", fail_msg="content rejected", count=1)
    failing = await create_ok(client, fake)
    succeeding = await create_ok(client, fake)  # the counted plan is used up

    await fake.wait_for_state(failing)
    status, body = await record(client, fake, failing)
    assert (status, body["code"]) == (200, 200)  # a failed task still has outer code 200
    data = body["data"]
    assert data["state"] == "fail"
    assert (data["failCode"], data["failMsg"]) == ("422", "content rejected")
    assert "resultJson" not in data

    assert (await fake.wait_for_state(succeeding)).state == "success"
    assert await credits(client, fake) == before - fake.default_price


async def test_counted_plans_run_before_the_standing_plan(fake: FakeKie, client: aiohttp.ClientSession) -> None:
    fake.plan("*", "fail", duration=0.05)
    fake.plan(IMAGE_MODEL, "success", duration=0.05, count=1)
    first = await create_ok(client, fake)
    second = await create_ok(client, fake)
    third = await create_ok(client, fake, model=VIDEO_MODEL)
    await fake.wait_for(lambda: all(fake.tasks[t].terminal for t in (first, second, third)), what="all done")
    assert [fake.tasks[t].state for t in (first, second, third)] == ["success", "fail", "fail"]


async def test_held_task_waits_for_finish(fake: FakeKie, client: aiohttp.ClientSession) -> None:
    fake.plan("*", hold=True, duration=0.05)
    task_id = await create_ok(client, fake)
    await fake.wait_for_state(task_id, "generating")
    fake.finish(task_id, "fail", fail_code="500", fail_msg="boom")
    _, body = await record(client, fake, task_id)
    assert (body["data"]["state"], body["data"]["failCode"], body["data"]["failMsg"]) == ("fail", "500", "boom")


async def test_signed_duplicated_callbacks(fake: FakeKie, client: aiohttp.ClientSession, receiver: Receiver) -> None:
    fake.hmac_key = "webhook-secret"
    fake.callback_duplicates = 1
    task_id = await create_ok(client, fake, callback_url=receiver.url)

    attempts = await fake.wait_for_callbacks(2, task_id)
    assert [a.status for a in attempts] == [200, 200]
    assert [a.copy for a in attempts] == [0, 1]
    assert len(receiver.received) == 2
    for headers, raw in receiver.received:
        body = json.loads(raw)
        assert body["code"] == 200
        data = body["data"]
        assert data["taskId"] == task_id
        assert data["state"] == "success"
        assert json.loads(data["resultJson"])["resultUrls"]
        assert data["failCode"] is None
        assert json.loads(data["param"])["callBackUrl"] == receiver.url
        assert data["consumeCredits"] == fake.default_price
        assert data["remainedCredits"] == fake.credits
        assert {"costTime", "createTime", "updateTime", "completeTime"} <= data.keys()
        timestamp = headers["X-Webhook-Timestamp"]
        assert abs(int(timestamp) - time.time()) < 60
        assert hmac.compare_digest(
            headers["X-Webhook-Signature"], expected_signature(data["taskId"], timestamp, "webhook-secret")
        )


async def test_fail_callback_and_receiver_errors(
    fake: FakeKie, client: aiohttp.ClientSession, receiver: Receiver
) -> None:
    receiver.status = 500
    fake.plan("*", "fail", duration=0.05, fail_code="501", fail_msg="generation failed")
    task_id = await create_ok(client, fake, callback_url=receiver.url)

    (attempt,) = await fake.wait_for_callbacks(1, task_id)
    assert attempt.status == 500  # the fake records what the receiver answered
    assert "X-Webhook-Signature" not in attempt.headers
    body = json.loads(receiver.received[0][1])
    assert body["code"] == 501
    assert body["msg"] == "generation failed"
    assert body["data"]["state"] == "fail"
    assert body["data"]["resultJson"] is None
    assert body["data"]["consumeCredits"] == 0


async def test_callbacks_can_be_suppressed(fake: FakeKie, client: aiohttp.ClientSession, receiver: Receiver) -> None:
    fake.callbacks = False
    silent = await create_ok(client, fake, callback_url=receiver.url)
    await fake.wait_for_state(silent)
    fake.callbacks = True
    loud = await create_ok(client, fake, callback_url=receiver.url)
    await fake.wait_for_callbacks(1, loud)
    assert fake.callbacks_for(silent) == []
    assert [json.loads(raw)["data"]["taskId"] for _, raw in receiver.received] == [loud]


async def test_bad_or_missing_key_is_401(fake: FakeKie) -> None:
    async with aiohttp.ClientSession() as anonymous:
        for headers in ({"Authorization": "Bearer wrong"}, {}, {"Authorization": "Basic " + KEY}):
            async with anonymous.post(
                fake.base_url + CREATE_PATH, json={"model": IMAGE_MODEL, "input": {}}, headers=headers
            ) as response:
                body = await response.json()
            assert (response.status, body["code"], body["data"]) == (401, 401, None)
        async with anonymous.get(fake.base_url + CREDIT_PATH, headers={"Authorization": "Bearer nope"}) as response:
            assert (response.status, (await response.json())["code"]) == (401, 401)
    assert fake.tasks == {}


async def test_any_key_accepted_when_none_configured(client: aiohttp.ClientSession) -> None:
    async with FakeKie() as open_fake:
        assert await credits(client, open_fake) == open_fake.credits


async def test_validation_errors_are_422(fake: FakeKie, client: aiohttp.ClientSession) -> None:
    for kwargs in ({"model": "no-such/model"}, {"model": None}):
        status, body = await create(client, fake, **kwargs)
        assert (status, body["code"]) == (422, 422), body
        assert body["msg"]
    async with client.post(fake.base_url + CREATE_PATH, json={"model": IMAGE_MODEL}) as response:
        assert (response.status, (await response.json())["code"]) == (422, 422)
    assert fake.tasks == {}

    fake.mirror_http_status = False  # KIE's other style: HTTP 200, the error only in the body
    fake.msg_field = "message"
    status, body = await create(client, fake, model="no-such/model")
    assert (status, body["code"]) == (200, 422)
    assert "message" in body


async def test_unknown_task_is_404(fake: FakeKie, client: aiohttp.ClientSession) -> None:
    status, body = await record(client, fake, "0123456789abcdef0123456789abcdef")
    assert (status, body["code"], body["data"]) == (404, 404, None)


async def test_injected_429_then_normal(fake: FakeKie, client: aiohttp.ClientSession) -> None:
    fake.inject("createTask", code=429)
    status, body = await create(client, fake)
    assert (status, body["code"]) == (429, 429)
    assert body["data"] is None
    assert fake.tasks == {}

    fake.inject("createTask", code=455, http_status=200, msg="maintenance")
    status, body = await create(client, fake)
    assert (status, body["code"], body["msg"]) == (200, 455, "maintenance")

    await create_ok(client, fake)
    assert [call.status for call in fake.calls("createTask")] == [429, 200, 200]


async def test_injected_headers_ride_on_faulted_answers(fake: FakeKie, client: aiohttp.ClientSession) -> None:
    fake.inject("createTask", code=429, headers={"Retry-After": "2"})
    fake.inject("createTask", body="<html><title>Just a moment</title></html>", http_status=429,
                headers={"Retry-After": "3"})
    async with client.post(fake.base_url + CREATE_PATH, json={"model": IMAGE_MODEL, "input": {}}) as response:
        assert (response.status, response.headers["Retry-After"], (await response.json())["code"]) == (429, "2", 429)
    async with client.post(fake.base_url + CREATE_PATH, json={"model": IMAGE_MODEL, "input": {}}) as response:
        assert (response.status, response.headers["Retry-After"], response.content_type) == (429, "3", "text/html")
    assert fake.tasks == {}


async def test_injected_delay_then_normal_answer(fake: FakeKie, client: aiohttp.ClientSession) -> None:
    fake.inject(CREDIT_PATH, delay=0.1)
    started = time.monotonic()
    assert await credits(client, fake) == fake.credits
    assert time.monotonic() - started >= 0.09


async def test_injected_hang_times_the_client_out(fake: FakeKie, client: aiohttp.ClientSession) -> None:
    fake.inject("recordInfo", hang=True)
    with pytest.raises(TimeoutError):
        async with client.get(
            fake.base_url + RECORD_PATH, params={"taskId": "x"}, timeout=aiohttp.ClientTimeout(total=0.2)
        ) as response:
            await response.read()
    assert fake.calls(RECORD_PATH)[0].status is None
    status, body = await record(client, fake, "x")  # only the next call was faulted
    assert (status, body["code"]) == (404, 404)


async def test_drop_after_create_keeps_the_task(fake: FakeKie, client: aiohttp.ClientSession) -> None:
    fake.inject("createTask", drop_after_create=True)
    with pytest.raises(aiohttp.ClientConnectionError):
        await create(client, fake)
    assert len(fake.tasks) == 1  # created and billed, though the client never saw the taskId
    (task,) = fake.tasks.values()
    assert fake.calls(CREATE_PATH)[0].status is None
    assert (await fake.wait_for_state(task.task_id)).state == "success"


async def test_file_upload_round_trip(fake: FakeKie, client: aiohttp.ClientSession) -> None:
    payload = b"\xff\xd8\xff\xe0" + os.urandom(2048)
    form = aiohttp.FormData()
    form.add_field("file", payload, filename="photo.jpg", content_type="image/jpeg")
    form.add_field("uploadPath", "trt/inputs")
    form.add_field("fileName", "user-42.jpg")
    async with client.post(fake.base_url + UPLOAD_PATH, data=form) as response:
        body = await response.json()
    assert (response.status, body["success"], body["code"]) == (200, True, 200)
    data = body["data"]
    assert data["fileName"] == "user-42.jpg"
    assert data["fileSize"] == len(payload)
    async with client.get(data["fileUrl"]) as response:
        assert response.status == 200
        assert response.content_type == "image/jpeg"
        assert await response.read() == payload
    assert data["downloadUrl"] == data["fileUrl"]
    call = fake.calls(UPLOAD_PATH)[0]
    assert call.form is not None
    assert call.form["uploadPath"] == "trt/inputs"

    async with aiohttp.ClientSession() as anonymous, anonymous.post(fake.base_url + UPLOAD_PATH, data=b"x") as denied:
        assert (denied.status, (await denied.json())["success"]) == (401, False)


async def test_credits_decrease_by_model_price(client: aiohttp.ClientSession) -> None:
    async with FakeKie(api_key=KEY, duration=0.05, credits=20, prices={VIDEO_MODEL: 15}) as fake:
        assert await credits(client, fake) == 20
        await create_ok(client, fake)  # default price 10
        assert await credits(client, fake) == 10
        status, body = await create(client, fake, model=VIDEO_MODEL)  # 15 > 10 left
        assert (status, body["code"]) == (402, 402)
        await create_ok(client, fake)
        assert await credits(client, fake) == 0


async def test_calls_are_recorded_without_the_key(fake: FakeKie, client: aiohttp.ClientSession) -> None:
    task_id = await create_ok(client, fake, callback_url="http://127.0.0.1:9/cb")
    await record(client, fake, task_id)
    create_call, record_call = fake.calls()
    assert (create_call.method, create_call.path) == ("POST", CREATE_PATH)
    assert create_call.json["callBackUrl"] == "http://127.0.0.1:9/cb"
    assert create_call.headers["Authorization"] == "<redacted>"
    assert create_call.headers["User-Agent"] == "trt-tests/1.0"
    assert KEY not in repr(fake.calls())
    assert record_call.query == {"taskId": task_id}
    assert fake.calls("recordInfo") == [record_call]


async def test_wait_for_timeout_explains_state(fake: FakeKie, client: aiohttp.ClientSession) -> None:
    fake.plan("*", hold=True, duration=0.0)
    task_id = await create_ok(client, fake)
    with pytest.raises(TimeoutError, match=rf"never reached.*{task_id}=(waiting|queuing|generating)"):
        await fake.wait_for(lambda: fake.tasks[task_id].terminal, timeout=0.1, what="never reached")


async def test_cli_serves_until_sigterm() -> None:
    env = {**os.environ, "KIE_API_KEY": "", "PYTHONPATH": str(ROOT)}
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "fakes.kie_api",
        "--port",
        "0",
        "--duration",
        "0.05",
        cwd=ROOT,
        env=env,
        stdout=asyncio.subprocess.PIPE,
    )
    try:
        assert process.stdout is not None
        line = await asyncio.wait_for(process.stdout.readline(), 15)
        base_url = json.loads(line)["base_url"]
        async with (
            aiohttp.ClientSession(headers={"Authorization": "Bearer anything"}) as session,
            session.get(base_url + CREDIT_PATH) as response,
        ):
            assert (await response.json())["code"] == 200
        process.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(process.wait(), 15) == 0
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
