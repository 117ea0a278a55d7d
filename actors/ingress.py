"""ingress: the aiohttp server of the process (/webhook, /kie-callback, /health, /metrics, /chaos).

HTTP handlers run in aiohttp's own tasks, not in the actor's message loop, so a slow request
never blocks the actor and a crash of the actor (a restart rebinds the port) never loses more
than the requests in flight. /health and /metrics read the tree through the observer callables
the tree builder hands in; ingress imports no other actor.

Given an intake loop (a served process in webhook mode), the server runs there, so an ack never
waits behind the dispatcher's work on the main loop: /webhook is answered on the intake loop,
and every other route, which reads or tells the tree, is run on the main loop (its body read
first, where its stream lives).
"""

from __future__ import annotations

import asyncio
import hmac
import json
import math
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST

from actors.actor import Actor, handles
from actors.mailbox import Mailbox, MailboxError
from actors.roles import ask_for_role
from config import Settings
from ingest.intake_loop import IntakeLoop, run_in
from ingest.kie_callbacks import ROUTE as KIE_CALLBACK_ROUTE
from ingest.kie_callbacks import KieCallbackIntake
from ingest.webhook_intake import WebhookIntake
from ingest.webhook_protocol import WebhookServer
from messages.control import ChaosFault
from messages.roles import Relinquish, Role, RoleChanged
from telemetry import http_errors, logs
from telemetry.metrics import METRICS

log = logs.get("ingress")

FAULTS = ("crash", "hang", "slow", "exit", "fenced_write")  # fenced_write: lock_keeper only
SHUTDOWN_TIMEOUT = 5.0  # seconds the answers being made get to finish when the server stops
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def json_response(body: dict[str, Any], status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(text=json.dumps(body, ensure_ascii=False), status=status,
                        content_type="application/json", headers=headers)


class Ingress(Actor):
    stop_deadline: float = 15.0

    def __init__(
        self,
        mailbox: Mailbox,
        settings: Settings,
        health: Callable[[], dict[str, Any]],
        find_actor: Callable[[str], Mailbox | None],
        host: str = "0.0.0.0",
        routes: list[tuple[str, str, Handler]] | None = None,
        intake: WebhookIntake | None = None,
        kie_callbacks: KieCallbackIntake | None = None,
        intake_loop: IntakeLoop | None = None,
    ) -> None:
        super().__init__(mailbox)
        self.settings = settings
        self.read_health = health
        self.find_actor = find_actor
        self.host = host
        self.extra_routes = routes or []
        self.intake = intake
        self.kie_callbacks = kie_callbacks
        self.intake_loop = intake_loop if intake is not None else None  # only /webhook's acks need it
        self.runner: web.AppRunner | None = None
        self.webhook_server: WebhookServer | None = None

    async def on_start(self) -> None:
        http_errors.install()  # aiohttp's parser errors: one warning line each, not an error with a traceback
        main = asyncio.get_running_loop()
        threaded = self.intake_loop is not None
        on_main = self._on_main if threaded else (lambda handler: handler)
        app = web.Application(client_max_size=self.settings.max_body_bytes, middlewares=[self._count])
        app.router.add_get("/", self._root)
        app.router.add_get("/health", on_main(self._health))
        app.router.add_get("/metrics", on_main(self._metrics))
        if self.settings.chaos_token:
            app.router.add_post("/chaos/{actor}", on_main(self._chaos_request))
        if self.intake is not None:
            app.router.add_post("/webhook", self.intake.handle)
        if self.kie_callbacks is not None:  # on every instance: KIE calls whichever answers the URL
            app.router.add_post(KIE_CALLBACK_ROUTE, self.kie_callbacks.handle)  # reads its body first, itself
        for method, path, handler in self.extra_routes:
            app.router.add_route(method, path, on_main(handler))
        if self.intake_loop is not None:
            await asyncio.to_thread(self.intake_loop.start)
            loop = self.intake_loop.loop
            assert loop is not None and self.intake is not None
            self.intake.attach(loop, main)
            if self.kie_callbacks is not None:
                self.kie_callbacks.home = main
            self.runner = await self.intake_loop.run(self._serve(app))
        else:
            self.runner = await self._serve(app)
        log.info("http_listening", extra={"port": self.settings.port, "intake_thread": threaded})
        if self.intake is not None:
            ask_for_role(self.find_actor("lock_keeper"))

    async def _serve(self, app: web.Application) -> web.AppRunner:
        """Runs on the loop that will serve `app` (aiohttp binds a runner to the loop it starts on).
        With a webhook, the port's connections start as ingest/webhook_protocol.py's, which hands
        every request but Telegram's posts to the runner's server."""
        runner = web.AppRunner(app, access_log=None, handle_signals=False, shutdown_timeout=SHUTDOWN_TIMEOUT)
        await runner.setup()
        try:
            if self.intake is not None:
                assert runner.server is not None
                self.webhook_server = WebhookServer(self.intake, runner.server)
                await self.webhook_server.start(self.host, self.settings.port)
            else:
                await web.TCPSite(runner, self.host, self.settings.port, reuse_address=True, backlog=1024).start()
        except BaseException:
            await runner.cleanup()
            raise
        return runner

    async def _unserve(self, runner: web.AppRunner | None) -> None:
        server, self.webhook_server = self.webhook_server, None
        if server is not None:
            await server.stop(SHUTDOWN_TIMEOUT)
        if runner is not None:
            await runner.cleanup()
        if self.intake is not None:
            await self.intake.close()

    async def on_stop(self) -> None:
        runner, self.runner = self.runner, None
        if self.intake_loop is not None and self.intake_loop.alive:
            await self.intake_loop.run(self._unserve(runner))
        else:
            await self._unserve(runner)

    def _on_main(self, handler: Handler) -> Handler:
        """`handler` run on the main loop for a request served on the intake loop: the body is read
        here first (a stream belongs to its loop), then the handler sees it read."""
        main = asyncio.get_running_loop()

        async def on_main(request: web.Request) -> web.StreamResponse:
            if request.can_read_body:
                await request.read()  # bounded by client_max_size; a broken body is _count's 400
            async def run() -> web.StreamResponse:
                return await handler(request)

            return await run_in(main, run())

        return on_main

    def health(self) -> dict[str, Any]:
        """The webhook intake's group commit: pending, oldest wait, free slots, batches, problems."""
        return {} if self.intake is None else {"intake": self.intake.health()}

    @handles(RoleChanged, deadline=1.0)
    async def role_changed(self, msg: RoleChanged) -> None:
        """PASSIVE_MODE=REJECT answers callback queries itself while this instance is not ACTIVE."""
        if self.intake is not None:
            self.intake.role = msg.role

    @handles(Relinquish, deadline=1.0)
    async def relinquish(self, msg: Relinquish) -> bool:
        if self.intake is not None:
            self.intake.role = Role.PASSIVE
        return True

    @web.middleware
    async def _count(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        route = request.match_info.route.resource
        name = route.canonical if route is not None else "unmatched"
        try:
            response = await handler(request)
        except web.HTTPException as exc:
            METRICS.http_requests.labels(name, str(exc.status)).inc()
            raise
        except http_errors.CLIENT_ERRORS as exc:  # a body a route read was broken on the wire, or cut short
            http_errors.reported(exc)
            reason, detail = http_errors.describe(exc)
            METRICS.http_requests.labels(name, "400").inc()
            log.warning(http_errors.EVENT, extra={"route": name, "source": request.remote or "unknown",
                                                   "reason": reason, "detail": detail})
            return json_response({"error": "the request could not be read"}, status=400)
        except Exception:
            METRICS.http_requests.labels(name, "500").inc()
            log.exception("http_handler_failed", extra={"route": name})
            return json_response({"error": "internal error"}, status=500)
        METRICS.http_requests.labels(name, str(response.status)).inc()
        return response

    async def _root(self, request: web.Request) -> web.StreamResponse:
        raise web.HTTPFound("/health")

    async def _health(self, request: web.Request) -> web.Response:
        return json_response(self.read_health(), headers={"Cache-Control": "no-store"})

    async def _metrics(self, request: web.Request) -> web.Response:
        response = web.Response(body=METRICS.render())
        response.headers["Content-Type"] = CONTENT_TYPE_LATEST
        return response

    async def _chaos_request(self, request: web.Request) -> web.Response:
        token = request.headers.get("X-Chaos-Token", "")
        if not hmac.compare_digest(token.encode(), (self.settings.chaos_token or "").encode()):
            return json_response({"error": "wrong or missing X-Chaos-Token"}, status=401)
        name = request.match_info["actor"]
        try:
            raw = await request.read()  # already read when served on the intake loop (then can_read_body is False)
            body = json.loads(raw) if raw.strip() else {}
        except ValueError:
            return json_response({"error": "body must be JSON"}, status=400)
        if not isinstance(body, dict):
            return json_response({"error": "body must be a JSON object"}, status=400)
        fault = body.get("fault")
        if fault not in FAULTS:
            return json_response({"error": f"fault must be one of {', '.join(FAULTS)}"}, status=400)
        try:
            seconds = float(body.get("seconds", 0))
            code = int(body.get("code", 1))
            deadline = None if body.get("deadline") is None else float(body["deadline"])
        except (TypeError, ValueError):
            return json_response({"error": "seconds and deadline must be numbers, code an integer"}, status=400)
        if not all(math.isfinite(v) and 0 <= v <= 3600 for v in (seconds, deadline or 0.0)):
            return json_response({"error": "seconds and deadline must be between 0 and 3600"}, status=400)
        mailbox = self.find_actor(name)
        if mailbox is None:
            return json_response({"error": f"no actor named {name!r}"}, status=404)
        msg = ChaosFault(fault, seconds=seconds, ignore_cancel=bool(body.get("ignore_cancel", False)), code=code,
                         deadline=deadline or None)
        log.warning("chaos_requested", extra={"target": name, "fault": fault, "seconds": seconds})
        try:
            mailbox.tell_nowait(msg)
        except MailboxError as exc:
            return json_response({"error": f"{name} cannot take it: {exc}"}, status=503)
        return json_response({"accepted": True, "actor": name, "fault": fault}, status=202)
