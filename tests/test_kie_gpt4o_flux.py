"""4o Image and Flux Kontext adapters: requests as KIE documents them, every documented answer shape,
and 4o's signed download link, the last through a real KieClient over HTTP.

The ⚠️ alternatives from DEDICATED.md §6-7: ``result_urls`` against ``resultUrls``, ``successFlag``
as a string, a status or a flag missing, a failed 4o callback with ``info: null``, a failed Flux
callback whose ``info`` holds empty strings, Flux's 10-minute ``originImageUrl`` never preferred.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import pytest

from kie import BadResponse, InvalidRequest, KieClient, RetryPolicy, TaskCreated, TaskState
from kie.callbacks import parse_callback
from kie.families import ENDPOINTS, family_of
from kie.flux_kontext import CREATE_PATH as FLUX_CREATE
from kie.flux_kontext import FLUX_KONTEXT
from kie.flux_kontext import RECORD_PATH as FLUX_RECORD
from kie.gpt4o import CREATE_PATH as GPT4O_CREATE
from kie.gpt4o import DOWNLOAD_URL_PATH, GPT4O
from kie.gpt4o import RECORD_PATH as GPT4O_RECORD
from tests.kie_script import ScriptedKie

pytestmark = pytest.mark.timeout(30)

CB = "https://bot.example/kie-callback/tok/42"
KEY = "kie-test-key-0123456789abcdef"
PIC = "https://files.example/in.png"

GPT4O_RECORD_SAMPLE: dict[str, Any] = {
    "taskId": "task12345",
    "paramJson": json.dumps({"prompt": "a cat", "size": "1:1", "callBackUrl": CB}),
    "completeTime": 1736933400000,
    "createTime": 1736933100000,
    "response": {"resultUrls": ["https://tempfile.example/1.png", "https://tempfile.example/2.png"]},
    "successFlag": 1,
    "status": "SUCCESS",
    "errorCode": None,
    "errorMessage": "",
    "progress": "1.00",
}

FLUX_RECORD_SAMPLE: dict[str, Any] = {
    "taskId": "flux1",
    "paramJson": json.dumps({"prompt": "a fox", "model": "flux-kontext-max", "callBackUrl": CB}),
    "completeTime": 1736933400000,
    "createTime": 1736933100000,
    "response": {"originImageUrl": "https://origin.example/o.jpg", "resultImageUrl": "https://result.example/r.jpg"},
    "successFlag": 1,
    "errorCode": None,
    "errorMessage": "",
}


def test_both_image_families_are_registered_under_their_catalog_names() -> None:
    assert ENDPOINTS["gpt4o"] is GPT4O and ENDPOINTS["flux-kontext"] is FLUX_KONTEXT
    assert family_of("gpt4o/edit") == "gpt4o" and family_of("flux-kontext/generate/flux-kontext-pro") == "flux-kontext"


# ---------------------------------------------------------------------- 4o Image: requests


def test_a_4o_picture_is_asked_with_size_prompt_variants_and_callback_and_without_our_keys() -> None:
    request = GPT4O.create_request("gpt4o/generate", {"prompt": "a cat", "size": "3:2", "nVariants": 4,
                                                      "_price": 24}, CB)
    assert (request.method, request.path, request.rate) == ("POST", GPT4O_CREATE, "create")
    assert request.json == {"prompt": "a cat", "size": "3:2", "nVariants": 4, "callBackUrl": CB}


def test_a_4o_edit_sends_its_files_and_the_old_single_file_form_becomes_a_list() -> None:
    request = GPT4O.create_request("gpt4o/edit", {"prompt": "make it blue", "size": "1:1", "filesUrl": [PIC]}, None)
    assert request.json == {"prompt": "make it blue", "size": "1:1", "filesUrl": [PIC]}
    old = GPT4O.create_request("gpt4o/edit", {"size": "1:1", "fileUrl": PIC}, None)
    assert old.json == {"size": "1:1", "filesUrl": [PIC]}


@pytest.mark.parametrize(("model", "task_input", "words"), [
    ("gpt4o/generate", {"prompt": "a cat"}, "size"),
    ("gpt4o/generate", {"prompt": "a cat", "size": "16:9"}, "size"),
    ("gpt4o/generate", {"prompt": "a cat", "size": "1:1", "nVariants": 3}, "nVariants"),
    ("gpt4o/generate", {"prompt": "a cat", "size": "1:1", "nVariants": True}, "nVariants"),
    ("gpt4o/generate", {"size": "1:1"}, "prompt or filesUrl"),
    ("gpt4o/edit", {"prompt": "blue", "size": "1:1"}, "filesUrl"),
    ("gpt4o/edit", {"size": "1:1", "filesUrl": [PIC] * 6}, "filesUrl"),
    ("gpt4o/edit", {"size": "1:1", "filesUrl": PIC}, "filesUrl"),
    ("gpt4o/edit", {"size": "1:1", "filesUrl": ["file:///etc/passwd"]}, "filesUrl"),
    ("gpt4o/generate/gpt-image-1", {"prompt": "a cat", "size": "1:1"}, "variant"),
    ("gpt4o/upscale", {"prompt": "a cat", "size": "1:1"}, "operation"),
])
def test_what_4o_documents_is_refused_locally(model: str, task_input: dict[str, Any], words: str) -> None:
    with pytest.raises(InvalidRequest, match=words):
        GPT4O.create_request(model, task_input, CB)


# ---------------------------------------------------------------------- 4o Image: answers


def test_the_documented_4o_record_gives_its_urls_and_ignores_progress() -> None:
    record = GPT4O.record(GPT4O_RECORD_SAMPLE, "task12345")
    assert record.succeeded and record.endpoint == "gpt4o" and record.raw_state == "SUCCESS"
    assert record.result_urls == ["https://tempfile.example/1.png", "https://tempfile.example/2.png"]
    assert record.callback_url == CB and record.fail_code is None
    assert (record.created_ms, record.completed_ms) == (1736933100000, 1736933400000)


def test_the_quickstarts_snake_case_result_urls_are_read_too() -> None:
    record = GPT4O.record(GPT4O_RECORD_SAMPLE | {"response": {"result_urls": ["https://t.example/s.png"]}}, "t")
    assert record.succeeded and record.result_urls == ["https://t.example/s.png"]


@pytest.mark.parametrize(("status", "flag", "state"), [
    ("GENERATING", 0, TaskState.GENERATING),
    ("SUCCESS", 1, TaskState.SUCCESS),
    ("CREATE_TASK_FAILED", 2, TaskState.FAIL),
    ("GENERATE_FAILED", 2, TaskState.FAIL),
    (None, 1, TaskState.SUCCESS),
    (None, "1", TaskState.SUCCESS),
    (None, "2", TaskState.FAIL),
    (None, "0", TaskState.GENERATING),
    ("SUCCESS", None, TaskState.SUCCESS),
    ("GENERATE_FAILED", None, TaskState.FAIL),
    (None, None, TaskState.UNKNOWN),
    ("SOMETHING_NEW", 7, TaskState.UNKNOWN),
])
def test_the_4o_state_comes_from_the_status_word_or_else_the_flag(status: str | None, flag: Any,
                                                                  state: TaskState) -> None:
    data = {key: value for key, value in (GPT4O_RECORD_SAMPLE | {"status": status, "successFlag": flag}).items()
            if value is not None}
    assert GPT4O.record(data, "t").state is state


def test_a_failed_4o_record_carries_its_code_and_message() -> None:
    record = GPT4O.record({"taskId": "t", "status": "GENERATE_FAILED", "successFlag": 2, "errorCode": 400,
                           "errorMessage": "flagged", "response": None}, "t")
    assert record.failed and (record.fail_code, record.fail_msg, record.result_urls) == ("400", "flagged", [])


def test_the_4o_callback_reads_result_urls_and_a_failure_with_info_null() -> None:
    ok = GPT4O.callback({"code": 200, "msg": "success",
                         "data": {"taskId": "task12345", "info": {"result_urls": ["https://t.example/1.png"]}}})
    assert ok.task_id == "task12345" and ok.record.succeeded and ok.record.result_urls == ["https://t.example/1.png"]
    camel = GPT4O.callback({"code": 200, "data": {"taskId": "t", "info": {"resultUrls": ["https://t.example/2.png"]}}})
    assert camel.record.result_urls == ["https://t.example/2.png"]
    failed = GPT4O.callback({"code": 400, "msg": "Your content was flagged by OpenAI",
                             "data": {"taskId": "t", "info": None}})
    assert failed.record.failed and failed.record.fail_code == "400" and failed.record.result_urls == []
    with pytest.raises(BadResponse):
        GPT4O.callback({"code": 200, "data": {"info": None}})


def test_the_4o_download_link_request_names_the_task_and_the_file() -> None:
    request = GPT4O.download_url_request("task12345", "https://tempfile.example/1.png")
    assert request is not None and (request.method, request.path) == ("POST", DOWNLOAD_URL_PATH)
    assert request.json == {"taskId": "task12345", "url": "https://tempfile.example/1.png"}


# ---------------------------------------------------------------------- Flux Kontext: requests


def test_a_flux_picture_sends_the_variant_as_model_and_translation_explicitly() -> None:
    request = FLUX_KONTEXT.create_request("flux-kontext/generate/flux-kontext-max",
                                          {"prompt": "a fox", "aspectRatio": "21:9", "outputFormat": "png",
                                           "safetyTolerance": 6, "_seen": True}, CB)
    assert (request.method, request.path) == ("POST", FLUX_CREATE)
    assert request.json == {"prompt": "a fox", "aspectRatio": "21:9", "outputFormat": "png", "safetyTolerance": 6,
                            "model": "flux-kontext-max", "enableTranslation": True, "callBackUrl": CB}
    off = FLUX_KONTEXT.create_request("flux-kontext/generate", {"prompt": "a fox", "enableTranslation": False}, None)
    assert off.json == {"prompt": "a fox", "enableTranslation": False}


def test_a_flux_edit_sends_its_one_input_image() -> None:
    request = FLUX_KONTEXT.create_request("flux-kontext/edit/flux-kontext-pro",
                                          {"prompt": "add a hat", "inputImage": PIC, "safetyTolerance": 2}, CB)
    assert request.json is not None and request.json["inputImage"] == PIC


@pytest.mark.parametrize(("model", "task_input", "words"), [
    ("flux-kontext/edit", {"prompt": "add a hat"}, "inputImage"),
    ("flux-kontext/edit", {"prompt": "add a hat", "inputImage": [PIC]}, "inputImage"),
    ("flux-kontext/edit", {"prompt": "hat", "inputImage": PIC, "safetyTolerance": 3}, "safetyTolerance"),
    ("flux-kontext/generate", {"prompt": "hat", "inputImage": PIC, "safetyTolerance": 5}, "safetyTolerance"),
    ("flux-kontext/generate", {"prompt": "a fox", "safetyTolerance": 7}, "safetyTolerance"),
    ("flux-kontext/generate", {"prompt": "a fox", "safetyTolerance": -1}, "safetyTolerance"),
    ("flux-kontext/generate", {"prompt": "a fox", "aspectRatio": "2:1"}, "aspectRatio"),
    ("flux-kontext/generate", {"prompt": "a fox", "outputFormat": "webp"}, "outputFormat"),
    ("flux-kontext/generate", {"prompt": "a fox", "enableTranslation": "yes"}, "enableTranslation"),
    ("flux-kontext/generate", {"prompt": "a fox", "model": "flux-pro"}, "model"),
    ("flux-kontext/generate", {"aspectRatio": "1:1"}, "prompt"),
    ("flux-kontext/generate/flux-kontext-ultra", {"prompt": "a fox"}, "variant"),
])
def test_what_flux_documents_is_refused_locally(model: str, task_input: dict[str, Any], words: str) -> None:
    with pytest.raises(InvalidRequest, match=words):
        FLUX_KONTEXT.create_request(model, task_input, CB)


# ---------------------------------------------------------------------- Flux Kontext: answers


def test_the_documented_flux_record_keeps_the_14_day_result_not_the_10_minute_origin() -> None:
    record = FLUX_KONTEXT.record(FLUX_RECORD_SAMPLE, "flux1")
    assert record.succeeded and record.result_urls == ["https://result.example/r.jpg"]
    assert record.model == "flux-kontext-max" and record.callback_url == CB and record.endpoint == "flux-kontext"


def test_the_origin_image_is_only_a_fallback_when_the_result_is_missing() -> None:
    response = {"originImageUrl": "https://origin.example/o.jpg", "resultImageUrl": ""}
    record = FLUX_KONTEXT.record(FLUX_RECORD_SAMPLE | {"response": response}, "flux1")
    assert record.result_urls == ["https://origin.example/o.jpg"]


@pytest.mark.parametrize(("flag", "state"), [
    (0, TaskState.GENERATING), (1, TaskState.SUCCESS), (2, TaskState.FAIL), (3, TaskState.FAIL),
    ("1", TaskState.SUCCESS), ("3", TaskState.FAIL), (9, TaskState.UNKNOWN), (None, TaskState.UNKNOWN),
])
def test_each_flux_flag_maps_onto_a_state(flag: Any, state: TaskState) -> None:
    record = FLUX_KONTEXT.record(FLUX_RECORD_SAMPLE | {"successFlag": flag}, "flux1")
    assert record.state is state


def test_a_failed_flux_record_carries_its_code_and_message() -> None:
    record = FLUX_KONTEXT.record({"taskId": "f", "successFlag": 3, "errorCode": 501, "errorMessage": "failed",
                                  "response": None}, "f")
    assert record.failed and (record.fail_code, record.fail_msg, record.result_urls) == ("501", "failed", [])


def test_the_flux_callback_reads_its_info_and_a_failure_with_empty_strings() -> None:
    ok = FLUX_KONTEXT.callback({"code": 200, "msg": "BFL image generated successfully.", "data": {
        "taskId": "flux1", "info": {"originImageUrl": "https://o.example/o.jpg",
                                    "resultImageUrl": "https://r.example/r.jpg"}}})
    assert ok.record.succeeded and ok.record.result_urls == ["https://r.example/r.jpg"]
    failed = FLUX_KONTEXT.callback({"code": 400, "msg": "flagged", "data": {
        "taskId": "flux1", "info": {"originImageUrl": "", "resultImageUrl": ""}}})
    assert failed.record.failed and failed.record.fail_code == "400" and failed.record.result_urls == []
    silent = FLUX_KONTEXT.callback({"code": 200, "data": {"taskId": "flux1", "info": {"resultImageUrl": ""}}})
    assert silent.record.state is TaskState.UNKNOWN  # says nothing: the record decides


def test_the_callback_route_reads_4o_and_flux_bodies_with_or_without_the_family() -> None:
    body = {"code": 200, "data": {"taskId": "abc", "info": {"result_urls": ["https://t.example/1.png"]}}}
    for endpoint in (GPT4O, FLUX_KONTEXT, None):
        assert parse_callback(json.dumps(body).encode(), endpoint=endpoint).task_id == "abc"


# ---------------------------------------------------------------------- through a real client over HTTP


@pytest.fixture
async def kie() -> AsyncIterator[tuple[ScriptedKie, KieClient]]:
    async with ScriptedKie() as server, KieClient(KEY, server.base_url, server.base_url, timeout=5,
                                               retry=RetryPolicy(attempts=2, base=0.01, cap=0.02)) as client:
        yield server, client


async def test_a_4o_picture_is_created_read_back_and_signed_through_the_client(
        kie: tuple[ScriptedKie, KieClient]) -> None:
    server, client = kie
    server.succeed(GPT4O_CREATE, {"taskId": "task12345"})
    server.succeed(GPT4O_RECORD, GPT4O_RECORD_SAMPLE | {"successFlag": "1", "status": None})
    server.succeed(DOWNLOAD_URL_PATH, "https://r2.example/signed/1.png?X-Amz-Signature=abc")
    task = await client.create_task("gpt4o/generate", {"prompt": "a cat", "size": "1:1", "nVariants": 2}, CB,
                                    endpoint="gpt4o")
    assert task == TaskCreated("task12345", "gpt4o")
    record = await client.record(TaskCreated("task12345", "gpt4o"))
    assert record.succeeded and len(record.result_urls) == 2
    signed = await client.signed_download_url("gpt4o", "task12345", record.result_urls[0])
    assert signed == "https://r2.example/signed/1.png?X-Amz-Signature=abc"
    create, status, sign = server.seen
    assert (create.path, create.json) == (GPT4O_CREATE, {"prompt": "a cat", "size": "1:1", "nVariants": 2,
                                                         "callBackUrl": CB})
    assert (status.method, status.path, status.query) == ("GET", GPT4O_RECORD, {"taskId": "task12345"})
    assert (sign.method, sign.path, sign.json) == ("POST", DOWNLOAD_URL_PATH,
                                                   {"taskId": "task12345", "url": "https://tempfile.example/1.png"})


async def test_a_download_link_that_is_not_a_url_is_a_bad_response(kie: tuple[ScriptedKie, KieClient]) -> None:
    server, client = kie
    server.succeed(DOWNLOAD_URL_PATH, {"url": "https://r2.example/x.png"})
    with pytest.raises(BadResponse):
        await client.signed_download_url("gpt4o", "t", "https://tempfile.example/1.png")
    server.succeed(DOWNLOAD_URL_PATH, "javascript:alert(1)")
    with pytest.raises(BadResponse):
        await client.signed_download_url("gpt4o", "t", "https://tempfile.example/1.png")


async def test_a_family_without_a_download_link_call_is_refused_before_any_request(
        kie: tuple[ScriptedKie, KieClient]) -> None:
    server, client = kie
    for family in ("flux-kontext", "suno", "jobs"):
        with pytest.raises(InvalidRequest, match="download-url"):
            await client.signed_download_url(family, "t", "https://tempfile.example/1.png")
    assert server.seen == []


async def test_a_flux_picture_is_created_and_read_back_through_the_client(kie: tuple[ScriptedKie, KieClient]) -> None:
    server, client = kie
    server.succeed(FLUX_CREATE, {"taskId": "flux1"})
    server.succeed(FLUX_RECORD, FLUX_RECORD_SAMPLE)
    task = await client.create_task("flux-kontext/edit/flux-kontext-pro", {"prompt": "add a hat", "inputImage": PIC},
                                    CB, endpoint="flux-kontext")
    record = await client.record(task)
    assert task == TaskCreated("flux1", "flux-kontext") and record.result_urls == ["https://result.example/r.jpg"]
    create, status = server.seen
    assert create.json == {"prompt": "add a hat", "inputImage": PIC, "model": "flux-kontext-pro",
                           "enableTranslation": True, "callBackUrl": CB}
    assert (status.path, status.query) == (FLUX_RECORD, {"taskId": "flux1"})
