"""KIE's dedicated families end to end, black box: two `run.py serve` processes (a leader and a
standby) on one PostgreSQL, the fake Telegram and the fake KIE as real HTTP servers in the test,
shared by every test of the module (a test's users, jobs and fake KIE settings are its own).
KIE's callbacks and Telegram's updates go to the standby's address, so both outlive the leader.

Per family (suno, veo, runway, aleph, gpt4o, flux-kontext):
* through the bot: a user walks the wizard (the buttons the bot sent, as test_generation_e2e does),
  presses Confirm; the task is created at the family's own path with its body, the status message
  moves on (Suno: its stages), the result arrives once as the family's kind (Suno: two songs as two
  audio messages, each with its title), and the money moved once: one hold, one capture of the price
  the confirmation showed;
* poll only (KIE's callbacks lost), callback and polls both, every callback sent three times, and,
  for Suno, its text/first/complete stages duplicated and out of order: one delivery, one capture;
* KIE's failure codes of the family (Suno's 531 "credits refunded" among them): the hold released,
  the user told in plain words, never KIE's code or message as it is;
* a kill -9 of the leader mid-job: the standby finishes a job of every family, with one task at KIE
  and one capture each;
* a follow-up action on a result (Veo's 1080p, Suno's extend): one child job, tied to its parent,
  with its own price.
Jobs the wizard is not the subject of are confirmed as the wizard confirms them (store.jobs.confirm
under the leader's epoch, as tests/test_kie_poller_failover.py does), several at once.
"""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import pytest_asyncio

import config
from bot import delivery_texts, flow, keyboards
from catalog import payload
from catalog.loader import shipped
from catalog.model import Model
from fakes.kie import results
from fakes.kie_api import FakeKie
from fakes.telegram_api import Call, FakeTelegram
from store import accounts, invariants, jobs, kie_callbacks, leader
from store.database import Database
from store.fence import Fenced
from store.jobs import Created, Job, Order
from tests.conftest import create_database, drop_database
from tests.procs import FAKE_TOKEN, TrtProcess, eventually, free_port, one_active
from tests.test_generation_e2e import LANG, User, action, data_of, open_model, option, png, rub, t

pytestmark = [pytest.mark.timeout(180), pytest.mark.asyncio(loop_scope="module")]
BOT_ID = int(FAKE_TOKEN.split(":")[0])
NAME = leader.lock_name(BOT_ID)
CATALOG = shipped()
BONUS = 1_000_000  # kopecks: more than any model below costs, several times over
MEDIA_KINDS = ("image", "video", "audio")
PRICE = 900  # kopecks held by the jobs confirmed directly (the wizard's jobs hold their shown price)


@dataclass(frozen=True)
class Family:
    """What a family looks like from outside: its KIE paths, what a result is sent as, and a
    failure KIE documents for it."""

    name: str
    create: str
    record: str
    media: str  # the Bot API method a result file goes as
    files: int  # result files per task
    fail_code: str
    fail_msg: str
    told: str  # what the user reads of that failure (bot/delivery_texts.py): a refusal of the content, or not


FAMILIES = {f.name: f for f in (
    Family("suno", "/api/v1/generate", "/api/v1/generate/record-info", "sendAudio", 2,
           "531", "Generation failed, your credits have been refunded.", "failed_temporary"),
    Family("veo", "/api/v1/veo/generate", "/api/v1/veo/record-info", "sendVideo", 1,
           "400", "Your prompt was flagged by Website as violating content policies.", "failed_content"),
    Family("runway", "/api/v1/runway/generate", "/api/v1/runway/record-detail", "sendVideo", 1,
           "400", "Inappropriate content detected. Please replace the image or video.", "failed_content"),
    Family("aleph", "/api/v1/aleph/generate", "/api/v1/aleph/record-info", "sendVideo", 1,
           "500", "Internal error, please try again later.", "failed_temporary"),
    Family("gpt4o", "/api/v1/gpt4o-image/generate", "/api/v1/gpt4o-image/record-info", "sendPhoto", 1,
           "500", "Internal Error", "failed_temporary"),
    Family("flux-kontext", "/api/v1/flux/kontext/generate", "/api/v1/flux/kontext/record-info", "sendPhoto", 1,
           "501", "Generation failed", "failed_temporary"),
)}
NAMES = list(FAMILIES)


def model_of(family: str) -> Model:
    """The family's first model a user can pick (the menu's order) whose operation is generate."""
    found = [m for m in CATALOG.models if m.endpoint == family and m.id.split("/")[1] == "generate"]
    assert found, f"no generate model of the family {family} in the catalog"
    return found[0]


# -- the world: two processes, the fakes, the database -----------------------------------------------


@dataclass
class World:
    telegram: FakeTelegram
    kie: FakeKie
    db: Database
    url: str
    tmp: Path
    procs: list[TrtProcess]
    envs: list[dict[str, str]]
    chats: itertools.count[int] = field(default_factory=lambda: itertools.count(70_001))

    def chat(self) -> int:
        """A chat (a user) of its own for each job of each test: tests share the processes."""
        return next(self.chats)

    async def leader(self) -> TrtProcess:
        async def probe() -> TrtProcess | None:
            found = await one_active(self.procs)
            if found is None:
                return None
            body = await found.health()
            return found if body["jobs"]["driving"] else None
        return await eventually(probe, 60, "one instance ACTIVE and driving jobs")

    def restart(self, index: int) -> TrtProcess:
        """The process manager starts a killed instance again (same address, same environment)."""
        proc = TrtProcess(self.tmp, self.envs[index], name=f"fam{index}").start()
        self.procs[index] = proc
        return proc

    def reset_kie(self) -> None:
        """Each test starts from KIE behaving: callbacks on, once each, no plans or faults left."""
        self.kie.reset()
        self.kie.callbacks = True
        self.kie.callback_duplicates = 0


def env(world_url: str, telegram: FakeTelegram, kie: FakeKie, port: int, public_port: int) -> dict[str, str]:
    return {"TELEGRAM_BOT_TOKEN": FAKE_TOKEN, "DATABASE_URL": world_url, "TELEGRAM_API_BASE": telegram.base_url,
            "WEBHOOK_BASE_URL": f"http://127.0.0.1:{public_port}", "BOT_MODE": "webhook",
            "WEBHOOK_SECRET": "families-secret-0123456789", "KIE_API_KEY": "kie-families-key",
            "KIE_API_BASE": kie.base_url, "KIE_UPLOAD_BASE": kie.base_url,
            "DOWNLOAD_TRUSTED_HOSTS": urlsplit(kie.base_url).netloc, "WELCOME_BONUS": str(BONUS),
            "PORT": str(port), "TELEGRAM_RATE_GLOBAL": "0", "TELEGRAM_RATE_PER_CHAT": "0",
            "HEARTBEAT_INTERVAL": "0.5", "LOCK_RETRY_INTERVAL": "0.2", "STALE_AFTER": "3",
            "INBOX_SWEEP_INTERVAL": "0.2", "RESTART_BACKOFF_MIN": "0.05", "RESTART_BACKOFF_MAX": "0.5"}


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def world(pg_server_url: str, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[World]:
    name, url = await create_database(pg_server_url)
    tmp: Path = tmp_path_factory.mktemp("families")
    async with FakeTelegram() as telegram, FakeKie(duration=1.0) as kie:
        first_port, second_port = free_port(), free_port()
        envs = [env(url, telegram, kie, first_port, second_port), env(url, telegram, kie, second_port, second_port)]
        procs: list[TrtProcess] = []
        database = Database(url, "test", pool_size=4)
        try:
            procs.append(TrtProcess(tmp, envs[0], name="fam0").start())
            w = World(telegram, kie, database, url, tmp, procs, envs)
            await procs[0].wait_healthy()
            assert await w.leader() is procs[0]
            procs.append(TrtProcess(tmp, envs[1], name="fam1").start())
            await procs[1].wait_healthy()
            await telegram.wait_for(lambda: telegram.webhook_info().get("url"), 30, "the webhook set")
            await database.connect()
            yield w
        finally:
            for proc in procs:
                proc.kill()
            await database.close()
    await drop_database(pg_server_url, name)


@pytest_asyncio.fixture(loop_scope="module")
async def w(world: World) -> AsyncIterator[World]:
    world.reset_kie()
    yield world
    world.reset_kie()
    problems = await invariants.check(world.db, BOT_ID)
    assert not problems, "money invariants broken after the test:\n" + "\n".join(problems)


# -- jobs as the wizard confirms them ----------------------------------------------------------------


def task_input(family: str, chat: int, world: World) -> dict[str, Any]:
    model = model_of(family)
    values: dict[str, Any] = {"prompt": f"{family} for chat {chat}"}
    if family == "aleph":  # video to video: a clip the user sent, as KIE's upload service keeps it
        values["videoUrl"] = world.kie.add_file(f"uploads/{chat}/clip.mp4", results.clip(), "video/mp4")
    return dict(payload.build(model, values))


async def confirm(world: World, family: str, chat: int) -> Job:
    """What the wizard does at Confirm, under the current leader's epoch (again under the next one
    when the leader changed between reading the epoch and writing, as the dispatcher would)."""
    model = model_of(family)
    for _ in range(10):
        epoch = await world.db.require().fetchval("SELECT epoch FROM leader WHERE name = $1", NAME)
        try:
            await accounts.ensure_user(world.db, NAME, epoch, BOT_ID, chat, "en", 0)
            await accounts.credit(world.db, NAME, epoch, BOT_ID, chat, 10 * PRICE, f"seed:{chat}")
            made = Order(user_id=chat, chat_id=chat, nonce=f"families-{chat}", model=model.id, sku="test",
                         input=task_input(family, chat, world), price=PRICE, paid_with="money", day=date.today(),
                         endpoint=model.endpoint)
            created = await jobs.confirm(world.db, NAME, epoch, BOT_ID, made, free_daily_limit=5, max_active=10)
        except Fenced:
            continue
        assert isinstance(created, Created), created
        return created.job
    raise AssertionError("the leader kept changing for 10 tries")


async def all_told(world: World, ids: list[int], timeout: float = 60) -> dict[int, Job]:
    async def probe() -> dict[int, Job] | None:
        found = {i: await jobs.job(world.db, i) for i in ids}
        done = all(j is not None and j.delivered_at is not None for j in found.values())
        return {i: j for i, j in found.items() if j is not None} if done else None
    return await eventually(probe, timeout, f"jobs {ids} told", interval=0.1)


async def ledger_kinds(world: World, ids: list[int]) -> dict[int, list[str]]:
    rows = await world.db.require().fetch(
        "SELECT job_id, kind FROM ledger WHERE job_id = ANY($1::bigint[]) ORDER BY id", ids)
    out: dict[int, list[str]] = {i: [] for i in ids}
    for r in rows:
        out[r["job_id"]].append(r["kind"])
    return out


def media_sent(world: World, chat: int, method: str) -> list[Call]:
    return [c for c in world.telegram.calls(method, chat) if c.ok]


async def delivered_once_and_captured_once(world: World, made: dict[str, Job], timeout: float = 60) -> None:
    """Every job ended succeeded, its files sent once (Suno: two songs), KIE made one task for it,
    its money held once and captured once."""
    done = await all_told(world, [j.id for j in made.values()], timeout)
    kinds = await ledger_kinds(world, list(done))
    for family, job in made.items():
        end = done[job.id]
        assert end.state == "succeeded", (family, end.state, end.failure)
        assert kinds[job.id] == ["hold", "capture"], (family, kinds[job.id])
        sent = media_sent(world, job.chat_id, FAMILIES[family].media)
        assert len(sent) == FAMILIES[family].files, (family, [c.method for c in sent])
        tasks = [t for t in world.kie.tasks.values() if t.callback_url and t.callback_url.endswith(f"/{job.id}")]
        assert [t.task_id for t in tasks] == [end.kie_task_id], (family, [t.task_id for t in tasks])
        assert len(creates_of(world, family, job)) == 1, f"{family}: one create call for job {job.id}"


# -- a user through the bot -------------------------------------------------------------------------


async def walk(user: User, w: World, model: Model, prompt: str) -> Call:
    """/start -> the model's family -> its card -> Start -> every step it asks (optional ones
    skipped, options the first, files sent as a user sends them): the confirmation screen."""
    screen = await open_model(user, model.id)
    for item in flow.asked(model):
        if not item.required:
            screen = await user.press(screen, action(screen, "skip"))
        elif item.kind in ("prompt", "text"):
            screen = await user.say(prompt if item.kind == "prompt" else f"{item.name} of {prompt}")
        elif item.kind in ("enum", "bool"):
            screen = await user.press(screen, option(screen, None))
        elif item.kind == "image":
            screen, _ = await user.send_photo(png(f"{user.chat}-{model.id}"))
        elif item.kind == "video":
            update, _ = w.telegram.user_video(user.chat, results.clip(), duration=3, width=320, height=240,
                                              mime_type="video/mp4", language_code=LANG)
            screen = await user._to_screen(update, "after the video")
        else:
            raise AssertionError(f"this test does not answer a field of kind {item.kind}")
        if item.kind in MEDIA_KINDS and item.array:
            screen = await user.press(screen, action(screen, "done"))
    assert t("confirm_header") in (screen.text or ""), f"the confirmation expected, got {screen.text!r}"
    return screen


def result_came(new: list[Call]) -> list[Call] | None:
    """Everything sent once the result's last message (it carries Again) is among it."""
    return new if any(any(d.startswith(keyboards.AGAIN) for d in data_of(c)) for c in new) else None


async def told(w: World, chat: int) -> Job:
    async def probe() -> Job | None:
        found = await jobs.user_jobs(w.db, BOT_ID, chat, 0, 10)
        return found[0] if found and found[0].delivered_at is not None else None
    return await eventually(probe, 60, f"chat {chat}'s newest job told", interval=0.1)


def creates_of(w: World, family: str, job: Job) -> list[Any]:
    """The create calls at the family's path whose callBackUrl names the job."""
    return [c for c in w.kie.calls(FAMILIES[family].create)
            if c.path == FAMILIES[family].create and isinstance(c.json, dict)
            and str(c.json.get("callBackUrl", "")).endswith(f"/{job.id}")]


# -- the tests ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("family", NAMES)
async def test_a_generation_of_the_family_through_the_bot_is_created_at_its_path_and_delivered_and_charged_once(
        w: World, family: str) -> None:
    fam = FAMILIES[family]
    model = model_of(family)
    user = User(w.telegram, w.chat())
    confirmation = await walk(user, w, model, f"{family} through the bot")
    if family == "suno":  # the song stops at its first stage until finished: the status message shows it
        w.kie.plan("suno", hold=True, count=1)
    before = len(user.sent())
    assert await w.telegram.deliver(user.press_update(confirmation, action(confirmation, "ok"))) == 200
    status = await w.telegram.wait_for(lambda: user.sent()[before:][:1], 30, "the status message")
    assert status[0].method == "sendMessage" and model.title.get(LANG) in str(status[0].params.get("text")), status
    status_id = status[0].result["message_id"]

    def status_texts() -> list[str]:
        return [str(c.params.get("text")) for c in w.telegram.calls("editMessageText", user.chat)
                if c.ok and c.params.get("message_id") == status_id]
    if family == "suno":
        first = delivery_texts.t(LANG, "stage_first")
        await w.telegram.wait_for(lambda: [x for x in status_texts() if first in x], 30, "Suno's first stage shown")
        assert not media_sent(w, user.chat, "sendAudio"), "nothing is sent before complete"
        [job] = await jobs.user_jobs(w.db, BOT_ID, user.chat, 0, 10)
        w.kie.finish(job.kie_task_id or "")
    await w.telegram.wait_for(lambda: result_came(user.sent()[before:]), 90, "the result")
    job = await told(w, user.chat)
    assert job.state == "succeeded" and job.endpoint == family and job.model == model.id, (job.state, job.failure)
    assert rub(job.price) in (confirmation.text or ""), "the price charged is the one the confirmation showed"
    [create] = creates_of(w, family, job)
    assert not [k for k in create.json if k.startswith("_")], "our own keys never reach KIE"
    if family == "aleph":  # the user's video reached KIE through its upload service, never as a Telegram URL
        assert str(create.json["videoUrl"]).startswith(f"{w.kie.base_url}/files/uploads/"), create.json
    assert job.kie_task_id is not None and job.kie_task_id in w.kie.tasks
    media = media_sent(w, user.chat, fam.media)
    assert len(media) == fam.files, [c.method for c in user.sent()]
    if family == "suno":
        assert all(c.params.get("title") for c in media), "each song goes with its title"
    assert status_texts() and status_texts()[-1].startswith("✅"), "the status message ends as done"
    kinds = await ledger_kinds(w, [job.id])
    assert kinds[job.id] == ["hold", "capture"], kinds
    captured = await w.db.require().fetchval("SELECT balance_delta FROM ledger WHERE job_id = $1 AND kind = 'capture'",
                                             job.id)
    assert captured == -job.price
    attempts = await w.kie.wait_for_callbacks(1, job.kie_task_id, timeout=30)
    assert all(a.status == 200 for a in attempts), [(a.status, a.error) for a in attempts]



async def test_poll_only_a_job_of_every_family_is_delivered_once_and_captured_once(w: World) -> None:
    w.kie.callbacks = False  # KIE's callbacks lost: the status calls alone finish every job
    made = {family: await confirm(w, family, w.chat()) for family in NAMES}
    await delivered_once_and_captured_once(w, made)
    assert not w.kie.callback_attempts
    for family in made:
        assert w.kie.calls(FAMILIES[family].create), f"{family}: created at its own path"
        assert any(c.query.get("taskId") for c in w.kie.calls(FAMILIES[family].record)), family


async def test_a_callback_of_every_family_only_wakes_its_job_the_status_call_decides(w: World) -> None:
    """Callback only: with every family's status call failing, KIE's callbacks reach the process
    and are acted on, yet end nothing (a callback is a wake-up, never a verdict); once the status
    calls answer, every job ends as they say, delivered once and captured once."""
    failing = [w.kie.inject(FAMILIES[family].record, code=500, count=10_000) for family in NAMES]
    made = {family: await confirm(w, family, w.chat()) for family in NAMES}

    async def called_back() -> list[str] | None:
        found = [await jobs.job(w.db, j.id) for j in made.values()]
        ids = [j.kie_task_id for j in found if j is not None and j.kie_task_id is not None]
        done = len(ids) == len(made) and all(
            any(a.status == 200 for a in w.kie.callbacks_for(i)) for i in ids)
        return ids if done else None
    await eventually(called_back, 30, "every task's callback answered 200")

    async def applied() -> bool:
        return not await kie_callbacks.pending_callbacks(w.db, BOT_ID)
    await eventually(applied, 20, "every callback acted on")
    for family, job in made.items():
        found = await jobs.job(w.db, job.id)
        assert found is not None and not found.finished, (family, found and found.state)
        assert not media_sent(w, job.chat_id, FAMILIES[family].media), family
    for injection in failing:
        injection.remaining = 0
    await delivered_once_and_captured_once(w, made)


async def test_callbacks_and_polls_together_every_family_delivered_once_and_captured_once(w: World) -> None:
    made = {family: await confirm(w, family, w.chat()) for family in NAMES}
    await delivered_once_and_captured_once(w, made)
    for job in made.values():
        task_id = (await jobs.job(w.db, job.id)).kie_task_id  # type: ignore[union-attr]
        attempts = await w.kie.wait_for_callbacks(1, task_id, timeout=30)
        assert all(a.status == 200 for a in attempts), [(a.status, a.error) for a in attempts]


async def test_every_callback_three_times_every_family_delivered_once_and_captured_once(w: World) -> None:
    w.kie.callback_duplicates = 2
    made = {family: await confirm(w, family, w.chat()) for family in NAMES}
    await delivered_once_and_captured_once(w, made)

    async def applied() -> bool:
        return not await kie_callbacks.pending_callbacks(w.db, BOT_ID)
    await eventually(applied, 20, "every copy applied")
    for family, job in made.items():
        assert len(media_sent(w, job.chat_id, FAMILIES[family].media)) == FAMILIES[family].files, family


async def test_a_kill_9_of_the_leader_mid_job_finishes_every_family_on_the_standby(w: World) -> None:
    first = await w.leader()
    index = w.procs.index(first)
    w.kie.plan(hold=True)
    made = {family: await confirm(w, family, w.chat()) for family in NAMES}

    async def running() -> bool:
        found = [await jobs.job(w.db, j.id) for j in made.values()]
        return all(j is not None and j.state == "running" for j in found)
    await eventually(running, 30, "every task created and polled as running")
    first.kill()
    survivor = await w.leader()
    assert survivor is not first
    for job in made.values():
        task_id = (await jobs.job(w.db, job.id)).kie_task_id  # type: ignore[union-attr]
        w.kie.finish(task_id or "")
    await delivered_once_and_captured_once(w, made)
    w.restart(index)
    await w.procs[index].wait_healthy()


def action_of(parent: Model, child: str) -> str:
    """The id of the action of `parent` that starts the model `child` (catalog Model.actions)."""
    found = [a.id for a in parent.actions if a.model == child]
    assert found, f"{parent.id} offers no action starting {child}: {parent.actions}"
    return found[0]


def shown_with(w: World, chat: int, data: str) -> Call:
    """The last message sent to the chat that carries the button `data`."""
    found = [c for c in w.telegram.sent_messages(chat) if data in data_of(c)]
    assert found, f"no message in chat {chat} carries {data!r}"
    return found[-1]


@pytest.mark.parametrize(("family", "child", "item"), [("veo", "veo/1080p", 0), ("suno", "suno/extend", 1)],
                         ids=["veo-1080p", "suno-extend"])
async def test_an_action_on_a_result_through_the_bot_makes_one_child_job_with_its_own_price(
        w: World, family: str, child: str, item: int | None) -> None:
    """The result's button (bot/routers/actions.py) pressed as a user presses it: the child's wizard
    asks only what the parent does not say, its confirmation shows the child's own price, Confirm
    makes one job tied to its parent, delivered once and charged once at that price."""
    chat = w.chat()
    parent = await confirm(w, family, chat)
    [done] = (await all_told(w, [parent.id])).values()
    assert done.state == "succeeded", (done.state, done.failure)
    data = keyboards.action_data(parent.id, action_of(model_of(family), child), item)
    user = User(w.telegram, chat)
    screen = await user.press(shown_with(w, chat, data), data)
    for _ in range(5):  # whatever the child asks beyond what the parent says
        if t("confirm_header") in (screen.text or ""):
            break
        screen = await user.say(f"{child} of job {parent.id}")
    assert t("confirm_header") in (screen.text or ""), screen.text
    await user.press_for(screen, action(screen, "ok"), result_came, "the child's result", timeout=90)
    kids = [j for j in await jobs.user_jobs(w.db, BOT_ID, chat, 0, 10) if j.parent_id == parent.id]
    assert len(kids) == 1, [(j.id, j.model, j.parent_id) for j in kids]
    kid = (await all_told(w, [kids[0].id]))[kids[0].id]
    assert kid.model == child and kid.endpoint == family and kid.state == "succeeded", (kid.model, kid.failure)
    assert rub(kid.price) in (screen.text or ""), "the child's own price, shown at its confirmation"
    assert kid.price == price_of(child, kid.input) and kid.price != parent.price
    kinds = await ledger_kinds(w, [parent.id, kid.id])
    assert kinds == {parent.id: ["hold", "capture"], kid.id: ["hold", "capture"]}, kinds
    if child == "veo/1080p":
        assert not creates_of(w, family, kid), "1080p is fetched from the original's task, never created"
    else:
        [create] = w.kie.calls("/api/v1/generate/extend")
        song = done.result["items"][item]  # type: ignore[index]
        assert create.json["audioId"] == song["ref"], "the chosen song is the one extended"


def price_of(model_id: str, values: dict[str, Any]) -> int:
    """What the bot charges for the model with these values (its credits at the bot's rate)."""
    from bot.prices import kopecks

    settings = config.load("serve", {"TELEGRAM_BOT_TOKEN": FAKE_TOKEN})
    return kopecks(settings, CATALOG.model(model_id).credits(values))


async def test_kies_failure_codes_of_every_family_release_the_hold_and_say_so_in_plain_words(w: World) -> None:
    for family in NAMES:  # a plan per family (the fake's plan keys: <family>/<operation>/<variant>, <family>)
        w.kie.plan(family, "fail", fail_code=FAMILIES[family].fail_code, fail_msg=FAMILIES[family].fail_msg, count=1)
    made = {family: await confirm(w, family, w.chat()) for family in NAMES}
    done = await all_told(w, [j.id for j in made.values()])
    kinds = await ledger_kinds(w, list(done))
    for family, job in made.items():
        fam, end = FAMILIES[family], done[job.id]
        assert end.state == "failed", (family, end.state)
        assert kinds[job.id] == ["hold", "release"], (family, kinds[job.id])
        words = " ".join(str(c.params.get("text") or "") for c in w.telegram.calls(chat_id=job.chat_id) if c.ok)
        assert delivery_texts.t(LANG, fam.told) in words and delivery_texts.t(LANG, "refund_money") in words, \
            (family, words)
        assert fam.fail_msg not in words and f" {fam.fail_code}" not in words, f"{family}: KIE's words shown: {words}"
        assert not media_sent(w, job.chat_id, fam.media), family


async def test_suno_stages_duplicated_and_out_of_order_deliver_two_songs_once_at_complete(w: World) -> None:
    """Suno calls back at text, first and complete (DEDICATED.md §3.3); here every stage comes
    twice and complete before first: nothing is sent or charged before complete, then two songs,
    once, and one capture."""
    w.kie.plan("suno", stage_order=("text", "complete", "first"), duplicates=1)
    job = await confirm(w, "suno", w.chat())
    done = (await all_told(w, [job.id]))[job.id]
    assert done.state == "succeeded", done.failure
    task_id = done.kie_task_id or ""
    attempts = await w.kie.wait_for_callbacks(6, task_id, timeout=30)
    assert [a.stage for a in attempts if a.copy == 0] == ["text", "complete", "first"], attempts
    assert all(a.status == 200 for a in attempts), [(a.stage, a.status) for a in attempts]

    async def applied() -> bool:
        return not await kie_callbacks.pending_callbacks(w.db, BOT_ID)
    await eventually(applied, 20, "every stage's callback applied")
    songs = media_sent(w, job.chat_id, "sendAudio")
    assert len(songs) == 2, [c.method for c in w.telegram.sent_messages(job.chat_id)]
    assert (await ledger_kinds(w, [job.id]))[job.id] == ["hold", "capture"]
