"""catalog/payload.py: the job input keeps Telegram file references until submission, then
becomes what KIE takes; nothing unresolved and no unknown field ever reaches KIE."""

from __future__ import annotations

import pytest

from catalog.loader import shipped
from catalog.payload import JOB_KEY, build, file_ref, file_refs, job_refs, literal, media_seconds, resolve

CATALOG = shipped()


def test_defaults_fill_what_the_user_did_not_choose_and_choices_override_them() -> None:
    model = CATALOG.model("z-image")
    payload = build(model, {"prompt": "a cat", "aspect_ratio": "16:9"})
    assert payload == {"prompt": "a cat", "aspect_ratio": "16:9", "nsfw_checker": True}


def test_a_single_file_field_gets_one_reference_and_a_list_field_a_list() -> None:
    edit = CATALOG.model("google/nano-banana-edit")
    media = [f for f in edit.fields if f.media]
    assert media, "an edit model takes images"
    ref = file_ref("AgAD-1", "image/jpeg", 1234)
    payload = build(edit, {"prompt": "make it blue", media[0].name: ref})
    value = payload[media[0].name]
    assert value == ([ref] if media[0].array else ref)
    assert list(file_refs(payload)) == [ref]
    resolved = resolve(payload, {"AgAD-1": "https://kie.example/u/1.jpg"})
    assert resolved[media[0].name] == (["https://kie.example/u/1.jpg"] if media[0].array
                                       else "https://kie.example/u/1.jpg")
    assert "AgAD-1" not in str(resolved)


def test_an_unknown_field_or_an_unresolved_reference_is_refused() -> None:
    model = CATALOG.model("z-image")
    with pytest.raises(KeyError, match="no field"):
        build(model, {"prompt": "x", "seed": 1})
    payload = {"image_url": file_ref("f1", "image/png", 10)}
    with pytest.raises(KeyError):
        resolve(payload, {})


def test_job_references_become_task_ids_and_lengths_come_from_the_references() -> None:
    payload = {"task_id": {"job_id": 42}, "audio_url": file_ref("a1", "audio/mpeg", 99, seconds=12.5)}
    assert list(job_refs(payload)) == [42]
    assert resolve(payload, {"a1": "https://u/a.mp3"}, {42: "task_abc"}) == {
        "task_id": "task_abc", "audio_url": "https://u/a.mp3"}
    avatar = next(m for m in CATALOG.models if any(f.kind == "audio" for f in m.fields))
    audio = next(f for f in avatar.fields if f.kind == "audio")
    assert media_seconds(avatar, {audio.name: file_ref("a1", "audio/mpeg", 99, seconds=12.5)}) == {audio.name: 12.5}


def test_an_input_is_literal_only_without_a_file_an_earlier_job_or_a_text_to_speak() -> None:
    """What may go to KIE as it is, so a Confirm can commit createTask's intent with its job."""
    assert literal({"prompt": "a cat", "n": 2, "sizes": ["1:1"], "opts": {"a": 1}})
    photo = file_ref("AgAD", "image/jpeg", 1000)
    assert not literal({"prompt": "a cat", "image_urls": [photo]})
    assert not literal({"image": photo})
    assert not literal({"task": {JOB_KEY: 12}})
    assert not literal({"tasks": [{JOB_KEY: 12}]})
    assert not literal({"audio": {"speak": "hello", "tts": "elevenlabs", "voice": None, "seconds": 1.0}})
    plain = {"prompt": "a cat", "n": 2, "sizes": ["1:1"]}
    assert resolve(plain, {}) == plain, "a literal input resolves to itself with nothing to look up"
    for referring in ({"image_urls": [photo]}, {"task": {JOB_KEY: 12}}, {"tasks": [{JOB_KEY: 12}]},
                      {"audio": {"speak": "hello", "tts": "elevenlabs", "voice": None, "seconds": 1.0}}):
        with pytest.raises(KeyError):
            resolve(referring, {})
