"""A tiny scripted KIE on 127.0.0.1 for adapter tests: answers each path with the bodies a test
queues (the last one repeats), and keeps every request it saw.

Why it exists: an adapter's wire format is proven only by a real KieClient talking real HTTP,
but the family fakes (fakes/kie) play whole task lives; these tests want to hand back KIE's
documented sample bodies verbatim, odd shapes included, and see exactly what was sent.
"""

from __future__ import annotations

from dataclasses import dataclass
from types import TracebackType
from typing import Any, Self

from aiohttp import web

__all__ = ["ScriptedKie", "Seen"]


@dataclass(frozen=True)
class Seen:
    """One request the scripted KIE received."""

    method: str
    path: str
    query: dict[str, str]
    json: Any
    authorization: str | None = None


class ScriptedKie:
    """``answer(path, body, ...)`` queues envelopes for a path; an unscripted path answers code 404."""

    def __init__(self) -> None:
        self.seen: list[Seen] = []
        self._answers: dict[str, list[dict[str, Any]]] = {}
        self._runner: web.AppRunner | None = None
        self.base_url = ""

    def answer(self, path: str, *bodies: dict[str, Any]) -> None:
        self._answers.setdefault(path, []).extend(bodies)

    def succeed(self, path: str, data: Any) -> None:
        """From now on `path` answers code 200 with `data` (what was scripted for it before is dropped)."""
        self._answers[path] = [{"code": 200, "msg": "success", "data": data}]

    def requests(self, path: str) -> list[Seen]:
        return [seen for seen in self.seen if seen.path == path]

    async def _handle(self, request: web.Request) -> web.Response:
        body = await request.json() if request.can_read_body else None
        self.seen.append(Seen(request.method, request.path, dict(request.query), body,
                              request.headers.get("Authorization")))
        queue = self._answers.get(request.path)
        if not queue:
            return web.json_response({"code": 404, "msg": "nothing scripted for this path", "data": None})
        return web.json_response(queue.pop(0) if len(queue) > 1 else queue[0])

    async def __aenter__(self) -> Self:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", 0).start()
        host, port = self._runner.addresses[0][:2]
        self.base_url = f"http://{host}:{port}"
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
