"""POST /webhook: check, validate, make durable, then ack; nothing else on the ack path.

Telegram sends one chat's updates one at a time and waits for each answer, so the ack does only
what durability needs: the secret (constant time), the size, the JSON shape and depth, and a group commit
into the inbox shared with concurrent requests. 200 means "committed"; when the database is
unreachable or the commit fails the answer is 503 with Retry-After and Telegram redelivers.

In a served process it runs on the intake loop (ingest/intake_loop.py), apart from the dispatcher,
with a small pool of its own (asyncpg pools belong to one loop); what the rest of the tree must
know of a commit (the trace's "received" step, the dispatcher's wake) is handed to the main loop
once per committed batch, not once per request. It carries the time the batch's commit began:
the main loop may claim an update before it runs the hand-over (a claim started after the
commit, its answer read first), and "received" at the hand-over's time then came after
"claimed" in the update's story.
"""

from __future__ import annotations

import asyncio
import functools
import hmac
import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from config import Settings
from ingest import updates
from ingest.intake_loop import call_in
from ingest.nesting import too_deep
from messages.roles import Role
from store import inbox
from store.database import DB_ERRORS, Database
from store.group_commit import GroupCommit
from store.inbox import Incoming
from telemetry import http_errors, logs
from telemetry.metrics import METRICS

log = logs.get("ingress")

SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"
COMMIT_TIMEOUT = 5.0
RETRY_AFTER = "1"
LOG_EVERY = 60.0
# Telegram sends a whole body at once; past this a body is a stalled or broken client. Also the
# bound on a request whose chunked framing broke mid-body: aiohttp's parser then never tells the
# body's reader (it queues a 400 behind the request), so the read would wait for the connection to go.
BODY_TIMEOUT = 10.0
# the intake loop's own pool: a commit is one statement for a whole batch, and GroupCommit runs
# at most `parallel` (2) of them at once, so a few connections are all it ever holds
POOL_SIZE = 3

# a committed batch: each row and whether it was new, and when its commit began (time.time())
Committed = Callable[[Sequence[tuple[Incoming, bool]], float], None]


def parse(raw: bytes) -> tuple[dict[str, Any], Incoming]:
    """updates.parse, hardened against a hostile sender who holds the secret: a body nested past
    what json can decode (RecursionError) or past what any update nests is `too_deep`, a 400."""
    try:
        update, row = updates.parse(raw)
    except RecursionError:
        raise updates.BadUpdate("too_deep") from None
    if too_deep(update):
        raise updates.BadUpdate("too_deep")
    return update, row


@dataclass(frozen=True, slots=True)
class Answer:
    """What /webhook answers, the same whichever protocol carried the request: a status and a JSON
    body (none for the plain 200 that means "committed")."""

    status: int
    body: dict[str, Any] | None = None
    retry_after: str | None = None

    def encoded(self) -> bytes:
        return b"" if self.body is None else json.dumps(self.body, ensure_ascii=False).encode()

    def response(self) -> web.Response:
        headers = {"Retry-After": self.retry_after} if self.retry_after else None
        if self.body is None:
            return web.Response(status=self.status, headers=headers)
        return web.Response(body=self.encoded(), status=self.status, headers=headers,
                            content_type="application/json", charset="utf-8")


OK = Answer(200)
NOT_DURABLE = Answer(503, {"ok": False, "error": "storage unavailable, retry"}, retry_after=RETRY_AFTER)
FAILED = Answer(500, {"error": "internal error"})
Reply = Callable[[Answer], None]


def _settle(future: asyncio.Future[Answer], answer: Answer) -> None:
    if not future.done():  # its awaiting handler may have been cancelled (the client gone)
        future.set_result(answer)


class WebhookIntake:
    """The /webhook route's logic; ingress owns the server, this owns the durable ack."""

    def __init__(self, settings: Settings, database: Database, committed: Committed,
                 updating_text: Callable[[dict[str, Any]], str]) -> None:
        self.settings = settings
        self.database = database  # the process's: its state says whether the database is reachable
        self.committed = committed
        self.role = Role.PASSIVE  # kept current by ingress, which subscribes to RoleChanged
        self.updating_text = updating_text
        self.secret = settings.webhook_secret.encode()
        self.commits: GroupCommit[Incoming, bool] = GroupCommit(self._flush, timeout=COMMIT_TIMEOUT)
        # the counters every ack moves, looked up once
        self.received_new = METRICS.updates_received.labels("webhook", "new")
        self.received_duplicate = METRICS.updates_received.labels("webhook", "duplicate")
        self.rejected_not_durable = METRICS.updates_rejected.labels("not_durable")
        self.logged: dict[str, float] = {}
        self.home: asyncio.AbstractEventLoop | None = None  # where `committed` runs, when not on our loop
        self.loop: asyncio.AbstractEventLoop | None = None  # the loop this intake commits on
        self.pool: Database | None = None  # its own, on the intake loop (None: the process's own pool)
        self.connecting: asyncio.Lock | None = None

    def attach(self, loop: asyncio.AbstractEventLoop, home: asyncio.AbstractEventLoop) -> None:
        """Commit on `loop` (the intake loop) with a pool of its own, and hand batches to `home`.

        A new loop (the intake thread started again) gets a new group commit and pool: asyncio's
        primitives and asyncpg's connections belong to the loop that first used them."""
        if loop is not self.loop:
            self.commits = GroupCommit(self._flush, timeout=COMMIT_TIMEOUT)
            main = self.database
            self.pool = Database(main.url, main.instance_id, main.embedded, pool_size=POOL_SIZE,
                                 idle_in_transaction_timeout=main.idle_in_transaction_timeout,
                                 statement_timeout=main.statement_timeout)
            self.connecting = None
        self.loop, self.home = loop, home

    async def close(self) -> None:
        """Ingress stopped: callers still waiting get an error, and the own pool's connections go
        (it opens again on the next commit)."""
        await self.commits.close()
        if self.pool is not None:
            await self.pool.close()

    def health(self) -> dict[str, Any]:
        """The group commit for /health: a commit stuck past COMMIT_TIMEOUT means every ack is a 503."""
        return {**self.commits.stats(), "problems": self.commits.problems(COMMIT_TIMEOUT),
                "loop": "intake thread" if self.pool is not None else "main"}

    async def _commit_database(self) -> Database:
        """The pool commits go through: the process's, or the intake loop's own, opened on first use."""
        self.database.require()  # the process's database marked down (DbActor's ping): 503 at once
        pool = self.pool
        if pool is None:
            return self.database
        if pool.pool is None:
            if self.connecting is None:
                self.connecting = asyncio.Lock()
            async with self.connecting:
                if pool.pool is None:
                    await pool.connect(timeout=COMMIT_TIMEOUT)
        return pool

    async def _flush(self, rows: Sequence[Incoming]) -> list[bool]:
        started, began = time.perf_counter(), time.time()
        unique = list({r.update_id: r for r in rows}.values())
        database = await self._commit_database()
        new = await inbox.append_batch(database, self.settings.bot_id, self.settings.instance_id, unique)
        METRICS.inbox_commit_seconds.observe(time.perf_counter() - started)
        METRICS.inbox_batch_size.observe(len(rows))
        answered: set[int] = set()
        out = []
        for r in rows:  # the same update twice in one batch: only the first is "new"
            out.append(r.update_id in new and r.update_id not in answered)
            answered.add(r.update_id)
        batch = list(zip(rows, out, strict=True))
        call_in(self.home, self.committed, batch, began)
        return out

    def _log_once(self, key: str, event: str, **fields: object) -> None:
        """At most one line per key per minute: a misconfigured sender must not flood the log."""
        now = time.monotonic()
        if now - self.logged.get(key, -LOG_EVERY) >= LOG_EVERY:
            self.logged[key] = now
            if len(self.logged) > 10_000:
                self.logged = {k: v for k, v in self.logged.items() if now - v < LOG_EVERY}
            log.warning(event, extra=fields)

    def _reject(self, reason: str, status: int, message: str) -> Answer:
        METRICS.updates_rejected.labels(reason).inc()
        return Answer(status, {"ok": False, "error": message})

    def refuse(self, given: bytes, source: str) -> Answer | None:
        """The secret header checked in constant time: a 401 for a sender without it, else None."""
        if hmac.compare_digest(given, self.secret):
            return None
        reason = "secret_missing" if not given else "secret_wrong"
        self._log_once(f"secret:{source}", "webhook_unauthorized", source=source, reason=reason)
        return self._reject(reason, 401, "unauthorized")

    def too_large(self) -> Answer:
        limit = self.settings.max_body_bytes
        return self._reject("too_large", 413, f"body over {limit} bytes")

    def body_timeout(self, source: str) -> Answer:
        self._log_once(f"body:{source}:timeout", "webhook_unreadable_body", source=source, reason="timeout")
        return self._reject("body_timeout", 408, f"body not received within {BODY_TIMEOUT:g} s")

    def accept_soon(self, raw: bytes, source: str, reply: Reply) -> None:
        """A body read whole, from a sender who holds the secret: parsed and queued for the group
        commit; `reply` gets the answer, at once (a bad update) or from the commit's callback.

        No task and no timer per request: the group commit bounds the wait (COMMIT_TIMEOUT), and
        the answer is made in the callback of the batch's result. On the intake thread every task
        step and timer is loop work, and under uvloop a timer a turn at the GIL of its own."""
        try:
            update, row = parse(raw)
        except updates.BadUpdate as exc:
            self._log_once(f"bad:{source}:{exc}", "webhook_bad_update", source=source, reason=str(exc))
            reply(self._reject(str(exc), 400, f"not a Telegram update ({exc})"))
            return
        self.commits.submit_nowait(row).add_done_callback(functools.partial(self._committed, update, row, reply))

    def _committed(self, update: dict[str, Any], row: Incoming, reply: Reply, done: asyncio.Future[bool]) -> None:
        try:
            answer = self._answer(update, row, done)
        except Exception:  # a bug: answered as aiohttp's middleware answers one
            log.exception("http_handler_failed", extra={"route": "/webhook"})
            answer = FAILED
        reply(answer)

    def _answer(self, update: dict[str, Any], row: Incoming, done: asyncio.Future[bool]) -> Answer:
        exc = done.exception()  # the group commit never cancels a caller's future
        if exc is not None:
            if not isinstance(exc, DB_ERRORS):
                raise exc
            self._log_once("commit", "webhook_commit_failed", error_text=logs.redact(str(exc))[:200] or
                           type(exc).__name__)
            self.rejected_not_durable.inc()
            return NOT_DURABLE
        if done.result():
            self.received_new.inc()
        else:
            self.received_duplicate.inc()
        if (row.kind == "callback_query" and self.settings.passive_mode == "REJECT"
                and self.role is not Role.ACTIVE):
            query = update["callback_query"]
            return Answer(200, {"method": "answerCallbackQuery", "callback_query_id": str(query.get("id", "")),
                                "text": self.updating_text(query.get("from") or {})})
        return OK

    async def accept(self, raw: bytes, source: str) -> Answer:
        """accept_soon for a caller with a task of its own (aiohttp's handler); its cancellation (the
        client gone) leaves the commit going."""
        answered: asyncio.Future[Answer] = asyncio.get_running_loop().create_future()
        self.accept_soon(raw, source, functools.partial(_settle, answered))
        return await answered

    async def handle(self, request: web.Request) -> web.Response:
        """POST /webhook through aiohttp (what ingest/webhook_protocol.py hands over), timed: the
        ack latency Telegram sees (it sends a chat's next update only after)."""
        began = time.perf_counter()
        try:
            return (await self._handle(request)).response()
        finally:
            METRICS.webhook_ack_seconds.observe(time.perf_counter() - began)

    async def _handle(self, request: web.Request) -> Answer:
        source = request.remote or "unknown"
        refused = self.refuse(request.headers.get(SECRET_HEADER, "").encode(), source)
        if refused is not None:
            return refused
        if request.content_length is not None and request.content_length > self.settings.max_body_bytes:
            return self.too_large()
        try:
            async with asyncio.timeout(BODY_TIMEOUT):
                raw = await request.read()  # aiohttp stops reading past client_max_size (= the limit)
        except web.HTTPRequestEntityTooLarge:
            return self.too_large()
        except TimeoutError:
            return self.body_timeout(source)
        except http_errors.CLIENT_ERRORS as exc:  # broken framing or content coding, or the client gone
            http_errors.reported(exc)
            reason, detail = http_errors.describe(exc)
            self._log_once(f"body:{source}:{reason}", "webhook_unreadable_body", source=source, reason=reason,
                           detail=detail)
            return self._reject("unreadable_body", 400, "the body could not be read")
        return await self.accept(raw, source)
