"""A tiny KIE on 127.0.0.1 for the dedicated adapters' tests: canned envelopes by path, every call kept.

Why it exists: the adapters' own tests must go through a real KieClient over HTTP (the envelope,
the query, the JSON body as sent), but they need exactly the documented sample bodies back,
not the fake KIE's simulation; this server answers whatever the test puts in ``answers``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web


@dataclass
class Seen:
    method: str
    path: str
    query: dict[str, str]
    json: Any
    authorization: str | None


@dataclass
class TinyKie:
    base_url: str = ""
    answers: dict[str, Any] = field(default_factory=dict)  # path -> the envelope's data (code 200)
    calls: list[Seen] = field(default_factory=list)

    def envelope(self, path: str) -> dict[str, Any]:
        return {"code": 200, "msg": "success", "data": self.answers[path]}


@asynccontextmanager
async def tiny_kie() -> AsyncIterator[TinyKie]:
    kie = TinyKie()

    async def handle(request: web.Request) -> web.Response:
        body = await request.json() if request.can_read_body else None
        kie.calls.append(Seen(request.method, request.path, dict(request.query), body,
                              request.headers.get("Authorization")))
        if request.path not in kie.answers:
            return web.json_response({"code": 404, "msg": "no such path", "data": None})
        return web.json_response(kie.envelope(request.path))

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    host, port = runner.addresses[0][:2]
    kie.base_url = f"http://{host}:{port}"
    try:
        yield kie
    finally:
        await runner.cleanup()
