"""A KIE callback is a wake-up, never a verdict (issue 17), through the real HTTP path: the jobs
actor in process against a real PostgreSQL, the fake KIE and the fake Telegram over HTTP, and
the callback route on its own aiohttp app (tests/test_kie_poller.py's `world`).

Whoever holds a job's callback URL (intermediaries log paths), or replays KIE's signed headers
with another body (the signature covers only taskId and timestamp), can post anything: the job
ends only as KIE's recordInfo says, a result is fetched only from where KIE's own record points,
a task a callback names is adopted only when KIE shows that task's request naming this job's URL,
and one job's URL opens no other job. A createTask whose answer was a CDN's page after KIE made
the task waits for that task; without callbacks it is released at its deadline and counted as a
possible orphan.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import time
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from catalog.loader import shipped
from catalog.model import Catalog
from fakes.kie_api import CREATE_PATH, RECORD_PATH, sign_callback
from kie import KieClient
from store import jobs, kie_callbacks
from telemetry.metrics import METRICS
from tests.procs import eventually
from tests.test_kie_poller import PHOTO_MODEL, Make, World, world

__all__ = ["world"]  # the fixture, shared with tests/test_kie_poller.py

pytestmark = pytest.mark.timeout(90)
HMAC_KEY = "kie-hmac-key-0123456789"
CLOUDFLARE_502 = ("<!DOCTYPE html><html><head><title>api.kie.ai | 502: Bad gateway</title></head><body>"
                  "<h1>Bad gateway</h1><p>Error code 502</p><p>Cloudflare Ray ID: 8f1e2d3c4b5a6978</p>"
                  "</body></html>")


@dataclasses.dataclass
class Trap:
    """A loopback "credentials" endpoint that records every hit, and a server redirecting to it."""

    url: str
    redirect_url: str
    hits: list[str]


@pytest.fixture
async def trap() -> AsyncIterator[Trap]:
    hits: list[str] = []

    async def credentials(request: web.Request) -> web.Response:
        hits.append(request.path)
        return web.Response(body=b"\x89PNG\r\n\x1a\nAWS_SECRET_ACCESS_KEY=loopback-only", content_type="image/png")

    runners: list[web.AppRunner] = []

    async def serve(app: web.Application) -> str:
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        runners.append(runner)
        return f"http://127.0.0.1:{runner.addresses[0][1]}"

    inner = web.Application()
    inner.router.add_get("/{tail:.*}", credentials)
    base = await serve(inner)

    async def redirect(request: web.Request) -> web.Response:
        hits.append(f"redirector:{request.path}")  # the redirector itself is loopback too
        raise web.HTTPFound(f"{base}/latest/meta-data/iam/credentials.png")

    outer = web.Application()
    outer.router.add_get("/{tail:.*}", redirect)
    redirector = await serve(outer)
    yield Trap(f"{base}/latest/meta-data/iam/credentials.png", f"{redirector}/result.png", hits)
    for runner in runners:
        await runner.cleanup()


def forged(task_id: str, state: str, urls: list[str] | None = None) -> dict[str, Any]:
    """A callback body in KIE's shape, saying what the sender likes."""
    data: dict[str, Any] = {"taskId": task_id, "model": PHOTO_MODEL, "state": state, "param": "{}",
                            "consumeCredits": 0, "remainedCredits": 1}
    if state == "success":
        data["resultJson"] = json.dumps({"resultUrls": urls or []})
    else:
        data.update(failCode="500", failMsg="internal error")
    return {"code": 200 if state == "success" else 501, "msg": "forged", "data": data}


async def post(url: str, body: dict[str, Any], headers: dict[str, str] | None = None) -> int:
    async with aiohttp.ClientSession() as session, session.post(url, json=body, headers=headers) as response:
        return response.status


async def acted_on(w: World) -> None:
    """Every stored callback was taken by the actor (marked applied once acted on)."""
    async def none_pending() -> bool:
        return not await kie_callbacks.pending_callbacks(w.money.db, w.money.bot_id)
    await eventually(none_pending, 15, "the callbacks acted on")


async def held_running(w: World, user: int) -> tuple[jobs.Job, str]:
    w.kie.plan(hold=True)
    job = await w.job(user)
    running = await w.state(job.id, "running")
    assert running.kie_task_id is not None
    return running, running.kie_task_id


async def test_a_forged_success_naming_a_loopback_server_fetches_nothing_and_the_job_ends_as_kie_says(
        world: Make, trap: Trap) -> None:
    w = await world()
    job, task_id = await held_running(w, 7101)
    url = w.settings.kie_callback_url(job.id)
    assert url is not None
    assert await post(url, forged(task_id, "success", [trap.url, trap.redirect_url])) == 200
    await acted_on(w)
    now = await jobs.job(w.money.db, job.id)
    assert now is not None and not now.finished and now.state == "running", "the body is no verdict"
    assert trap.hits == [], "nothing was fetched from the sender's URLs"
    assert await w.ledger(7101) == ["top_up", "hold"]
    w.kie.finish(task_id)
    done = await w.told(job.id)
    assert done.state == "succeeded" and (done.result or {}).get("urls") == w.kie.tasks[task_id].result_urls
    assert len(w.sent(7101, "sendPhoto")) == 1, "KIE's real result reached the user"
    assert trap.hits == []
    assert await w.ledger(7101) == ["top_up", "hold", "capture"]


async def test_a_forged_failure_does_not_release_the_hold_while_kies_task_runs(world: Make) -> None:
    w = await world()
    job, task_id = await held_running(w, 7102)
    url = w.settings.kie_callback_url(job.id)
    assert url is not None
    assert await post(url, forged(task_id, "fail")) == 200
    await acted_on(w)
    now = await jobs.job(w.money.db, job.id)
    assert now is not None and not now.finished
    assert await w.ledger(7102) == ["top_up", "hold"], "the money stays held while KIE works"
    assert not w.sent(7102, "sendMessage")[1:], "no apology"
    w.kie.finish(task_id)
    assert (await w.told(job.id)).state == "succeeded"
    assert await w.ledger(7102) == ["top_up", "hold", "capture"]


async def test_a_signed_callback_with_another_body_is_only_a_wake_up(world: Make, trap: Trap) -> None:
    w = await world(env={"KIE_WEBHOOK_HMAC_KEY": HMAC_KEY}, kie={"hmac_key": HMAC_KEY})
    job, task_id = await held_running(w, 7103)
    url = w.settings.kie_callback_url(job.id)
    assert url is not None
    stamp = str(int(time.time()))
    headers = {"X-Webhook-Timestamp": stamp, "X-Webhook-Signature": sign_callback(task_id, stamp, HMAC_KEY)}
    for body in (forged(task_id, "fail"), forged(task_id, "success", [trap.url])):
        assert await post(url, body, headers) == 200, "the signature covers only taskId and timestamp"
    await acted_on(w)
    now = await jobs.job(w.money.db, job.id)
    assert now is not None and not now.finished
    assert trap.hits == [] and await w.ledger(7103) == ["top_up", "hold"]
    w.kie.finish(task_id)
    assert (await w.told(job.id)).state == "succeeded"
    assert trap.hits == [] and await w.ledger(7103) == ["top_up", "hold", "capture"]


async def test_one_jobs_callback_url_opens_no_other_job_and_the_bot_wide_secret_opens_none(world: Make) -> None:
    w = await world()
    a, b = 71041, 71042
    url_a, url_b = w.settings.kie_callback_url(a), w.settings.kie_callback_url(b)
    assert url_a is not None and url_b is not None
    base = url_a.rsplit("/", 2)[0]
    token_b = url_b.rsplit("/", 2)[1]
    body = forged("task-x", "fail")
    assert await post(f"{base}/{token_b}/{a}", body) == 401, "job B's token on job A's URL"
    assert await post(f"{base}/{w.settings.kie_callback_secret}/{a}", body) == 401, "the old bot-wide secret"
    assert w.settings.kie_callback_secret not in url_a
    assert not await kie_callbacks.pending_callbacks(w.money.db, w.money.bot_id), "nothing stored"
    assert await post(url_a, body) == 200


async def test_a_callbacks_task_is_adopted_for_a_submitting_job_only_when_kie_shows_it_names_the_jobs_url(
        world: Make, caplog: pytest.LogCaptureFixture) -> None:
    w = await world(client_timeout=1.5, kie={"callbacks": False})
    other = await w.job(7105)  # a job of its own, with its own task
    other_task = (await w.told(other.id)).kie_task_id
    assert other_task is not None
    w.kie.plan(hold=True)
    w.kie.inject(CREATE_PATH, drop_after_create=True, hang=True)  # the task exists; the answer never comes
    job = await w.job(7106)
    waiting = await w.state(job.id, "submitting")
    assert waiting.kie_task_id is None
    own = w.task_of(job)
    url = w.settings.kie_callback_url(job.id)
    assert url is not None
    async with KieClient(w.settings.kie_api_key, w.settings.kie_api_base, w.settings.kie_upload_base) as client:
        stranger = await client.create_task(PHOTO_MODEL, {"prompt": "x"}, w.settings.kie_callback_url(job.id + 1000))
    with caplog.at_level(logging.WARNING, logger="trt.kie_poller"):
        for task_id in ("task_unknown_to_kie", stranger.task_id, other_task):
            assert await post(url, forged(task_id, "success", [own.callback_url or ""])) == 200
            await acted_on(w)
            now = await jobs.job(w.money.db, job.id)
            assert now is not None and (now.state, now.kie_task_id) == ("submitting", None), task_id
    unconfirmed = [r for r in caplog.records if r.getMessage() == "kie_callback_unconfirmed"]
    assert [getattr(r, "task_id", None) for r in unconfirmed] == ["task_unknown_to_kie", stranger.task_id,
                                                                   other_task], "each logged once"
    assert await post(url, forged(own.task_id, "fail")) == 200  # its own task, whatever the body says
    adopted = await w.state(job.id, "submitted", "running")
    assert adopted.kie_task_id == own.task_id
    w.kie.finish(own.task_id)
    done = await w.told(job.id)
    assert done.state == "succeeded" and len(w.sent(7106, "sendPhoto")) == 1
    assert [t.task_id for t in w.kie.tasks.values() if t.callback_url == url] == [own.task_id], \
        "never a second task for the job"
    assert await w.ledger(7106) == ["top_up", "hold", "capture"]


async def test_a_cloudflare_502_after_kie_made_the_task_waits_for_it_and_its_callback_delivers(world: Make) -> None:
    w = await world(kie={"duration": 1.0})
    w.kie.inject(CREATE_PATH, body=CLOUDFLARE_502, http_status=502, after_create=True)
    job = await w.job(7107)
    waiting = await w.state(job.id, "submitting", "submitted", "running")
    assert waiting.kie_task_id is None, "an edge's page says nothing of the task"
    done = await w.told(job.id)
    assert done.state == "succeeded" and len(w.kie.tasks) == 1, "exactly one task at KIE"
    assert done.kie_task_id in w.kie.tasks and len(w.kie.calls(CREATE_PATH)) == 1
    asked = [c for c in w.kie.calls(RECORD_PATH) if c.query.get("taskId") == done.kie_task_id]
    assert asked, "adopted on recordInfo's word"
    assert len(w.sent(7107, "sendPhoto")) == 1
    assert await w.ledger(7107) == ["top_up", "hold", "capture"]


async def test_without_callbacks_a_cloudflare_502_after_create_is_released_at_its_deadline_as_a_counted_orphan(
        world: Make, caplog: pytest.LogCaptureFixture) -> None:
    quick = dataclasses.replace(shipped().model(PHOTO_MODEL), timeout_seconds=2)
    w = await world(catalog=Catalog((quick,)), callbacks=False)
    w.kie.inject(CREATE_PATH, body=CLOUDFLARE_502, http_status=502, after_create=True)
    before = METRICS.kie_orphan_tasks._value.get()
    with caplog.at_level(logging.WARNING, logger="trt.kie_poller"):
        job = await w.job(7108)
        done = await w.told(job.id)
    assert (done.state, done.kie_task_id) == ("timed_out", None)
    assert len(w.kie.tasks) == 1 and len(w.kie.calls(CREATE_PATH)) == 1, "never a second, billed task"
    assert await w.ledger(7108) == ["top_up", "hold", "release"]
    assert METRICS.kie_orphan_tasks._value.get() == before + 1
    [line] = [r for r in caplog.records if r.getMessage() == "kie_orphan_task"]
    assert (getattr(line, "job_id", None), getattr(line, "model", None), getattr(line, "attempts", None)) == \
        (job.id, PHOTO_MODEL, 1)
    assert w.actor.health()["counts"]["orphaned"] == 1


async def test_a_task_made_behind_what_looked_like_kies_refusal_is_adopted_and_logged_as_misclassified(
        world: Make, caplog: pytest.LogCaptureFixture) -> None:
    w = await world()
    w.kie.plan(hold=True)
    refusal = json.dumps({"code": 500, "msg": "Server Error"})  # KIE's own refusal, yet the task was made
    w.kie.inject(CREATE_PATH, body=refusal, content_type="application/json", http_status=200, after_create=True,
                 count=4)
    with caplog.at_level(logging.WARNING, logger="trt.kie_poller"):
        job = await w.job(7109)

        async def back_to_created() -> jobs.Job | None:
            now = await jobs.job(w.money.db, job.id)
            return now if now is not None and now.state == "created" and now.attempts == 1 else None
        refused = await eventually(back_to_created, 30, "createTask refused, the job back to 'created'")
        assert refused.kie_task_id is None
        url = w.settings.kie_callback_url(job.id)
        assert url is not None
        made = [t.task_id for t in w.kie.tasks.values() if t.callback_url == url]
        assert made, "KIE made the task behind the refusal"
        assert await post(url, forged(made[0], "fail")) == 200
        adopted = await w.state(job.id, "submitted", "running")
    assert adopted.kie_task_id == made[0]
    [line] = [r for r in caplog.records if r.getMessage() == "kie_refusal_misclassified"]
    assert (getattr(line, "job_id", None), getattr(line, "task_id", None)) == (job.id, made[0])
    w.kie.finish(made[0])
    assert (await w.told(job.id)).state == "succeeded"
    assert await w.ledger(7109) == ["top_up", "hold", "capture"]


async def test_a_leaked_url_posted_in_a_loop_asks_kie_about_one_claimed_task_once(world: Make) -> None:
    """Each callback makes the actor ask recordInfo (our key's budget is 10/s for every job): the
    same claim about a task-less job is checked once, however often it is posted."""
    w = await world(client_timeout=1.5, kie={"callbacks": False})
    w.kie.plan(hold=True)
    w.kie.inject(CREATE_PATH, drop_after_create=True, hang=True)  # the task exists; the answer never comes
    job = await w.job(7130)
    await w.state(job.id, "submitting")
    url = w.settings.kie_callback_url(job.id)
    assert url is not None
    for _ in range(20):
        assert await post(url, forged("task_claimed_in_a_loop", "success")) == 200
    await acted_on(w)
    asked = [c for c in w.kie.calls(RECORD_PATH) if c.query.get("taskId") == "task_claimed_in_a_loop"]
    assert len(asked) == 1


async def test_a_callback_brings_a_running_jobs_poll_forward_but_never_closer_than_the_gap(world: Make) -> None:
    from generation.follow import CALLBACK_GAP
    from generation.track import Track

    w = await world()
    running, _task = await held_running(w, 7131)
    callback = kie_callbacks.Callback(0, running.id, running.kie_task_id, json.dumps(forged(_task, "success")),
                             running.created_at)
    track = Track(polled_at=time.monotonic(), next_poll=time.monotonic() + 20.0)
    job, acted = await w.actor.follower.apply_callback(running, track, callback)
    assert acted and job.id == running.id
    assert track.next_poll == track.polled_at + CALLBACK_GAP, "asked again CALLBACK_GAP after the last poll"
    track.next_poll = track.polled_at + 1.0  # due sooner anyway: a callback never delays a poll
    await w.actor.follower.apply_callback(running, track, callback)
    assert track.next_poll == track.polled_at + 1.0
