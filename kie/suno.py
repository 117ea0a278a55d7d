"""Suno music and Suno lyrics: their create calls, record-info and stage callbacks, built and parsed.

Why it exists: Suno is not on the jobs API and speaks three shapes of its own (DEDICATED.md §3):
a ``status`` word with two intermediate stages (TEXT_SUCCESS, FIRST_SUCCESS), camelCase
``sunoData`` in record-info but snake_case ``data`` in callbacks, a callback per stage
(text -> first -> complete, the first two may be skipped), and ``CALLBACK_EXCEPTION``, which means
KIE failed to call *us* while the songs may well exist. Two songs per task, each with its
``id`` (the audioId extend and cover act on), title, cover picture, length and lyrics. The
adapters here map all of that onto :class:`~kie.models.TaskRecord` so the jobs path, the
deliverer and the ledger see what they see for any other family; only SUCCESS delivers and
charges, and code 531 ("credits refunded") is a failure.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from kie.dedicated import (
    DedicatedEndpoint,
    as_float,
    body_of,
    callback_parts,
    check_choice,
    check_flag,
    check_text,
    failure_code,
    first_text,
    record_parts,
    split_model_id,
)
from kie.endpoint import Request
from kie.errors import InvalidRequest
from kie.fields import as_int, as_text, callback_url_of, json_object, message_of
from kie.limiter import CREATE
from kie.models import Callback, ResultItem, TaskRecord, TaskState
from kie.validate import check_url

__all__ = [
    "LYRICS_PATH",
    "LYRICS_RECORD_PATH",
    "MODELS",
    "PATHS",
    "RECORD_PATH",
    "SUNO",
    "SUNO_LYRICS",
    "SunoEndpoint",
    "SunoLyricsEndpoint",
]

MODELS = ("V4", "V4_5", "V4_5PLUS", "V4_5ALL", "V5", "V5_5")
PATHS: Mapping[str, str] = {
    "generate": "/api/v1/generate",
    "extend": "/api/v1/generate/extend",
    "cover": "/api/v1/generate/upload-cover",
    "remix": "/api/v1/generate/upload-cover",  # a cover of one of our own results
    "upload-extend": "/api/v1/generate/upload-extend",
}
RECORD_PATH = "/api/v1/generate/record-info"
LYRICS_PATH = "/api/v1/lyrics"
LYRICS_RECORD_PATH = "/api/v1/lyrics/record-info"

REFUNDED = "531"  # "generation failed, your credits have been refunded"
SIMPLE_PROMPT_MAX = 500  # customMode false: the prompt is a description, lyrics are written by Suno
# title: 80 for generate; extend and cover allow 100 on these (DEDICATED.md §3.2 names V4_5ALL in neither list)
LONG_TITLE_MODELS = frozenset({"V4_5", "V4_5PLUS", "V5", "V5_5"})
LYRICS_PROMPT_MAX_WORDS = 200

_STATUS: Mapping[str, tuple[TaskState, str | None]] = {
    "PENDING": (TaskState.WAITING, None),
    "TEXT_SUCCESS": (TaskState.GENERATING, "text"),
    "FIRST_SUCCESS": (TaskState.GENERATING, "first"),
    "SUCCESS": (TaskState.SUCCESS, None),
    "CREATE_TASK_FAILED": (TaskState.FAIL, None),
    "GENERATE_AUDIO_FAILED": (TaskState.FAIL, None),
    "GENERATE_LYRICS_FAILED": (TaskState.FAIL, None),
    "SENSITIVE_WORD_ERROR": (TaskState.FAIL, None),
}
_STAGES: Mapping[str, tuple[TaskState, str | None]] = {
    "text": (TaskState.GENERATING, "text"),
    "first": (TaskState.GENERATING, "first"),
    "complete": (TaskState.SUCCESS, None),
    "error": (TaskState.FAIL, None),
}
CALLBACK_EXCEPTION = "CALLBACK_EXCEPTION"


# ---------------------------------------------------------------------- music


class SunoEndpoint(DedicatedEndpoint):
    """Suno music: generate, extend, cover/remix (upload-cover), upload-extend; one record-info for all."""

    record_path = RECORD_PATH

    @property
    def name(self) -> str:
        return "suno"

    def create_request(self, model: str, task_input: Mapping[str, Any], callback_url: str | None) -> Request:
        operation, variant = split_model_id(model, self.name, PATHS, MODELS)
        body = body_of(task_input, variant, callback_url)
        _check_music(operation, body)
        return Request("POST", PATHS[operation], CREATE, json=body)

    def record(self, data: Any, task_id: str) -> TaskRecord:
        record, found = record_parts(data, task_id, "Suno")
        response = record.get("response")
        songs = _songs(response.get("sunoData") if isinstance(response, Mapping) else None)
        raw = as_text(record.get("status"))
        state, stage = _STATUS.get(raw.upper(), (TaskState.UNKNOWN, None)) if raw else (TaskState.UNKNOWN, None)
        if raw and raw.upper() == CALLBACK_EXCEPTION:
            # KIE could not call us back; the songs may exist all the same (DEDICATED.md §1.2)
            state = TaskState.SUCCESS if songs else TaskState.FAIL
        code = failure_code(record.get("errorCode"))
        if code == REFUNDED:  # KIE refunded the credits: nothing to deliver, nothing to charge
            state, stage = TaskState.FAIL, None
        param = json_object(record.get("param"))
        return TaskRecord(
            task_id=found,
            model=as_text(param.get("model")) or "",
            state=state,
            result_urls=[song.url for song in songs],
            fail_code=code,
            fail_msg=as_text(record.get("errorMessage")),
            created_ms=as_int(record.get("createTime")),
            completed_ms=as_int(record.get("completeTime")),
            param=param or None,
            callback_url=callback_url_of(param),
            raw_state=raw,
            endpoint=self.name,
            items=songs,
            stage=stage,
        )

    def callback(self, body: Mapping[str, Any]) -> Callback:
        data, task_id, code = callback_parts(body, "Suno")
        songs = _songs(data.get("data"))
        state, stage, raw = _stage(data, code)
        return Callback(
            record=TaskRecord(
                task_id=task_id,
                model="",
                state=state,
                result_urls=[song.url for song in songs],
                fail_code=_callback_fail_code(code, state),
                fail_msg=message_of(body) if state is TaskState.FAIL else None,
                raw_state=raw,
                endpoint=self.name,
                items=songs,
                stage=stage,
            ),
            code=code,
            message=message_of(body),
        )


def _check_music(operation: str, body: dict[str, Any]) -> None:
    """What KIE documents for each Suno operation (DEDICATED.md §3.1-3.2), refused before any call."""
    model = body.get("model")
    if model not in MODELS:
        raise InvalidRequest(f"model must be one of {', '.join(MODELS)}")
    if operation in ("cover", "remix", "upload-extend"):
        check_url(body.get("uploadUrl"), "uploadUrl")
    if operation in ("generate", "cover", "remix"):
        if "customMode" not in body:  # a style or a title is only read in custom mode: asking for one says so
            body["customMode"] = any(_given(body, key) for key in ("style", "title"))
        body.setdefault("instrumental", False)
        custom = check_flag(body, "customMode")
        instrumental = bool(check_flag(body, "instrumental"))
        if not custom:
            check_text(body, "prompt", SIMPLE_PROMPT_MAX, required=True)
            for key in ("style", "title"):
                if _given(body, key):
                    raise InvalidRequest(f"{key} is read only in custom mode (customMode true)")
                body.pop(key, None)
        else:
            title_max = 80 if operation == "generate" or model not in LONG_TITLE_MODELS else 100
            _check_custom(body, model, title_max, lyrics_required=not instrumental)
    else:  # extend, upload-extend
        if operation == "extend":
            check_text(body, "audioId", 256, required=True)
        if "defaultParamFlag" not in body:  # own parameters given means "use mine", else the original's
            body["defaultParamFlag"] = any(_given(body, key) for key in ("prompt", "style", "title", "continueAt"))
        if check_flag(body, "defaultParamFlag"):
            instrumental = bool(check_flag(body, "instrumental"))
            title_max = 100 if model in LONG_TITLE_MODELS else 80
            _check_custom(body, model, title_max, lyrics_required=not instrumental)
            continue_at = as_float(body.get("continueAt"))
            if continue_at is None or continue_at <= 0 or isinstance(body.get("continueAt"), str):
                raise InvalidRequest("continueAt (seconds into the song, above 0) is required with defaultParamFlag")
    check_choice(body, "vocalGender", ("m", "f"))
    check_choice(body, "personaModel", ("style_persona", "voice_persona"))
    for key in ("styleWeight", "weirdnessConstraint", "audioWeight"):
        if key in body:
            weight = body[key]
            if isinstance(weight, bool) or not isinstance(weight, int | float) or not 0 <= weight <= 1:
                raise InvalidRequest(f"{key} must be a number from 0 to 1")


def _check_custom(body: Mapping[str, Any], model: str, title_max: int, *, lyrics_required: bool) -> None:
    prompt_max, style_max = (3000, 200) if model == "V4" else (5000, 1000)
    check_text(body, "style", style_max, required=True)
    check_text(body, "title", title_max, required=True)
    check_text(body, "prompt", prompt_max, required=lyrics_required, what="prompt (the lyrics)")


def _given(body: Mapping[str, Any], key: str) -> bool:
    value = body.get(key)
    return value is not None and not (isinstance(value, str) and not value.strip())


def _songs(entries: Any) -> tuple[ResultItem, ...]:
    """The songs of a record (camelCase ``sunoData``) or a callback (snake_case ``data``), those with audio."""
    if not isinstance(entries, list):
        return ()
    songs = []
    for entry in entries:
        if not isinstance(entry, Mapping):
            continue
        # public code falls back audio -> source (upload-cover/extend) -> stream: which is filled at
        # "first" is not documented
        url = first_text(entry, "audioUrl", "audio_url", "sourceAudioUrl", "source_audio_url",
                    "streamAudioUrl", "stream_audio_url", "sourceStreamAudioUrl", "source_stream_audio_url")
        if url is None:
            continue
        songs.append(ResultItem(
            url=url,
            title=first_text(entry, "title"),
            cover_url=first_text(entry, "imageUrl", "image_url", "sourceImageUrl", "source_image_url"),
            ref=first_text(entry, "id", "audioId", "audio_id"),
            duration=as_float(entry.get("duration")),
            lyrics=first_text(entry, "prompt"),
        ))
    return tuple(songs)


def _stage(data: Mapping[str, Any], code: int | None) -> tuple[TaskState, str | None, str | None]:
    """A stage callback's state: only ``complete`` succeeds; any code but 200 (531 too) is a failure."""
    raw = as_text(data.get("callbackType"))
    state, stage = _STAGES.get(raw.lower(), (TaskState.UNKNOWN, None)) if raw else (TaskState.UNKNOWN, None)
    if code is not None and code != 200:
        state, stage = TaskState.FAIL, None
    return state, stage, raw


def _callback_fail_code(code: int | None, state: TaskState) -> str | None:
    return str(code) if state is TaskState.FAIL and code is not None and code != 200 else None


# ---------------------------------------------------------------------- lyrics


class SunoLyricsEndpoint(DedicatedEndpoint):
    """Suno lyrics: ``POST /api/v1/lyrics {prompt}``; the result is text, two or three variants.

    The variants go in ``TaskRecord.result_object`` as ``[{"title", "text"}, ...]`` (a text model's
    place, as the jobs API's ``resultObject``); there are no files, so ``items`` stays empty.
    """

    record_path = LYRICS_RECORD_PATH

    @property
    def name(self) -> str:
        return "suno-lyrics"

    def create_request(self, model: str, task_input: Mapping[str, Any], callback_url: str | None) -> Request:
        split_model_id(model, self.name, ("generate",))
        body = body_of(task_input, None, callback_url)
        prompt = check_text(body, "prompt", 10_000, required=True)
        words = len((prompt or "").split())
        if words > LYRICS_PROMPT_MAX_WORDS:
            raise InvalidRequest(f"prompt is {words} words, over {LYRICS_PROMPT_MAX_WORDS}")
        return Request("POST", LYRICS_PATH, CREATE, json=body)

    def record(self, data: Any, task_id: str) -> TaskRecord:
        record, found = record_parts(data, task_id, "Suno lyrics")
        response = record.get("response")
        variants, errors = _lyrics(response.get("data") if isinstance(response, Mapping) else None)
        raw = as_text(record.get("status"))
        state = _STATUS.get(raw.upper(), (TaskState.UNKNOWN, None))[0] if raw else TaskState.UNKNOWN
        if raw and raw.upper() == CALLBACK_EXCEPTION:
            state = TaskState.SUCCESS if variants else TaskState.FAIL
        code = failure_code(record.get("errorCode"))
        if code == REFUNDED or (state is TaskState.SUCCESS and not variants):
            state = TaskState.FAIL  # a success with no words in it has nothing to give the user
        param = json_object(record.get("param"))
        return TaskRecord(
            task_id=found,
            model="",
            state=state,
            result_object=variants or None,
            fail_code=code,
            fail_msg=as_text(record.get("errorMessage")) or (errors[0] if errors and not variants else None),
            param=param or None,
            callback_url=callback_url_of(param),
            raw_state=raw,
            endpoint=self.name,
        )

    def callback(self, body: Mapping[str, Any]) -> Callback:
        data, task_id, code = callback_parts(body, "Suno lyrics")
        variants, errors = _lyrics(data.get("data"))
        state, _, raw = _stage(data, code)
        if state is TaskState.SUCCESS and not variants:
            state = TaskState.FAIL
        failed = state is TaskState.FAIL
        return Callback(
            record=TaskRecord(
                task_id=task_id,
                model="",
                state=state,
                result_object=variants or None,
                fail_code=_callback_fail_code(code, state),
                fail_msg=(message_of(body) if code != 200 else (errors[0] if errors else None)) if failed else None,
                raw_state=raw,
                endpoint=self.name,
            ),
            code=code,
            message=message_of(body),
        )


def _lyrics(entries: Any) -> tuple[list[dict[str, str]], list[str]]:
    """The variants with words in them as ``{"title", "text"}``, and the failed ones' error messages."""
    variants: list[dict[str, str]] = []
    errors: list[str] = []
    if not isinstance(entries, list):
        return variants, errors
    for entry in entries:
        if not isinstance(entry, Mapping):
            continue
        status = (as_text(entry.get("status")) or "").lower()
        text = first_text(entry, "text")
        if status == "failed" or text is None:
            error = first_text(entry, "errorMessage", "error_message")
            if error:
                errors.append(error)
            continue
        variants.append({"title": first_text(entry, "title") or "", "text": text})
    return variants, errors


SUNO = SunoEndpoint()
SUNO_LYRICS = SunoLyricsEndpoint()
