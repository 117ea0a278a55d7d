"""createTask is refused for certain only when KIE says so: a CDN's page after the request reached KIE is ambiguous.

A real aiohttp reverse proxy on 127.0.0.1 stands where Cloudflare stands in front of KIE: it
forwards createTask to the fake KIE (which makes and bills the task) and then answers with the
edge's own page instead of KIE's envelope. KIE has no idempotency key, so a client that took
that page for a refusal and sent createTask again would make a second billed task.
"""

from __future__ import annotations

import json
import socket
from collections import deque
from collections.abc import AsyncIterator
from dataclasses import dataclass

import aiohttp
import pytest
from aiohttp import web

from fakes.kie_api import CREATE_PATH, FakeKie
from kie import KieClient, KieError, RetryPolicy, Transport

pytestmark = pytest.mark.timeout(60)

KEY = "kie-certainty-key-0123456789"
MODEL = "z-image"
FAST_RETRY = RetryPolicy(attempts=4, base=0.01, cap=0.05)


def cloudflare_page(status: int, title: str) -> str:
    """The shape of Cloudflare's own error page: HTML, the status in the title, no KIE envelope."""
    return (f"<!DOCTYPE html><html lang=\"en-US\"><head><title>api.kie.ai | {status}: {title}</title></head>"
            f"<body><div id=\"cf-error-details\"><h1>{title}</h1><span>Error code {status}</span>"
            f"<p>Cloudflare Ray ID: 8f1c2a3b4d5e6f70</p></div></body></html>")


@dataclass(frozen=True)
class EdgeAnswer:
    """What the edge says after it has forwarded the request to KIE (and dropped KIE's answer)."""

    status: int
    body: str
    content_type: str = "text/html"


class Edge:
    """A reverse proxy in front of the fake KIE: every request is forwarded; a queued EdgeAnswer
    replaces the answer to the next createTask *after* KIE has handled it."""

    def __init__(self, origin: FakeKie) -> None:
        self.origin = origin
        self.answers: deque[EdgeAnswer] = deque()
        self.forwarded_creates = 0
        self._runner: web.AppRunner | None = None
        self._session: aiohttp.ClientSession | None = None
        self.base_url = ""

    async def __aenter__(self) -> Edge:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._forward)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        host, port = self._runner.addresses[0][:2]
        self.base_url = f"http://{host}:{port}"
        self._session = aiohttp.ClientSession()
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._session is not None:
            await self._session.close()
        if self._runner is not None:
            await self._runner.cleanup()

    async def _forward(self, request: web.Request) -> web.Response:
        assert self._session is not None
        headers = {k: v for k, v in request.headers.items()
                   if k.lower() in ("authorization", "content-type", "user-agent", "accept")}
        async with self._session.request(request.method, self.origin.base_url + request.path_qs,
                                         data=await request.read(), headers=headers,
                                         allow_redirects=False) as answer:
            body = await answer.read()
            status, content_type = answer.status, answer.headers.get("Content-Type", "application/json")
        if request.path == CREATE_PATH:
            self.forwarded_creates += 1
            if self.answers:
                edge = self.answers.popleft()
                return web.Response(status=edge.status, body=edge.body.encode(), content_type=edge.content_type)
        return web.Response(status=status, body=body, headers={"Content-Type": content_type})


@pytest.fixture
async def fake() -> AsyncIterator[FakeKie]:
    async with FakeKie(api_key=KEY, duration=0.1) as server:
        yield server


@pytest.fixture
async def edge(fake: FakeKie) -> AsyncIterator[Edge]:
    async with Edge(fake) as proxy:
        yield proxy


@pytest.fixture
async def kie(edge: Edge) -> AsyncIterator[KieClient]:
    async with KieClient(KEY, edge.base_url, edge.base_url, timeout=5, retry=FAST_RETRY) as client:
        yield client


@pytest.mark.parametrize("answer", [
    EdgeAnswer(502, cloudflare_page(502, "Bad gateway")),
    EdgeAnswer(520, cloudflare_page(520, "Web server is returning an unknown error")),
    EdgeAnswer(503, cloudflare_page(503, "Service Temporarily Unavailable")),
    EdgeAnswer(429, cloudflare_page(429, "Too Many Requests")),
    EdgeAnswer(502, ""),
    EdgeAnswer(502, json.dumps({"message": "Bad Gateway"}), "application/json"),
    EdgeAnswer(500, json.dumps({"code": 200, "msg": "success"}), "application/json"),
], ids=["cf-502", "cf-520", "cf-503", "cf-429", "empty-502", "json-without-code-502", "code-200-behind-500"])
async def test_an_edge_page_after_create_task_is_ambiguous_and_the_task_is_made_once(
        fake: FakeKie, edge: Edge, kie: KieClient, answer: EdgeAnswer) -> None:
    edge.answers.extend([answer] * 6)  # whatever the client does next, the edge keeps answering so
    with pytest.raises(KieError) as caught:
        await kie.create_task(MODEL, {"prompt": "a red fox"}, "https://bot.example/kie-callback/s/7")
    assert len(fake.tasks) == 1, f"{len(fake.tasks)} billed tasks at KIE for one createTask"
    assert edge.forwarded_creates == 1 and len(fake.calls(CREATE_PATH)) == 1, "createTask was sent again"
    assert caught.value.ambiguous, f"{answer.status} from the edge was taken for KIE's refusal: {caught.value!r}"


async def test_kies_own_json_refusal_without_a_task_id_is_retried_and_makes_one_task(
        fake: FakeKie, edge: Edge, kie: KieClient) -> None:
    fake.inject("createTask", code=500)
    fake.inject("createTask", code=429, http_status=200, msg="slow down")
    fake.inject("createTask", code=455)
    task = await kie.create_task(MODEL, {"prompt": "a red fox"})
    assert [call.status for call in fake.calls(CREATE_PATH)] == [500, 200, 455, 200]
    assert list(fake.tasks) == [task.task_id]


async def test_a_connection_refused_is_certain_and_retried() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    base = f"http://127.0.0.1:{port}"  # nothing listens there now
    attempts: list[int] = []
    async with KieClient(KEY, base, base, timeout=5, retry=FAST_RETRY) as kie:
        with pytest.raises(Transport) as caught:
            await kie.create_task(MODEL, {"prompt": "x"}, before_each=lambda: attempts.append(1))
    assert caught.value.retryable and not caught.value.ambiguous
    assert len(attempts) == FAST_RETRY.attempts, "a connection that never opened is a certain refusal: retried"


async def test_before_each_runs_before_every_attempt_after_the_intent(fake: FakeKie, kie: KieClient) -> None:
    fake.inject("createTask", code=500, count=2)
    seen: list[tuple[str, int]] = []

    async def intent() -> None:
        seen.append(("intent", len(fake.calls(CREATE_PATH))))

    def lease() -> None:
        seen.append(("lease", len(fake.calls(CREATE_PATH))))

    task = await kie.create_task(MODEL, {"prompt": "a fox"}, before_send=intent, before_each=lease)
    assert seen == [("intent", 0), ("lease", 0), ("lease", 1), ("lease", 2)]
    assert list(fake.tasks) == [task.task_id]


class LeaseLost(Exception):
    pass


@pytest.mark.parametrize("lost", [LeaseLost("another instance holds the jobs now"),
                                  Transport("the lease check could not reach the database")],
                         ids=["own-exception", "a-retryable-kie-error"])
async def test_a_lost_lease_in_before_each_stops_the_retries_with_nothing_more_sent(
        fake: FakeKie, kie: KieClient, lost: Exception) -> None:
    fake.inject("createTask", code=500, count=3)
    checks: list[int] = []

    def lease() -> None:
        checks.append(len(fake.calls(CREATE_PATH)))
        if len(checks) == 2:
            raise lost

    with pytest.raises(type(lost)):
        await kie.create_task(MODEL, {"prompt": "a fox"}, before_each=lease)
    assert checks == [0, 1]
    assert len(fake.calls(CREATE_PATH)) == 1 and fake.tasks == {}
