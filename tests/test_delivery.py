"""Delivery progress is durable (issue 17), through the real HTTP path: the jobs actor on a real
PostgreSQL, the fake KIE and the fake Telegram over HTTP (tests/test_kie_poller.py's `world`).

What is checked: a result that reached the user is never refunded and never sent twice (a later
file gone for good, a later file failing for a while, a new leader after a partial delivery);
Telegram's 413 falls through photo -> document -> link; a delivery that keeps raising ends within
its bound; the status message's last word comes after the files and is retried until said; a
status message recorded after a fast end still gets its last word.
"""

from __future__ import annotations

from typing import Any

import pytest

from actors.kie_poller import KiePoller
from actors.mailbox import Mailbox
from catalog.loader import shipped
from generation import sending, status
from ingest.bot_api import make_bot
from kie import KieClient
from messages.jobs import WakeJobs
from messages.roles import CurrentRole, RoleQuery
from store import jobs
from tests.procs import eventually
from tests.test_kie_poller import TOKEN, Make, World, world  # noqa: F401  (world: the fixture)

pytestmark = pytest.mark.timeout(90)
MONEY_BACK = "The money is back"


def texts_to(w: World, chat: int) -> list[str]:
    return [c.params.get("text", "") for c in w.sent(chat, "sendMessage")]


def statuses(w: World, method: str, chat: int) -> list[int | None]:
    return [c.status for c in w.tg.calls(method, chat)]


async def test_a_second_result_gone_for_good_leaves_the_first_with_the_user_names_the_missing_one_and_captures(
        world: Make) -> None:  # noqa: F811
    w = await world()
    w.kie.plan(result_count=2, file_faults={1: (404, None)})
    job = await w.job(7101)
    done = await w.told(job.id)
    assert done.state == "succeeded"
    assert len(w.sent(7101, "sendPhoto")) == 1 and len(w.sent(7101, "sendDocument")) == 1, "the first, once"
    assert any("Result 2 of 2 could not be delivered" in t for t in texts_to(w, 7101)), texts_to(w, 7101)
    assert not any(MONEY_BACK in t for t in texts_to(w, 7101))
    assert await w.ledger(7101) == ["top_up", "hold", "capture"]


async def test_a_second_result_failing_for_a_while_is_sent_later_and_the_first_only_once(world: Make) -> None:  # noqa: F811
    w = await world()
    w.actor.deliverer.retry_gap = 0.5  # attempts every 0.5 s, 1 s, 1.5 s, ...
    w.kie.plan(result_count=2, file_faults={1: (503, 8.0)})  # longer than the client's own retries
    job = await w.job(7102)
    done = await w.told(job.id, timeout=40)
    assert done.state == "succeeded"
    assert len(w.sent(7102, "sendPhoto")) == 2 and len(w.sent(7102, "sendDocument")) == 2, "each result once"
    assert not any(MONEY_BACK in t for t in texts_to(w, 7102))
    assert await w.ledger(7102) == ["top_up", "hold", "capture"]


async def test_telegrams_413_sends_the_picture_as_a_file_and_then_as_a_link(world: Make) -> None:  # noqa: F811
    w = await world()
    w.tg.inject("sendPhoto", status=413, description="Request Entity Too Large", count=1)
    job = await w.job(7103)
    done = await w.told(job.id)
    assert done.state == "succeeded"
    assert statuses(w, "sendPhoto", 7103) == [413], "a 413 is not tried again"
    assert statuses(w, "sendDocument", 7103) == [200]
    assert await w.ledger(7103) == ["top_up", "hold", "capture"]

    w.tg.inject("sendPhoto", status=413, description="Request Entity Too Large", count=1)
    w.tg.inject("sendDocument", status=400, description="Bad Request: file is too big", count=1)
    second = await w.job(7104)
    done = await w.told(second.id)
    assert done.state == "succeeded"
    assert statuses(w, "sendPhoto", 7104) == [413] and statuses(w, "sendDocument", 7104) == [400]
    link = w.sent(7104, "sendMessage")[-1]
    assert (done.result or {})["urls"][0] in link.params["text"]
    assert await w.ledger(7104) == ["top_up", "hold", "capture"]


async def test_a_delivery_that_raises_every_time_ends_within_its_bound_released_with_an_apology(
        world: Make, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: F811
    def broken(*args: Any) -> str:
        raise RuntimeError("a bug in delivery")

    monkeypatch.setattr(sending, "file_name", broken)
    w = await world()
    w.actor.deliverer.retry_gap = 0.1
    job = await w.job(7105)
    done = await w.told(job.id, timeout=30)
    assert (done.state, done.failure) == ("failed", "delivery")
    assert MONEY_BACK in texts_to(w, 7105)[-1]
    assert await w.ledger(7105) == ["top_up", "hold", "release"]
    assert not w.sent(7105, "sendPhoto")


async def test_done_is_said_after_the_files_and_a_429_on_it_is_tried_again(
        world: Make, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: F811
    monkeypatch.setattr(status, "EDIT_GAP", 3600.0)  # one progress edit, then only the last word
    w = await world()
    w.actor.status.edit_gap = 3600.0
    w.actor.deliverer.retry_gap = 0.2
    w.kie.plan(hold=True)
    job = await w.job(7106)

    async def edited() -> bool | None:
        return any(c.ok for c in w.tg.calls("editMessageText", 7106)) or None
    await eventually(edited, 20, "a progress edit")
    w.tg.inject("editMessageText", status=429, retry_after=1, count=1)
    w.kie.finish(w.task_of(job).task_id)
    done = await w.told(job.id)
    assert done.state == "succeeded"
    calls = w.tg.calls(chat_id=7106)
    edits = [(i, c) for i, c in enumerate(calls) if c.method == "editMessageText" and "Done" in c.params["text"]]
    assert [c.status for _, c in edits] == [429, 200], "the last word, refused once, said again"
    document = next(i for i, c in enumerate(calls) if c.method == "sendDocument" and c.ok)
    assert edits[0][0] > document, "said after the files went out"
    shown = next(m for m in w.tg.chat_messages(7106) if m["message_id"] == done.status_message_id)
    assert "Done" in shown["text"]


async def test_a_new_leader_after_a_partial_delivery_resumes_at_the_first_unsent_part(world: Make) -> None:  # noqa: F811
    w = await world()
    w.actor.deliverer.retry_gap = 3600.0  # the first leader never tries the second result again
    w.kie.plan(result_count=2, file_faults={1: (503, None)})
    job = await w.job(7107)

    async def first_sent() -> bool | None:
        return len(w.sent(7107, "sendDocument")) == 1 or None
    await eventually(first_sent, 20, "the first result sent")
    await w.actor.stop(10.0)
    w.kie.file_faults.clear()  # the second result can be had again
    await w.money.new_leader()
    keeper = Mailbox("lock_keeper-stand-in-2", (RoleQuery, CurrentRole), 1000)
    client = KieClient(w.settings.kie_api_key, w.settings.kie_api_base, w.settings.kie_upload_base, timeout=5.0,
                       download_trusted_hosts=w.settings.download_trusted_hosts)
    box = KiePoller.new_mailbox("kie_poller-next")
    w.actor = KiePoller(box, w.settings, w.money.db, make_bot(TOKEN, w.tg.base_url, timeout=10), client, shipped(),
                        keeper, sweep_interval=0.1)
    w.box = box
    await w.actor.start()
    w.grant()
    box.tell_nowait(WakeJobs())
    done = await w.told(job.id)
    assert done.state == "succeeded"
    photos = w.sent(7107, "sendPhoto")
    assert len(photos) == 2 and len(w.sent(7107, "sendDocument")) == 2, "the first result was not sent again"
    assert await w.ledger(7107) == ["top_up", "hold", "capture"]


async def test_a_status_message_recorded_after_a_fast_failure_still_gets_its_last_word(world: Make) -> None:  # noqa: F811
    w = await world(env={"KIE_API_KEY": ""})
    job = await w.job(7108, status=False)
    told = await w.told(job.id)
    assert told.state == "failed"
    # the wizard's announce(), late: its status message sent and recorded after the job was told
    queued = await w.helper.send_message(7108, "🕐 queued")
    await jobs.set_status_message(w.money.db, w.money.name, w.money.epoch, job.id, queued.message_id)
    w.box.tell_nowait(WakeJobs())

    async def last_word() -> bool | None:
        shown = next(m for m in w.tg.chat_messages(7108) if m["message_id"] == queued.message_id)
        return "did not work out" in shown.get("text", "") or None
    await eventually(last_word, 20, "the late status message given its last word")
    assert await w.told(job.id)
    assert sum(MONEY_BACK in t for t in texts_to(w, 7108)) == 1, "the apology once"
    assert await w.ledger(7108) == ["top_up", "hold", "release"]


async def test_a_photo_and_its_original_arrive_together_the_original_replying_to_it(world: Make) -> None:  # noqa: F811
    w = await world()
    made = [await w.job(7109) for _ in range(3)]
    for job in made:
        await w.told(job.id)
    sends = [c for c in w.tg.calls(chat_id=7109) if c.ok and c.method in ("sendPhoto", "sendDocument")]
    assert [c.method for c in sends] == ["sendPhoto", "sendDocument"] * 3
    for photo, document in zip(sends[::2], sends[1::2], strict=True):
        assert (document.params.get("reply_parameters") or {}).get("message_id") == photo.result["message_id"]


async def test_a_result_that_is_not_of_the_models_kind_is_never_sent_and_the_hold_is_released(
        world: Make) -> None:  # noqa: F811
    """KIE's record points at a page that is no picture (a CDN's error text, say): a photo model's
    result must be an image, so nothing reaches the chat as the user's picture and nothing is
    charged. The page's host is trusted (it is on loopback), so only the kind refuses it."""
    from aiohttp import web

    async def page(request: web.Request) -> web.Response:
        return web.Response(text="upstream error: try again later", content_type="text/plain")

    app = web.Application()
    app.router.add_get("/result.png", page)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        url = f"http://127.0.0.1:{runner.addresses[0][1]}/result.png"
        w = await world(env={"DOWNLOAD_TRUSTED_HOSTS": "127.0.0.1"})
        w.kie.plan(result_urls=[url])
        job = await w.job(7140)
        done = await w.told(job.id)
        assert done.state == "failed"
        assert not w.sent(7140, "sendPhoto") and not w.sent(7140, "sendDocument")
        assert await w.ledger(7140) == ["top_up", "hold", "release"]
    finally:
        await runner.cleanup()
