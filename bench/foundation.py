"""Foundation figures: restart latency, /health and /metrics response times, start-up time.

    python3 run.py test --co -q >/dev/null; .venv/bin/python -m bench.foundation

Prints figures; asserts nothing. Uses DATABASE_URL when set, else an embedded PostgreSQL in a
temporary directory (the start-up figures always use a fresh embedded one: first and second run).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import shutil
import signal
import statistics
import tempfile
import time
from pathlib import Path

import aiohttp

from tests.procs import FAKE_TOKEN, TrtProcess, eventually

CHAOS = "bench-chaos-token"


def pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))]


def ts(line: dict) -> float:
    return dt.datetime.strptime(line["ts"], "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=dt.UTC).timestamp()


async def startup(tmp: Path) -> None:
    data = tmp / "startup-data"
    data.mkdir()
    data.chmod(0o755)
    for attempt in ("first run (initdb)", "second run (reuse)"):
        began = time.monotonic()
        proc = TrtProcess(tmp, {"TELEGRAM_BOT_TOKEN": FAKE_TOKEN, "DATA_DIR": str(data)}, name="startup").start()
        try:
            await proc.wait_healthy(timeout=120)
            took = time.monotonic() - began
            line = next(x for x in proc.log_lines() if x.get("event") == "started")
            db = next(x for x in proc.log_lines() if x.get("event") == "embedded_database_started")
            print(f"start-up, {attempt}: {took:.2f} s to first /health 200 "
                  f"(embedded PostgreSQL {db['seconds']:.2f} s, process-reported {line['startup_seconds']:.2f} s)")
            proc.signal(signal.SIGTERM)
            await proc.wait_exit(30)
        finally:
            proc.kill()


async def restarts(proc: TrtProcess, rounds: int = 15) -> None:
    """Crash janitor `rounds` times, 2.1 s apart so its supervisor (5 restarts in 10 s) never gives up."""
    in_logs: list[float] = []
    observed: list[float] = []
    async with aiohttp.ClientSession() as session:
        for n in range(1, rounds + 1):
            began = time.monotonic()
            async with session.post(f"{proc.base}/chaos/janitor", json={"fault": "crash"},
                                    headers={"X-Chaos-Token": CHAOS}) as r:
                assert r.status == 202

            async def back(n: int = n) -> bool:
                async with session.get(f"{proc.base}/health") as r:
                    item = (await r.json())["actors"]["janitor"]
                return item["restarts"] >= n and item["state"] == "running"

            await eventually(back, 10, "janitor back", interval=0.002)
            observed.append(time.monotonic() - began)
            await asyncio.sleep(2.1)
    lines = proc.log_lines()
    failed = [ts(x) for x in lines if x.get("event") == "child_failed" and x.get("child") == "janitor"]
    started = [ts(x) for x in lines if x.get("event") == "child_started" and x.get("child") == "janitor"][1:]
    in_logs = [(s - f) * 1000 for f, s in zip(failed, started, strict=False)]
    print(f"restart latency, crash -> running again (supervisor log timestamps, ms resolution): "
          f"p50 {statistics.median(in_logs):.1f} ms, max {max(in_logs):.1f} ms over {len(in_logs)} crashes")
    print(f"restart latency, POST /chaos -> /health shows it running (2 ms polling): "
          f"p50 {statistics.median(observed) * 1000:.1f} ms, p99 {pct(observed, 0.99) * 1000:.1f} ms")


async def response_times(proc: TrtProcess, n: int = 1000) -> None:
    async with aiohttp.ClientSession() as session:
        for path in ("/health", "/metrics"):
            times = []
            for _ in range(n):
                began = time.perf_counter()
                async with session.get(proc.base + path) as r:
                    await r.read()
                times.append(time.perf_counter() - began)
            print(f"GET {path}: p50 {statistics.median(times) * 1000:.2f} ms, p99 {pct(times, 0.99) * 1000:.2f} ms "
                  f"(sequential, keep-alive, n={n})")
    if shutil.which("wrk"):
        for path in ("/health", "/metrics"):
            wrk = await asyncio.create_subprocess_exec("wrk", "-t2", "-c20", "-d5s", "--latency", proc.base + path,
                                                       stdout=asyncio.subprocess.PIPE)
            out = (await asyncio.wait_for(wrk.communicate(), 30))[0].decode()
            rps = next((x.split()[1] for x in out.splitlines() if x.startswith("Requests/sec")), "?")
            p99 = next((x.split()[1] for x in out.splitlines() if x.strip().startswith("99%")), "?")
            print(f"GET {path} under wrk -c20 5 s: {rps} req/s, p99 {p99}")
    else:
        print("wrk not installed (apt-get install wrk): skipping the throughput figure")


async def main(tmp: Path) -> None:
    server = None
    url = os.environ.get("DATABASE_URL")
    if not url:
        from store import embedded

        (tmp / "pg").mkdir()
        (tmp / "pg").chmod(0o755)
        server, url = embedded.start(tmp / "pg")
    try:
        await startup(tmp)
        proc = TrtProcess(tmp, {"TELEGRAM_BOT_TOKEN": FAKE_TOKEN, "DATABASE_URL": url, "CHAOS_TOKEN": CHAOS,
                                "RESTART_BACKOFF_MIN": "0", "RESTART_BACKOFF_MAX": "0"}, name="bench").start()
        try:
            await proc.wait_healthy(timeout=60)
            await response_times(proc)
            await restarts(proc)
            proc.signal(signal.SIGTERM)
            began = time.monotonic()
            await proc.wait_exit(30)
            print(f"SIGTERM -> exit: {time.monotonic() - began:.2f} s")
        finally:
            proc.kill()
    finally:
        if server is not None:
            from store import embedded

            embedded.stop(server)
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    directory = Path(tempfile.mkdtemp(prefix="trt-bench-"))
    directory.chmod(0o755)  # the embedded server runs as its own OS user under root
    asyncio.run(main(directory))
