"""`run.py serve` with one addition for bench/traces.py: SIGUSR1 makes producers in the process emit
a burst of trace events through telemetry.tracing, as handlers would (a thousand per turn of the
event loop), and SIGUSR2 logs how many events were offered to the flusher in all. Bench-only."""

from __future__ import annotations

import asyncio
import signal
import sys
import time
from typing import Any

import commands.main
from commands.main import execute
from telemetry import logs, tracing

BURST = 100_000
PER_TURN = 1_000
log = logs.get("bench")


async def burst() -> None:
    began = time.perf_counter()
    for start in range(0, BURST, PER_TURN):
        for n in range(start, start + PER_TURN):
            tracing.emit("bench_event", {"n": n}, correlation_id=f"b{n}", actor="bench")
        await asyncio.sleep(0)
    log.warning("bench_burst_done", extra={"count": BURST, "duration": round(time.perf_counter() - began, 3)})


def main() -> int:
    serve = commands.main.serve
    tasks: set[asyncio.Task[None]] = set()

    async def serve_with_burst(*args: Any) -> int:
        loop = asyncio.get_running_loop()

        def start_burst() -> None:
            task = asyncio.ensure_future(burst())
            tasks.add(task)
            task.add_done_callback(tasks.discard)

        loop.add_signal_handler(signal.SIGUSR1, start_burst)
        loop.add_signal_handler(signal.SIGUSR2, lambda: log.warning("bench_emitted",
                                                                    extra={"count": tracing.emitted}))
        return await serve(*args)

    commands.main.serve = serve_with_burst  # type: ignore[assignment]  # the bench's serve, same signature
    return execute("serve", time.monotonic(), [])


if __name__ == "__main__":
    sys.exit(main())
