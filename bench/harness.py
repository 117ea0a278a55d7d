"""What the pipeline benchmarks share: the fake Telegram as its own process, TRT and the stock
aiogram apps (bare, and production-like with PostgreSQL) started the same way, update bodies, wrk
and an open-loop load generator.

Every figure is measured against both apps in the same run, on the same machine and database.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
from prometheus_client.parser import text_string_to_metric_families

from bench import cpus
from bench.poster import post_at_rate, webhook_request
from tests.procs import FAKE_TOKEN, ROOT, TrtProcess, eventually, free_port

SECRET = "bench-secret-0123456789"
HEADERS = {"Content-Type": "application/json", "X-Telegram-Bot-Api-Secret-Token": SECRET}


def update_body(update_id: int, chat: int) -> bytes:
    text = "/start"
    return json.dumps({"update_id": update_id, "message": {
        "message_id": update_id, "date": 1_700_000_000, "text": text,
        "from": {"id": chat, "is_bot": False, "first_name": "Bench", "language_code": "en"},
        "chat": {"id": chat, "type": "private", "first_name": "Bench"},
        "entities": [{"type": "bot_command", "offset": 0, "length": len(text)}]}}).encode()


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


@dataclass
class App:
    """One app under test: its base URL and the pid whose memory is measured."""

    name: str
    base: str
    pid: int
    stop: Any


@contextlib.contextmanager
def workdir() -> Iterator[Path]:
    directory = Path(tempfile.mkdtemp(prefix="trt-bench-"))
    directory.chmod(0o755)
    try:
        yield directory
    finally:
        shutil.rmtree(directory, ignore_errors=True)


@contextlib.asynccontextmanager
async def database(tmp: Path) -> AsyncIterator[str]:
    """DATABASE_URL, or an embedded PostgreSQL for the run."""
    url = os.environ.get("DATABASE_URL")
    if url:
        yield url
        return
    from store import embedded

    data = tmp / "pg"
    data.mkdir()
    data.chmod(0o755)
    server, url = await asyncio.to_thread(embedded.start, data)
    try:
        yield url
    finally:
        embedded.stop(server)


async def fresh_database(server_url: str, name: str) -> str:
    """An empty database of that name for one app's run (an earlier run's is dropped first)."""
    from tests.conftest import create_database

    return (await create_database(server_url, name))[1]


@contextlib.asynccontextmanager
async def python_server(tmp: Path, module: str, args: list[str], probe: str, what: str) -> AsyncIterator[App]:
    """`python -m module --port P args...` in its own process (its CPU is not ours), up once
    `probe` answers 200; killed at the end."""
    port = free_port()
    log = (tmp / f"{module}-{port}.log").open("wb")
    proc = await asyncio.create_subprocess_exec(sys.executable, "-m", module, "--port", str(port), *args, cwd=ROOT,
                                                stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        async def up() -> bool:
            async with aiohttp.ClientSession() as s, s.get(base + probe) as r:
                return r.status == 200
        await eventually(up, 60, what)
        yield App(what, base, proc.pid, proc)
    finally:
        proc.kill()
        await proc.wait()
        log.close()


@contextlib.asynccontextmanager
async def fake_telegram(tmp: Path) -> AsyncIterator[str]:
    """The fake Telegram Bot API that both apps talk to."""
    async with python_server(tmp, "fakes.telegram_api", [], "/_fake/calls?method=none", "the fake Telegram") as fake:
        yield fake.base


class _Hole(asyncio.Protocol):
    def __init__(self, held: list[asyncio.BaseTransport]) -> None:
        self.held = held

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.held.append(transport)

    def data_received(self, data: bytes) -> None:
        return None  # read, never answered


@contextlib.asynccontextmanager
async def black_hole() -> AsyncIterator[str]:
    """A "Telegram" that accepts connections and never answers: every send hangs, so updates pile up."""
    held: list[asyncio.BaseTransport] = []
    server = await asyncio.get_running_loop().create_server(lambda: _Hole(held), "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        for transport in held:
            transport.close()
        server.close()


def trt_env(db_url: str, api_base: str, **extra: str) -> dict[str, str]:
    env = {"TELEGRAM_BOT_TOKEN": FAKE_TOKEN, "DATABASE_URL": db_url, "TELEGRAM_API_BASE": api_base,
           "WEBHOOK_BASE_URL": "https://bench.example.com", "BOT_MODE": "webhook", "WEBHOOK_SECRET": SECRET,
           "AUTO_SET_WEBHOOK": "0", "TELEGRAM_RATE_GLOBAL": "0", "TELEGRAM_RATE_PER_CHAT": "0",
           "LOG_LEVEL": "WARNING"}
    env.update(extra)
    return env


@contextlib.asynccontextmanager
async def trt(tmp: Path, db_url: str, api_base: str, root: Path | None = None, name: str = "TRT",
              **extra: str) -> AsyncIterator[App]:
    """A `run.py serve` of this checkout (or of `root`, another one), ACTIVE and consuming."""
    proc = TrtProcess(tmp, trt_env(db_url, api_base, **extra), name="trt", root=root or ROOT).start()
    try:
        async def consuming() -> bool:
            body = await proc.health()
            return body["role"] == "ACTIVE" and body["actors"]["dispatcher"]["consuming"]
        await eventually(consuming, 90, "TRT ACTIVE and consuming")
        cpus.place_app(proc.pid)
        yield App(name, proc.base, proc.pid, proc)
    finally:
        proc.kill()


@contextlib.asynccontextmanager
async def stock(tmp: Path, api_base: str) -> AsyncIterator[App]:
    async with python_server(tmp, "bench.stock_app", ["--api-base", api_base, "--secret", SECRET], "/health",
                             "stock aiogram") as app:
        cpus.place_app(app.pid)
        yield app


@contextlib.asynccontextmanager
async def stock_prod(tmp: Path, api_base: str, db_url: str) -> AsyncIterator[App]:
    """The production-like stock app (bench/stock_prod_app.py: users and FSM in PostgreSQL) on
    `db_url`, a database of its own (it creates its tables)."""
    async with python_server(tmp, "bench.stock_prod_app",
                             ["--api-base", api_base, "--secret", SECRET, "--database-url", db_url], "/health",
                             "stock prod-like") as app:
        cpus.place_app(app.pid)
        yield app


WRK_SCRIPT = """
local counter = 0
function init(args)
  first = tonumber(args[1])
  wrk.method = "POST"
  wrk.path = "/webhook"
  wrk.headers["Content-Type"] = "application/json"
  wrk.headers["X-Telegram-Bot-Api-Secret-Token"] = "%(secret)s"
end
function setup(thread)
  thread:set("tid", (tid_seq or 0) + 1)
  tid_seq = (tid_seq or 0) + 1
end
function request()
  counter = counter + 1
  local uid = first + tid * 10000000 + counter
  local chat = 1000000 + (uid %% 5000)
  local body = string.format('{"update_id":%%d,"message":{"message_id":%%d,"date":1700000000,"text":"/start",'
    .. '"from":{"id":%%d,"is_bot":false,"first_name":"Bench","language_code":"en"},'
    .. '"chat":{"id":%%d,"type":"private","first_name":"Bench"},'
    .. '"entities":[{"type":"bot_command","offset":0,"length":6}]}}', uid, uid, chat, chat)
  return wrk.format(nil, nil, nil, body)
end
"""


def _ms(value: str, unit: str) -> float:
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]


async def run_wrk(tmp: Path, base: str, seconds: int, conns: int, first_id: int) -> dict[str, float]:
    """wrk at `conns` connections (closed loop: as fast as the app acknowledges). Update ids are
    first_id + thread * 10M + n: start runs 100M apart, or a run repeats an earlier run's ids and
    TRT answers those as cheap duplicates (an earlier version of bench.ingress did)."""
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is needed: apt-get install wrk")
    script = tmp / "webhook.lua"
    script.write_text(WRK_SCRIPT % {"secret": SECRET})
    proc = await asyncio.create_subprocess_exec(
        "wrk", "-t2", f"-c{conns}", f"-d{seconds}s", "--latency", "--timeout", "10s", "-s", str(script), base,
        "--", str(first_id), stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
    out = (await proc.communicate())[0].decode()
    found = {q: re.search(rf"^\s+{q}%\s+([\d.]+)(us|ms|s)\s*$", out, re.M) for q in ("50", "99")}
    rps = re.search(r"Requests/sec:\s+([\d.]+)", out)
    non2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    errors = re.search(r"Socket errors:.*", out)
    if rps is None or not all(found.values()):
        raise RuntimeError(f"wrk output not understood:\n{out}")
    return {"rps": float(rps.group(1)), "p50": _ms(*found["50"].groups()),  # type: ignore[union-attr]
            "p99": _ms(*found["99"].groups()), "non2xx": float(non2xx.group(1)) if non2xx else 0.0,  # type: ignore[union-attr]
            "socket_errors": 1.0 if errors else 0.0}


async def open_loop(base: str, rate: float, seconds: float, conns: int, first_id: int) -> dict[str, float]:
    """Posts at a fixed `rate` over `conns` connections (bench/poster.py); latency counts from the
    scheduled send time, so a stalled app is charged for the queue it causes (no coordinated omission)."""
    total = int(rate * seconds)
    host = base.split("//", 1)[-1]
    requests = [webhook_request(host, update_body(first_id + n, 2_000_000 + (first_id + n) % 5000), HEADERS)
                for n in range(total)]
    lags: list[float] = []  # this client's own event-loop lag: what of a latency is a busy client's

    async def probe() -> None:
        while True:
            asked = time.monotonic()
            await asyncio.sleep(0.001)
            lags.append(time.monotonic() - asked - 0.001)

    prober = asyncio.create_task(probe())
    try:
        latencies, statuses = await post_at_rate(base, requests, rate, conns)
    finally:
        prober.cancel()
    return {"sent": float(total), "p50": pct(latencies, 0.5) * 1000, "p99": pct(latencies, 0.99) * 1000,
            "ok": float(statuses.get(200, 0)), "client_lag_p99": pct(lags, 0.99) * 1000,
            "client_lag_max": max(lags, default=0.0) * 1000}


async def duplicate_acks(app: App) -> float:
    """Webhook posts TRT acknowledged as redeliveries: 0 unless the bench repeated update ids."""
    async with aiohttp.ClientSession() as s, s.get(app.base + "/metrics") as r:
        text = await r.text()
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == "trt_updates_received_total" and sample.labels.get("result") == "duplicate":
                return sample.value
    return 0.0


async def histograms(app: App, *names: str) -> dict[str, dict[float, float]]:
    """The cumulative bucket counts of `names` on the app's /metrics (upper bound -> count), one
    series per name and other labels: `name` alone, or `name{label=value}` for a labelled one."""
    async with aiohttp.ClientSession() as s, s.get(app.base + "/metrics") as r:
        text = await r.text()
    out: dict[str, dict[float, float]] = {name: {} for name in names}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            base = sample.name.removesuffix("_bucket")
            if sample.name.endswith("_bucket") and base in names:
                others = ",".join(f"{k}={v}" for k, v in sorted(sample.labels.items()) if k != "le")
                out.setdefault(f"{base}{{{others}}}" if others else base, {})[float(sample.labels["le"])] = sample.value
    return out


def bucket_count_max(before: dict[float, float], after: dict[float, float]) -> tuple[float, float]:
    """How many a histogram observed between two scrapes, and the upper bound of the largest."""
    bounds = sorted(after)
    counts = [after[b] - before.get(b, 0.0) for b in bounds]
    total = counts[-1] if counts else 0.0
    largest = next((b for b, c in zip(bounds, counts, strict=True) if c >= total), 0.0) if total > 0 else 0.0
    return total, largest


def bucket_quantile(before: dict[float, float], after: dict[float, float], q: float) -> float:
    """The q-quantile of what a histogram observed between two scrapes, interpolated inside its
    bucket as Prometheus's histogram_quantile does (so only as fine as the buckets)."""
    bounds = sorted(after)
    counts = [after[b] - before.get(b, 0.0) for b in bounds]
    total = counts[-1] if counts else 0.0
    if total <= 0:
        return float("nan")
    rank, lower, below = q * total, 0.0, 0.0
    for bound, count in zip(bounds, counts, strict=True):
        if count >= rank:
            if bound == float("inf"):
                return lower
            return lower + (bound - lower) * (rank - below) / max(count - below, 1e-9)
        lower, below = bound, count
    return lower


async def fake_calls(api_base: str, method: str) -> list[dict[str, Any]]:
    async with aiohttp.ClientSession() as s, s.get(f"{api_base}/_fake/calls", params={"method": method}) as r:
        calls: list[dict[str, Any]] = await r.json()
        return calls


async def sent_count(api_base: str) -> int:
    async with aiohttp.ClientSession() as s, s.get(f"{api_base}/_fake/calls",
                                                   params={"method": "sendMessage", "count": "1"}) as r:
        return int((await r.json())["count"])


async def settle(api_base: str, limit: float = 180.0) -> int:
    """Waits until the app has stopped sending (a backlog drained), so phases do not overlap."""
    deadline = time.monotonic() + limit
    last = -1
    while time.monotonic() < deadline:
        now = await sent_count(api_base)
        if now == last:
            return now
        last = now
        await asyncio.sleep(1.0)
    return last
