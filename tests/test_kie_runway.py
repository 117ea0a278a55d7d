"""Runway's and Runway Aleph's adapters: requests as KIE's spec asks, and KIE's documented answers
and callbacks (DEDICATED.md §5) read right, odd shapes included; then a real KieClient over HTTP."""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from typing import Any

import pytest

from kie import InvalidRequest, KieClient, RetryPolicy, TaskCreated, TaskState, parse_callback
from kie.callbacks import callback_task_id
from kie.errors import BadResponse
from kie.families import ENDPOINTS, family_of
from kie.runway import (
    ALEPH,
    ALEPH_GENERATE_PATH,
    ALEPH_RECORD_PATH,
    EXTEND_PATH,
    GENERATE_PATH,
    RECORD_PATH,
    RUNWAY,
)
from tests.kie_script import ScriptedKie

pytestmark = pytest.mark.timeout(60)

KEY = "kie-test-key-0123456789abcdef"
HOOK = "https://bot.example/kie-callback/tok/18"
FAST_RETRY = RetryPolicy(attempts=2, base=0.01, cap=0.02)
TASK = "ee603959-debb-48d1-98c4-a6d1c717eba6"

# record-detail's documented fields (§5.1)
RUNWAY_RECORD: dict[str, Any] = {
    "taskId": TASK, "parentTaskId": "",
    "generateParam": {"prompt": "a cat dancing", "imageUrl": "", "expandPrompt": True},
    "state": "success", "generateTime": "2025-07-01 10:00:00",
    "videoInfo": {"videoId": "485da89c-7fca-4340-8c04-101025b2ae71", "taskId": TASK,
                  "videoUrl": "https://file.example/runway/v.mp4", "imageUrl": "https://file.example/runway/c.png"},
    "failCode": None, "failMsg": "", "expireFlag": 0,
}
# Aleph's record-info (§5.2)
ALEPH_RECORD: dict[str, Any] = {
    "taskId": TASK, "paramJson": json.dumps({"prompt": "make it snow", "videoUrl": "https://in.example/v.mp4",
                                             "callBackUrl": HOOK}),
    "response": {"taskId": TASK, "resultVideoUrl": "https://file.example/aleph/v.mp4",
                 "resultImageUrl": "https://file.example/aleph/c.png"},
    "completeTime": 1751000000000, "createTime": 1750999900000, "successFlag": 1, "errorCode": 0,
    "errorMessage": "",
}


def runway_body(model: str, task_input: dict[str, Any], callback_url: str | None = HOOK) -> dict[str, Any]:
    request = RUNWAY.create_request(model, task_input, callback_url)
    assert request.method == "POST" and request.json is not None
    return dict(request.json)


# ---------------------------------------------------------------------- Runway requests


def test_runway_and_aleph_are_registered_and_own_their_catalog_ids() -> None:
    assert ENDPOINTS["runway"] is RUNWAY and ENDPOINTS["aleph"] is ALEPH
    assert family_of("runway/extend") == "runway" and family_of("aleph/generate") == "aleph"


def test_a_runway_video_from_text_sends_its_input_and_the_callback() -> None:
    request = RUNWAY.create_request("runway/generate", {"prompt": "a cat", "aspectRatio": "16:9", "duration": "10",
                                                        "_wizard": "ours"}, HOOK)
    assert (request.path, request.rate) == (GENERATE_PATH, "create")
    assert request.json == {"prompt": "a cat", "aspectRatio": "16:9", "duration": 10, "quality": "720p",
                            "waterMark": "", "callBackUrl": HOOK}


def test_a_runway_animation_of_a_picture_needs_no_aspect_ratio() -> None:
    sent = runway_body("runway/animate", {"prompt": "it moves", "imageUrl": "https://in.example/p.png",
                                          "duration": 5, "quality": "1080p"})
    assert sent == {"prompt": "it moves", "imageUrl": "https://in.example/p.png", "duration": 5,
                    "quality": "1080p", "waterMark": "", "callBackUrl": HOOK}


def test_no_watermark_is_asked_for_unless_the_input_names_one() -> None:
    named = runway_body("runway/generate", {"prompt": "x", "aspectRatio": "1:1", "waterMark": "TRT"})
    assert named["waterMark"] == "TRT"
    assert runway_body("runway/generate", {"prompt": "x", "aspectRatio": "1:1"})["waterMark"] == ""


def test_runway_extend_goes_to_its_own_path() -> None:
    request = RUNWAY.create_request("runway/extend", {"taskId": TASK, "prompt": "and then", "_parent": 3}, HOOK)
    assert request.path == EXTEND_PATH
    assert request.json == {"taskId": TASK, "prompt": "and then", "quality": "720p", "waterMark": "",
                            "callBackUrl": HOOK}


@pytest.mark.parametrize(("model", "task_input", "says"), [
    ("runway/generate", {"aspectRatio": "16:9"}, "prompt"),
    ("runway/generate", {"prompt": "x" * 1801, "aspectRatio": "16:9"}, "over 1800"),
    ("runway/generate", {"prompt": "x"}, "aspectRatio is required"),
    ("runway/generate", {"prompt": "x", "aspectRatio": "21:9"}, "aspectRatio"),
    ("runway/generate", {"prompt": "x", "aspectRatio": "16:9", "duration": 8}, "duration"),
    ("runway/generate", {"prompt": "x", "aspectRatio": "16:9", "quality": "4k"}, "quality"),
    ("runway/generate", {"prompt": "x", "aspectRatio": "16:9", "quality": "1080p", "duration": 10}, "10-second"),
    ("runway/generate", {"prompt": "x", "imageUrl": "not a url"}, "imageUrl"),
    ("runway/animate", {"prompt": "x", "aspectRatio": "16:9"}, "imageUrl"),
    ("runway/generate/gen4", {"prompt": "x", "aspectRatio": "16:9"}, "variant"),
    ("runway/upscale", {"prompt": "x"}, "operation"),
    ("runway/extend", {"prompt": "x"}, "taskId"),
    ("runway/extend", {"taskId": TASK}, "prompt"),
    ("runway/extend", {"taskId": TASK, "prompt": "x", "quality": "480p"}, "quality"),
])
def test_a_runway_request_kie_would_refuse_is_refused_before_it_leaves(model: str, task_input: dict[str, Any],
                                                                       says: str) -> None:
    with pytest.raises(InvalidRequest, match=re.escape(says)):
        RUNWAY.create_request(model, task_input, HOOK)


# ---------------------------------------------------------------------- Runway status and callbacks


def test_the_documented_runway_record_is_a_success_with_its_video_and_cover() -> None:
    request = RUNWAY.record_request(TASK)
    assert (request.method, request.path, request.params) == ("GET", RECORD_PATH, {"taskId": TASK})
    record = RUNWAY.record(RUNWAY_RECORD, TASK)
    assert record.succeeded and record.raw_state == "success" and record.endpoint == "runway"
    assert record.result_urls == ["https://file.example/runway/v.mp4"]
    (item,) = record.items
    assert item.cover_url == "https://file.example/runway/c.png"
    assert record.callback_url is None and record.param == RUNWAY_RECORD["generateParam"]
    assert (record.fail_code, record.fail_msg) == (None, None)


@pytest.mark.parametrize(("state", "expected"), [
    ("wait", TaskState.WAITING), ("queueing", TaskState.QUEUING), ("queuing", TaskState.QUEUING),
    ("generating", TaskState.GENERATING), ("success", TaskState.SUCCESS), ("fail", TaskState.FAIL),
    ("paused", TaskState.UNKNOWN), (None, TaskState.UNKNOWN)])
def test_runway_states_map_onto_the_task_states_with_queueing_spelled_its_way(state: Any,
                                                                              expected: TaskState) -> None:
    record = RUNWAY.record({"taskId": TASK, "state": state, "videoInfo": None}, TASK)
    assert record.state is expected and record.raw_state == state


def test_a_failed_runway_task_carries_its_fail_code_and_message() -> None:
    record = RUNWAY.record({"taskId": TASK, "state": "fail", "failCode": 400,
                            "failMsg": "Inappropriate content detected", "videoInfo": None}, TASK)
    assert record.failed and (record.fail_code, record.fail_msg) == ("400", "Inappropriate content detected")
    assert record.result_urls == []


def test_the_documented_runway_callbacks_are_snake_case() -> None:
    success = {"code": 200, "msg": "All generated successfully.", "data": {
        "task_id": TASK, "video_id": "485da89c", "video_url": "https://file.example/v.mp4",
        "image_url": "https://file.example/c.png"}}
    assert RUNWAY.callback_task_id(success) == callback_task_id(success) == TASK
    callback = parse_callback(success, endpoint=RUNWAY)
    assert callback.record.succeeded and callback.record.result_urls == ["https://file.example/v.mp4"]
    assert callback.record.items[0].cover_url == "https://file.example/c.png"
    failure = {"code": 400, "msg": "Inappropriate content detected. Please replace the image or video.",
               "data": {"task_id": TASK, "video_id": "", "video_url": "", "image_url": ""}}
    failed = RUNWAY.callback(failure)
    assert failed.record.failed and failed.record.fail_code == "400" and failed.record.result_urls == []
    extend_failure = RUNWAY.callback({"code": 400, "msg": "NSFW", "data": {"task_id": TASK}})
    assert extend_failure.record.failed and extend_failure.record.fail_msg == "NSFW"
    with pytest.raises(BadResponse):
        RUNWAY.callback({"code": 200, "msg": "x", "data": {"video_url": "https://file.example/v.mp4"}})


# ---------------------------------------------------------------------- Aleph


def test_an_aleph_request_sends_its_input_and_the_callback() -> None:
    request = ALEPH.create_request("aleph/generate", {"prompt": "make it snow", "videoUrl": "https://in.example/v.mp4",
                                                      "aspectRatio": "21:9", "seed": "7", "_x": 1}, HOOK)
    assert (request.method, request.path) == ("POST", ALEPH_GENERATE_PATH)
    assert request.json == {"prompt": "make it snow", "videoUrl": "https://in.example/v.mp4", "aspectRatio": "21:9",
                            "seed": 7, "waterMark": "", "callBackUrl": HOOK}


@pytest.mark.parametrize(("model", "task_input", "says"), [
    ("aleph/generate", {"videoUrl": "https://in.example/v.mp4"}, "prompt"),
    ("aleph/generate", {"prompt": "x"}, "videoUrl"),
    ("aleph/generate", {"prompt": "x", "videoUrl": "https://in.example/v.mp4", "aspectRatio": "2:1"}, "aspectRatio"),
    ("aleph/generate", {"prompt": "x", "videoUrl": "https://in.example/v.mp4", "referenceImage": "x"},
     "referenceImage"),
    ("aleph/generate/v2", {"prompt": "x", "videoUrl": "https://in.example/v.mp4"}, "variant"),
    ("aleph/extend", {"prompt": "x", "videoUrl": "https://in.example/v.mp4"}, "operation"),
])
def test_an_aleph_request_kie_would_refuse_is_refused_before_it_leaves(model: str, task_input: dict[str, Any],
                                                                       says: str) -> None:
    with pytest.raises(InvalidRequest, match=re.escape(says)):
        ALEPH.create_request(model, task_input, HOOK)


def test_the_documented_aleph_record_is_a_success_with_its_video_and_callback_url() -> None:
    request = ALEPH.record_request(TASK)
    assert (request.method, request.path, request.params) == ("GET", ALEPH_RECORD_PATH, {"taskId": TASK})
    record = ALEPH.record(ALEPH_RECORD, TASK)
    assert record.succeeded and record.endpoint == "aleph" and record.callback_url == HOOK
    assert record.result_urls == ["https://file.example/aleph/v.mp4"]
    assert record.items[0].cover_url == "https://file.example/aleph/c.png"
    assert (record.fail_code, record.fail_msg) == (None, None)


@pytest.mark.parametrize(("error_code", "error_message", "expected"), [
    (0, "", TaskState.GENERATING), (None, None, TaskState.GENERATING), ("0", "", TaskState.GENERATING),
    (400, "", TaskState.FAIL), ("500", None, TaskState.FAIL), (0, "Your prompt was caught", TaskState.FAIL),
    (None, "internal error", TaskState.FAIL)])
def test_alephs_ambiguous_zero_is_decided_by_its_error_fields(error_code: Any, error_message: Any,
                                                               expected: TaskState) -> None:
    data = {**ALEPH_RECORD, "successFlag": 0, "response": None, "errorCode": error_code,
            "errorMessage": error_message}
    record = ALEPH.record(data, TASK)
    assert record.state is expected and record.raw_state == "0"
    if expected is TaskState.FAIL:
        assert record.fail_code or record.fail_msg


def test_both_documented_aleph_callback_shapes() -> None:
    schema = {"code": 200, "msg": "success", "data": {"task_id": TASK, "video_id": "v1",
                                                      "video_url": "https://file.example/a.mp4",
                                                      "image_url": "https://file.example/a.png"}}
    page = {"code": 200, "msg": "success", "data": {"result_video_url": "https://file.example/a.mp4",
                                                    "result_image_url": "https://file.example/a.png"},
            "taskId": TASK}
    for sample in (schema, page):
        assert ALEPH.callback_task_id(sample) == callback_task_id(sample) == TASK
        callback = parse_callback(sample, endpoint=ALEPH)
        assert callback.task_id == TASK and callback.record.succeeded
        assert callback.record.result_urls == ["https://file.example/a.mp4"]
        assert callback.record.items[0].cover_url == "https://file.example/a.png"
    error = {"code": 400, "msg": "Your prompt was caught by our AI moderator.", "data": None, "taskId": TASK}
    failed = ALEPH.callback(error)
    assert failed.task_id == TASK and failed.record.failed and failed.record.fail_code == "400"
    with pytest.raises(BadResponse):
        ALEPH.callback({"code": 400, "msg": "x", "data": None})


# ---------------------------------------------------------------------- over HTTP


@pytest.fixture
async def kie() -> AsyncIterator[tuple[ScriptedKie, KieClient]]:
    async with ScriptedKie() as server, KieClient(KEY, server.base_url, server.base_url, timeout=5,
                                                  retry=FAST_RETRY) as client:
        yield server, client


async def test_a_runway_task_is_created_and_followed_through_queueing_to_its_video(
        kie: tuple[ScriptedKie, KieClient]) -> None:
    server, client = kie
    server.answer(GENERATE_PATH, {"code": 200, "msg": "success", "data": {"taskId": TASK}})
    server.answer(RECORD_PATH, {"code": 200, "msg": "success", "data": {**RUNWAY_RECORD, "state": "queueing",
                                                                       "videoInfo": None}},
                  {"code": 200, "msg": "success", "data": RUNWAY_RECORD})
    task = await client.create_task("runway/generate", {"prompt": "a cat", "aspectRatio": "9:16"}, HOOK,
                                    endpoint="runway")
    assert task == TaskCreated(TASK, "runway")
    (sent,) = server.requests(GENERATE_PATH)
    assert sent.json == {"prompt": "a cat", "aspectRatio": "9:16", "duration": 5, "quality": "720p",
                         "waterMark": "", "callBackUrl": HOOK}
    queued = await client.record(TaskCreated(TASK, "runway"))
    assert queued.state is TaskState.QUEUING and queued.raw_state == "queueing"
    done = await client.record(TaskCreated(TASK, "runway"))
    assert done.succeeded and done.result_urls == ["https://file.example/runway/v.mp4"]
    assert [(seen.method, seen.query) for seen in server.requests(RECORD_PATH)] == [("GET", {"taskId": TASK})] * 2


async def test_an_aleph_task_is_created_and_followed_to_its_video(kie: tuple[ScriptedKie, KieClient]) -> None:
    server, client = kie
    server.answer(ALEPH_GENERATE_PATH, {"code": 200, "msg": "success", "data": {"taskId": TASK}})
    server.answer(ALEPH_RECORD_PATH,
                  {"code": 200, "msg": "success", "data": {**ALEPH_RECORD, "successFlag": 0, "response": None}},
                  {"code": 200, "msg": "success", "data": ALEPH_RECORD})
    task = await client.create_task("aleph/generate", {"prompt": "snow", "videoUrl": "https://in.example/v.mp4"},
                                    HOOK, endpoint="aleph")
    assert task == TaskCreated(TASK, "aleph")
    (sent,) = server.requests(ALEPH_GENERATE_PATH)
    assert sent.json == {"prompt": "snow", "videoUrl": "https://in.example/v.mp4", "waterMark": "",
                         "callBackUrl": HOOK}
    running = await client.record(task)
    assert running.state is TaskState.GENERATING and running.callback_url == HOOK
    done = await client.record(task)
    assert done.succeeded and done.result_urls == ["https://file.example/aleph/v.mp4"]
