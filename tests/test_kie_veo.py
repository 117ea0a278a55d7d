"""Veo 3.1's adapter: requests as KIE's spec asks, and KIE's documented answers and callbacks
(DEDICATED.md §2) read right, odd shapes included; then a real KieClient over HTTP."""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from typing import Any

import pytest

from kie import InvalidRequest, KieClient, KieError, RetryPolicy, TaskCreated, TaskState, parse_callback
from kie.callbacks import callback_task_id
from kie.errors import BadResponse
from kie.families import ENDPOINTS, family_of
from kie.validate import check_task_id
from kie.veo import EXTEND_PATH, GENERATE_PATH, HD1080_PATH, RECORD_PATH, UHD4K_PATH, VEO
from tests.kie_script import ScriptedKie

pytestmark = pytest.mark.timeout(60)

KEY = "kie-test-key-0123456789abcdef"
HOOK = "https://bot.example/kie-callback/tok/17"
FAST_RETRY = RetryPolicy(attempts=2, base=0.01, cap=0.02)

# record-info's documented sample (§2.3), paramJson a JSON string as KIE sends it
RECORD_SAMPLE: dict[str, Any] = {
    "taskId": "veo_task_abcdef123456",
    "paramJson": json.dumps({"prompt": "a dog", "waterMark": "KieAI", "model": "veo3_fast", "callBackUrl": HOOK}),
    "completeTime": "2025-06-06 10:30:00", "createTime": "2025-06-06 10:25:00",
    "response": {"taskId": "veo_task_abcdef123456", "resultUrls": ["https://tempfile.aiquickdraw.com/v/a.mp4"],
                 "originUrls": ["https://tempfile.aiquickdraw.com/v/origin.mp4"], "resolution": "1080p"},
    "successFlag": 1, "errorCode": None, "errorMessage": "", "fallbackFlag": False,
}


def body(model: str, task_input: dict[str, Any], callback_url: str | None = HOOK) -> dict[str, Any]:
    request = VEO.create_request(model, task_input, callback_url)
    assert request.method == "POST" and request.json is not None
    return dict(request.json)


# ---------------------------------------------------------------------- requests


def test_veo_is_registered_and_owns_its_catalog_ids() -> None:
    assert ENDPOINTS["veo"] is VEO
    assert family_of("veo/generate/veo3_fast") == "veo" and family_of("veo/1080p") == "veo"


def test_generate_sends_the_input_the_variant_as_model_the_callback_and_explicit_translation() -> None:
    request = VEO.create_request("veo/generate/veo3_fast", {"prompt": "кот на луне", "aspectRatio": "9:16",
                                                            "_parent_note": "ours", "enableFallback": True}, HOOK)
    assert (request.method, request.path, request.rate) == ("POST", GENERATE_PATH, "create")
    assert request.json == {"prompt": "кот на луне", "aspectRatio": "9:16", "model": "veo3_fast",
                            "callBackUrl": HOOK, "enableTranslation": True}


def test_generate_keeps_an_explicit_no_translation_and_sends_no_callback_when_none_is_given() -> None:
    sent = body("veo/generate/veo3", {"prompt": "a dog", "enableTranslation": False}, None)
    assert sent == {"prompt": "a dog", "model": "veo3", "enableTranslation": False}


def test_duration_from_the_wizard_as_text_is_sent_as_a_number() -> None:
    assert body("veo/generate/veo3_lite", {"prompt": "x", "duration": "6", "resolution": "4k"})["duration"] == 6


def test_frames_and_reference_name_their_generation_type() -> None:
    frames = body("veo/frames/veo3", {"prompt": "x", "imageUrls": ["https://a.example/1.png",
                                                                     "https://a.example/2.png"]})
    assert frames["generationType"] == "FIRST_AND_LAST_FRAMES_2_VIDEO"
    reference = body("veo/reference/veo3_fast", {"prompt": "x", "duration": 8, "imageUrls": [
        "https://a.example/1.png", "https://a.example/2.png", "https://a.example/3.png"]})
    assert reference["generationType"] == "REFERENCE_2_VIDEO" and reference["model"] == "veo3_fast"


@pytest.mark.parametrize(("model", "task_input", "says"), [
    ("veo/generate/veo3_fast", {"aspectRatio": "16:9"}, "prompt"),
    ("veo/generate/veo3_fast", {"prompt": "   "}, "prompt"),
    ("veo/generate/veo4", {"prompt": "x"}, "model"),
    ("veo/generate/veo3_fast", {"prompt": "x", "aspectRatio": "1:1"}, "aspectRatio"),
    ("veo/generate/veo3_fast", {"prompt": "x", "resolution": "2k"}, "resolution"),
    ("veo/generate/veo3_fast", {"prompt": "x", "duration": 5}, "duration"),
    ("veo/generate/veo3_fast", {"prompt": "x", "duration": "eight"}, "duration"),
    ("veo/generate/veo3_fast", {"prompt": "x", "enableTranslation": "yes"}, "enableTranslation"),
    ("veo/generate/veo3_fast", {"prompt": "x", "imageUrls": []}, "imageUrls"),
    ("veo/generate/veo3_fast", {"prompt": "x", "imageUrls": ["ftp://a.example/1.png"]}, "imageUrls"),
    ("veo/frames/veo3_fast", {"prompt": "x"}, "imageUrls"),
    ("veo/frames/veo3_fast", {"prompt": "x", "imageUrls": ["https://a.example/1.png"] * 3}, "imageUrls"),
    ("veo/reference/veo3_fast", {"prompt": "x", "imageUrls": ["https://a.example/1.png"] * 4}, "imageUrls"),
    ("veo/reference/veo3", {"prompt": "x", "imageUrls": ["https://a.example/1.png"]}, "veo3_fast or veo3_lite"),
    ("veo/reference/veo3_lite", {"prompt": "x", "duration": 6, "imageUrls": ["https://a.example/1.png"]}, "8-second"),
    ("veo/paint/veo3", {"prompt": "x"}, "operation"),
    ("suno/generate/V5", {"prompt": "x"}, "operation"),
    ("veo/extend", {"prompt": "x"}, "taskId"),
    ("veo/extend", {"taskId": "veo_task_1"}, "prompt"),
    ("veo/extend", {"taskId": "veo_task_1", "prompt": "x", "model": "veo3_fast"}, "model"),
    ("veo/extend", {"taskId": "veo_task_1", "prompt": "x", "seeds": 5}, "seeds"),
    ("veo/4k", {"index": 0}, "taskId"),
    ("veo/4k", {"taskId": "veo_task_1", "index": -1}, "index"),
    ("veo/1080p", {"taskId": "veo_task_1"}, "local task"),
])
def test_a_request_kie_would_refuse_is_refused_before_it_leaves(model: str, task_input: dict[str, Any],
                                                                says: str) -> None:
    with pytest.raises(InvalidRequest, match=re.escape(says)):
        VEO.create_request(model, task_input, HOOK)


def test_a_telegram_file_url_never_leaves() -> None:
    with pytest.raises(InvalidRequest, match="Telegram"):
        body("veo/frames/veo3", {"prompt": "x", "imageUrls": ["https://api.telegram.org/file/bot123:abc/p.jpg"]})


def test_extend_goes_to_its_own_path_with_its_own_model_names() -> None:
    request = VEO.create_request("veo/extend", {"taskId": "veo_task_abc", "prompt": "the dog runs on",
                                                "model": "quality", "seeds": "12345", "_item_url": "x"}, HOOK)
    assert request.path == EXTEND_PATH
    assert request.json == {"taskId": "veo_task_abc", "prompt": "the dog runs on", "model": "quality",
                            "seeds": 12345, "callBackUrl": HOOK, "enableTranslation": True}


def test_4k_posts_the_parent_and_its_index_with_the_callback() -> None:
    request = VEO.create_request("veo/4k", {"taskId": "veo_task_abc"}, HOOK)
    assert (request.method, request.path) == ("POST", UHD4K_PATH)
    assert request.json == {"taskId": "veo_task_abc", "index": 0, "callBackUrl": HOOK}
    assert VEO.created_task_id({"taskId": "veo_4k_1", "resultUrls": None, "imageUrls": None}) == "veo_4k_1"


def test_1080p_is_a_local_task_whose_record_is_the_get_on_its_parent() -> None:
    assert VEO.local_task_id("veo/generate/veo3_fast", {"prompt": "x"}) is None
    assert VEO.local_task_id("veo/4k", {"taskId": "veo_task_abc"}) is None
    first = VEO.local_task_id("veo/1080p", {"taskId": "veo_task_abc", "index": 1})
    second = VEO.local_task_id("veo/1080p", {"taskId": "veo_task_abc", "index": 1})
    assert first is not None and second is not None and first != second  # one per job
    assert check_task_id(first) == first and first.startswith("veo1080p~veo_task_abc~1~")
    request = VEO.record_request(first)
    assert (request.method, request.path, request.params) == ("GET", HD1080_PATH,
                                                              {"taskId": "veo_task_abc", "index": "1"})
    assert VEO.record_request("veo_task_abc").path == RECORD_PATH
    with pytest.raises(InvalidRequest):
        VEO.local_task_id("veo/1080p", {"index": 0})


def test_a_parent_id_with_tildes_survives_the_local_id() -> None:
    local = VEO.local_task_id("veo/1080p", {"taskId": "odd~id~0", "index": 0})
    assert local is not None
    assert VEO.record_request(local).params == {"taskId": "odd~id~0", "index": "0"}


def test_actions_on_a_1080p_version_name_the_video_it_came_from_or_are_refused() -> None:
    local = VEO.local_task_id("veo/1080p", {"taskId": "veo_task_abc", "index": 1})
    assert local is not None
    assert body("veo/4k", {"taskId": local, "index": 0}) == {"taskId": "veo_task_abc", "index": 1,
                                                             "callBackUrl": HOOK}
    with pytest.raises(InvalidRequest, match="cannot be extended"):
        VEO.create_request("veo/extend", {"taskId": local, "prompt": "more"}, HOOK)
    with pytest.raises(InvalidRequest):
        VEO.local_task_id("veo/1080p", {"taskId": local})


def test_the_1080p_answer_is_success_with_its_url_and_running_without_one() -> None:
    local = VEO.local_task_id("veo/1080p", {"taskId": "veo_task_abc"})
    assert local is not None
    url = "https://tempfile.aiquickdraw.com/p/42f4f8facbb040c0ade87c27cb2d5e58_1749711595.mp4"
    done = VEO.record({"resultUrl": url}, local)
    assert done.succeeded and done.result_urls == [url] and [item.url for item in done.items] == [url]
    assert (done.task_id, done.endpoint) == (local, "veo")
    for pending in ({}, {"resultUrl": ""}, None):
        assert VEO.record(pending, local).state is TaskState.GENERATING


# ---------------------------------------------------------------------- record-info


def test_the_documented_record_is_a_success_with_its_urls_param_and_callback() -> None:
    record = VEO.record(RECORD_SAMPLE, "veo_task_abcdef123456")
    assert record.succeeded and record.raw_state == "1" and record.endpoint == "veo"
    assert record.result_urls == ["https://tempfile.aiquickdraw.com/v/a.mp4"]  # originUrls ignored
    assert record.param is not None and record.param["waterMark"] == "KieAI"
    assert record.callback_url == HOOK and record.model == "veo3_fast"
    assert (record.fail_code, record.fail_msg) == (None, None)


def test_times_are_read_as_the_schema_gives_them_and_zoneless_ones_are_not_guessed() -> None:
    iso = VEO.record({**RECORD_SAMPLE, "createTime": "2024-03-20T10:25:00Z", "completeTime": 1710930600000}, "t")
    assert (iso.created_ms, iso.completed_ms) == (1710930300000, 1710930600000)
    zoneless = VEO.record(RECORD_SAMPLE, "t")  # the example's "2025-06-06 10:30:00"
    assert (zoneless.created_ms, zoneless.completed_ms) == (None, None)


def test_result_urls_as_a_json_string_read_the_same_as_an_array() -> None:
    data = {**RECORD_SAMPLE, "response": {"resultUrls": json.dumps(["https://r.example/a.mp4"])}}
    assert VEO.record(data, "t").result_urls == ["https://r.example/a.mp4"]


def test_an_extended_video_is_the_whole_video_from_full_result_urls() -> None:
    data = {**RECORD_SAMPLE, "response": {"resultUrls": ["https://r.example/part.mp4"],
                                          "fullResultUrls": "[\"https://r.example/whole.mp4\"]"}}
    assert VEO.record(data, "t").result_urls == ["https://r.example/whole.mp4"]


@pytest.mark.parametrize(("flag", "state"), [(0, TaskState.GENERATING), ("0", TaskState.GENERATING),
                                             (1, TaskState.SUCCESS), ("1", TaskState.SUCCESS),
                                             (2, TaskState.FAIL), (3, TaskState.FAIL), (7, TaskState.UNKNOWN),
                                             (None, TaskState.UNKNOWN)])
def test_success_flag_maps_onto_the_task_states(flag: Any, state: TaskState) -> None:
    data = {"taskId": "t", "successFlag": flag, "response": None, "errorCode": None, "errorMessage": None}
    assert VEO.record(data, "t").state is state


def test_a_failed_generation_carries_its_error_code_and_message() -> None:
    data = {"taskId": "t", "successFlag": 3, "errorCode": 400, "response": None,
            "errorMessage": "Your prompt was flagged by Website as violating content policies."}
    record = VEO.record(data, "t")
    assert record.failed and record.fail_code == "400" and "content policies" in (record.fail_msg or "")
    assert record.result_urls == [] and record.callback_url is None


def test_a_record_that_is_no_object_is_a_bad_response() -> None:
    with pytest.raises(BadResponse):
        VEO.record("oops", "t")


# ---------------------------------------------------------------------- callbacks


def test_the_documented_success_callback_with_an_array() -> None:
    sample = {"code": 200, "msg": "Veo3.1 video generated successfully.", "data": {
        "taskId": "veo_task_1", "promptJson": "{\"prompt\":\"a dog\"}",
        "info": {"resultUrls": ["http://r.example/video1.mp4"], "originUrls": ["http://r.example/o.mp4"],
                 "resolution": "1080p"}, "fallbackFlag": False}}
    callback = parse_callback(sample, endpoint=VEO)
    assert callback.task_id == "veo_task_1" and callback.code == 200
    assert callback.record.succeeded and callback.record.result_urls == ["http://r.example/video1.mp4"]


@pytest.mark.parametrize("urls", ["[\"http://r.example/v.mp4\"]", "[http://r.example/v.mp4]",
                                  "http://r.example/v.mp4"])
def test_a_success_callback_with_result_urls_as_a_string(urls: str) -> None:
    """The schema types info.resultUrls as a string; its example is even a bracketed, unquoted list."""
    sample = {"code": 200, "msg": "ok", "data": {"taskId": "veo_task_1", "info": {"resultUrls": urls}}}
    assert VEO.callback(sample).record.result_urls == ["http://r.example/v.mp4"]


def test_a_failure_callback_carries_only_the_task_and_the_envelope() -> None:
    sample = {"code": 400, "msg": "Your prompt was flagged by Website as violating content policies.",
              "data": {"taskId": "veo_task_1", "fallbackFlag": False}}
    callback = VEO.callback(sample)
    assert callback.record.failed and callback.record.fail_code == "400"
    assert callback.record.fail_msg == sample["msg"] and callback.record.result_urls == []


def test_both_documented_4k_callback_shapes() -> None:
    page = {"code": 200, "msg": "4K Video generated successfully.", "data": {
        "taskId": "veo_4k_1", "info": {"resultUrls": ["https://r.example/4k.mp4"],
                                       "imageUrls": ["https://r.example/4k.jpg"]}}}
    schema = {"code": 200, "msg": "4K Video generated successfully.", "data": {
        "task_id": "veo_4k_1", "result_urls": ["https://r.example/4k.mp4"], "media_ids": ["m1"],
        "image_urls": ["https://r.example/4k.jpg"]}}
    for sample in (page, schema):
        assert VEO.callback_task_id(sample) == callback_task_id(sample) == "veo_4k_1"
        callback = VEO.callback(sample)
        assert callback.record.succeeded and callback.record.result_urls == ["https://r.example/4k.mp4"]
    failed = VEO.callback({"code": 500, "msg": "The 4K version of this video is unavailable.",
                           "data": {"taskId": "veo_4k_1"}})
    assert failed.record.failed and failed.record.fail_code == "500"


def test_a_callback_without_data_or_task_is_malformed() -> None:
    for sample in ({"code": 200, "msg": "x"}, {"code": 200, "data": {"info": {}}}):
        with pytest.raises(BadResponse):
            VEO.callback(sample)


# ---------------------------------------------------------------------- over HTTP


@pytest.fixture
async def kie() -> AsyncIterator[tuple[ScriptedKie, KieClient]]:
    async with ScriptedKie() as server, KieClient(KEY, server.base_url, server.base_url, timeout=5,
                                                  retry=FAST_RETRY) as client:
        yield server, client


async def test_a_veo_task_is_created_and_followed_to_its_video_through_the_client(
        kie: tuple[ScriptedKie, KieClient]) -> None:
    server, client = kie
    server.answer(GENERATE_PATH, {"code": 200, "msg": "success", "data": {"taskId": "veo_task_abcdef123456"}})
    server.answer(RECORD_PATH,
                  {"code": 200, "msg": "success", "data": {**RECORD_SAMPLE, "successFlag": 0, "response": None}},
                  {"code": 200, "msg": "success", "data": {
                      **RECORD_SAMPLE, "response": {"resultUrls": "[\"https://r.example/v.mp4\"]"}}})
    task = await client.create_task("veo/generate/veo3_fast", {"prompt": "a dog", "_mine": 1}, HOOK, endpoint="veo")
    assert task == TaskCreated("veo_task_abcdef123456", "veo")
    (sent,) = server.requests(GENERATE_PATH)
    assert sent.method == "POST" and sent.json == {"prompt": "a dog", "model": "veo3_fast", "callBackUrl": HOOK,
                                                   "enableTranslation": True}
    running = await client.record(TaskCreated(task.task_id, "veo"))
    assert running.state is TaskState.GENERATING and running.callback_url == HOOK
    done = await client.record(TaskCreated(task.task_id, "veo"))
    assert done.succeeded and done.result_urls == ["https://r.example/v.mp4"]
    assert [seen.query for seen in server.requests(RECORD_PATH)] == [{"taskId": task.task_id}] * 2


async def test_the_1080p_task_makes_no_request_and_is_polled_until_its_url_is_there(
        kie: tuple[ScriptedKie, KieClient]) -> None:
    server, client = kie
    server.answer(HD1080_PATH, {"code": 400, "msg": "1080P is processing. It should be ready in 1-2 minutes.",
                                "data": None},
                  {"code": 200, "msg": "success", "data": {"resultUrl": "https://r.example/1080.mp4"}})
    task = await client.create_task("veo/1080p", {"taskId": "veo_task_abc", "index": 0}, HOOK, endpoint="veo")
    assert task.endpoint == "veo" and task.task_id.startswith("veo1080p~veo_task_abc~0~")
    assert server.seen == []  # nothing created at KIE
    with pytest.raises(KieError) as not_yet:  # KIE answers non-200 until ready: the poller asks again
        await client.record(task)
    assert not_yet.value.code == 400
    done = await client.record(task)
    assert done.succeeded and done.result_urls == ["https://r.example/1080.mp4"] and done.task_id == task.task_id
    assert [(seen.method, seen.query) for seen in server.requests(HD1080_PATH)] == [
        ("GET", {"taskId": "veo_task_abc", "index": "0"})] * 2


def test_the_1080p_get_is_asked_no_more_often_than_kie_says_and_other_tasks_at_the_pollers_pace() -> None:
    local = VEO.local_task_id("veo/1080p", {"taskId": "veo_task_abc", "index": 0})
    assert local is not None
    client = KieClient("k" * 32, "https://api.kie.ai")
    assert client.poll_floor(TaskCreated(local, "veo")) >= 20, "DEDICATED.md §2.6: retry every 20-30 s"
    assert client.poll_floor(TaskCreated("veo_task_abc", "veo")) == 0
    assert all(client.poll_floor(TaskCreated("t1", name)) == 0 for name in ENDPOINTS if name != "veo")
