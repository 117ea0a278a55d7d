"""An audio or video file's length is measured from its bytes before anything goes to KIE: the
`duration` Telegram carries is what the sender's client declared, and a per-second price built on
a lie would be paid by us (KIE bills the real length). Through the jobs actor over real HTTP (the
fake Telegram serves the file, the fake KIE would make the task), on a real PostgreSQL."""

from __future__ import annotations

import pytest

from catalog import payload
from fakes.kie_api import CREATE_PATH
from tests.test_kie_poller import Make, World, world  # noqa: F401 - the jobs actor's world, shared
from tests.test_media_length import wav

pytestmark = pytest.mark.timeout(90)
AVATAR = "kling/ai-avatar-standard"  # priced per second of its audio_url, at most 15 s


async def avatar_job(w: World, user: int, audio: bytes, declared: float | None, mime: str = "audio/wav") -> int:
    tg = w.tg
    _, picture = tg.user_photo(user, b"\x89PNG\r\n\x1a\n" + b"0" * 200)
    sound = tg.add_file(audio, kind="audio", file_name="voice.wav", mime_type=mime)
    chosen = {"image_url": payload.file_ref(picture.file_id, "image/png", picture.size or 0),
              "audio_url": payload.file_ref(sound.file_id, mime, len(audio), declared),
              "prompt": "say it"}
    job = await w.job(user, AVATAR, chosen)
    return int(job.id)


async def test_a_15_second_wav_declared_as_1_second_is_released_before_kie_sees_it(world: Make) -> None:  # noqa: F811
    w = await world()
    job_id = await avatar_job(w, 7101, wav(15), 1.0)
    done = await w.told(job_id)
    assert (done.state, done.failure) == ("failed", "input_too_long")
    assert not w.kie.calls(CREATE_PATH), "nothing went to KIE"
    assert await w.ledger(7101) == ["top_up", "hold", "release"]
    text = w.sent(7101, "sendMessage")[-1].params["text"]
    assert "longer" in text and "money is back" in text


async def test_a_file_as_long_as_declared_goes_to_kie(world: Make) -> None:  # noqa: F811
    w = await world()
    job_id = await avatar_job(w, 7102, wav(5.4), 5.0)  # Telegram rounds to whole seconds
    done = await w.told(job_id)
    assert done.state == "succeeded"
    assert len(w.kie.calls(CREATE_PATH)) == 1


async def test_a_file_longer_than_the_field_takes_is_released_whatever_was_declared(world: Make) -> None:  # noqa: F811
    w = await world()
    job_id = await avatar_job(w, 7103, wav(20), 20.0)
    done = await w.told(job_id)
    assert (done.state, done.failure) == ("failed", "input_too_long")
    assert not w.kie.calls(CREATE_PATH)


async def test_audio_whose_length_cannot_be_read_is_released_with_a_plain_reason(world: Make) -> None:  # noqa: F811
    w = await world()
    job_id = await avatar_job(w, 7104, b"not a sound at all " * 100, 3.0, mime="audio/mpeg")
    done = await w.told(job_id)
    assert (done.state, done.failure) == ("failed", "input_unmeasurable")
    assert not w.kie.calls(CREATE_PATH)
    assert await w.ledger(7104) == ["top_up", "hold", "release"]
    assert "format" in w.sent(7104, "sendMessage")[-1].params["text"]
