"""POST /kie-callback/<token>/<job_id>: KIE saying a task ended, made durable, then acknowledged.

Any instance takes callbacks, ACTIVE or PASSIVE: the callback URL names one public base URL, and
KIE calls it once (maybe twice), with a 15 s timeout and no documented retry, so a callback
dropped for being on the wrong instance would leave the job to polling. The route does only
what durability needs: the token in the URL, bound to its job (an HMAC of the job id under the
callback secret, compared in constant time; 401), KIE's signature when KIE_WEBHOOK_HMAC_KEY is
set (401), a body kie/ can read (400), then the raw body stored with the job it names, and 200.

A callback is a wake-up, never a verdict: the jobs actor (generation/follow.py) asks recordInfo
with our key over TLS and acts only on that answer, so a forged body (a leaked URL, or KIE's
signature, which covers only taskId and timestamp and so accepts any body for its five minutes)
can at most wake a job early. Binding the URL to its job means one leaked URL opens that job at
most. Jobs created before per-job tokens carried the bot-wide secret in their URL: their
callbacks are now 401, and they end by polling, as every job does without callbacks.

Applying it is the ACTIVE jobs actor's work (fenced); `wake` tells a local one at once. The
token is never logged: aiohttp's access log is off and routes are counted by their pattern.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import re
import time
from collections.abc import Callable

from aiohttp import web

from config import Settings
from ingest.intake_loop import call_in, run_in
from ingest.nesting import too_deep
from kie.callbacks import CallbackError, parse_callback
from store import kie_callbacks
from store.database import DB_ERRORS, Database
from telemetry import http_errors, logs
from telemetry.metrics import METRICS

log = logs.get("ingress")

ROUTE = "/kie-callback/{token}/{job_id}"
STORE_TIMEOUT = 5.0  # past it the answer is 503: KIE may call again, and polling is the fallback anyway
LOG_EVERY = 60.0
BODY_TIMEOUT = 10.0  # a stalled body, or one whose chunked framing broke mid-way (see webhook_intake)
_JOB_ID = re.compile(r"[0-9]{1,18}")
MAX_TASK_ID = 256  # KIE's task ids are ~32 characters


def _storable(task_id: str) -> bool:
    """PostgreSQL text holds no NUL and no lone surrogate (a JSON escape can carry both): stored
    as is, such a task id would be a 503 on every attempt, not the 400 it deserves."""
    if "\x00" in task_id or len(task_id) > MAX_TASK_ID:
        return False
    try:
        task_id.encode()
    except UnicodeEncodeError:
        return False
    return True


def _answer(status: int, result: str, error: str | None = None) -> web.Response:
    METRICS.kie_callbacks.labels(result).inc()
    body = {"ok": True} if error is None else {"ok": False, "error": error}
    return web.Response(text=json.dumps(body), status=status, content_type="application/json")


class KieCallbackIntake:
    """The /kie-callback route's logic; ingress owns the server."""

    def __init__(self, settings: Settings, database: Database, wake: Callable[[], None]) -> None:
        self.settings = settings
        self.database = database
        self.wake = wake
        self.logged: dict[str, float] = {}
        # the main loop, when this route is served on the intake loop: the store and the wake-up
        # use the process's pool and the jobs actor's mailbox, which belong to it
        self.home: asyncio.AbstractEventLoop | None = None

    async def handle(self, request: web.Request) -> web.Response:
        raw_job = request.match_info.get("job_id", "")
        if not _JOB_ID.fullmatch(raw_job):
            return _answer(400, "malformed", "the job id must be a number")
        given = request.match_info.get("token", "")
        expected = self.settings.kie_callback_token(int(raw_job))
        if not hmac.compare_digest(given.encode("utf-8", "replace"), expected.encode()):
            self._log_once("kie_callback_unauthorized", request.remote or "?")
            return _answer(401, "secret_wrong", "unauthorized")
        try:
            async with asyncio.timeout(BODY_TIMEOUT):
                body = await request.read()  # bounded by the application's client_max_size (MAX_BODY_BYTES): 413
        except TimeoutError:
            self._log_once("kie_callback_unreadable_body", request.remote or "?", "timeout")
            return _answer(408, "timeout", f"body not received within {BODY_TIMEOUT:g} s")
        except http_errors.CLIENT_ERRORS as exc:  # broken framing or content coding, or the client gone
            http_errors.reported(exc)
            self._log_once("kie_callback_unreadable_body", request.remote or "?", " ".join(http_errors.describe(exc)))
            return _answer(400, "malformed", "the body could not be read")
        try:
            text = body.decode("utf-8")
            document = json.loads(text)
        except RecursionError:
            return self._malformed(request, "callback body nested too deep")
        except ValueError:  # UnicodeDecodeError included
            return self._malformed(request, "callback body is not UTF-8 JSON")
        if not isinstance(document, dict):
            return self._malformed(request, "callback body is not a JSON object")
        if too_deep(document, embedded=True):  # the jobs actor decodes it again, on a deeper stack
            return self._malformed(request, "callback body nested too deep")
        try:
            callback = parse_callback(document, request.headers, hmac_key=self.settings.kie_webhook_hmac_key)
        except CallbackError as exc:
            reason = "bad_signature" if exc.status == 401 else "malformed"
            self._log_once(f"kie_callback_{reason}", request.remote or "?", str(exc))
            return _answer(exc.status, reason, "bad signature" if exc.status == 401 else "malformed callback")
        if not _storable(callback.task_id):
            return self._malformed(request, "callback task id is not storable text")
        job_id = int(raw_job)
        try:
            async with asyncio.timeout(STORE_TIMEOUT):
                stored = await run_in(self.home, kie_callbacks.store_callback(
                    self.database, self.settings.bot_id, self.settings.instance_id, text, job_id=job_id,
                    task_id=callback.task_id))
        except (*DB_ERRORS, TimeoutError) as exc:
            log.warning("kie_callback_not_stored", extra={"job_id": job_id, "error_text": type(exc).__name__})
            response = _answer(503, "unavailable", "try again")
            response.headers["Retry-After"] = "1"
            return response
        log.info("kie_callback_stored", extra={"job_id": job_id, "task_id": callback.task_id, "callback_id": stored,
                                               "state": callback.record.state.value, "correlation_id": f"j{job_id}"})
        call_in(self.home, self.wake)
        return _answer(200, "stored")

    def _malformed(self, request: web.Request, detail: str) -> web.Response:
        self._log_once("kie_callback_malformed", request.remote or "?", detail)
        return _answer(400, "malformed", "malformed callback")

    def _log_once(self, event: str, source: str, detail: str | None = None) -> None:
        """At most one line a minute per kind and source: a scanner must not flood the log."""
        now = time.monotonic()
        key = f"{event}:{source}"
        if now - self.logged.get(key, float("-inf")) < LOG_EVERY:
            return
        if len(self.logged) > 1000:
            self.logged.clear()
        self.logged[key] = now
        log.warning(event, extra={"source": source, "detail": detail})
