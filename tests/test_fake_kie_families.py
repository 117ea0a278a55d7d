"""The fake KIE speaks each dedicated family's wire format over real HTTP (DEDICATED.md §1.2, §1.3 and
the family sections): create, the family's own status words, result files of the right type, the
callbacks (Suno's three stages in snake_case), the documented odd shapes, and the failure codes.
The adapters' and the end-to-end tests stand on these."""

from __future__ import annotations

import base64
import hashlib
import hmac
import io
import json
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import mutagen
import pytest
from aiohttp import web

from fakes.kie.families import CREDITS_REFUNDED, FamilyTask
from fakes.kie_api import RECORD_PATH, FakeKie
from kie.client import KieClient
from kie.errors import KieError
from kie.families import ENDPOINTS
from kie.models import TaskState

pytestmark = pytest.mark.timeout(30)

KEY = "test-kie-key"
HMAC_KEY = "webhook-hmac-key"
PNG = b"\x89PNG\r\n\x1a\n"
JPEG = b"\xff\xd8\xff"
VEO, VEO_RECORD = "/api/v1/veo/generate", "/api/v1/veo/record-info"
SUNO, SUNO_RECORD = "/api/v1/generate", "/api/v1/generate/record-info"
LYRICS, LYRICS_RECORD = "/api/v1/lyrics", "/api/v1/lyrics/record-info"
RUNWAY, RUNWAY_RECORD = "/api/v1/runway/generate", "/api/v1/runway/record-detail"
ALEPH, ALEPH_RECORD = "/api/v1/aleph/generate", "/api/v1/aleph/record-info"
GPT4O, GPT4O_RECORD = "/api/v1/gpt4o-image/generate", "/api/v1/gpt4o-image/record-info"
FLUX, FLUX_RECORD = "/api/v1/flux/kontext/generate", "/api/v1/flux/kontext/record-info"
HD = "/api/v1/veo/get-1080p-video"
SONG = {"prompt": "a song about foxes", "customMode": False, "instrumental": False, "model": "V5"}


@dataclass
class Receiver:
    """The bot's callback route, as a tiny server: every body and its headers, in arrival order."""

    url: str
    received: list[tuple[dict[str, str], dict[str, Any]]] = field(default_factory=list)

    def bodies(self) -> list[dict[str, Any]]:
        return [body for _, body in self.received]


@pytest.fixture
async def fake() -> AsyncIterator[FakeKie]:
    async with FakeKie(api_key=KEY, duration=0.2, hmac_key=HMAC_KEY, hd_seconds=3600) as server:
        yield server


@pytest.fixture
async def client() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {KEY}"}) as session:
        yield session


@pytest.fixture
async def receiver(fake: FakeKie) -> AsyncIterator[Receiver]:
    box: list[Receiver] = []

    async def handle(request: web.Request) -> web.Response:
        box[0].received.append((dict(request.headers), json.loads(await request.read())))
        fake.notify()
        return web.json_response({"ok": True})

    app = web.Application()
    app.router.add_post("/kie-callback/token/1", handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    host, port = runner.addresses[0][:2]
    box.append(Receiver(url=f"http://{host}:{port}/kie-callback/token/1"))
    yield box[0]
    await runner.cleanup()


async def post(client: aiohttp.ClientSession, fake: FakeKie, path: str, body: Any) -> dict[str, Any]:
    async with client.post(fake.base_url + path, json=body) as response:
        answer: dict[str, Any] = await response.json()
        return answer


async def get(client: aiohttp.ClientSession, fake: FakeKie, path: str, **params: str) -> dict[str, Any]:
    async with client.get(fake.base_url + path, params=params) as response:
        answer: dict[str, Any] = await response.json()
        return answer


async def create(client: aiohttp.ClientSession, fake: FakeKie, path: str, body: dict[str, Any]) -> str:
    answer = await post(client, fake, path, body)
    assert (answer["code"], answer["msg"]) == (200, "success"), answer
    task_id = answer["data"]["taskId"]
    assert isinstance(task_id, str) and task_id in fake.tasks
    return task_id


async def record(client: aiohttp.ClientSession, fake: FakeKie, path: str, task_id: str) -> dict[str, Any]:
    answer = await get(client, fake, path, taskId=task_id)
    assert answer["code"] == 200, answer
    data: dict[str, Any] = answer["data"]
    return data


async def finished(client: aiohttp.ClientSession, fake: FakeKie, path: str, task_id: str) -> dict[str, Any]:
    await fake.wait_for_state(task_id)
    return await record(client, fake, path, task_id)


async def download(client: aiohttp.ClientSession, url: str) -> tuple[str, bytes]:
    async with client.get(url) as response:
        assert response.status == 200, url
        return response.content_type, await response.read()


def family_task(fake: FakeKie, task_id: str) -> FamilyTask:
    task = fake.tasks[task_id]
    assert isinstance(task, FamilyTask)
    return task


def signature_ok(headers: dict[str, str], task_id: str) -> bool:
    digest = hmac.new(HMAC_KEY.encode(), f"{task_id}.{headers['X-Webhook-Timestamp']}".encode(), hashlib.sha256)
    return hmac.compare_digest(headers["X-Webhook-Signature"], base64.b64encode(digest.digest()).decode())


async def callbacks(fake: FakeKie, receiver: Receiver, count: int) -> list[dict[str, Any]]:
    """The bodies received once ``count`` in all have arrived (the fake notifies on each)."""
    await fake.wait_for(lambda: len(receiver.received) >= count and len(fake.callback_attempts) >= count, 5,
                        f"{count} callbacks received")
    return receiver.bodies()


# ---------------------------------------------------------------------- every family, create to files

@dataclass(frozen=True)
class Case:
    create: str
    body: dict[str, Any]
    status: str
    running: Callable[[dict[str, Any]], Any]  # the record's status while running
    done: Callable[[dict[str, Any]], Any]  # ... once done
    urls: Callable[[dict[str, Any]], list[str]]  # the result files a finished record names
    types: tuple[str, ...]  # their content types
    words: list[str]  # the family's status words the task went through
    param: str | None = "paramJson"  # where the record carries the request (its callBackUrl)
    calls: int = 1  # callbacks a successful task sends


CASES = {
    "veo": Case(VEO, {"prompt": "a fox", "aspectRatio": "9:16", "enableTranslation": True}, VEO_RECORD,
                lambda r: r["successFlag"], lambda r: r["successFlag"], lambda r: r["response"]["resultUrls"],
                ("video/mp4",), ["0", "1"]),
    "suno": Case(SUNO, SONG, SUNO_RECORD, lambda r: r["status"], lambda r: r["status"],
                 lambda r: [u for s in r["response"]["sunoData"] for u in (s["audioUrl"], s["imageUrl"])],
                 ("audio/mpeg", "image/jpeg", "audio/mpeg", "image/jpeg"),
                 ["PENDING", "TEXT_SUCCESS", "FIRST_SUCCESS", "SUCCESS"], "param", calls=3),
    "suno-lyrics": Case(LYRICS, {"prompt": "foxes at night"}, LYRICS_RECORD, lambda r: r["status"],
                        lambda r: r["status"], lambda r: [], (), ["PENDING", "SUCCESS"], "param"),
    "runway": Case(RUNWAY, {"prompt": "a fox", "duration": 5, "quality": "720p", "aspectRatio": "16:9"},
                   RUNWAY_RECORD, lambda r: r["state"], lambda r: r["state"],
                   lambda r: [r["videoInfo"]["videoUrl"], r["videoInfo"]["imageUrl"]], ("video/mp4", "image/png"),
                   ["wait", "queueing", "generating", "success"], None),
    "aleph": Case(ALEPH, {"prompt": "make it snow", "videoUrl": "https://example.com/in.mp4"}, ALEPH_RECORD,
                  lambda r: (r["successFlag"], r["errorCode"]), lambda r: (r["successFlag"], r["errorCode"]),
                  lambda r: [r["response"]["resultVideoUrl"], r["response"]["resultImageUrl"]],
                  ("video/mp4", "image/png"), ["0", "1"]),
    "gpt4o": Case(GPT4O, {"prompt": "a fox", "size": "3:2", "nVariants": 2}, GPT4O_RECORD,
                  lambda r: (r["status"], r["successFlag"]), lambda r: (r["status"], r["successFlag"]),
                  lambda r: r["response"]["resultUrls"], ("image/png", "image/png"), ["GENERATING", "SUCCESS"]),
    "flux-kontext": Case(FLUX, {"prompt": "a fox", "aspectRatio": "16:9", "model": "flux-kontext-max"}, FLUX_RECORD,
                         lambda r: r["successFlag"], lambda r: r["successFlag"],
                         lambda r: [r["response"]["resultImageUrl"], r["response"]["originImageUrl"]],
                         ("image/png", "image/png"), ["0", "1"]),
}
RUNNING = {"veo": 0, "suno": "PENDING", "suno-lyrics": "PENDING", "runway": "wait", "aleph": (0, None),
           "gpt4o": ("GENERATING", 0), "flux-kontext": 0}
DONE = {"veo": 1, "suno": "SUCCESS", "suno-lyrics": "SUCCESS", "runway": "success", "aleph": (1, 0),
        "gpt4o": ("SUCCESS", 1), "flux-kontext": 1}


@pytest.mark.parametrize("family", list(CASES))
async def test_each_family_runs_from_its_running_word_to_its_success_word_and_its_files_download(
    family: str, fake: FakeKie, client: aiohttp.ClientSession, receiver: Receiver
) -> None:
    case = CASES[family]
    task_id = await create(client, fake, case.create, {**case.body, "callBackUrl": receiver.url})

    running = await record(client, fake, case.status, task_id)
    assert running["taskId"] == task_id and case.running(running) == RUNNING[family]
    if case.param is not None:  # the record names the callback URL: a task known only by its callback is adopted
        assert isinstance(running[case.param], str) and json.loads(running[case.param])["callBackUrl"] == receiver.url

    done = await finished(client, fake, case.status, task_id)
    assert case.done(done) == DONE[family]
    assert family_task(fake, task_id).raws == case.words
    urls = case.urls(done)
    assert len(urls) == len(case.types) and len(set(urls)) == len(urls)
    for url, expected in zip(urls, case.types, strict=True):
        content_type, data = await download(client, url)
        assert content_type == expected
        magic = {"image/png": PNG, "image/jpeg": JPEG, "audio/mpeg": b"ID3"}.get(expected)
        assert data.startswith(magic) if magic else data[4:8] == b"ftyp"
    bodies = await callbacks(fake, receiver, case.calls)
    assert all(signature_ok(headers, task_id) for headers, _ in receiver.received)
    assert bodies[-1]["code"] == 200


async def test_a_family_task_is_not_the_jobs_apis_nor_another_familys(
    fake: FakeKie, client: aiohttp.ClientSession
) -> None:
    task_id = await create(client, fake, VEO, {"prompt": "a fox"})
    assert (await get(client, fake, RECORD_PATH, taskId=task_id))["code"] == 404
    assert (await get(client, fake, FLUX_RECORD, taskId=task_id))["code"] == 404
    async with aiohttp.ClientSession() as anonymous, anonymous.post(fake.base_url + VEO, json={"prompt": "x"}) as r:
        assert r.status == 401


@pytest.mark.parametrize(("path", "body", "code"), [
    (VEO, {"aspectRatio": "16:9"}, 422),
    (VEO, {"prompt": "a fox", "model": "veo2"}, 422),
    (VEO, {"prompt": "a fox", "duration": 5}, 422),
    (SUNO, {"prompt": "x", "customMode": False, "instrumental": False}, 422),
    (SUNO, {"customMode": True, "instrumental": True, "model": "V5", "style": "jazz"}, 422),
    (LYRICS, {}, 422),
    (RUNWAY, {"prompt": "a fox", "duration": 10, "quality": "1080p", "aspectRatio": "16:9"}, 422),
    (RUNWAY, {"prompt": "a fox", "duration": 5, "quality": "720p"}, 422),
    (ALEPH, {"prompt": "snow"}, 422),
    (GPT4O, {"prompt": "a fox", "size": "16:9"}, 422),
    (GPT4O, {"size": "1:1"}, 422),
    (FLUX, {"prompt": "a fox", "safetyTolerance": 7}, 500),
    (FLUX, {"prompt": "a fox", "inputImage": "https://example.com/a.png", "safetyTolerance": 3}, 500),
])
async def test_a_create_body_against_the_familys_documented_rules_is_refused(
    path: str, body: dict[str, Any], code: int, fake: FakeKie, client: aiohttp.ClientSession
) -> None:
    assert (await post(client, fake, path, body))["code"] == code
    assert not fake.tasks


# ---------------------------------------------------------------------- Veo

async def test_veo_result_urls_come_as_a_json_string_every_other_task(
    fake: FakeKie, client: aiohttp.ClientSession, receiver: Receiver
) -> None:
    first = await create(client, fake, VEO, {"prompt": "one", "callBackUrl": receiver.url})
    second = await create(client, fake, VEO, {"prompt": "two", "callBackUrl": receiver.url})
    as_list = (await finished(client, fake, VEO_RECORD, first))["response"]["resultUrls"]
    as_string = (await finished(client, fake, VEO_RECORD, second))["response"]["resultUrls"]
    assert isinstance(as_list, list) and isinstance(as_string, str) and isinstance(json.loads(as_string), list)
    await callbacks(fake, receiver, 2)
    shapes = {body["data"]["taskId"]: body["data"]["info"]["resultUrls"] for body in receiver.bodies()}
    assert isinstance(shapes[first], list) and json.loads(shapes[second]) == json.loads(as_string)

    fake.plan("veo", odd_shapes=False)  # a test that needs one shape asks for it
    third = await create(client, fake, VEO, {"prompt": "three"})
    assert isinstance((await finished(client, fake, VEO_RECORD, third))["response"]["resultUrls"], list)


async def test_a_veo_extend_names_the_whole_video_and_acts_only_on_a_finished_veo_task(
    fake: FakeKie, client: aiohttp.ClientSession
) -> None:
    fake.plan("veo", odd_shapes=False)
    original = await create(client, fake, VEO, {"prompt": "a fox", "model": "veo3"})
    early = await post(client, fake, "/api/v1/veo/extend", {"taskId": original, "prompt": "more"})
    assert (early["code"], early["msg"]) == (422, "record status is not success")
    segment = (await finished(client, fake, VEO_RECORD, original))["response"]["resultUrls"]

    extended = await create(client, fake, "/api/v1/veo/extend", {"taskId": original, "prompt": "more", "model": "fast"})
    assert fake.tasks[extended].model == "veo/extend/fast"
    response = (await finished(client, fake, VEO_RECORD, extended))["response"]
    whole = response["fullResultUrls"]
    assert len(whole) == 1 and whole[0] not in segment + response["resultUrls"], "one stitched file, not the parts"
    assert (await post(client, fake, "/api/v1/veo/extend", {"taskId": "veo_task_none", "prompt": "x"}))["code"] == 422


async def test_veo_1080p_is_processing_until_its_time_then_answers_a_playable_url(
    fake: FakeKie, client: aiohttp.ClientSession
) -> None:
    assert (await get(client, fake, HD, taskId="veo_task_unknown"))["code"] == 422
    fake.plan("veo", hold=True, count=1)
    original = await create(client, fake, VEO, {"prompt": "a fox"})
    assert (await get(client, fake, HD, taskId=original, index="0"))["msg"] == "record status is not success"
    fake.finish(original)

    processing = await get(client, fake, HD, taskId=original, index="0")
    assert processing["code"] == 400 and "1080P is processing" in processing["msg"] and not processing["data"]
    fake.hd_seconds = 0.0  # the original succeeded long enough ago
    ready = await get(client, fake, HD, taskId=original, index="0")
    assert ready["code"] == 200 and ready == await get(client, fake, HD, taskId=original)
    content_type, data = await download(client, ready["data"]["resultUrl"])
    assert content_type == "video/mp4" and data[4:8] == b"ftyp"

    fake.plan("veo", "fail", count=1)
    failed = await create(client, fake, VEO, {"prompt": "a fox"})
    await fake.wait_for_state(failed)
    assert (await get(client, fake, HD, taskId=failed))["code"] == 422


async def test_veo_4k_answers_at_once_then_reports_media_ids_and_calls_back_in_both_documented_shapes(
    fake: FakeKie, client: aiohttp.ClientSession, receiver: Receiver
) -> None:
    original = await create(client, fake, VEO, {"prompt": "a fox"})
    await fake.wait_for_state(original, "success")
    made = []
    for _ in range(2):
        answer = await post(client, fake, "/api/v1/veo/get-4k-video",
                            {"taskId": original, "index": 0, "callBackUrl": receiver.url})
        assert answer["code"] == 200 and answer["data"]["resultUrls"] is None and answer["data"]["taskId"] != original
        made.append(answer["data"]["taskId"])
    for task_id in made:
        data = await finished(client, fake, VEO_RECORD, task_id)
        assert data["successFlag"] == 1 and "fallbackFlag" not in data and data["response"]["mediaIds"]
    await callbacks(fake, receiver, 2)
    by_task = {body["data"].get("taskId") or body["data"].get("task_id"): body["data"] for body in receiver.bodies()}
    # the family's second and third tasks: the OpenAPI schema's snake shape, then the callbacks page's
    assert by_task[made[0]]["result_urls"] and by_task[made[1]]["info"]["resultUrls"]


async def test_a_veo_failure_carries_its_code_in_the_record_and_a_bare_callback_and_is_not_billed(
    fake: FakeKie, client: aiohttp.ClientSession, receiver: Receiver
) -> None:
    before = fake.credits
    policy = "Your prompt was flagged by Website as violating content policies."
    fake.plan("veo", "fail", fail_code="400", fail_msg=policy, count=1)
    fake.plan("veo", "fail", fail_code="501", fail_msg="Generation failed", count=1)
    flagged = await create(client, fake, VEO, {"prompt": "a fox", "callBackUrl": receiver.url})
    broken = await create(client, fake, VEO, {"prompt": "a fox"})
    data = await finished(client, fake, VEO_RECORD, flagged)
    assert (data["successFlag"], data["errorCode"], data["errorMessage"], data["response"]) == (2, 400, policy, None)
    assert (await finished(client, fake, VEO_RECORD, broken))["successFlag"] == 3
    [body] = await callbacks(fake, receiver, 1)
    assert body == {"code": 400, "msg": policy, "data": {"taskId": flagged, "fallbackFlag": False}}
    assert fake.credits == before


# ---------------------------------------------------------------------- Suno

async def test_a_suno_task_calls_back_text_then_first_then_complete_in_snake_case_with_two_songs(
    fake: FakeKie, client: aiohttp.ClientSession, receiver: Receiver
) -> None:
    task_id = await create(client, fake, SUNO, {**SONG, "callBackUrl": receiver.url})
    text, first, complete = await callbacks(fake, receiver, 3)
    assert [b["data"]["callbackType"] for b in (text, first, complete)] == ["text", "first", "complete"]
    assert {b["data"]["task_id"] for b in (text, first, complete)} == {task_id}
    assert text["data"]["data"] == [] and first["data"]["data"][0]["audio_url"]
    assert first["data"]["data"][1]["audio_url"] == ""  # the second song is not ready at "first"

    songs = complete["data"]["data"]
    assert len(songs) == 2
    for song in songs:
        assert {"id", "audio_url", "stream_audio_url", "image_url", "title", "duration", "tags", "prompt",
                "model_name"} <= song.keys()
        assert "audioUrl" not in song and "foxes" in song["prompt"] and song["tags"]
    sounds = [await download(client, song["audio_url"]) for song in songs]
    covers = [await download(client, song["image_url"]) for song in songs]
    assert [kind for kind, _ in sounds] == ["audio/mpeg"] * 2 and sounds[0][1] != sounds[1][1]
    assert [kind for kind, _ in covers] == ["image/jpeg"] * 2 and covers[0][1] != covers[1][1]
    for (_, sound), song in zip(sounds, songs, strict=True):
        length = mutagen.File(io.BytesIO(sound)).info.length
        assert 4 < length < 8 and abs(length - song["duration"]) < 0.5
    assert len({song["id"] for song in songs}) == 2

    data = await record(client, fake, SUNO_RECORD, task_id)
    camel = data["response"]["sunoData"]
    assert data["status"] == "SUCCESS" and data["operationType"] == "generate"
    assert [(s["id"], s["audioUrl"], s["imageUrl"]) for s in camel] == [
        (s["id"], s["audio_url"], s["image_url"]) for s in songs]
    assert "audio_url" not in camel[0]


async def test_a_suno_extend_and_an_upload_cover_act_on_songs_the_fake_made(
    fake: FakeKie, client: aiohttp.ClientSession
) -> None:
    original = await create(client, fake, SUNO, SONG)
    song = (await finished(client, fake, SUNO_RECORD, original))["response"]["sunoData"][1]
    extend = {"audioId": song["id"], "defaultParamFlag": True, "model": "V5", "style": "jazz", "title": "More",
              "continueAt": 3, "prompt": "[Verse] again"}
    assert (await post(client, fake, "/api/v1/generate/extend", {**extend, "audioId": "nobody"}))["code"] == 422
    extended = await create(client, fake, "/api/v1/generate/extend", extend)
    data = await finished(client, fake, SUNO_RECORD, extended)
    assert (data["parentMusicId"], data["operationType"], len(data["response"]["sunoData"])) == (
        song["id"], "extend", 2)

    cover = await create(client, fake, "/api/v1/generate/upload-cover",
                         {**SONG, "uploadUrl": song["audioUrl"], "model": "V4_5"})
    covered = (await finished(client, fake, SUNO_RECORD, cover))["response"]["sunoData"]
    assert all(s["sourceAudioUrl"] for s in covered) and fake.tasks[cover].model == "suno/upload-cover/V4_5"


async def test_a_suno_failure_calls_back_an_error_stage_with_531_credits_refunded(
    fake: FakeKie, client: aiohttp.ClientSession, receiver: Receiver
) -> None:
    before = fake.credits
    fake.plan("suno", "fail", fail_code="531", fail_msg=CREDITS_REFUNDED, stages=("text",))
    task_id = await create(client, fake, SUNO, {**SONG, "callBackUrl": receiver.url})
    text, error = await callbacks(fake, receiver, 2)
    assert text["data"]["callbackType"] == "text"
    assert error == {"code": 531, "msg": CREDITS_REFUNDED,
                     "data": {"callbackType": "error", "task_id": task_id, "data": None}}
    data = await record(client, fake, SUNO_RECORD, task_id)
    assert (data["status"], data["errorCode"], data["response"]["sunoData"]) == ("GENERATE_AUDIO_FAILED", 531, [])
    assert family_task(fake, task_id).raws == ["PENDING", "TEXT_SUCCESS", "GENERATE_AUDIO_FAILED"]
    assert fake.credits == before

    fake.plan("suno", "fail", fail_code="400", fail_msg="Song lyrics contain copyrighted material.", count=1)
    flagged = await create(client, fake, SUNO, SONG)
    assert (await finished(client, fake, SUNO_RECORD, flagged))["status"] == "SENSITIVE_WORD_ERROR"


async def test_suno_stages_may_come_out_of_order_and_twice_when_the_plan_says(
    fake: FakeKie, client: aiohttp.ClientSession, receiver: Receiver
) -> None:
    fake.plan("suno/generate/V5", stage_order=("complete", "first", "text"), duplicates=1)
    task_id = await create(client, fake, SUNO, {**SONG, "callBackUrl": receiver.url})
    bodies = await callbacks(fake, receiver, 6)
    assert [b["data"]["callbackType"] for b in bodies] == ["complete", "complete", "first", "first", "text", "text"]
    assert [a.copy for a in fake.callbacks_for(task_id)] == [0, 1] * 3


async def test_a_held_suno_task_waits_at_its_first_song_and_a_callback_exception_still_has_its_songs(
    fake: FakeKie, client: aiohttp.ClientSession, receiver: Receiver
) -> None:
    fake.plan("suno", hold=True, count=1)
    held = await create(client, fake, SUNO, {**SONG, "callBackUrl": receiver.url})
    await fake.wait_for(lambda: family_task(fake, held).raws[-1] == "FIRST_SUCCESS", 5, "the first song")
    data = await record(client, fake, SUNO_RECORD, held)
    assert data["status"] == "FIRST_SUCCESS" and data["response"]["sunoData"][0]["audioUrl"]
    fake.finish(held)
    assert (await record(client, fake, SUNO_RECORD, held))["status"] == "SUCCESS"

    fake.plan("suno", raw_state="CALLBACK_EXCEPTION", stages=(), count=1)
    lost = await create(client, fake, SUNO, {**SONG, "callBackUrl": receiver.url})
    data = await finished(client, fake, SUNO_RECORD, lost)
    assert data["status"] == "CALLBACK_EXCEPTION" and all(s["audioUrl"] for s in data["response"]["sunoData"])
    assert fake.callbacks_for(lost) == []


async def test_lyrics_answer_two_variants_in_the_record_and_the_callback(
    fake: FakeKie, client: aiohttp.ClientSession, receiver: Receiver
) -> None:
    task_id = await create(client, fake, LYRICS, {"prompt": "foxes at night", "callBackUrl": receiver.url})
    variants = (await finished(client, fake, LYRICS_RECORD, task_id))["response"]["data"]
    assert len(variants) == 2 and all(v["text"] and v["title"] and v["status"] == "complete" for v in variants)
    [body] = await callbacks(fake, receiver, 1)
    assert body["data"]["callbackType"] == "complete" and body["data"]["task_id"] == task_id
    assert [v["text"] for v in body["data"]["data"]] == [v["text"] for v in variants]


# ---------------------------------------------------------------------- Runway, Aleph

async def test_runway_calls_back_in_snake_case_extends_and_fails_with_its_400(
    fake: FakeKie, client: aiohttp.ClientSession, receiver: Receiver
) -> None:
    body = {"prompt": "a fox", "duration": 5, "quality": "720p", "aspectRatio": "16:9", "callBackUrl": receiver.url}
    original = await create(client, fake, RUNWAY, body)
    video = (await finished(client, fake, RUNWAY_RECORD, original))["videoInfo"]
    [callback] = await callbacks(fake, receiver, 1)
    assert callback["data"] == {"task_id": original, "video_id": video["videoId"], "video_url": video["videoUrl"],
                                "image_url": video["imageUrl"]}
    extended = await create(client, fake, "/api/v1/runway/extend",
                            {"taskId": original, "prompt": "more", "quality": "720p"})
    assert (await finished(client, fake, RUNWAY_RECORD, extended))["parentTaskId"] == original

    fake.plan("runway", "fail", fail_code="400", fail_msg="Inappropriate content detected")
    failed = await create(client, fake, RUNWAY, body)
    data = await finished(client, fake, RUNWAY_RECORD, failed)
    assert (data["state"], data["failCode"], data["failMsg"], data["videoInfo"]) == (
        "fail", 400, "Inappropriate content detected", None)


async def test_aleph_reports_zero_both_running_and_failed_and_puts_the_task_id_on_top_of_its_callback(
    fake: FakeKie, client: aiohttp.ClientSession, receiver: Receiver
) -> None:
    body = {"prompt": "make it snow", "videoUrl": "https://example.com/in.mp4", "callBackUrl": receiver.url}
    fake.plan("aleph", "fail", fail_code="400", fail_msg="Your prompt was caught by our AI moderator", count=1)
    failed = await create(client, fake, ALEPH, body)
    data = await finished(client, fake, ALEPH_RECORD, failed)
    assert (data["successFlag"], data["errorCode"], data["errorMessage"]) == (
        0, 400, "Your prompt was caught by our AI moderator")
    [error] = await callbacks(fake, receiver, 1)
    assert error == {"code": 400, "msg": "Your prompt was caught by our AI moderator", "data": None, "taskId": failed}

    made = await create(client, fake, ALEPH, body)  # the family's second task: the schema's shape
    await callbacks(fake, receiver, 2)
    assert receiver.bodies()[1]["data"]["task_id"] == made and "taskId" not in receiver.bodies()[1]


# ---------------------------------------------------------------------- 4o Image, Flux Kontext

async def test_4o_answers_result_urls_in_either_spelling_a_string_flag_and_a_download_url(
    fake: FakeKie, client: aiohttp.ClientSession, receiver: Receiver
) -> None:
    first = await create(client, fake, GPT4O, {"prompt": "a fox", "size": "1:1", "callBackUrl": receiver.url})
    second = await create(client, fake, GPT4O, {"filesUrl": ["https://example.com/a.png"], "size": "2:3"})
    camel = await finished(client, fake, GPT4O_RECORD, first)
    snake = await finished(client, fake, GPT4O_RECORD, second)
    assert (camel["successFlag"], len(camel["response"]["resultUrls"]), camel["progress"]) == (1, 1, "1.00")
    assert snake["successFlag"] == "1" and "resultUrls" not in snake["response"]
    [body] = await callbacks(fake, receiver, 1)
    assert body["data"] == {"taskId": first, "info": {"result_urls": camel["response"]["resultUrls"]}}

    url = snake["response"]["result_urls"][0]
    signed = await post(client, fake, "/api/v1/gpt4o-image/download-url", {"taskId": second, "url": url})
    assert signed["code"] == 200 and signed["data"] != url
    assert await download(client, signed["data"]) == await download(client, url)
    assert (await post(client, fake, "/api/v1/gpt4o-image/download-url", {"taskId": first, "url": url}))["code"] == 422

    fake.plan("gpt4o", "fail", fail_code="400", fail_msg="Your content was flagged by OpenAI", count=1)
    fake.plan("gpt4o", "fail", fail_code="500", raw_state="CREATE_TASK_FAILED", count=1)
    flagged = await create(client, fake, GPT4O, {"prompt": "a fox", "size": "1:1"})
    refused = await create(client, fake, GPT4O, {"prompt": "a fox", "size": "1:1"})
    data = await finished(client, fake, GPT4O_RECORD, flagged)
    assert (data["status"], data["successFlag"], data["errorCode"]) == ("GENERATE_FAILED", 2, 400)
    assert (await finished(client, fake, GPT4O_RECORD, refused))["status"] == "CREATE_TASK_FAILED"


async def test_flux_kontext_calls_back_both_images_and_fails_with_empty_ones(
    fake: FakeKie, client: aiohttp.ClientSession, receiver: Receiver
) -> None:
    made = await create(client, fake, FLUX, {"prompt": "a fox", "callBackUrl": receiver.url})
    assert fake.tasks[made].model == "flux-kontext/generate/flux-kontext-pro"
    response = (await finished(client, fake, FLUX_RECORD, made))["response"]
    [body] = await callbacks(fake, receiver, 1)
    assert body["data"]["info"] == response and body["msg"] == "BFL image generated successfully."

    fake.plan("flux-kontext", "fail", fail_code="400", fail_msg="flagged")
    failed = await create(client, fake, FLUX, {"prompt": "a fox", "callBackUrl": receiver.url})
    data = await finished(client, fake, FLUX_RECORD, failed)
    assert (data["successFlag"], data["errorCode"], data["response"]) == (2, 400, None)
    bodies = await callbacks(fake, receiver, 2)
    assert bodies[1]["data"]["info"] == {"originImageUrl": "", "resultImageUrl": ""} and bodies[1]["code"] == 400


# ---------------------------------------------------------------------- the jobs API's faults apply here too

async def test_a_lost_create_answer_still_makes_the_task_and_faults_hit_the_family_paths(
    fake: FakeKie, client: aiohttp.ClientSession
) -> None:
    fake.inject(SUNO, drop_after_create=True)
    with pytest.raises(aiohttp.ClientError):
        await post(client, fake, SUNO, SONG)
    [task] = fake.tasks_of("suno")
    fake.inject(SUNO_RECORD, code=429, count=1)
    assert (await get(client, fake, SUNO_RECORD, taskId=task.task_id))["code"] == 429
    assert (await finished(client, fake, SUNO_RECORD, task.task_id))["status"] == "SUCCESS"


async def test_a_familys_own_duration_keeps_its_tasks_running_while_others_finish(
    client: aiohttp.ClientSession,
) -> None:
    async with FakeKie(api_key=KEY, duration=0.1, durations={"suno": 3600}) as slow_suno:
        song = await create(client, slow_suno, SUNO, SONG)
        picture = await create(client, slow_suno, GPT4O, {"prompt": "a fox", "size": "1:1"})
        await slow_suno.wait_for_state(picture, "success")
        assert family_task(slow_suno, song).raws == ["PENDING"]  # its "text" stage is half an hour away


# ---------------------------------------------------------------------- the bot's adapters read it

ADAPTED = [
    ("veo/generate/veo3_fast", {"prompt": "a fox", "aspectRatio": "9:16"}, 1),
    ("suno/generate/V5", {"prompt": "a song about foxes", "customMode": False, "instrumental": False}, 2),
    ("suno-lyrics/generate", {"prompt": "foxes at night"}, 0),
    ("runway/generate", {"prompt": "a fox", "duration": 5, "quality": "720p", "aspectRatio": "16:9"}, 1),
    ("aleph/generate", {"prompt": "snow", "videoUrl": "https://example.com/in.mp4"}, 1),
    ("gpt4o/generate", {"prompt": "a fox", "size": "1:1", "nVariants": 2}, 2),
    ("flux-kontext/generate/flux-kontext-pro", {"prompt": "a fox"}, 1),
]


@pytest.mark.parametrize(("model", "task_input", "files"), ADAPTED)
async def test_the_bots_adapter_reads_the_fakes_records_and_callbacks_of_its_family(
    model: str, task_input: dict[str, Any], files: int, fake: FakeKie, receiver: Receiver
) -> None:
    family = model.split("/", 1)[0]
    endpoint = ENDPOINTS[family]
    host = fake.base_url.split("//", 1)[1]
    async with KieClient(KEY, fake.base_url, fake.base_url, download_trusted_hosts=[host]) as kie:
        for odd in (False, True):  # both documented shapes
            fake.plan(family, odd_shapes=odd, count=1)
            created = await kie.create_task(model, task_input, receiver.url, endpoint=family)
            await fake.wait_for_state(created.task_id)
            done = await kie.record(created)
            assert (done.state, len(done.files())) == (TaskState.SUCCESS, files)
            assert done.callback_url == (None if family == "runway" else receiver.url)
            if family == "suno-lyrics":
                assert isinstance(done.result_object, list) and len(done.result_object) == 2
            if family == "suno":
                assert all(item.ref and item.title and item.cover_url and item.duration for item in done.files())
            attempts = await fake.wait_for_callbacks(3 if family == "suno" else 1, created.task_id)
            states = [endpoint.callback(attempt.body).record.state for attempt in attempts]
            assert states[-1] is TaskState.SUCCESS and all(s is TaskState.GENERATING for s in states[:-1])
            assert {endpoint.callback_task_id(attempt.body) for attempt in attempts} == {created.task_id}

        fake.plan(family, "fail", fail_code="400", fail_msg="flagged", count=1)
        failed = await kie.create_task(model, task_input, receiver.url, endpoint=family)
        await fake.wait_for_state(failed.task_id)
        record = await kie.record(failed)
        [attempt] = await fake.wait_for_callbacks(1, failed.task_id)
        assert (record.state, record.fail_code) == (TaskState.FAIL, "400")
        assert endpoint.callback(attempt.body).record.state is TaskState.FAIL


async def test_the_veo_adapters_1080p_task_is_refused_while_processing_then_succeeds(fake: FakeKie) -> None:
    async with KieClient(KEY, fake.base_url, fake.base_url) as kie:
        original = await kie.create_task("veo/generate/veo3_fast", {"prompt": "a fox"}, endpoint="veo")
        await fake.wait_for_state(original.task_id, "success")
        hd = await kie.create_task("veo/1080p", {"taskId": original.task_id, "index": 0}, endpoint="veo")
        assert hd.task_id not in fake.tasks  # a local task: nothing was created at KIE
        with pytest.raises(KieError):
            await kie.record(hd)
        fake.hd_seconds = 0.0
        done = await kie.record(hd)
        assert done.state is TaskState.SUCCESS and done.result_urls[0].endswith("_1080p_0.mp4")
