"""The soak's fake Telegram in a process of its own, and the soak's side of it.

Why: the fake stamps every Bot API request when its server accepts it (handler entry, before the
body is read), and the leadership invariant judges sends by those stamps against the kill times
and the epochs. Stamped in the bench's event loop, a stall of that loop (265 ms once, while it
scanned calls for 20 wizard chats) made a killed leader's last requests look 0.54 s late. Here the
fake's loop does nothing else, stamps with CLOCK_MONOTONIC (system-wide on Linux, so comparable
with the bench's clock), and measures its own stalls so the checker knows how late a stamp can
be. The sender of a call is its /_as/<instance>.<incarnation> prefix: which process sent it.

    python -m bench.soak_telegram [--watch HOST:PORT]   # prints {"base_url": ..., "pid": ...}

Control routes (besides the fake's own): POST /_soak/inject {method, status, description, count,
delay, retry_after, seconds} (with `seconds`: the fault is withdrawn after that long), GET
/_soak/calls?since=N (compact records of calls N..), GET /_soak/lags (the loop's stalls).
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import hashlib
import json
import re
import subprocess
import sys
import time
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from aiohttp import web

from fakes.server import cli_parser, run_until_signal
from fakes.telegram.wire import SEND_METHODS, Call
from fakes.telegram_api import FakeTelegram

SHOWN_BY_EDIT = frozenset({"editMessageText", "editMessageCaption"})
_URL = re.compile(r"https?://[^\s<>\"']+")
LAG_PERIOD = 0.02  # the stall probe's sleep: a stall shorter than this is within the slack


class SoakTelegram(FakeTelegram):
    """FakeTelegram with the soak's control routes and a probe of its own loop's stalls."""

    def __init__(self, watch: str | None = None) -> None:
        super().__init__()
        self.watch = watch  # an address no call may carry (the soak's trap server)
        self.lags: list[tuple[float, float]] = []  # (time.monotonic() the stall ended, seconds)
        self._probe: asyncio.Task[None] | None = None

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        url = await super().start(host, port)
        self._probe = asyncio.get_running_loop().create_task(self._lag_probe())
        return url

    async def stop(self) -> None:
        if self._probe is not None:
            self._probe.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._probe
        await super().stop()

    async def _lag_probe(self) -> None:
        while True:
            began = time.monotonic()
            await asyncio.sleep(LAG_PERIOD)
            now = time.monotonic()
            lag = now - began - LAG_PERIOD
            if lag > 0.01:
                self.lags.append((now, lag))

    def _build_app(self) -> web.Application:
        app = super()._build_app()
        app.router.add_post("/_soak/inject", self._soak_inject)
        app.router.add_get("/_soak/calls", self._soak_calls)
        app.router.add_get("/_soak/lags", self._soak_lags)
        return app

    async def _soak_inject(self, request: web.Request) -> web.Response:
        body = await request.json()
        seconds = body.pop("seconds", None)
        fault = self.inject(**body)
        if seconds is not None:
            def withdraw() -> None:
                fault.remaining = 0
                if fault in self._faults:
                    self._faults.remove(fault)
            asyncio.get_running_loop().call_later(float(seconds), withdraw)
        return web.json_response({"ok": True})

    async def _soak_calls(self, request: web.Request) -> web.Response:
        since = max(0, int(request.query.get("since", "0")))
        return web.json_response([self._compact(index, call) for index, call in
                                  enumerate(self._calls[since:], start=since)])

    async def _soak_lags(self, request: web.Request) -> web.Response:
        return web.json_response(self.lags)

    def _compact(self, index: int, call: Call) -> dict[str, Any]:
        markup = call.params.get("reply_markup")
        result = call.result if isinstance(call.result, dict) else {}
        urls = [v for v in call.params.values() if isinstance(v, str) and v.startswith(("http://", "https://"))]
        urls += [u.rstrip(".,;:)\"'") for u in _URL.findall(call.text or "")]  # a result sent as a link
        media = call.params.get("media")
        if isinstance(media, list):
            urls += [m["media"] for m in media if isinstance(m, dict) and isinstance(m.get("media"), str)
                     and m["media"].startswith(("http://", "https://"))]
        watched = False
        if self.watch:
            watched = self.watch in json.dumps(call.params, default=str)
        return {
            "index": index, "method": call.method, "caller": call.caller, "chat_id": call.chat_id,
            "at": call.at, "status": call.status, "text": call.text,
            "reply_markup": markup if isinstance(markup, dict | str) else None,
            "message_id": result.get("message_id"),
            "hashes": [hashlib.sha256(u.data).hexdigest() for u in call.uploads.values()],
            "urls": urls, "watched": watched,
            # payments: an invoice's payload, a pre-checkout answer's query id and verdict
            "payload": call.params.get("payload") if isinstance(call.params.get("payload"), str) else None,
            "query_id": str(call.params.get("pre_checkout_query_id") or "") or None,
            "answer_ok": call.params.get("ok") if isinstance(call.params.get("ok"), bool) else None,
        }


# -- the soak's side -----------------------------------------------------------------------------


@dataclass
class SentCall:
    """One call the fake recorded, as the soak reads it back."""

    index: int
    method: str
    caller: str | None
    chat_id: int | str | None
    at: float  # time.monotonic() when the fake accepted it (system-wide clock)
    status: int | None
    text: str | None
    reply_markup: Any
    message_id: int | None
    hashes: list[str] = field(default_factory=list)
    urls: list[str] = field(default_factory=list)
    watched: bool = False
    payload: str | None = None
    query_id: str | None = None
    answer_ok: bool | None = None

    @property
    def ok(self) -> bool:
        return self.status == 200

    @property
    def instance(self) -> tuple[str, int | None]:
        """The sender's instance and incarnation, from its /_as/<instance>.<incarnation> prefix."""
        name, _, number = (self.caller or "?").partition(".")
        return name, int(number) if number.isdigit() else None


class RemoteTelegram:
    """The fake Telegram process, seen from the soak: start and stop it, steer it, and keep a local
    copy of its calls (refreshed by :meth:`follow`), indexed by chat for the wizard chats."""

    def __init__(self, watch: str | None = None) -> None:
        self.watch = watch
        self.proc: subprocess.Popen[bytes] | None = None
        self.base_url = ""
        self._session: aiohttp.ClientSession | None = None
        self._calls: list[SentCall] = []
        self._by_chat: dict[str, list[int]] = {}

    async def __aenter__(self) -> RemoteTelegram:
        args = [sys.executable, "-m", "bench.soak_telegram"] + (["--watch", self.watch] if self.watch else [])
        self.proc = subprocess.Popen(args, stdout=subprocess.PIPE)  # noqa: ASYNC220 - returns at once
        atexit.register(self.kill)  # whatever happens to the soak, the fake does not outlive it
        assert self.proc.stdout is not None
        line = await asyncio.wait_for(asyncio.to_thread(self.proc.stdout.readline), 30)
        self.base_url = json.loads(line)["base_url"]
        self._session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=4))
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._session is not None:
            await self._session.close()
        self.kill()

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()

    async def inject(self, method: str, *, seconds: float | None = None, **fault: Any) -> None:
        assert self._session is not None
        body = {"method": method, **fault, **({"seconds": seconds} if seconds is not None else {})}
        async with self._session.post(self.base_url + "/_soak/inject", json=body,
                                      timeout=aiohttp.ClientTimeout(total=5)) as response:
            response.raise_for_status()

    async def refresh(self) -> None:
        """Fetch the calls not yet settled (unanswered less than a minute ago) and the new ones."""
        assert self._session is not None
        now = time.monotonic()
        since = next((c.index for c in self._calls if c.status is None and now - c.at < 60), len(self._calls))
        async with self._session.get(self.base_url + "/_soak/calls", params={"since": str(since)},
                                     timeout=aiohttp.ClientTimeout(total=30)) as response:
            rows = await response.json()
        for row in rows:
            call = SentCall(**row)
            if call.index < len(self._calls):
                self._calls[call.index] = call
            else:
                self._calls.append(call)
                self._by_chat.setdefault(str(call.chat_id), []).append(call.index)

    async def follow(self, every: float = 0.25) -> None:
        """Keep the local copy fresh (a soak helper task)."""
        while True:
            with contextlib.suppress(aiohttp.ClientError, TimeoutError):
                await self.refresh()
            await asyncio.sleep(every)

    async def lags(self) -> list[tuple[float, float]]:
        assert self._session is not None
        async with self._session.get(self.base_url + "/_soak/lags", timeout=aiohttp.ClientTimeout(total=30)) as r:
            return [(float(a), float(b)) for a, b in await r.json()]

    def calls(self, method: str | None = None) -> list[SentCall]:
        return [c for c in self._calls if method is None or c.method == method]

    def to_chat(self, chat_id: int, method: str) -> list[SentCall]:
        """Successful calls of `method` to a chat, in arrival order."""
        return [c for c in (self._calls[i] for i in self._by_chat.get(str(chat_id), []))
                if c.method == method and c.ok]

    def shown_messages(self, chat_id: int) -> list[SentCall]:
        """What a chat was shown, in arrival order: successful sends, and edits of a message's text
        or caption (the wizard edits its one living message: a page turn, a step, a choice)."""
        return [c for c in (self._calls[i] for i in self._by_chat.get(str(chat_id), []))
                if (c.method in SEND_METHODS or c.method in SHOWN_BY_EDIT) and c.ok]


def main() -> None:
    parser = cli_parser("python -m bench.soak_telegram", __doc__.split("\n\n")[0])
    parser.add_argument("--watch", default=None, help="an address no call may carry (HOST:PORT)")
    args = parser.parse_args()
    run_until_signal(lambda: SoakTelegram(args.watch), args.host, args.port)


if __name__ == "__main__":
    main()
