"""The async KIE client: the one place that talks to KIE over HTTP.

Why it exists: every call to KIE needs the same care — the Bearer key (never shown anywhere), a
real User-Agent (KIE's CDN blocks requests without one), the shared rate limiter, a deadline,
KIE's envelope read into typed results or typed errors, and retries only where a retry cannot
cost money. That care lives here once; the endpoint families (:mod:`kie.endpoint`) only say
what to send and how to read it.

Retries (bounded, exponential backoff with jitter, each attempt through the limiter, all within
the call's one deadline):

* createTask is not idempotent (KIE has no idempotency key): certain means proven. It counts as
  refused, and is retried, only when KIE itself said so — its JSON envelope with a refusal
  ``code`` of its own (429, 455, 500, ...) and no taskId — or when nothing left: a connection
  that never opened, our own limiter's Throttled, a request refused locally. Every other
  failure is *ambiguous* and never retried here: any answer that is not KIE's envelope whatever
  its HTTP status (a CDN's 502/520/503/429 HTML page, an empty body, a 2xx we cannot read), a
  timeout, a connection lost after sending, an error that names a taskId. The task may exist
  and be billed; only the caller can reconcile (the callback URL names its job).
* recordInfo, credit, upload and download are safe to repeat and retry transient failures.

Result downloads go through :mod:`kie.download`: https only, public addresses only (checked after
resolution, at every redirect), a content type that fits the result's kind.
"""

from __future__ import annotations

import asyncio
import importlib.metadata
import logging
import platform
import random
import re
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from types import TracebackType
from typing import Any, Self, TypeVar

import aiohttp

from kie.download import KINDS, Downloader, parse_trusted_hosts, read_limited
from kie.endpoint import Endpoint, Request
from kie.envelope import Envelope, read, retry_after_seconds
from kie.errors import BadResponse, DownloadRefused, InvalidRequest, KieError, RateLimited, Timeout, TooLarge, Transport
from kie.families import ENDPOINTS
from kie.fields import as_int, as_text
from kie.jobs import JOBS
from kie.limiter import CREATE, Limiter
from kie.models import Credits, TaskCreated, TaskRecord, Upload
from kie.validate import check_task_id, check_url, encode_json

__all__ = [
    "CREDIT_PATH",
    "DEFAULT_API_BASE",
    "DEFAULT_UPLOAD_BASE",
    "UPLOAD_PATH",
    "KieClient",
    "RetryPolicy",
    "default_user_agent",
]

log = logging.getLogger("kie")

T = TypeVar("T")

DEFAULT_API_BASE = "https://api.kie.ai"
DEFAULT_UPLOAD_BASE = "https://kieai.redpandaai.co"
CREDIT_PATH = "/api/v1/chat/credit"
UPLOAD_PATH = "/api/file-stream-upload"
UPLOAD_LIFETIME = timedelta(days=3)  # KIE deletes uploaded files after three days
MAX_ANSWER_BYTES = 4 * 1024 * 1024  # an API answer; results are fetched with download() and the caller's bound
_MIME = re.compile(r"[A-Za-z0-9][\w.+-]*/[\w.+-]+")
_UPLOAD_PATH = re.compile(r"[A-Za-z0-9._-]+(/[A-Za-z0-9._-]+)*")


@dataclass(frozen=True)
class RetryPolicy:
    """``attempts`` tries in all; the n-th pause is between half and all of ``min(cap, base * 2**(n-1))``."""

    attempts: int = 4
    base: float = 0.5
    cap: float = 8.0

    def delay(self, attempt: int, retry_after: float | None = None) -> float:
        """The pause after failed try number ``attempt``, at least what the server asked for."""
        ceiling = min(self.cap, self.base * 2.0 ** max(0, attempt - 1))
        return max(ceiling / 2 + random.uniform(0, ceiling / 2), retry_after or 0.0)


def default_user_agent() -> str:
    """``TRT/<version> aiohttp/<version> Python/<version>``: who is calling, in the usual product-token form."""
    try:
        version = importlib.metadata.version("trt")
    except importlib.metadata.PackageNotFoundError:
        version = "dev"
    return f"TRT/{version} aiohttp/{aiohttp.__version__} Python/{platform.python_version()}"


class KieClient:
    """KIE's API for one account. Share one client (or at least one :class:`Limiter`) per process.

    ``timeout`` is each call's deadline in seconds — the limiter's wait, every attempt and the
    pauses between them included — unless the call passes its own. The HTTP session opens on
    first use; :meth:`close` (or ``async with``) closes it, and a later call opens a new one.
    """

    def __init__(
        self,
        api_key: str,
        api_base: str = DEFAULT_API_BASE,
        upload_base: str = DEFAULT_UPLOAD_BASE,
        *,
        timeout: float = 30.0,
        limiter: Limiter | None = None,
        user_agent: str | None = None,
        retry: RetryPolicy | None = None,
        endpoints: Mapping[str, Endpoint] | None = None,
        download_trusted_hosts: Iterable[str] = (),
    ) -> None:
        if timeout <= 0:
            raise ValueError("timeout must be positive")
        self._api_key = api_key
        self._secret = api_key if len(api_key) >= 6 else ""  # shorter ones would mask ordinary words
        self.api_base = check_url(api_base, "KIE API base").rstrip("/")
        self.upload_base = check_url(upload_base, "KIE upload base").rstrip("/")
        self.timeout = timeout
        self.limiter = limiter or Limiter()
        self.user_agent = user_agent or default_user_agent()
        self.retry = retry or RetryPolicy()
        self._endpoints: dict[str, Endpoint] = dict(ENDPOINTS if endpoints is None else endpoints)
        # hosts a result may come from over http or from a private address: the demo's and the tests' fakes
        self.download_trusted_hosts = parse_trusted_hosts(download_trusted_hosts)
        self._session: aiohttp.ClientSession | None = None
        self._downloader: Downloader | None = None

    def __repr__(self) -> str:
        return f"KieClient(api_base={self.api_base!r}, upload_base={self.upload_base!r}, timeout={self.timeout!r})"

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    async def close(self) -> None:
        session, self._session = self._session, None
        downloader, self._downloader = self._downloader, None
        if session is not None:
            await session.close()
        if downloader is not None:
            await downloader.close()

    def endpoint(self, name: str) -> Endpoint:
        """The endpoint family ``name`` ("jobs"); InvalidRequest for one this client does not know."""
        try:
            return self._endpoints[name]
        except KeyError:
            raise InvalidRequest(f"unknown KIE endpoint family {name!r}") from None

    # ------------------------------------------------------------------ the calls

    async def create_task(
        self,
        model: str,
        input: Mapping[str, Any],
        callback_url: str | None = None,
        *,
        endpoint: str = "jobs",
        timeout: float | None = None,
        before_send: Callable[[], Awaitable[None]] | None = None,
        before_each: Callable[[], None] | None = None,
        slot: float | None = None,
    ) -> TaskCreated:
        """Start a task; its id is in the answer. Validated locally first (InvalidRequest, nothing sent).

        Raises an error with ``ambiguous`` set when the task may exist anyway (see the module's
        docstring); such an error is never retried here. ``before_send`` runs once, after the rate
        limiter's slot is ours and right before the first request leaves: the caller commits its
        intent there, so an intent never waits on the limiter (where a crash would leave it standing
        for a task KIE never heard of). ``before_each`` (synchronous) runs before *every* attempt's
        request, after its limiter slot and after ``before_send``: the caller checks there that it
        still holds its lease, since a retry may leave seconds after the first try. Whatever either
        raises, that attempt sends nothing and the call ends with it. ``slot``: one the caller took
        with the limiter's ``reserve`` (its intent committed already): the first attempt sends with
        it, without waiting; a call that sends nothing gives it back.
        """
        reserved = [] if slot is None else [slot]
        try:
            family = self.endpoint(endpoint)
            local = family.local_task_id(model, input)
            if local is not None:  # nothing to create at KIE: the task is a GET on another one
                self._give_back(reserved)
                if before_send is not None:
                    await before_send()
                if before_each is not None:
                    before_each()
                return TaskCreated(check_task_id(local), family.name)
            request = family.create_request(model, input, callback_url)
        except BaseException:
            self._give_back(reserved)
            raise
        intent: list[bool] = []

        async def ready() -> None:
            try:
                if before_send is not None and not intent:
                    await before_send()
                    intent.append(True)
                if before_each is not None:
                    before_each()
            except KieError as exc:  # the caller's verdict, not KIE's: never a reason to try again
                exc.retryable = False
                raise

        async def attempt(deadline: float) -> TaskCreated:
            envelope = await self._call(request, deadline, self.api_base, idempotent=False, before_send=ready,
                                        reserved=reserved)
            task_id = family.created_task_id(envelope.data)
            error = envelope.error()
            if error is not None:
                if task_id is not None:  # refused, yet naming a task: it may well exist
                    error.task_id, error.ambiguous = task_id, True
                elif not envelope.coded:  # no code of KIE's own: nobody proved that KIE refused
                    error.ambiguous = True
                raise error
            if task_id is None:
                raise BadResponse("a success answer without a taskId", http_status=envelope.http_status,
                                  ambiguous=True)
            return TaskCreated(task_id, family.name)

        try:
            return await self._retrying("create_task", attempt, timeout, request.rate)
        except KieError as exc:
            if exc.ambiguous:
                log.warning("kie_create_ambiguous", extra={"model": model, "error_kind": exc.kind,
                                                            "error_text": str(exc), "task_id": exc.task_id})
            raise

    async def record(self, task: TaskCreated, *, timeout: float | None = None) -> TaskRecord:
        """How a task stands now, whatever its endpoint family (NotFound for an unknown task)."""
        family = self.endpoint(task.endpoint)
        request = family.record_request(check_task_id(task.task_id))

        async def attempt(deadline: float) -> TaskRecord:
            envelope = await self._call(request, deadline, self.api_base, idempotent=True)
            error = envelope.error()
            if error is not None:
                raise error
            return family.record(envelope.data, task.task_id)

        return await self._retrying("record", attempt, timeout, request.rate)

    def poll_floor(self, task: TaskCreated) -> float:
        """The fewest seconds between status calls its family asks for this task (0: none)."""
        return self.endpoint(task.endpoint).poll_floor(task.task_id)

    async def record_info(self, task_id: str, *, timeout: float | None = None) -> TaskRecord:
        """A jobs task's record (recordInfo)."""
        return await self.record(TaskCreated(task_id, JOBS.name), timeout=timeout)

    async def credits(self, *, timeout: float | None = None) -> Credits:
        """The credits left on the KIE account."""
        request = Request("GET", CREDIT_PATH, None)

        async def attempt(deadline: float) -> Credits:
            envelope = await self._call(request, deadline, self.api_base, idempotent=True)
            error = envelope.error()
            if error is not None:
                raise error
            value = as_int(envelope.data)
            if value is None:
                raise BadResponse(f"credit answer without a number: {type(envelope.data).__name__}")
            return Credits(value)

        return await self._retrying("credits", attempt, timeout, request.rate)

    async def signed_download_url(self, endpoint: str, task_id: str, url: str, *,
                                  timeout: float | None = None) -> str:
        """A short-lived signed link to one of a task's files, from the family's own call (4o Image's
        ``download-url``, 20 minutes); InvalidRequest for a family without one. Safe to repeat."""
        family = self.endpoint(endpoint)
        build = getattr(family, "download_url_request", None)
        request: Request | None = build(check_task_id(task_id), url) if callable(build) else None
        if request is None:
            raise InvalidRequest(f"the {family.name} family has no download-url call")

        async def attempt(deadline: float) -> str:
            envelope = await self._call(request, deadline, self.api_base, idempotent=True)
            error = envelope.error()
            if error is not None:
                raise error
            if not isinstance(envelope.data, str):
                raise BadResponse(f"download-url answer without a URL: {type(envelope.data).__name__}")
            try:
                return check_url(envelope.data.strip(), "signed download URL")
            except InvalidRequest:
                raise BadResponse("download-url answer is not an http(s) URL") from None

        return await self._retrying("signed_download_url", attempt, timeout, request.rate)

    async def upload(
        self, data: bytes, file_name: str, mime: str, *, upload_path: str = "trt", timeout: float | None = None
    ) -> Upload:
        """Put a file on KIE's upload service (multipart: file, uploadPath, fileName) and get its public URL.

        This is how a user's photo reaches KIE: never hand KIE a Telegram file URL (it holds the
        bot token). A repeated upload only leaves a second copy, so failures are retried.
        """
        if not isinstance(data, bytes | bytearray) or not data:
            raise InvalidRequest("upload data must be non-empty bytes")
        if not isinstance(file_name, str) or not re.fullmatch(r"[^/\\\x00-\x1f\x7f]{1,200}", file_name):
            raise InvalidRequest("file name must be 1 to 200 characters without slashes or control characters")
        if not isinstance(mime, str) or not _MIME.fullmatch(mime):
            raise InvalidRequest("mime must look like type/subtype")
        if not _UPLOAD_PATH.fullmatch(upload_path):
            raise InvalidRequest("upload path must be folder names of A-Z, a-z, 0-9, '.', '_' and '-'")
        payload = bytes(data)
        request = Request("POST", UPLOAD_PATH, None)

        def form() -> aiohttp.FormData:  # a FormData is consumed by one request: one per attempt
            fields = aiohttp.FormData()
            fields.add_field("file", payload, filename=file_name, content_type=mime)
            fields.add_field("uploadPath", upload_path)
            fields.add_field("fileName", file_name)
            return fields

        async def attempt(deadline: float) -> Upload:
            envelope = await self._call(request, deadline, self.upload_base, idempotent=True, form=form)
            error = envelope.error()
            if error is not None:
                raise error
            return _upload_of(envelope.data)

        return await self._retrying("upload", attempt, timeout, request.rate)

    async def download(self, url: str, max_bytes: int, *, kind: str = "document",
                       timeout: float | None = None) -> bytes:
        """A result file's bytes, at most ``max_bytes`` (TooLarge past that: reading stops there).

        Only from where results live (:mod:`kie.download`): https, public addresses checked after
        resolution and at every redirect, a content type that fits ``kind`` ("photo", "video",
        "audio", "document"); anything else is DownloadRefused. No key is sent: result URLs are on
        other hosts. Transient failures are retried.
        """
        if not isinstance(url, str) or len(url) > 2048:
            raise DownloadRefused("download URL must be an absolute https URL (at most 2048 characters)")
        if kind not in KINDS:
            raise ValueError(f"kind must be one of {', '.join(KINDS)}")
        if max_bytes < 1:
            raise ValueError("max_bytes must be positive")
        downloads = self._downloads()
        downloads.check_url(url)  # refused before the limiter, the deadline or a retry

        async def attempt(deadline: float) -> bytes:
            return await downloads.fetch(url, max_bytes, kind, deadline)

        return await self._retrying("download", attempt, timeout, None)

    def _downloads(self) -> Downloader:
        if self._downloader is None:
            self._downloader = Downloader(self.user_agent, self.download_trusted_hosts)
        return self._downloader

    # ------------------------------------------------------------------ transport

    def _open(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                headers={"User-Agent": self.user_agent},
                timeout=aiohttp.ClientTimeout(total=None),  # each call's deadline is an asyncio timeout
            )
        return self._session

    async def _call(
        self,
        request: Request,
        deadline: float,
        base: str,
        *,
        idempotent: bool,
        form: Callable[[], aiohttp.FormData] | None = None,
        before_send: Callable[[], Awaitable[None]] | None = None,
        reserved: list[float] | None = None,
    ) -> Envelope:
        """One attempt: a limiter slot (the one in ``reserved``, taken from it, else one waited
        for), ``before_send``, the request, KIE's envelope (errors in it are left to the caller).

        ``idempotent=False`` (createTask) marks as ambiguous every failure after which the request
        may have taken effect: all but a connection that never opened, and an answer that is not
        KIE's envelope whatever its status (only KIE's own refusal proves that nothing was done).
        """
        loop = asyncio.get_running_loop()
        remaining = deadline - loop.time()
        if remaining <= 0:
            self._give_back(reserved)
            raise Timeout(f"{request.path}: the deadline passed before the request was sent")
        if reserved:
            reserved.clear()  # this attempt's slot
        elif request.rate is not None:
            await self.limiter.acquire(request.rate, remaining)
        if before_send is not None:
            await before_send()
        headers = {"Authorization": f"Bearer {self._api_key}", "Accept": "application/json"}
        body: Any = None
        if request.json is not None:
            body = encode_json(request.json, "request body")
            headers["Content-Type"] = "application/json"
        elif form is not None:
            body = form()
        session = self._open()
        status = 0
        try:
            async with (
                asyncio.timeout_at(deadline),
                session.request(request.method, base + request.path, params=request.params, data=body,
                                headers=headers, allow_redirects=False) as response,
            ):
                status = response.status
                content_type = response.headers.get("Content-Type", "")
                retry_after = retry_after_seconds(response.headers.get("Retry-After"))
                raw = await read_limited(response, MAX_ANSWER_BYTES, request.path)
        except TimeoutError:
            raise Timeout(f"{request.path}: no answer within the deadline", ambiguous=not idempotent) from None
        except aiohttp.ClientConnectorError as exc:  # the connection never opened: nothing was sent
            raise Transport(f"{request.path}: cannot connect ({type(exc).__name__})") from None
        except aiohttp.ClientError as exc:
            raise Transport(f"{request.path}: {type(exc).__name__}: {exc}", ambiguous=not idempotent) from None
        except TooLarge as exc:
            raise BadResponse(exc.message, http_status=status, ambiguous=not idempotent) from None
        try:
            return read(status, raw, content_type, retry_after)
        except KieError as exc:
            # not KIE's envelope: whoever wrote it (a CDN's 502/520 page, an empty 2xx) cannot say
            # whether KIE acted on the request, so a non-idempotent one may have taken effect
            if not idempotent:
                exc.ambiguous = True
            raise

    def _give_back(self, reserved: list[float] | None) -> None:
        """A reserved createTask slot no request went out with."""
        if reserved:
            self.limiter.give_back(CREATE, reserved.pop())

    async def _retrying(
        self, call: str, attempt: Callable[[float], Awaitable[T]], timeout: float | None, rate: str | None
    ) -> T:
        """Run ``attempt(deadline)`` until it succeeds, fails for good, or the policy or deadline runs out."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + (self.timeout if timeout is None else timeout)
        tries = 0
        while True:
            tries += 1
            try:
                return await attempt(deadline)
            except KieError as exc:
                exc.redacted(self._secret)
                if not exc.retryable or exc.ambiguous or tries >= self.retry.attempts:
                    raise
                delay = self.retry.delay(tries, exc.retry_after)
                if loop.time() + delay >= deadline:
                    raise
                if isinstance(exc, RateLimited) and rate is not None:
                    self.limiter.pause(rate, delay)  # KIE's window is full: every caller waits, not only this one
                log.info("kie_retry", extra={"call": call, "error_kind": exc.kind, "code": exc.code,
                                             "attempt": tries, "delay": round(delay, 3)})
            await asyncio.sleep(delay)


def _upload_of(data: Any) -> Upload:
    if not isinstance(data, Mapping):
        raise BadResponse(f"upload answer without a data object ({type(data).__name__})")
    file_url = as_text(data.get("fileUrl")) or as_text(data.get("downloadUrl"))
    if file_url is None:
        raise BadResponse("upload answer without a fileUrl")
    uploaded = datetime.now(UTC)
    stamp = as_text(data.get("uploadedAt"))
    if stamp is not None:
        try:
            parsed = datetime.fromisoformat(stamp.replace("Z", "+00:00"))
        except ValueError:
            parsed = None
        if parsed is not None:
            uploaded = parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)
    return Upload(
        file_url=file_url,
        download_url=as_text(data.get("downloadUrl")) or file_url,
        expires=uploaded + UPLOAD_LIFETIME,
        file_name=as_text(data.get("fileName")),
        size=as_int(data.get("fileSize")),
        mime=as_text(data.get("mimeType")),
    )
