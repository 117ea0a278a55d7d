"""A job's input between Confirm and createTask: the model's fields as KIE names them, with the
user's files still as references to Telegram, resolved to URLs only when the task is submitted.

The wizard stores what the user chose (and the files they sent, as FileRef) in the job under the
fence; the jobs actor, when it submits, downloads each file through the Bot API, uploads it to
KIE's upload service and puts the URL in its place. A Telegram file URL holds the bot token, so
it never goes into an input: only these references do, until they become KIE's own URLs. A field
of kind `task` (an earlier result, e.g. to upscale) holds a JobRef until the actor puts that
job's KIE task id in its place. An audio field that speaks typed text (catalog.model.Speech)
may hold a Spoken value instead of a file: the actor has the text spoken first, in the same job,
and puts the speech's result URL in its place.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from typing import Any, TypedDict

from catalog.model import SPEAK_KEY, Model, Speech, spoken

FILE_KEY = "tg_file_id"
JOB_KEY = "job_id"


class FileRef(TypedDict):
    """A file the user sent in the chat: its Telegram file_id, type, size, and length if it plays."""

    tg_file_id: str
    mime: str
    bytes: int
    seconds: float | None


class JobRef(TypedDict):
    job_id: int


class Spoken(TypedDict):
    """A text to be spoken by `tts` (in `voice`, None: its default) before the job's own task; its
    estimated `seconds` are what the audio field's per-second price counts."""

    speak: str
    tts: str
    voice: Any
    seconds: float


def spoken_ref(speech: Speech, text: str) -> Spoken:
    return {"speak": text, "tts": speech.model, "voice": speech.voice, "seconds": float(speech.seconds(text))}


def is_spoken(value: object) -> bool:
    return spoken(value) is not None


def spoken_fields(payload: Mapping[str, Any]) -> dict[str, Mapping[str, Any]]:
    """The fields of the input that hold a text to speak, by name."""
    return {name: found for name, value in payload.items() if (found := spoken(value)) is not None}


def file_ref(file_id: str, mime: str, size: int, seconds: float | None = None) -> FileRef:
    """A file's reference; a length that is missing, zero, negative or not a number is unknown
    (None): Telegram's `duration` is whatever the sender declared, and 0 s would price at 0."""
    return {"tg_file_id": file_id, "mime": mime, "bytes": size, "seconds": _known(seconds)}


def _known(seconds: float | None) -> float | None:
    return float(seconds) if seconds is not None and math.isfinite(seconds) and seconds > 0 else None


def is_file_ref(value: object) -> bool:
    return isinstance(value, Mapping) and isinstance(value.get(FILE_KEY), str)


def is_job_ref(value: object) -> bool:
    return isinstance(value, Mapping) and isinstance(value.get(JOB_KEY), int) and not isinstance(
        value.get(JOB_KEY), bool)


def build(model: Model, chosen: Mapping[str, Any]) -> dict[str, Any]:
    """The input to store with the job: every field with a default (never-asked ones included),
    overridden by what the user chose; a media field holds one FileRef or a list of them, as the
    model's field takes one URL or a list. Unknown names are refused: they would reach KIE."""
    names = {f.name for f in model.fields}
    unknown = sorted(set(chosen) - names)
    if unknown:
        raise KeyError(f"{model.id} has no field {', '.join(unknown)}")
    out = model.defaults()
    for name, value in chosen.items():
        field = model.field(name)
        if field.media and not field.array and isinstance(value, list):
            if len(value) != 1:
                raise ValueError(f"{model.id}.{name} takes one file, got {len(value)}")
            value = value[0]
        if field.media and field.array and not isinstance(value, list):
            value = [value]
        out[name] = value
    return out


def file_refs(payload: Mapping[str, Any]) -> Iterator[FileRef]:
    """Every file reference in the input, in field order, a list's items in order."""
    for value in payload.values():
        for item in value if isinstance(value, list) else [value]:
            if is_file_ref(item):
                yield item


def job_refs(payload: Mapping[str, Any]) -> Iterator[int]:
    for value in payload.values():
        if is_job_ref(value):
            yield int(value[JOB_KEY])


def literal(payload: Mapping[str, Any]) -> bool:
    """Whether the input goes to KIE as it is: no file to fetch and upload, no earlier job's task
    to look up, no text to speak first (what resolve() replaces), so createTask can leave at once."""
    return not any(is_file_ref(item) or is_job_ref(item) or is_spoken(item)
                   for value in payload.values() for item in (value if isinstance(value, list) else [value]))


def resolve(payload: Mapping[str, Any], urls: Mapping[str, str], task_ids: Mapping[int, str] | None = None,
            speech: Mapping[str, str] | None = None) -> dict[str, Any]:
    """The input as KIE takes it: each FileRef replaced by the URL of its upload (keyed by
    file_id), each JobRef by that job's KIE task id, each Spoken text by the URL of its speech
    (keyed by field name). A reference left unresolved is an error, never sent."""
    task_ids = task_ids or {}
    speech = speech or {}

    def one(item: Any) -> Any:
        if is_spoken(item):
            raise KeyError(f"a text to speak: {str(item[SPEAK_KEY])[:40]!r}")
        if is_file_ref(item):
            return urls[item[FILE_KEY]]
        if is_job_ref(item):
            return task_ids[int(item[JOB_KEY])]
        return item

    return {name: speech[name] if is_spoken(value) and name in speech
            else [one(i) for i in value] if isinstance(value, list) else one(value)
            for name, value in payload.items()}


def media_seconds(model: Model, payload: Mapping[str, Any]) -> dict[str, float]:
    """The length of each metered media field (what Model.credits needs), from its FileRefs; a
    length not positive (a reference stored before file_ref refused it) counts as unknown."""
    out: dict[str, float] = {}
    for field in model.fields:
        if not field.media or field.name not in payload:
            continue
        value = payload[field.name]
        said = spoken(value)
        if said is not None:  # a text to speak: the seconds the catalog's rule estimates it plays for
            estimate = field.speak.seconds(said[SPEAK_KEY]) if field.speak is not None else said.get("seconds")
            if (known := _known(estimate)) is not None:
                out[field.name] = known
            continue
        seconds = [known for r in (value if isinstance(value, list) else [value])
                   if is_file_ref(r) and (known := _known(r.get("seconds"))) is not None]
        if seconds:
            out[field.name] = float(sum(seconds))
    return out
