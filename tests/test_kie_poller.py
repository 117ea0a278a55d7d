"""The jobs actor in process: a real PostgreSQL, the fake KIE and the fake Telegram over HTTP, the
callback route on a small aiohttp app of its own (KIE's callbacks reach it over HTTP), and the
test in lock_keeper's place (it tells the role and grants the lease).

What is checked: a confirmed job is submitted, followed by polls or callbacks or both, delivered
once as the model's kind with its buttons, captured once; a failure, a timeout, a refusal and a
402 release the hold and tell the user in plain words; a createTask whose answer was lost is
reconciled by its callback without a second task; certain refusals are retried; nothing reaches
KIE or Telegram outside the lease. After each test the `money` fixture checks the invariants.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import date
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import pytest
from aiohttp import web

import config
from actors.kie_poller import KiePoller
from actors.mailbox import Mailbox
from catalog import payload
from catalog.loader import shipped
from catalog.model import Catalog
from fakes.kie_api import CREATE_PATH, RECORD_PATH, UPLOAD_PATH, FakeKie, sign_callback
from fakes.telegram_api import FakeTelegram
from ingest.bot_api import make_bot
from ingest.kie_callbacks import ROUTE, KieCallbackIntake
from kie import CREATE, KieClient
from messages.jobs import WakeJobs
from messages.roles import CurrentRole, Role, RoleChanged, RoleQuery
from store import accounts, jobs, kie_account, kie_callbacks
from store.jobs import Created, Job, Order
from tests.actors_kit import until
from tests.conftest import Money
from tests.procs import eventually

pytestmark = pytest.mark.timeout(90)
TOKEN = "4242:AAH-fake-token-for-kie-poller-tests-0123"
PHOTO_MODEL = "google/nano-banana"
EDIT_MODEL = "google/nano-banana-edit"
VIDEO_MODEL = "kling-2.6/text-to-video"
PRICE = 1_000


@dataclasses.dataclass
class World:
    money: Money
    tg: FakeTelegram
    kie: FakeKie
    settings: config.Settings
    box: Mailbox
    actor: KiePoller
    helper: Any  # a Bot of the test's own: the wizard's status messages
    users: set[int] = dataclasses.field(default_factory=set)
    keeper: asyncio.Task[None] | None = None

    def grant(self, lease: float = 3600.0) -> None:
        self.box.tell_nowait(RoleChanged(Role.ACTIVE, self.money.epoch, "test", time.monotonic() + lease))

    def keep_granting(self, every: float = 0.1) -> None:
        async def loop() -> None:
            while True:
                self.grant(2.0)
                await asyncio.sleep(every)
        self.keeper = asyncio.create_task(loop())

    async def job(self, user: int, model: str = PHOTO_MODEL, chosen: dict[str, Any] | None = None, *,
                  status: bool = True, nonce: str | None = None, by_id: bool = False, intent: bool = False,
                  wake: bool = True) -> Job:
        """What the wizard does at Confirm: the hold and the job, a status message, a wake. `intent`:
        the job made 'submitting' with a createTask slot taken for it (sql/025), woken by its id."""
        db, m = self.money.db, self.money
        if user not in self.users:
            await accounts.ensure_user(db, m.name, m.epoch, m.bot_id, user, "en", 0)
            await accounts.credit(db, m.name, m.epoch, m.bot_id, user, 10 * PRICE, f"seed:{user}")
            self.users.add(user)
        status_id = (await self.helper.send_message(user, "Accepted")).message_id if status else None
        spec = shipped().model(model)
        order = Order(user_id=user, chat_id=user, nonce=nonce or f"n{user}-{time.monotonic_ns()}", model=model,
                      sku="test", input=payload.build(spec, chosen or {"prompt": "a cat on the moon"}), price=PRICE,
                      paid_with="money", day=date.today(), status_message_id=status_id)
        slot = self.actor.kie.limiter.reserve(CREATE) if intent else None
        if intent:
            assert slot is not None, "a free createTask slot"
            order = dataclasses.replace(order, terms_read=False, submitting=True)
        created = await jobs.confirm(db, m.name, m.epoch, m.bot_id, order, free_daily_limit=5, max_active=100)
        assert isinstance(created, Created), created
        if wake:
            self.box.tell_nowait(WakeJobs(created.job.id, created.job, slot) if by_id or intent else WakeJobs())
        return created.job

    async def told(self, job_id: int, timeout: float = 20.0) -> Job:
        async def probe() -> Job | None:
            job = await jobs.job(self.money.db, job_id)
            return job if job is not None and job.delivered_at is not None else None
        return await eventually(probe, timeout, f"job {job_id} delivered", interval=0.05)

    async def state(self, job_id: int, *states: str, timeout: float = 20.0) -> Job:
        async def probe() -> Job | None:
            job = await jobs.job(self.money.db, job_id)
            return job if job is not None and job.state in states else None
        return await eventually(probe, timeout, f"job {job_id} in {states}", interval=0.05)

    async def ledger(self, user: int) -> list[str]:
        entries = await accounts.recent_entries(self.money.db, self.money.bot_id, user, 100)
        return [e.kind for e in reversed(entries)]

    def sent(self, chat: int, method: str | None = None) -> list[Any]:
        return [c for c in self.tg.calls(method, chat) if c.ok and c.method != "editMessageText"
                and (method is not None or c.method.startswith("send"))]

    def task_of(self, job: Job) -> Any:
        return next(t for t in self.kie.tasks.values() if t.callback_url and t.callback_url.endswith(f"/{job.id}"))


Make = Callable[..., Awaitable[World]]


@pytest.fixture
async def world(money: Money, database_url: str) -> AsyncIterator[Make]:
    made: list[tuple[World, web.AppRunner, KieClient]] = []
    fakes: list[Any] = []

    async def make(*, callbacks: bool = True, kie: dict[str, Any] | None = None, env: dict[str, str] | None = None,
                   catalog: Catalog | None = None, client_timeout: float = 5.0, credits_every: float = 60.0,
                   grant: bool = True, sweep_interval: float = 0.1) -> World:
        tg = FakeTelegram()
        fake_kie = FakeKie(**{"duration": 0.3, **(kie or {})})
        await tg.start()
        await fake_kie.start()
        fakes.extend([tg, fake_kie])
        holder: list[KieCallbackIntake] = []

        async def route(request: web.Request) -> web.StreamResponse:
            return await holder[0].handle(request)

        app = web.Application()
        app.router.add_post(ROUTE, route)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = runner.addresses[0][1]
        values = {"TELEGRAM_BOT_TOKEN": TOKEN, "DATABASE_URL": database_url, "TELEGRAM_API_BASE": tg.base_url,
                  "KIE_API_KEY": "kie-test-key-0123", "KIE_API_BASE": fake_kie.base_url,
                  "KIE_UPLOAD_BASE": fake_kie.base_url, "WEBHOOK_SECRET": "kie-poller-secret-0123",
                  "DOWNLOAD_TRUSTED_HOSTS": urlsplit(fake_kie.base_url).netloc,
                  "TELEGRAM_RATE_GLOBAL": "0", "TELEGRAM_RATE_PER_CHAT": "0"}
        if callbacks:
            values["WEBHOOK_BASE_URL"] = f"http://127.0.0.1:{port}"
        values.update(env or {})
        settings = config.load("serve", values)
        box = KiePoller.new_mailbox(f"kie_poller-{len(made)}")
        holder.append(KieCallbackIntake(settings, money.db, lambda: box.tell_nowait(WakeJobs())))
        client = KieClient(settings.kie_api_key, settings.kie_api_base, settings.kie_upload_base,
                           timeout=client_timeout, download_trusted_hosts=settings.download_trusted_hosts)
        keeper = Mailbox("lock_keeper-stand-in", (RoleQuery, CurrentRole), 1000)
        actor = KiePoller(box, settings, money.db, make_bot(TOKEN, tg.base_url, timeout=10), client,
                          catalog or shipped(), keeper, sweep_interval=sweep_interval, credits_every=credits_every)
        await actor.start()
        w = World(money, tg, fake_kie, settings, box, actor, make_bot(TOKEN, tg.base_url, timeout=10))
        made.append((w, runner, client))
        if grant:
            w.grant()
        return w

    yield make
    for w, runner, client in made:
        if w.keeper is not None:
            w.keeper.cancel()
        await w.actor.stop(10.0)
        await w.helper.session.close()
        await runner.cleanup()
        await client.close()
    for fake in fakes:
        await fake.stop()


def buttons(call: Any) -> list[str]:
    markup = call.params.get("reply_markup") or {}
    return [b.get("callback_data") for row in markup.get("inline_keyboard", []) for b in row]


# --- the way through ------------------------------------------------------------------------------


async def test_a_job_just_confirmed_is_submitted_at_once_by_its_id_without_waiting_for_a_sweep(world: Make) -> None:
    """Confirm -> createTask is what the user waits on: the wizard names the job, and the jobs actor
    drives it by itself (a sweep reads every unfinished job, and runs at most every SWEEP_GAP)."""
    w = await world(sweep_interval=3600.0)
    swept = await eventually(lambda: _async(w.actor.last_sweep), 10, "the sweep made on taking the role")
    job = await w.job(7050, by_id=True)
    submitted = await w.state(job.id, "submitted", "running", "succeeded")
    assert submitted.kie_task_id in w.kie.tasks
    assert w.actor.last_sweep == swept, "no sweep ran: the job was driven by its id"


async def _async(value: Any) -> Any:
    return value


async def test_a_wake_with_a_confirms_row_that_a_step_changed_since_reads_the_job_and_never_submits_twice(
        world: Make) -> None:
    """A wake carries the row its Confirm committed, so the first step need not read the job again.
    Once a step of this epoch has touched the job (an ambiguous createTask left it 'submitting'),
    that row is stale: driven as 'created', it would send a second, billed task."""
    w = await world(callbacks=False, client_timeout=1.0, sweep_interval=3600.0)
    w.kie.inject(CREATE_PATH, hang=True)  # nothing is created, but nobody can know that
    job = await w.job(7061, by_id=True)
    assert job.state == "created"
    await w.state(job.id, "submitting")
    await eventually(lambda: _async(job.id in w.actor.tracks and job.id not in w.actor.drives), 10,
                     "the ambiguous createTask's step ended")
    w.actor.tracks[job.id].next_at = 0.0  # its wait over, as a later wake would find it
    woken = time.monotonic()
    w.box.tell_nowait(WakeJobs(job.id, job))  # the Confirm's row again: a replayed wake
    await eventually(lambda: _async(w.actor.tracks[job.id].ended_at >= woken), 10, "the woken step ended")
    assert len(w.kie.calls(CREATE_PATH)) == 1, "an ambiguous createTask is never repeated"
    assert (await w.state(job.id, "submitting")).attempts == 1



# --- createTask's intent committed by the Confirm (sql/025) -----------------------------------------


async def test_a_job_its_confirm_made_submitting_goes_with_the_confirms_slot_and_nothing_written_first(
        world: Make) -> None:
    """The Confirm committed createTask's intent with the job and took a slot of KIE's limit for it,
    so the jobs actor sends it at once: no mark_submitting (the attempt stays the first) and no
    second slot."""
    w = await world(sweep_interval=3600.0)
    swept = await eventually(lambda: _async(w.actor.last_sweep), 10, "the sweep made on taking the role")
    job = await w.job(7070, intent=True)
    assert (job.state, job.attempts, job.intent_epoch) == ("submitting", 1, w.money.epoch)
    await w.state(job.id, "submitted", "running", "succeeded")
    assert w.actor.last_sweep == swept, "driven by its wake"
    done = await w.told(job.id)
    assert (done.state, done.attempts) == ("succeeded", 1)
    assert len(w.kie.calls(CREATE_PATH)) == 1 and w.actor.kie.limiter.taken(CREATE) == 1
    assert await w.ledger(7070) == ["top_up", "hold", "capture"]


async def test_a_job_made_submitting_whose_wake_was_lost_is_sent_by_the_sweep_once(world: Make) -> None:
    w = await world(sweep_interval=0.1)
    w.kie.plan(hold=True)
    job = await w.job(7071, intent=True, wake=False)  # its wake dropped from a full mailbox
    running = await w.state(job.id, "submitted", "running")
    assert running.attempts == 1 and running.kie_task_id in w.kie.tasks
    w.kie.finish(running.kie_task_id or "")
    assert (await w.told(job.id)).state == "succeeded"
    assert len(w.kie.calls(CREATE_PATH)) == 1


async def test_a_job_made_submitting_read_again_after_its_ambiguous_createtask_is_never_sent_twice(
        world: Make) -> None:
    """Nothing in the row says that its createTask left: the jobs actor remembers, for its epoch,
    the jobs it has sent. A sweep's page read before the send, or the Confirm's wake that waited in
    the mailbox, carries the row as the Confirm made it; sent again, it would make a second,
    billed task."""
    w = await world(callbacks=False, client_timeout=1.0, sweep_interval=3600.0)
    w.kie.inject(CREATE_PATH, hang=True)  # nothing is created, but nobody can know that
    job = await w.job(7072, intent=True)
    await eventually(lambda: _async(job.id in w.actor.tracks and job.id not in w.actor.drives), 10,
                     "the ambiguous createTask's step ended")
    for late in ("wake", "sweep"):
        w.actor.tracks.pop(job.id)  # as if no step of this epoch had touched it
        began = time.monotonic()
        if late == "wake":
            w.box.tell_nowait(WakeJobs(job.id, job))
        else:
            w.box.tell_nowait(WakeJobs())
        await eventually(lambda since=began: _async(job.id in w.actor.tracks and job.id not in w.actor.drives
                                                    and w.actor.tracks[job.id].ended_at >= since),
                         10, f"the late {late}'s step ended")
        assert len(w.kie.calls(CREATE_PATH)) == 1, f"an ambiguous createTask is never repeated ({late})"
    assert (await w.state(job.id, "submitting")).attempts == 1


async def test_a_jobs_actor_restarted_in_the_same_epoch_never_sends_again_what_its_predecessor_sent(
        world: Make) -> None:
    """The supervisor restarts a crashed jobs actor in the same epoch (its lease is lock_keeper's): the
    new incarnation is given the process's record of the Confirm-made intents it sent
    (generation/sent.py), or its first sweep would send the ambiguous one again."""
    w = await world(callbacks=False, client_timeout=1.0, sweep_interval=0.1)
    w.kie.inject(CREATE_PATH, hang=True)  # nothing is created, but nobody can know that
    job = await w.job(7076, intent=True)
    await eventually(lambda: _async(job.id in w.actor.tracks and job.id not in w.actor.drives), 10,
                     "the ambiguous createTask's step ended")
    first = w.actor
    await first.stop(10.0)
    w.actor = KiePoller(w.box, w.settings, w.money.db, make_bot(TOKEN, w.tg.base_url, timeout=10), first.kie,
                        first.ctx.catalog, first.lock_keeper, sweep_interval=0.1, sent=first.sent)
    await w.actor.start()
    began = time.monotonic()
    w.grant()  # the same epoch
    await eventually(lambda: _async(job.id in w.actor.tracks and w.actor.tracks[job.id].ended_at >= began
                                    and job.id not in w.actor.drives), 10, "the new incarnation's step ended")
    assert len(w.kie.calls(CREATE_PATH)) == 1, "an ambiguous createTask is never repeated"
    assert (await w.state(job.id, "submitting")).attempts == 1


async def test_a_job_an_earlier_epochs_confirm_made_submitting_is_never_sent_and_is_released_at_its_deadline(
        world: Make) -> None:
    """Its leader died between the Confirm's commit and the request: nobody knows whether KIE has the
    task, exactly as after a crash between mark_submitting and the request."""
    quick = dataclasses.replace(shipped().model(PHOTO_MODEL), timeout_seconds=2)
    w = await world(catalog=Catalog((quick,)), grant=False)
    job = await w.job(7073, intent=True, wake=False)
    await w.money.new_leader()
    w.grant()
    done = await w.told(job.id)
    assert (done.state, done.kie_task_id) == ("timed_out", None) and not w.kie.calls(CREATE_PATH)
    assert w.actor.ctx.counts["orphaned"] == 1, "counted as a possible orphan task"
    assert await w.ledger(7073) == ["top_up", "hold", "release"]


async def test_a_certain_refusal_of_a_confirms_createtask_puts_the_job_back_and_it_is_tried_again(world: Make) -> None:
    w = await world()
    w.kie.inject(CREATE_PATH, code=500, count=5)  # past the client's attempts: certainly refused
    job = await w.job(7074, intent=True)
    done = await w.told(job.id)
    assert (done.state, done.attempts) == ("succeeded", 2), "the second attempt through mark_submitting"
    assert len(w.kie.tasks) == 1 and await w.ledger(7074) == ["top_up", "hold", "capture"]


async def test_a_job_made_submitting_whose_input_needs_resolving_goes_back_and_is_submitted_with_its_upload(
        world: Make) -> None:
    """The Confirm makes a job 'submitting' only for an input that goes as it is; one that did not
    (a file to upload) is put back, nothing sent, and submitted the usual way."""
    w = await world()
    _, record = w.tg.user_photo(7075, b"\x89PNG\r\n\x1a\n" + b"0" * 200)
    ref = payload.file_ref(record.file_id, "image/png", record.size or 0)
    job = await w.job(7075, EDIT_MODEL, {"prompt": "make it blue", "image_urls": [ref]}, intent=True)
    done = await w.told(job.id)
    assert (done.state, done.attempts) == ("succeeded", 2)
    assert len(w.kie.calls(UPLOAD_PATH)) == 1 and len(w.kie.calls(CREATE_PATH)) == 1
    assert w.kie.tasks[done.kie_task_id or ""].input["image_urls"][0].startswith(w.kie.base_url + "/files/")


async def test_poll_only_a_photo_is_submitted_polled_delivered_twice_over_and_captured_once(world: Make) -> None:
    w = await world(callbacks=False, kie={"duration": 1.0})
    job = await w.job(7001)
    done = await w.told(job.id)
    assert done.state == "succeeded" and done.kie_task_id in w.kie.tasks
    photos, documents = w.sent(7001, "sendPhoto"), w.sent(7001, "sendDocument")
    assert len(photos) == 1 and len(documents) == 1, "the picture, and the original as a file"
    assert photos[0].params["caption"].startswith("Nano Banana") and "a cat on the moon" in photos[0].params["caption"]
    assert buttons(documents[0]) == [f"gen:again:{job.id}", "menu:open"]
    assert done.result_file_id == photos[0].result["photo"][-1]["file_id"], "the photo's file_id is kept"
    assert done.result is not None and done.result["sent"][0]["document_file_id"]
    assert w.kie.calls(RECORD_PATH), "followed by polls"
    assert len(w.kie.calls(CREATE_PATH)) == 1 and w.kie.tasks[done.kie_task_id].callback_url is None
    assert await w.ledger(7001) == ["top_up", "hold", "capture"]
    edits = [c for c in w.tg.calls("editMessageText", 7001) if c.ok]
    assert edits and edits[-1].params["text"].startswith("✅"), "the status message ends as done"
    assert (await accounts.balance(w.money.db, w.money.bot_id, 7001)).available == 9 * PRICE


async def test_a_callback_alone_ends_nothing_while_recordinfo_cannot_confirm_it_then_recordinfo_does(
        world: Make) -> None:
    """A callback is a wake-up, never a verdict: with every poll failing, KIE's own success
    callback delivers nothing; once recordInfo answers, the job ends as it says."""
    w = await world(kie={"duration": 0.5})
    failing = w.kie.inject(RECORD_PATH, code=500, count=10_000)
    job = await w.job(7002)
    running = await w.state(job.id, "submitted", "running")
    assert [a.status for a in await w.kie.wait_for_callbacks(1, running.kie_task_id)] == [200]

    async def applied() -> bool:  # acted on: a recordInfo asked (and failed) after it was stored
        return not await kie_callbacks.pending_callbacks(w.money.db, w.money.bot_id)
    await eventually(applied, 10, "the callback acted on")
    assert (await jobs.job(w.money.db, job.id)).finished is False  # type: ignore[union-attr]
    assert not w.sent(7002, "sendPhoto")
    failing.remaining = 0
    done = await w.told(job.id)
    assert done.state == "succeeded" and len(w.sent(7002, "sendPhoto")) == 1
    assert await w.ledger(7002) == ["top_up", "hold", "capture"]


async def test_callback_and_polls_racing_end_in_one_delivery(world: Make) -> None:
    w = await world()
    w.kie.plan(hold=True)
    job = await w.job(7003)
    running = await w.state(job.id, "running")
    assert running.kie_task_id is not None
    w.kie.finish(running.kie_task_id)
    await w.told(job.id)
    await w.kie.wait_for_callbacks(1, running.kie_task_id)
    assert len(w.sent(7003, "sendPhoto")) == 1 and len(w.sent(7003, "sendDocument")) == 1
    assert await w.ledger(7003) == ["top_up", "hold", "capture"]


async def test_a_duplicated_callback_delivers_once(world: Make) -> None:
    w = await world(kie={"callback_duplicates": 2})
    job = await w.job(7004)
    done = await w.told(job.id)
    await w.kie.wait_for_callbacks(3, done.kie_task_id)

    async def applied() -> bool:
        return not await kie_callbacks.pending_callbacks(w.money.db, w.money.bot_id)
    await eventually(applied, 10, "every copy applied")
    assert len(w.sent(7004, "sendPhoto")) == 1
    assert await w.ledger(7004) == ["top_up", "hold", "capture"]


async def test_a_callback_after_the_poll_finished_changes_nothing(world: Make) -> None:
    w = await world(kie={"callbacks": False, "duration": 0.5})
    job = await w.job(7005)
    done = await w.told(job.id)
    task = w.kie.tasks[done.kie_task_id or ""]
    body = {"code": 200, "msg": "Playground task completed successfully.", "data": task.callback_data(w.kie.credits)}
    async with aiohttp.ClientSession() as session:
        url = w.settings.kie_callback_url(job.id)
        assert url is not None
        async with session.post(url, json=body) as response:
            assert response.status == 200

    async def applied() -> bool:
        rows = await w.money.db.require().fetch("SELECT applied_at FROM kie_callbacks WHERE job_id = $1", job.id)
        return len(rows) == 1 and rows[0]["applied_at"] is not None
    await eventually(applied, 10, "the late callback applied (as a no-op)")
    assert len(w.sent(7005, "sendPhoto")) == 1
    assert await w.ledger(7005) == ["top_up", "hold", "capture"]


async def test_a_create_task_whose_answer_was_lost_is_reconciled_by_its_callback(world: Make) -> None:
    w = await world(client_timeout=1.5, kie={"duration": 2.5})
    w.kie.inject(CREATE_PATH, drop_after_create=True, hang=True)  # the task exists; the answer never comes
    job = await w.job(7006)
    waiting = await w.state(job.id, "submitting")
    assert waiting.kie_task_id is None
    done = await w.told(job.id)
    assert done.state == "succeeded" and done.kie_task_id in w.kie.tasks
    assert len(w.kie.calls(CREATE_PATH)) == 1 and len(w.kie.tasks) == 1, "never a second, billed task"
    assert len(w.sent(7006, "sendPhoto")) == 1
    assert await w.ledger(7006) == ["top_up", "hold", "capture"]


async def test_a_kie_failure_releases_the_hold_and_says_so_in_plain_words(world: Make) -> None:
    w = await world()
    w.kie.plan(outcome="fail", fail_code="500", fail_msg="CUDA out of memory on node gpu-17", count=1)
    w.kie.plan(outcome="fail", fail_code="422", fail_msg="The content violates our policy", count=1)
    first = await w.job(7007)
    done = await w.told(first.id)
    second = await w.job(7007)
    refused = await w.told(second.id)
    assert (done.state, done.failure) == ("failed", "generation_failed")
    assert (refused.state, refused.failure) == ("failed", "content_refused")
    texts = [c.params["text"] for c in w.sent(7007, "sendMessage") if c.params["text"] != "Accepted"]
    assert len(texts) == 2
    assert "temporary problem" in texts[0] and "money is back" in texts[0]
    assert "content rules" in texts[1]
    assert not any("CUDA" in t or "policy" in t or "500" in t or "422" in t for t in texts), "no KIE internals"
    assert buttons(w.sent(7007, "sendMessage")[-1]) == ["menu:open"]
    assert await w.ledger(7007) == ["top_up", "hold", "release", "hold", "release"]
    assert not w.sent(7007, "sendPhoto")


async def test_a_job_past_its_timeout_is_released_with_an_apology(world: Make) -> None:
    quick = dataclasses.replace(shipped().model(PHOTO_MODEL), timeout_seconds=2)
    w = await world(catalog=Catalog((quick,)))
    w.kie.plan(hold=True)
    job = await w.job(7008)
    done = await w.told(job.id)
    assert done.state == "timed_out"
    assert "took too long" in w.sent(7008, "sendMessage")[-1].params["text"]
    assert await w.ledger(7008) == ["top_up", "hold", "release"]
    task_id = done.kie_task_id or ""
    w.kie.finish(task_id)  # KIE finishes late: its callback and the polls change nothing now
    await w.kie.wait_for_callbacks(1, task_id)
    assert not w.sent(7008, "sendPhoto")


async def test_a_lost_create_task_without_a_callback_times_out_and_is_released(world: Make) -> None:
    quick = dataclasses.replace(shipped().model(PHOTO_MODEL), timeout_seconds=2)
    w = await world(catalog=Catalog((quick,)), callbacks=False, client_timeout=1.0)
    w.kie.inject(CREATE_PATH, hang=True)  # nothing was created, but nobody can know that
    job = await w.job(7009)
    done = await w.told(job.id)
    assert (done.state, done.kie_task_id) == ("timed_out", None)
    assert len(w.kie.calls(CREATE_PATH)) == 1, "an ambiguous createTask is never repeated"
    assert await w.ledger(7009) == ["top_up", "hold", "release"]


async def test_402_pauses_generations_releases_and_apologises_then_resumes_when_credits_are_back(
        world: Make) -> None:
    w = await world(kie={"credits": 0}, credits_every=0.3)
    job = await w.job(7010)
    done = await w.told(job.id)
    assert (done.state, done.failure) == ("failed", "service_paused")
    assert "paused" in w.sent(7010, "sendMessage")[-1].params["text"]
    assert (await kie_account.get(w.money.db, w.money.bot_id)).paused
    creates = len(w.kie.calls(CREATE_PATH))
    with pytest.raises(AssertionError, match="Paused"):  # a Confirm while paused holds nothing (store.jobs)
        await w.job(7011)
    assert await w.ledger(7011) == ["top_up"]
    assert len(w.kie.calls(CREATE_PATH)) == creates, "no createTask while paused"
    w.kie.credits = 5_000

    async def resumed() -> bool:
        return not (await kie_account.get(w.money.db, w.money.bot_id)).paused
    await eventually(resumed, 10, "generations resumed")
    assert (await kie_account.get(w.money.db, w.money.bot_id)).credits == 5_000
    third = await w.job(7011)
    assert (await w.told(third.id)).state == "succeeded"
    assert await w.ledger(7010) == ["top_up", "hold", "release"]
    assert await w.ledger(7011) == ["top_up", "hold", "capture"]


async def test_a_job_confirmed_just_before_a_pause_is_released_without_a_createtask(world: Make) -> None:
    """The pause reaches the jobs actor through the database: a job confirmed an instant before it
    (its Confirm saw no pause) is released with the apology, never sent to KIE."""
    # not driving yet: the job waits, as one confirmed mid-sweep would; KIE's credits are out, so
    # the actor's credit check keeps the pause instead of lifting it
    w = await world(grant=False, kie={"credits": 0})
    job = await w.job(7012)
    await kie_account.pause(w.money.db, w.money.name, w.money.epoch, w.money.bot_id, "402 from KIE")
    w.grant()
    done = await w.told(job.id)
    assert (done.state, done.failure) == ("failed", "service_paused")
    assert not w.kie.calls(CREATE_PATH) and await w.ledger(7012) == ["top_up", "hold", "release"]


async def test_429_and_5xx_on_create_task_are_retried_and_make_one_task(world: Make) -> None:
    w = await world()
    w.kie.inject(CREATE_PATH, code=429, count=2)
    job = await w.job(7012)
    assert (await w.told(job.id)).state == "succeeded"
    assert [c.status for c in w.kie.calls(CREATE_PATH)] == [429, 429, 200], "retried by the client, in one call"
    # past the client's attempts: the job goes back to 'created' and is tried again later
    w.kie.inject(CREATE_PATH, code=500, count=5)
    second = await w.job(7013)
    done = await w.told(second.id)
    assert done.state == "succeeded" and done.attempts >= 2
    assert len(w.kie.tasks) == 2, "one task per job"
    assert await w.ledger(7013) == ["top_up", "hold", "capture"]


async def test_a_users_photo_reaches_kie_through_its_upload_service_never_as_a_telegram_url(world: Make) -> None:
    w = await world()
    _, record = w.tg.user_photo(7014, b"\x89PNG\r\n\x1a\n" + b"0" * 200)
    ref = payload.file_ref(record.file_id, "image/png", record.size or 0)
    job = await w.job(7014, EDIT_MODEL, {"prompt": "make it blue", "image_urls": [ref]})
    done = await w.told(job.id)
    assert done.state == "succeeded"
    assert len(w.kie.calls(UPLOAD_PATH)) == 1
    sent = w.kie.tasks[done.kie_task_id or ""].input
    assert sent["image_urls"] and sent["image_urls"][0].startswith(w.kie.base_url + "/files/")
    secret = TOKEN.split(":")[1]
    assert not any(secret in json.dumps(c.json) for c in w.kie.calls() if c.json is not None)


async def test_a_video_goes_as_a_video_with_its_buttons(world: Make) -> None:
    w = await world()
    job = await w.job(7015, VIDEO_MODEL)
    done = await w.told(job.id)
    videos = w.sent(7015, "sendVideo")
    assert len(videos) == 1 and buttons(videos[0]) == [f"gen:again:{job.id}", "menu:open"]
    assert done.result_file_id == videos[0].result["video"]["file_id"]


async def test_nothing_reaches_kie_or_telegram_outside_the_lease(world: Make) -> None:
    w = await world(grant=False)
    w.grant(0.3)
    await until(w.actor.may_act, 5, "the lease granted")
    await until(lambda: not w.actor.may_act(), 5, "the lease ran out")
    job = await w.job(7016, status=False)
    kie_before, tg_before = len(w.kie.calls()), len(w.tg.calls())
    await asyncio.sleep(1.0)  # a bounded look for what must not happen
    assert len(w.kie.calls()) == kie_before, [c.path for c in w.kie.calls()]
    assert len(w.tg.calls()) == tg_before, [c.method for c in w.tg.calls()]
    assert (await jobs.job(w.money.db, job.id)).state == "created"  # type: ignore[union-attr]
    w.keep_granting()
    assert (await w.told(job.id)).state == "succeeded"


async def test_without_a_kie_key_a_job_fails_with_an_apology_and_health_says_why(world: Make) -> None:
    w = await world(env={"KIE_API_KEY": ""})
    job = await w.job(7017)
    done = await w.told(job.id)
    assert (done.state, done.failure) == ("failed", "no_kie_key")
    assert "temporary problem" in w.sent(7017, "sendMessage")[-1].params["text"]
    assert w.actor.health()["kie"].startswith("no KIE key")
    assert not w.kie.calls(CREATE_PATH)


# --- the callback route ---------------------------------------------------------------------------


async def test_the_callback_route_refuses_a_wrong_secret_a_malformed_body_and_a_bad_signature(world: Make) -> None:
    w = await world(env={"KIE_WEBHOOK_HMAC_KEY": "hmac-key-0123456"})
    url = w.settings.kie_callback_url(99)
    assert url is not None
    base, secret = url.rsplit("/", 2)[0], w.settings.kie_callback_secret
    body = {"code": 200, "msg": "ok", "data": {"taskId": "t-1", "state": "success",
                                               "resultJson": json.dumps({"resultUrls": ["https://x/1.png"]})}}
    stamp = str(int(time.time()))
    signed = {"X-Webhook-Timestamp": stamp, "X-Webhook-Signature": sign_callback("t-1", stamp, "hmac-key-0123456")}
    async with aiohttp.ClientSession() as session:
        async def post(path: str, payload: Any, headers: dict[str, str] | None = None) -> int:
            data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
            async with session.post(path, data=data, headers=headers) as response:
                return response.status
        assert await post(f"{base}/wrong-secret/99", body, signed) == 401
        assert await post(f"{base}/{secret}/not-a-job", body, signed) == 400
        assert await post(url, b"{not json", signed) == 400
        assert await post(url, body) == 401, "unsigned while signing is on"
        forged = dict(signed, **{"X-Webhook-Signature": sign_callback("t-1", stamp, "another-key")})
        assert await post(url, body, forged) == 401
        assert await post(url, body, signed) == 200
    stored = await w.money.db.require().fetch("SELECT job_id, task_id FROM kie_callbacks")
    assert [(r["job_id"], r["task_id"]) for r in stored] == [(99, "t-1")], "only the good one was stored"
    assert secret in w.settings.secrets(), "the callback secret is masked in logs like every secret"


# --- delivery trouble -----------------------------------------------------------------------------


async def test_a_send_that_fails_for_a_while_is_retried_and_delivered_once(world: Make) -> None:
    w = await world()
    w.tg.inject("sendPhoto", status=500, count=2)
    job = await w.job(7020)
    done = await w.told(job.id)
    assert done.state == "succeeded"
    assert [c.status for c in w.tg.calls("sendPhoto", 7020)] == [500, 500, 200]
    assert len(w.sent(7020, "sendDocument")) == 1
    assert await w.ledger(7020) == ["top_up", "hold", "capture"]


async def test_a_user_who_blocked_the_bot_is_released_and_marked_blocked(world: Make) -> None:
    w = await world()
    job = await w.job(7021)
    w.tg.block(7021)
    done = await w.told(job.id)
    assert (done.state, done.failure) == ("failed", "delivery")
    user = await accounts.get_user(w.money.db, w.money.bot_id, 7021)
    assert user is not None and user.blocked
    assert await w.ledger(7021) == ["top_up", "hold", "release"]


async def test_a_result_file_gone_at_kie_releases_the_hold_with_an_apology(world: Make) -> None:
    w = await world()
    w.kie.plan(result_urls=[w.kie.base_url + "/files/results/gone.png"], count=1)
    job = await w.job(7022)
    done = await w.told(job.id)
    assert (done.state, done.failure) == ("failed", "delivery")
    assert "temporary problem" in w.sent(7022, "sendMessage")[-1].params["text"]
    assert await w.ledger(7022) == ["top_up", "hold", "release"]


async def test_a_large_picture_goes_as_a_file_and_a_larger_result_as_a_link(
        world: Make, monkeypatch: pytest.MonkeyPatch) -> None:
    from generation import sending

    w = await world()
    monkeypatch.setattr(sending, "PHOTO_MAX_BYTES", 10)  # the fake's picture is larger than that
    job = await w.job(7023)
    done = await w.told(job.id)
    assert not w.sent(7023, "sendPhoto") and len(w.sent(7023, "sendDocument")) == 1
    assert done.result_file_id == w.sent(7023, "sendDocument")[0].result["document"]["file_id"]
    monkeypatch.setattr(sending, "RESULT_MAX_BYTES", 10)
    second = await w.job(7024)
    done = await w.told(second.id)
    link = w.sent(7024, "sendMessage")[-1]
    assert done.state == "succeeded" and done.result_file_id is None
    assert (done.result or {})["urls"][0] in link.params["text"]
    assert buttons(link) == [f"gen:again:{second.id}", "menu:open"]
    assert await w.ledger(7024) == ["top_up", "hold", "capture"]
