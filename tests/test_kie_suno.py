"""Suno music and Suno lyrics adapters: requests as KIE documents them, and every documented answer shape.

The sample bodies are DEDICATED.md §3's (and KIE's record-info pages'), with the ⚠️ alternatives:
snake_case callbacks against camelCase records, stages text -> first -> complete -> error,
CALLBACK_EXCEPTION with and without songs, code 531 ("credits refunded").
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import pytest

from kie import BadResponse, InvalidRequest, KieClient, RetryPolicy, TaskCreated, TaskState
from kie.callbacks import parse_callback
from kie.families import ENDPOINTS, family_of
from kie.suno import LYRICS_PATH, LYRICS_RECORD_PATH, RECORD_PATH, SUNO, SUNO_LYRICS
from tests.kie_script import ScriptedKie

pytestmark = pytest.mark.timeout(30)

CB = "https://bot.example/kie-callback/tok/42"
KEY = "kie-test-key-0123456789abcdef"

SONG_RECORD: dict[str, Any] = {
    "taskId": "5c79be8e",
    "parentMusicId": "",
    "param": json.dumps({"prompt": "A calm piano track", "style": "Classical", "title": "Peaceful Piano",
                         "customMode": True, "instrumental": True, "model": "V5", "callBackUrl": CB}),
    "response": {"taskId": "5c79be8e", "sunoData": [
        {"id": "e231-a", "audioUrl": "https://example.cn/a.mp3", "streamAudioUrl": "https://example.cn/a",
         "imageUrl": "https://example.cn/a.jpeg", "prompt": "[Verse] night city", "modelName": "chirp-v3-5",
         "title": "Iron Man", "tags": "electrifying, rock", "createTime": "2025-01-01 00:00:00", "duration": 198.44},
        {"id": "e231-b", "audioUrl": "https://example.cn/b.mp3", "streamAudioUrl": "https://example.cn/b",
         "imageUrl": "https://example.cn/b.jpeg", "prompt": "[Verse] night city", "title": "Iron Man",
         "duration": "201.5"},
    ]},
    "status": "SUCCESS",
    "type": "GENERATE",
    "operationType": "generate",
    "errorCode": None,
    "errorMessage": None,
}

COMPLETE_CALLBACK: dict[str, Any] = {
    "code": 200, "msg": "All generated successfully.",
    "data": {"callbackType": "complete", "task_id": "2fac9f72", "data": [
        {"id": "e231-a", "audio_url": "https://x.example/a.mp3", "stream_audio_url": "https://x.example/a",
         "image_url": "https://x.example/a.jpeg", "prompt": "[Verse] ...", "model_name": "chirp-v3-5",
         "title": "Song", "tags": "rock", "createTime": "2025-01-01 00:00:00", "duration": 198.44},
        {"id": "e231-b", "audio_url": "https://x.example/b.mp3", "image_url": "https://x.example/b.jpeg",
         "title": "Song", "duration": 180},
    ]},
}


def custom_song(**extra: Any) -> dict[str, Any]:
    song = {"customMode": True, "instrumental": False, "style": "rock", "title": "Night", "prompt": "[Verse] la"}
    return song | extra


# ---------------------------------------------------------------------- requests


def test_every_suno_family_is_registered_under_its_catalog_name() -> None:
    assert ENDPOINTS["suno"] is SUNO and ENDPOINTS["suno-lyrics"] is SUNO_LYRICS
    assert family_of("suno/generate/V5") == "suno" and family_of("suno-lyrics/generate") == "suno-lyrics"


def test_generate_sends_the_variant_as_model_and_the_callback_and_drops_our_keys() -> None:
    request = SUNO.create_request("suno/generate/V4_5PLUS", custom_song(_price="12", _note=None), CB)
    assert (request.method, request.path, request.rate) == ("POST", "/api/v1/generate", "create")
    assert request.json == {"customMode": True, "instrumental": False, "style": "rock", "title": "Night",
                            "prompt": "[Verse] la", "model": "V4_5PLUS", "callBackUrl": CB}


def test_generate_without_a_public_base_sends_no_callback_and_lets_kie_answer() -> None:
    request = SUNO.create_request("suno/generate/V5", {"prompt": "a calm song"}, None)
    assert request.json is not None and "callBackUrl" not in request.json


def test_a_simple_song_is_custom_mode_false_with_instrumental_said_explicitly() -> None:
    request = SUNO.create_request("suno/generate/V5", {"prompt": "a calm song about the sea", "style": ""}, CB)
    assert request.json == {"prompt": "a calm song about the sea", "customMode": False, "instrumental": False,
                            "model": "V5", "callBackUrl": CB}


def test_a_style_or_title_without_custom_mode_means_custom_mode() -> None:
    request = SUNO.create_request("suno/generate/V5", {"style": "jazz", "title": "Blue", "instrumental": True}, CB)
    assert request.json is not None and request.json["customMode"] is True and "prompt" not in request.json


def test_extend_takes_its_model_from_the_input_and_uses_the_originals_parameters_by_default() -> None:
    request = SUNO.create_request("suno/extend", {"audioId": "e231-a", "model": "V5", "_parent": 7}, CB)
    assert (request.path, request.json) == ("/api/v1/generate/extend", {
        "audioId": "e231-a", "model": "V5", "defaultParamFlag": False, "callBackUrl": CB})


def test_extend_with_own_parameters_sends_default_param_flag_true() -> None:
    request = SUNO.create_request("suno/extend", custom_song(audioId="e231-a", model="V5", continueAt=60), CB)
    assert request.json is not None and request.json["defaultParamFlag"] is True


@pytest.mark.parametrize(("operation", "path"), [
    ("cover", "/api/v1/generate/upload-cover"),
    ("remix", "/api/v1/generate/upload-cover"),
    ("upload-extend", "/api/v1/generate/upload-extend"),
])
def test_cover_remix_and_upload_extend_go_to_their_paths(operation: str, path: str) -> None:
    task_input = {"uploadUrl": "https://files.example/song.mp3", "model": "V4_5"}
    task_input |= {"prompt": "make it jazz"} if operation != "upload-extend" else {}
    request = SUNO.create_request(f"suno/{operation}", task_input, CB)
    assert request.path == path and request.json is not None
    assert request.json["uploadUrl"] == "https://files.example/song.mp3" and request.json["callBackUrl"] == CB


def test_the_title_may_be_100_long_for_a_cover_on_v4_5_and_later_but_80_for_a_new_song() -> None:
    cover = custom_song(uploadUrl="https://files.example/s.mp3", title="t" * 100)
    SUNO.create_request("suno/cover/V5", cover, CB)
    with pytest.raises(InvalidRequest, match="title"):
        SUNO.create_request("suno/cover/V4", cover, CB)
    with pytest.raises(InvalidRequest, match="title"):
        SUNO.create_request("suno/generate/V5", custom_song(title="t" * 81), CB)


def test_lyrics_may_be_5000_long_except_on_v4_where_3000_is_the_limit() -> None:
    SUNO.create_request("suno/generate/V5", custom_song(prompt="l" * 5000), CB)
    with pytest.raises(InvalidRequest, match="prompt"):
        SUNO.create_request("suno/generate/V4", custom_song(prompt="l" * 3001), CB)
    with pytest.raises(InvalidRequest, match="style"):
        SUNO.create_request("suno/generate/V4", custom_song(style="s" * 201), CB)


@pytest.mark.parametrize(("model", "task_input", "words"), [
    ("suno/generate", {"prompt": "a song"}, "model"),
    ("suno/generate/V3_5", {"prompt": "a song"}, "variant"),
    ("suno/sing/V5", {"prompt": "a song"}, "operation"),
    ("veo/generate/V5", {"prompt": "a song"}, "suno/"),
    ("suno/generate/V5", {"prompt": "p" * 501}, "over 500"),
    ("suno/generate/V5", {"customMode": False, "prompt": "a song", "title": "x"}, "custom mode"),
    ("suno/generate/V5", {"customMode": "yes", "prompt": "a song"}, "customMode"),
    ("suno/generate/V5", {"customMode": True, "style": "rock", "prompt": "la"}, "title"),
    ("suno/generate/V5", {"customMode": True, "title": "t", "prompt": "la"}, "style"),
    ("suno/generate/V5", {"customMode": True, "style": "rock", "title": "t"}, "lyrics"),
    ("suno/generate/V5", custom_song(vocalGender="x"), "vocalGender"),
    ("suno/generate/V5", custom_song(styleWeight=1.5), "styleWeight"),
    ("suno/extend", {"model": "V5"}, "audioId"),
    ("suno/extend", custom_song(audioId="a", model="V5"), "continueAt"),
    ("suno/extend", {"audioId": "a", "model": "V5", "defaultParamFlag": True, "continueAt": 30}, "style"),
    ("suno/cover/V5", {"prompt": "jazz"}, "uploadUrl"),
    ("suno/remix/V5", {"prompt": "jazz", "uploadUrl": "ftp://files.example/s.mp3"}, "uploadUrl"),
    ("suno/upload-extend/V5", {}, "uploadUrl"),
])
def test_what_kie_documents_is_refused_locally(model: str, task_input: dict[str, Any], words: str) -> None:
    with pytest.raises(InvalidRequest, match=words):
        SUNO.create_request(model, task_input, CB)


def test_an_instrumental_in_custom_mode_needs_no_lyrics_and_skipped_fields_are_not_sent() -> None:
    request = SUNO.create_request("suno/generate/V5", {"customMode": True, "instrumental": True, "style": "ambient",
                                                       "title": "Drift", "prompt": "", "negativeTags": " "}, CB)
    assert request.json == {"customMode": True, "instrumental": True, "style": "ambient", "title": "Drift",
                            "model": "V5", "callBackUrl": CB}


# ---------------------------------------------------------------------- record-info


def test_the_documented_record_gives_two_songs_with_their_ids_covers_titles_and_lyrics() -> None:
    record = SUNO.record(SONG_RECORD, "5c79be8e")
    assert record.state is TaskState.SUCCESS and record.succeeded and record.raw_state == "SUCCESS"
    assert record.endpoint == "suno" and record.model == "V5" and record.callback_url == CB
    assert record.result_urls == ["https://example.cn/a.mp3", "https://example.cn/b.mp3"]
    first, second = record.items
    assert (first.ref, first.title, first.cover_url, first.duration, first.lyrics) == (
        "e231-a", "Iron Man", "https://example.cn/a.jpeg", 198.44, "[Verse] night city")
    assert second.ref == "e231-b" and second.duration == 201.5
    assert record.fail_code is None and record.stage is None and record.files() == record.items


@pytest.mark.parametrize(("status", "state", "stage"), [
    ("PENDING", TaskState.WAITING, None),
    ("TEXT_SUCCESS", TaskState.GENERATING, "text"),
    ("FIRST_SUCCESS", TaskState.GENERATING, "first"),
    ("SUCCESS", TaskState.SUCCESS, None),
    ("CREATE_TASK_FAILED", TaskState.FAIL, None),
    ("GENERATE_AUDIO_FAILED", TaskState.FAIL, None),
    ("SENSITIVE_WORD_ERROR", TaskState.FAIL, None),
    ("first_success", TaskState.GENERATING, "first"),
    ("SOMETHING_NEW", TaskState.UNKNOWN, None),
    (None, TaskState.UNKNOWN, None),
])
def test_each_status_word_maps_onto_a_state_and_a_stage(status: str | None, state: TaskState,
                                                        stage: str | None) -> None:
    record = SUNO.record(SONG_RECORD | {"status": status}, "5c79be8e")
    assert (record.state, record.stage, record.raw_state) == (state, stage, status)


def test_callback_exception_with_songs_is_a_success_since_only_our_callback_failed() -> None:
    record = SUNO.record(SONG_RECORD | {"status": "CALLBACK_EXCEPTION"}, "5c79be8e")
    assert record.succeeded and len(record.items) == 2 and record.raw_state == "CALLBACK_EXCEPTION"


def test_callback_exception_without_songs_is_a_failure() -> None:
    record = SUNO.record(SONG_RECORD | {"status": "CALLBACK_EXCEPTION", "response": {"sunoData": None}}, "t")
    assert record.failed and record.items == ()


def test_code_531_in_a_record_is_a_failure_whose_credits_were_refunded() -> None:
    record = SUNO.record({"taskId": "t", "status": "GENERATE_AUDIO_FAILED", "errorCode": 531,
                          "errorMessage": "generation failed, your credits have been refunded"}, "t")
    assert record.failed and record.fail_code == "531" and "refunded" in (record.fail_msg or "")
    odd = SUNO.record({"taskId": "t", "status": "PENDING", "errorCode": "531"}, "t")
    assert odd.failed and odd.fail_code == "531"


def test_a_song_falls_back_from_audio_to_source_to_stream_url_and_one_without_any_is_left_out() -> None:
    record = SUNO.record({"taskId": "t", "status": "FIRST_SUCCESS", "response": {"sunoData": [
        {"id": "a", "audioUrl": "", "sourceAudioUrl": "https://s.example/src.mp3",
         "streamAudioUrl": "https://s.example/a"},
        {"id": "b", "streamAudioUrl": "https://s.example/b"},
        {"id": "c", "audioUrl": None},
        "not a song",
    ]}}, "t")
    assert [(item.ref, item.url) for item in record.items] == [
        ("a", "https://s.example/src.mp3"), ("b", "https://s.example/b")]
    assert record.state is TaskState.GENERATING and record.stage == "first"


def test_a_record_that_is_not_an_object_is_a_bad_response() -> None:
    with pytest.raises(BadResponse):
        SUNO.record(None, "t")


# ---------------------------------------------------------------------- callbacks


def test_the_complete_callback_in_snake_case_gives_both_songs() -> None:
    callback = SUNO.callback(COMPLETE_CALLBACK)
    assert callback.task_id == "2fac9f72" and callback.code == 200
    assert callback.record.succeeded and callback.record.raw_state == "complete" and callback.record.stage is None
    assert [(i.ref, i.url, i.cover_url) for i in callback.record.items] == [
        ("e231-a", "https://x.example/a.mp3", "https://x.example/a.jpeg"),
        ("e231-b", "https://x.example/b.mp3", "https://x.example/b.jpeg")]
    assert SUNO.callback_task_id(COMPLETE_CALLBACK) == "2fac9f72"


@pytest.mark.parametrize("stage", ["text", "first"])
def test_text_and_first_callbacks_are_stages_of_a_running_task(stage: str) -> None:
    body = {"code": 200, "msg": f"{stage} generated", "data": {"callbackType": stage, "task_id": "t", "data": []}}
    record = SUNO.callback(body).record
    assert (record.state, record.stage, record.terminal) == (TaskState.GENERATING, stage, False)


def test_the_error_callback_with_data_null_is_a_failure_with_its_code() -> None:
    body = {"code": 501, "msg": "Audio generation failed", "data": {"callbackType": "error", "task_id": "t",
                                                                    "data": None}}
    record = SUNO.callback(body).record
    assert record.failed and record.fail_code == "501" and record.fail_msg == "Audio generation failed"


def test_a_531_callback_is_a_failure_whose_credits_were_refunded_whatever_its_stage() -> None:
    body = {"code": 531, "msg": "generation failed, your credits have been refunded",
            "data": {"callbackType": "complete", "task_id": "t", "data": []}}
    record = SUNO.callback(body).record
    assert record.failed and record.fail_code == "531" and "refunded" in (record.fail_msg or "")


def test_the_callback_route_reads_a_suno_body_with_or_without_the_family() -> None:
    for endpoint in (SUNO, None):
        callback = parse_callback(json.dumps(COMPLETE_CALLBACK).encode(), endpoint=endpoint)
        assert callback.task_id == "2fac9f72"


# ---------------------------------------------------------------------- lyrics


LYRICS_RECORD: dict[str, Any] = {
    "taskId": "11dc8b0f",
    "param": json.dumps({"prompt": "A song about peaceful night in the city", "callBackUrl": CB}),
    "response": {"taskId": "11dc8b0f", "data": [
        {"text": "[Verse]\nI cross the city", "title": "Iron Man", "status": "complete", "errorMessage": ""},
        {"text": "[Verse]\nLights", "title": "Night", "status": "complete", "errorMessage": ""},
        {"text": "", "title": "", "status": "failed", "errorMessage": "flagged"},
    ]},
    "status": "SUCCESS",
    "errorCode": None,
    "errorMessage": None,
}


def test_lyrics_are_asked_with_the_prompt_and_the_callback_only() -> None:
    request = SUNO_LYRICS.create_request("suno-lyrics/generate", {"prompt": "a night in the city", "_x": 1}, CB)
    assert (request.method, request.path) == ("POST", LYRICS_PATH)
    assert request.json == {"prompt": "a night in the city", "callBackUrl": CB}
    assert SUNO_LYRICS.record_request("t").path == LYRICS_RECORD_PATH


def test_a_lyrics_prompt_over_200_words_is_refused() -> None:
    SUNO_LYRICS.create_request("suno-lyrics/generate", {"prompt": " ".join(["word"] * 200)}, CB)
    with pytest.raises(InvalidRequest, match="200"):
        SUNO_LYRICS.create_request("suno-lyrics/generate", {"prompt": " ".join(["word"] * 201)}, CB)


def test_the_lyrics_record_gives_the_variants_as_text_and_no_files() -> None:
    record = SUNO_LYRICS.record(LYRICS_RECORD, "11dc8b0f")
    assert record.succeeded and record.endpoint == "suno-lyrics" and record.callback_url == CB
    assert record.result_object == [{"title": "Iron Man", "text": "[Verse]\nI cross the city"},
                                    {"title": "Night", "text": "[Verse]\nLights"}]
    assert record.items == () and record.result_urls == []


@pytest.mark.parametrize(("status", "state"), [
    ("PENDING", TaskState.WAITING), ("CREATE_TASK_FAILED", TaskState.FAIL),
    ("GENERATE_LYRICS_FAILED", TaskState.FAIL), ("SENSITIVE_WORD_ERROR", TaskState.FAIL),
    ("CALLBACK_EXCEPTION", TaskState.SUCCESS), ("NEW_WORD", TaskState.UNKNOWN),
])
def test_each_lyrics_status_maps_onto_a_state(status: str, state: TaskState) -> None:
    assert SUNO_LYRICS.record(LYRICS_RECORD | {"status": status}, "t").state is state


def test_lyrics_that_all_failed_are_a_failure_with_the_variants_message() -> None:
    data = LYRICS_RECORD | {"response": {"data": [{"text": "", "status": "failed", "errorMessage": "flagged"}]}}
    record = SUNO_LYRICS.record(data, "t")
    assert record.failed and record.fail_msg == "flagged" and record.result_object is None
    assert SUNO_LYRICS.record(data | {"status": "CALLBACK_EXCEPTION"}, "t").failed


def test_the_lyrics_callback_gives_the_variants_in_snake_case() -> None:
    body = {"code": 200, "msg": "All generated successfully.", "data": {"callbackType": "complete", "task_id": "t",
            "data": [{"text": "la la", "title": "A", "status": "complete", "error_message": ""},
                     {"text": "", "title": "", "status": "failed", "error_message": "flagged"}]}}
    record = SUNO_LYRICS.callback(body).record
    assert record.succeeded and record.result_object == [{"title": "A", "text": "la la"}]
    failed = SUNO_LYRICS.callback({"code": 400, "msg": "artist name", "data": {"callbackType": "error",
                                                                               "task_id": "t", "data": None}})
    assert failed.record.failed and failed.record.fail_code == "400" and failed.record.fail_msg == "artist name"


# ---------------------------------------------------------------------- through a real client over HTTP


@pytest.fixture
async def kie() -> AsyncIterator[tuple[ScriptedKie, KieClient]]:
    async with ScriptedKie() as server, KieClient(KEY, server.base_url, server.base_url, timeout=5,
                                               retry=RetryPolicy(attempts=2, base=0.01, cap=0.02)) as client:
        yield server, client


async def test_a_song_is_created_and_read_back_through_the_client(kie: tuple[ScriptedKie, KieClient]) -> None:
    server, client = kie
    server.succeed("/api/v1/generate", {"taskId": "5c79be8e"})
    server.succeed(RECORD_PATH, SONG_RECORD)
    task = await client.create_task("suno/generate/V5", {"prompt": "a calm piano song", "_p": 1}, CB,
                                    endpoint="suno")
    assert task == TaskCreated("5c79be8e", "suno")
    record = await client.record(TaskCreated("5c79be8e", "suno"))
    assert record.succeeded and [item.ref for item in record.items] == ["e231-a", "e231-b"]
    create, status = server.seen
    assert (create.method, create.path) == ("POST", "/api/v1/generate")
    assert create.json == {"prompt": "a calm piano song", "customMode": False, "instrumental": False,
                           "model": "V5", "callBackUrl": CB}
    assert create.authorization == f"Bearer {KEY}"
    assert (status.method, status.path, status.query) == ("GET", RECORD_PATH, {"taskId": "5c79be8e"})


async def test_lyrics_are_created_and_read_back_through_the_client(kie: tuple[ScriptedKie, KieClient]) -> None:
    server, client = kie
    server.succeed(LYRICS_PATH, {"taskId": "11dc8b0f"})
    server.succeed(LYRICS_RECORD_PATH, LYRICS_RECORD)
    task = await client.create_task("suno-lyrics/generate", {"prompt": "night city"}, CB, endpoint="suno-lyrics")
    record = await client.record(task)
    assert task == TaskCreated("11dc8b0f", "suno-lyrics") and record.succeeded and len(record.result_object) == 2
    assert [call.path for call in server.seen] == [LYRICS_PATH, LYRICS_RECORD_PATH]


async def test_a_refused_song_sends_nothing(kie: tuple[ScriptedKie, KieClient]) -> None:
    server, client = kie
    with pytest.raises(InvalidRequest):
        await client.create_task("suno/generate/V5", {"prompt": "p" * 501}, CB, endpoint="suno")
    assert server.seen == []
