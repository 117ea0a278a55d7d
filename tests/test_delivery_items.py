"""Several files per result, text results and a running task's stages (issue 20), delivered through
the real HTTP path: generation's Deliverer, Follower and StatusMessages on a real PostgreSQL, the
fake Telegram over HTTP, the result files served over HTTP on loopback.

The jobs actor of tests/test_kie_poller.py's `world` is never granted its lease here (it does
nothing): the test drives the steps itself, with a task's record as a family's adapter makes it
(kie.models.TaskRecord with its items, stage or result_object), or with the fake KIE's own task
read through the real adapter (Suno's stages and songs, 4o's download-url). What is checked is
delivery's part: Suno's two songs in order, each with its title and cover, each recorded as a part
(a crash between them resumes at the second, never sends the first again), charged once, the
result kept with its items and KIE's task id; a lyrics result as messages; a stage change edits
the status message once per stage; a 4o picture its URL no longer gives comes through KIE's
signed download URL.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from catalog import payload
from catalog.loader import shipped
from catalog.model import Model
from generation import results, sending
from generation.context import JobContext
from generation.deliver import Deliverer
from generation.follow import Follower
from generation.results import jpeg_size
from generation.status import StatusMessages
from generation.track import Track
from ingest.bot_api import make_bot
from kie import KieClient, ResultItem, TaskCreated, TaskRecord, TaskState
from store import accounts, job_parts, jobs
from store.jobs import Created, Job, Order
from tests.procs import eventually
from tests.test_kie_poller import PHOTO_MODEL as PHOTO
from tests.test_kie_poller import TOKEN, Make, World, world  # noqa: F401  (world: the fixture)

pytestmark = pytest.mark.timeout(90)
MODEL = "suno/generate/V5"
LYRICS = "suno-lyrics/generate"
SONG_INPUT = {"prompt": "a song about the sea", "customMode": False, "instrumental": False}
PRICE = 1_000
SONG = (Path(__file__).parent.parent / "fakes" / "kie" / "media" / "tone.mp3").read_bytes()


def jpeg(width: int, height: int) -> bytes:
    """The smallest JPEG header that names its frame size (Telegram's fake never decodes it)."""
    app0 = b"\xff\xe0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00"
    sof0 = b"\xff\xc0\x00\x11\x08" + height.to_bytes(2, "big") + width.to_bytes(2, "big") + \
        b"\x03\x01\x22\x00\x02\x11\x01\x03\x11\x01"
    return b"\xff\xd8" + app0 + sof0 + b"\xff\xd9"


@dataclass
class Desk:
    """The steps of one process (a Deliverer, a Follower, the status messages) and the files' host."""

    w: World
    ctx: JobContext
    status: StatusMessages
    deliverer: Deliverer
    follower: Follower
    base: str
    model: Model

    def fresh(self) -> Deliverer:
        """Another process's Deliverer (a restart, a new leader): nothing remembered but the rows."""
        self.deliverer = Deliverer(self.ctx, self.status)
        self.follower = Follower(self.ctx, self.deliverer)
        return self.deliverer

    async def job(self, user: int, *, endpoint: str = "suno", task_id: str | None = None,
                  model: str = MODEL, chosen: dict[str, Any] | None = None) -> Job:
        """A confirmed job whose task runs at KIE, with its status message (the wizard's part)."""
        created = await self.confirmed(user, endpoint=endpoint, model=model, chosen=chosen)
        return await self.submitted(created, task_id or f"suno-task-{user}")

    async def submitted(self, job: Job, task_id: str) -> Job:
        db, m = self.w.money.db, self.w.money
        await jobs.mark_submitted(db, m.name, m.epoch, job.id, task_id)
        return (await jobs.record_poll(db, m.name, m.epoch, job.id, running=True)).job

    async def confirmed(self, user: int, *, endpoint: str = "suno", model: str = MODEL,
                        chosen: dict[str, Any] | None = None) -> Job:
        """What the wizard does at Confirm: the hold and the job, its status message."""
        db, m = self.w.money.db, self.w.money
        spec = shipped().model(model)
        await accounts.ensure_user(db, m.name, m.epoch, m.bot_id, user, "en", 0)
        await accounts.credit(db, m.name, m.epoch, m.bot_id, user, 10 * PRICE, f"seed:{user}")
        status_id = (await self.w.helper.send_message(user, "Accepted")).message_id
        order = Order(user_id=user, chat_id=user, nonce=f"n{user}-{time.monotonic_ns()}", model=model, sku="test",
                      input=payload.build(spec, chosen or SONG_INPUT), price=PRICE,
                      paid_with="money", day=date.today(), status_message_id=status_id, endpoint=endpoint)
        created = await jobs.confirm(db, m.name, m.epoch, m.bot_id, order, free_daily_limit=5, max_active=100)
        assert isinstance(created, Created), created
        return created.job

    def songs(self, job: Job, *, covers: tuple[str, str] = ("cover-small.jpg", "cover-small.jpg")) -> TaskRecord:
        """Suno's complete record: two songs, each with its title, cover, audioId and length."""
        items = (ResultItem(f"{self.base}/song-a.mp3", title="Sea Song", cover_url=f"{self.base}/{covers[0]}",
                            ref="audio-a", duration=121.4, lyrics="[Verse] the sea"),
                 ResultItem(f"{self.base}/song-b.mp3", title="Sea Song (take 2)", cover_url=f"{self.base}/{covers[1]}",
                            ref="audio-b", duration=98.0, lyrics="[Verse] the sea again"))
        assert job.kie_task_id is not None
        return TaskRecord(job.kie_task_id, "V5", TaskState.SUCCESS, result_urls=[i.url for i in items],
                          items=items, endpoint="suno", raw_state="SUCCESS")

    async def ledger(self, user: int) -> list[str]:
        return await self.w.ledger(user)

    async def parts(self, job: Job) -> list[str]:
        return list(await job_parts.parts(self.w.money.db, job.id))


@pytest.fixture
async def desk(world: Make) -> AsyncIterator[Desk]:  # noqa: F811
    async def song(request: web.Request) -> web.Response:
        return web.Response(body=SONG, content_type="audio/mpeg")

    async def cover(request: web.Request) -> web.Response:
        side = 100 if request.match_info["size"] == "small" else 1024
        return web.Response(body=jpeg(side, side), content_type="image/jpeg")

    app = web.Application()
    app.router.add_get("/song-{name}.mp3", song)
    app.router.add_get("/cover-{size}.jpg", cover)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    w = await world(env={"DOWNLOAD_TRUSTED_HOSTS": "127.0.0.1"}, grant=False)  # its actor never acts
    bot = make_bot(TOKEN, w.tg.base_url, timeout=10)
    client = KieClient(w.settings.kie_api_key, w.settings.kie_api_base, w.settings.kie_upload_base, timeout=5.0,
                       download_trusted_hosts=w.settings.download_trusted_hosts)
    catalog = shipped()
    ctx = JobContext(w.settings, w.money.db, bot, client, catalog, lambda: True, lambda: w.money.epoch)
    status = StatusMessages(ctx)
    deliverer = Deliverer(ctx, status)
    yield Desk(w, ctx, status, deliverer, Follower(ctx, deliverer), f"http://127.0.0.1:{runner.addresses[0][1]}",
               catalog.model(MODEL))
    await bot.session.close()
    await client.close()
    await runner.cleanup()


def audios(w: World, chat: int) -> list[Any]:
    return w.sent(chat, "sendAudio")


async def test_two_songs_go_in_order_each_with_its_title_and_cover_each_recorded_and_charged_once(
        desk: Desk) -> None:
    job = await desk.job(7301)
    record = desk.songs(job)
    done = await desk.follower.conclude(job, Track(), desk.model, record)
    assert done.state == "succeeded" and done.delivered_at is not None
    sent = audios(desk.w, 7301)
    assert [c.params.get("title") for c in sent] == ["Sea Song", "Sea Song (take 2)"], "in order, with titles"
    assert all(c.params.get("performer") == "Suno" for c in sent)
    assert all("thumbnail" in c.files for c in sent), "each song's cover as its thumbnail"
    assert [c.params.get("duration") for c in sent] == [121, 98]
    assert "a song about the sea" in (sent[0].params.get("caption") or "") and not sent[1].params.get("caption")
    assert not (sent[0].params.get("reply_markup") or {}).get("inline_keyboard"), "the buttons under the last only"
    assert sent[1].params["reply_markup"]["inline_keyboard"]
    assert await desk.parts(job) == ["0:audio", "1:audio"]
    assert await desk.ledger(7301) == ["top_up", "hold", "capture"]
    result = done.result or {}
    assert result["task_id"] == job.kie_task_id
    assert [(i["ref"], i["title"], i["duration"]) for i in result["items"]] == [
        ("audio-a", "Sea Song", 121.4), ("audio-b", "Sea Song (take 2)", 98.0)]
    assert result["items"][0]["cover"].endswith("/cover-small.jpg") and len(result["urls"]) == 2
    assert [s["as"] for s in result["sent"]] == ["audio", "audio"]
    assert "lyrics" not in str(result), "the songs' words are not kept in the result"


async def test_a_cover_too_large_for_a_thumbnail_leaves_the_song_without_one(desk: Desk) -> None:
    job = await desk.job(7302)
    done = await desk.follower.conclude(job, Track(), desk.model,
                                        desk.songs(job, covers=("cover-big.jpg", "cover-missing.png")))
    assert done.state == "succeeded"
    sent = audios(desk.w, 7302)
    assert len(sent) == 2 and not any("thumbnail" in c.files for c in sent)
    assert await desk.ledger(7302) == ["top_up", "hold", "capture"]


async def test_a_crash_after_the_first_song_resumes_with_the_second_only_and_charges_once(
        desk: Desk, monkeypatch: pytest.MonkeyPatch) -> None:
    named = results.file_name

    def crash_on_the_second(job: Job, url: str, kind: str) -> str:
        if url.endswith("/song-b.mp3"):
            raise RuntimeError("the process dies between the songs")
        return named(job, url, kind)

    monkeypatch.setattr(sending, "file_name", crash_on_the_second)
    job = await desk.job(7303)
    record = desk.songs(job)
    with pytest.raises(RuntimeError):
        await desk.follower.conclude(job, Track(), desk.model, record)
    assert [c.params.get("title") for c in audios(desk.w, 7303)] == ["Sea Song"]
    assert await desk.parts(job) == ["0:audio"]
    assert await desk.ledger(7303) == ["top_up", "hold"], "nothing charged before the end"

    monkeypatch.setattr(sending, "file_name", named)
    desk.fresh()  # a restart: only the rows remember
    again = await jobs.job(desk.w.money.db, job.id)
    assert again is not None
    done = await desk.follower.conclude(again, Track(), desk.model, record)
    assert done.state == "succeeded" and done.delivered_at is not None
    assert [c.params.get("title") for c in audios(desk.w, 7303)] == ["Sea Song", "Sea Song (take 2)"], \
        "the second song only, the first never again"
    assert await desk.parts(job) == ["0:audio", "1:audio"]
    assert await desk.ledger(7303) == ["top_up", "hold", "capture"]
    await desk.fresh().deliver(done, Track(), desk.model, record.result_urls, finish=True, items=record.items)
    assert len(audios(desk.w, 7303)) == 2, "a told job sends nothing more"


async def test_a_lyrics_result_goes_as_text_messages_in_order(desk: Desk) -> None:
    job = await desk.job(7304, endpoint="suno-lyrics", task_id="lyrics-task-7304", model=LYRICS,
                         chosen={"prompt": "a song about the sea"})
    variants = [{"title": "Sea", "text": "[Verse]\nWaves on the shore", "status": "complete"},
                {"title": "Tide", "text": "[Chorus]\nThe tide comes in" + " la" * 3000}]
    record = TaskRecord(job.kie_task_id or "", "lyrics", TaskState.SUCCESS, result_object=variants,
                        endpoint="suno-lyrics")
    done = await desk.follower.conclude(job, Track(), shipped().model(LYRICS), record)
    assert done.state == "succeeded"
    texts = [c.params["text"] for c in desk.w.sent(7304, "sendMessage")
             if c.result["message_id"] != job.status_message_id]
    assert len(texts) == 2
    assert "a song about the sea" in texts[0] and "Sea" in texts[0] and "Waves on the shore" in texts[0]
    assert "Tide" in texts[1] and "The tide comes in" in texts[1] and len(texts[1]) <= 4096
    assert not audios(desk.w, 7304)
    assert await desk.parts(job) == ["0:text", "1:text"]
    assert await desk.ledger(7304) == ["top_up", "hold", "capture"]
    result = done.result or {}
    assert result["kind"] == "text" and result["task_id"] == "lyrics-task-7304"
    assert [t["title"] for t in result["texts"]] == ["Sea", "Tide"]
    assert all(len(t["text"]) <= results.TEXT_MAX for t in result["texts"]), "the kept words are cut"
    assert [s["as"] for s in result["sent"]] == ["text", "text"]


async def test_a_stage_change_edits_the_status_message_once_per_stage_and_sends_nothing(desk: Desk) -> None:
    desk.status.edit_gap = 3600.0  # no edit but the first and the stages'
    job = await desk.job(7305)
    assert job.kie_task_id is not None
    track = Track()

    def running(stage: str | None) -> TaskRecord:
        return TaskRecord(job.kie_task_id or "", "V5", TaskState.GENERATING, stage=stage, endpoint="suno",
                          raw_state={None: "PENDING", "text": "TEXT_SUCCESS", "first": "FIRST_SUCCESS"}[stage])

    for stage in (None, "text", "text", "first", "first"):
        job = await desk.follower.apply_record(job, track, running(stage))
        await desk.status.progress(job, track, desk.model)
        await desk.status.progress(job, track, desk.model)
    edits = [c.params["text"] for c in desk.w.tg.calls("editMessageText", 7305) if c.ok]
    assert sum("Lyrics ready, composing" in e for e in edits) == 1, edits
    assert sum("The first song is ready, the second is coming" in e for e in edits) == 1, edits
    assert len(edits) == 3, "the first look, then one edit per stage"
    assert not audios(desk.w, 7305) and await desk.parts(job) == []
    assert await desk.ledger(7305) == ["top_up", "hold"], "nothing charged before SUCCESS"
    # the end: delivered and charged once, the status message's last word said
    done = await desk.follower.conclude(job, track, desk.model, desk.songs(job))
    assert done.state == "succeeded" and len(audios(desk.w, 7305)) == 2
    assert await desk.ledger(7305) == ["top_up", "hold", "capture"]


async def test_a_4o_picture_its_url_no_longer_gives_comes_through_kies_signed_download_url(desk: Desk) -> None:
    desk.w.kie.plan("gpt4o", duration=0.05, file_faults={0: (404, None)}, count=1)  # the first URL gone
    created = await desk.ctx.kie.create_task("gpt4o/generate", {"prompt": "a fox", "size": "1:1"}, endpoint="gpt4o")

    async def finished() -> TaskRecord | None:
        record = await desk.ctx.kie.record(TaskCreated(created.task_id, "gpt4o"))
        return record if record.terminal else None
    record = await eventually(finished, 20, "the 4o task done")
    assert record.succeeded and record.result_urls
    model = shipped().model(PHOTO)
    job = await desk.job(7306, endpoint="gpt4o", task_id=created.task_id, model=PHOTO, chosen={"prompt": "a fox"})
    done = await desk.follower.conclude(job, Track(), model, record)
    assert done.state == "succeeded"
    assert len(desk.w.sent(7306, "sendPhoto")) == 1 and len(desk.w.sent(7306, "sendDocument")) == 1
    assert len(desk.w.kie.calls("/api/v1/gpt4o-image/download-url")) == 1, "asked once for a fresh URL"
    assert await desk.ledger(7306) == ["top_up", "hold", "capture"]


async def test_a_song_the_fake_kie_makes_passes_its_stages_and_arrives_as_two_songs_in_order(desk: Desk) -> None:
    """The Suno adapter and the fake's Suno together: text -> first -> complete, as recordInfo says."""
    desk.status.edit_gap = 3600.0
    desk.w.kie.plan("suno", duration=2.0, count=1)
    job = await desk.confirmed(7307)
    created = await desk.ctx.kie.create_task(
        MODEL, SONG_INPUT, desk.w.settings.kie_callback_url(job.id), endpoint="suno")
    job = await desk.submitted(job, created.task_id)
    track = Track()

    async def told() -> Job | None:
        nonlocal job
        job = await desk.follower.poll(job, track, desk.model, overdue=False)
        if not job.finished:
            await desk.status.progress(job, track, desk.model)
        return job if job.delivered_at is not None else None
    done = await eventually(told, 30, "the song delivered", interval=0.1)
    assert done.state == "succeeded"
    sent = audios(desk.w, 7307)
    result = done.result or {}
    assert [c.params.get("title") for c in sent] == [i["title"] for i in result["items"]] and len(sent) == 2
    assert all(i["ref"] for i in result["items"]) and result["task_id"] == created.task_id
    assert await desk.parts(job) == ["0:audio", "1:audio"]
    edits = [c.params["text"] for c in desk.w.tg.calls("editMessageText", 7307) if c.ok]
    assert sum("Lyrics ready, composing" in e for e in edits) <= 1, edits
    assert sum("The first song is ready" in e for e in edits) <= 1, edits
    assert await desk.ledger(7307) == ["top_up", "hold", "capture"]


async def test_lyrics_the_fake_kie_writes_arrive_as_one_message_per_variant(desk: Desk) -> None:
    desk.w.kie.plan("suno-lyrics", duration=0.3, count=1)
    job = await desk.confirmed(7308, endpoint="suno-lyrics", model=LYRICS, chosen={"prompt": "a song about the sea"})
    created = await desk.ctx.kie.create_task(LYRICS, {"prompt": "a song about the sea"},
                                             desk.w.settings.kie_callback_url(job.id), endpoint="suno-lyrics")
    job = await desk.submitted(job, created.task_id)
    track, model = Track(), shipped().model(LYRICS)

    async def told() -> Job | None:
        nonlocal job
        job = await desk.follower.poll(job, track, model, overdue=False)
        return job if job.delivered_at is not None else None
    done = await eventually(told, 30, "the lyrics delivered", interval=0.1)
    assert done.state == "succeeded"
    variants = (done.result or {})["texts"]
    assert len(variants) >= 2
    messages = [c.params["text"] for c in desk.w.sent(7308, "sendMessage")
                if c.result["message_id"] != job.status_message_id]
    assert len(messages) == len(variants)
    assert all(v["text"][:40] in m for v, m in zip(variants, messages, strict=True)), "in order"
    assert await desk.parts(job) == [f"{i}:text" for i in range(len(variants))]
    assert await desk.ledger(7308) == ["top_up", "hold", "capture"]


def test_a_jpegs_size_is_read_from_its_frame_header() -> None:
    assert jpeg_size(jpeg(100, 80)) == (100, 80)
    assert jpeg_size(b"\x89PNG\r\n\x1a\n") is None
    assert jpeg_size(b"\xff\xd8\xff\xd9") is None
