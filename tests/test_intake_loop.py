"""The webhook served on the intake loop (a thread of its own): acks do not wait for the main loop.

In process: Ingress with an IntakeLoop, a real PostgreSQL, and a client in another thread
speaking HTTP to the port, so the main loop can be held on purpose while an update is posted.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
import urllib.error
import urllib.request
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field

import pytest
from aiohttp import web

import config
from actors.ingress import Ingress
from fakes.telegram_api import message_update
from ingest.intake_loop import IntakeLoop
from ingest.kie_callbacks import KieCallbackIntake
from ingest.webhook_intake import SECRET_HEADER, WebhookIntake
from store.database import Database
from store.inbox import Incoming
from tests.actors_kit import until
from tests.conftest import until_one_waits_on_a_lock
from tests.procs import FAKE_TOKEN, free_port

pytestmark = pytest.mark.timeout(60)
SECRET = "intake-loop-secret_0123"
BOT_ID = int(FAKE_TOKEN.split(":")[0])


@dataclass
class Served:
    port: int
    ingress: Ingress
    loop: IntakeLoop
    intake: WebhookIntake
    batches: list[tuple[int, list[tuple[int, bool]]]] = field(default_factory=list)  # (thread, [(update, new)])
    route_threads: list[int] = field(default_factory=list)
    dated: list[float] = field(default_factory=list)  # when each handed-over batch's commit began

    def post(self, path: str, body: bytes, headers: dict[str, str]) -> int:
        """A blocking POST, for a thread of the test's own (the main loop may be held meanwhile)."""
        request = urllib.request.Request(f"http://127.0.0.1:{self.port}{path}", data=body, headers=headers,
                                         method="POST")
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                return int(response.status)
        except urllib.error.HTTPError as exc:
            return int(exc.code)

    def post_update(self, update_id: int, chat: int) -> int:
        return self.post("/webhook", json.dumps(message_update(update_id, chat, "/start")).encode(),
                         {SECRET_HEADER: SECRET, "Content-Type": "application/json"})


@pytest.fixture
async def served(db: Database) -> AsyncIterator[Served]:
    port = free_port()
    settings = config.load("serve", {"TELEGRAM_BOT_TOKEN": FAKE_TOKEN, "WEBHOOK_SECRET": SECRET, "PORT": str(port),
                                     "DATABASE_URL": db.url})
    holder: list[Served] = []

    def committed(batch: Sequence[tuple[Incoming, bool]], at: float) -> None:
        holder[0].batches.append((threading.get_ident(), [(row.update_id, new) for row, new in batch]))
        holder[0].dated.append(at)

    async def echo(request: web.Request) -> web.Response:
        holder[0].route_threads.append(threading.get_ident())
        return web.Response(body=await request.read())

    intake = WebhookIntake(settings, db, committed, lambda user: "updating")
    loop = IntakeLoop("intake-test")
    ingress = Ingress(Ingress.new_mailbox("ingress"), settings, health=dict, find_actor=lambda name: None,
                      host="127.0.0.1", routes=[("POST", "/echo", echo)], intake=intake,
                      kie_callbacks=KieCallbackIntake(settings, db, lambda: None), intake_loop=loop)
    holder.append(Served(port, ingress, loop, intake))
    await ingress.on_start()
    try:
        yield holder[0]
    finally:
        await ingress.on_stop()
        await loop.join(5.0)


async def test_an_update_is_acknowledged_while_the_main_loop_is_held(served: Served, db: Database) -> None:
    """The ack is made on the intake loop: a main loop busy with dispatch cannot delay it."""
    answered = threading.Event()
    status: list[int] = []

    def client() -> None:
        status.append(served.post_update(5001, 901))
        answered.set()

    threading.Thread(target=client, daemon=True).start()
    acknowledged_while_held = answered.wait(20)  # holds the main loop on purpose, as a long dispatch would
    assert acknowledged_while_held and status == [200]
    assert await db.require().fetchval("SELECT count(*) FROM inbox WHERE update_id = 5001") == 1


async def test_a_committed_batch_is_handed_to_the_main_loop_once_with_each_update_and_whether_it_was_new(
        served: Served) -> None:
    main = threading.get_ident()
    assert await asyncio.to_thread(served.post_update, 5002, 902) == 200
    assert await asyncio.to_thread(served.post_update, 5002, 902) == 200  # Telegram's redelivery
    await until(lambda: len(served.batches) >= 2, timeout=10, what="both commits handed over")
    assert served.batches == [(main, [(5002, True)]), (main, [(5002, False)])]


async def test_a_batch_is_handed_over_dated_when_its_commit_began_before_any_claim_could_see_it(
        served: Served, db: Database) -> None:
    """The main loop may claim an update before it runs the hand-over (a claim started after the
    commit, its answer read first): the trace's "received", dated at the hand-over, then came
    after "claimed" (tests/test_traces_e2e.py failed so, once). Dated when the commit began, it
    comes first."""
    async with db.require().acquire() as conn, conn.transaction():
        await conn.execute("LOCK TABLE inbox IN EXCLUSIVE MODE")  # the batch's insert waits behind it
        posting = asyncio.ensure_future(asyncio.to_thread(served.post_update, 5005, 905))
        await until_one_waits_on_a_lock(db)
        visible_from = time.time()  # nothing of the batch is committed before the lock goes
    assert await posting == 200
    await until(lambda: len(served.dated) >= 1, timeout=10, what="the commit handed over")
    assert served.batches[-1][1] == [(5005, True)]
    assert served.dated[-1] < visible_from


async def test_the_other_routes_run_on_the_main_loop_with_their_body_already_read(served: Served) -> None:
    main = threading.get_ident()
    assert await asyncio.to_thread(served.post, "/echo", b"hello", {}) == 200
    assert served.route_threads == [main]


async def test_an_ingress_restart_serves_again_and_a_new_intake_thread_gets_a_new_commit_and_pool(
        served: Served, db: Database) -> None:
    assert await asyncio.to_thread(served.post_update, 5003, 903) == 200
    first_commit, first_pool = served.intake.commits, served.intake.pool
    await served.ingress.on_stop()  # a crash of ingress: its server goes, the intake loop stays
    await served.ingress.on_start()
    assert served.intake.commits is first_commit and served.intake.pool is first_pool
    assert await asyncio.to_thread(served.post_update, 5004, 904) == 200
    await served.ingress.on_stop()
    assert await served.loop.join(5.0)  # the thread itself ended: its loop's objects are unusable now
    await served.ingress.on_start()
    assert served.intake.commits is not first_commit and served.intake.pool is not first_pool
    assert await asyncio.to_thread(served.post_update, 5005, 905) == 200
    rows = await db.require().fetch("SELECT update_id FROM inbox WHERE update_id BETWEEN 5003 AND 5005")
    assert sorted(r["update_id"] for r in rows) == [5003, 5004, 5005]


async def test_an_unreachable_database_is_a_503_from_the_intake_loop_too(served: Served, db: Database) -> None:
    db.mark_down(ConnectionRefusedError("the database went away"))
    try:
        assert await asyncio.to_thread(served.post_update, 5006, 906) == 503
    finally:
        db.mark_up(None)
    assert await asyncio.to_thread(served.post_update, 5006, 906) == 200

