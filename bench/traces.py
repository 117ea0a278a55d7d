"""Trace events under load: a burst of 100,000 events in the middle of steady webhook traffic.

    .venv/bin/python -m bench.traces

TRT runs as its own process (bench/traces_app.py: `run.py serve` plus a burst on SIGUSR1), on a
real PostgreSQL, against the fake Telegram in its own process. An open loop posts /start updates
at a fixed rate; the webhook's ack latency is measured in a quiet run and in a run with the burst
two seconds in, and the stock aiogram app's at the same rate for reference. Then every event
offered to the flusher is accounted for: written (the steps in the table), dropped (the oldest
pushed out of the full trace buffer) or given up (a batch the database refused five times).
Prints figures; asserts nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator

import aiohttp
import asyncpg
from prometheus_client.parser import text_string_to_metric_families

from bench.harness import database, fake_telegram, fresh_database, open_loop, settle, stock, trt_env, workdir
from tests.procs import ROOT, TrtProcess, eventually

RATE = 300.0
SECONDS = 10
CONNS = 20


class BurstProcess(TrtProcess):
    """TRT started through bench/traces_app.py instead of run.py."""

    def start(self) -> BurstProcess:
        self._log = self.log_path.open("ab")
        self.proc = subprocess.Popen([sys.executable, "-m", "bench.traces_app"], cwd=ROOT, env=self.env,
                                     stdout=self._log, stderr=subprocess.STDOUT)
        return self


@contextlib.asynccontextmanager
async def bursting_trt(tmp: object, db: str, api: str) -> AsyncIterator[BurstProcess]:
    proc = BurstProcess(tmp, trt_env(db, api), name="trt").start()  # type: ignore[arg-type]
    try:
        async def consuming() -> bool:
            body = await proc.health()
            return bool(body["role"] == "ACTIVE" and body["actors"]["dispatcher"]["consuming"])
        await eventually(consuming, 90, "TRT ACTIVE and consuming")
        yield proc
    finally:
        proc.kill()


async def logged(proc: TrtProcess, event: str) -> dict[str, object] | None:
    """The first log line of `event` (a probe for eventually)."""
    return next((line for line in proc.log_lines() if line.get("event") == event), None)


async def trace_counts(base: str) -> dict[str, float]:
    async with aiohttp.ClientSession() as session, session.get(base + "/metrics") as response:
        text = await response.text()
    counts = {"written": 0.0, "dropped": 0.0, "given_up": 0.0}
    for family in text_string_to_metric_families(text):
        if family.name == "trt_trace_events":
            for sample in family.samples:
                if sample.name.endswith("_total"):
                    counts[sample.labels["outcome"]] = sample.value
    return counts


def show(name: str, what: str, r: dict[str, float]) -> None:
    print(f"  {name:6s} {what:38s} acked {r['ok']:6.0f}/{r['sent']:6.0f}  p50 {r['p50']:7.2f} ms  "
          f"p99 {r['p99']:8.2f} ms", flush=True)


async def main() -> None:
    with workdir() as tmp:
        async with database(tmp) as server_url, fake_telegram(tmp) as api:
            print(f"webhook ack latency at {RATE:.0f} updates/s, {CONNS} connections, {SECONDS} s per run; "
                  f"a burst of 100,000 trace events 2 s into the second TRT run", flush=True)
            async with stock(tmp, api) as app:
                await open_loop(app.base, RATE, 3, CONNS, 100_000_000)
                await settle(api)
                show("stock", "quiet", await open_loop(app.base, RATE, SECONDS, CONNS, 110_000_000))
                await settle(api)
            db = await fresh_database(server_url, "trt_bench_traces")
            async with bursting_trt(tmp, db, api) as proc:
                await open_loop(proc.base, RATE, 3, CONNS, 200_000_000)
                await settle(api)
                show("TRT", "quiet", await open_loop(proc.base, RATE, SECONDS, CONNS, 210_000_000))
                await settle(api)

                async def trigger() -> None:
                    await asyncio.sleep(2.0)  # the burst lands in the middle of the run
                    os.kill(proc.pid, signal.SIGUSR1)

                during, _ = await asyncio.gather(open_loop(proc.base, RATE, SECONDS, CONNS, 220_000_000), trigger())
                show("TRT", "with the burst", during)
                done = await eventually(lambda: logged(proc, "bench_burst_done"), 60, "the burst emitted")
                await settle(api)

                async def idle() -> bool:
                    flusher = (await proc.health())["actors"]["correlation_flusher"]
                    return flusher["buffered"] == 0 and flusher.get("depth", 0) == 0
                began = time.monotonic()
                await eventually(idle, 120, "the flusher drained")
                # the last handler_end lines may still be on their way: read once the counts stand still
                counts, previous = await trace_counts(proc.base), None
                while counts != previous:
                    await asyncio.sleep(1.0)
                    previous, counts = counts, await trace_counts(proc.base)
                os.kill(proc.pid, signal.SIGUSR2)
                emitted = await eventually(lambda: logged(proc, "bench_emitted"), 30, "the emitted count")
                conn = await asyncpg.connect(db)
                try:
                    rows = await conn.fetchval(
                        "SELECT count(*) FROM trace_parts p, json_array_elements(p.steps) AS s(step)")
                    burst_rows = await conn.fetchval(
                        "SELECT count(*) FROM trace_parts p, json_array_elements(p.steps) AS s(step) "
                        "WHERE s.step->>1 = 'bench'")
                finally:
                    await conn.close()
            total = int(emitted["count"])  # type: ignore[call-overload]
            accounted = counts["written"] + counts["dropped"] + counts["given_up"]
            print(f"  burst: 100,000 events emitted in {done['duration']} s (1,000 per loop turn); flusher idle "
                  f"{time.monotonic() - began:.1f} s after the traffic settled", flush=True)
            print(f"  trace events offered {total:,}: written {counts['written']:,.0f} (steps in the table {rows:,}, "
                  f"of the burst {burst_rows:,}), dropped {counts['dropped']:,.0f}, given up "
                  f"{counts['given_up']:,.0f}; unaccounted {total - accounted:,.0f}", flush=True)


if __name__ == "__main__":
    asyncio.run(main())
