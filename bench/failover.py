"""Failover seconds after kill -9, SIGSTOP and SIGTERM of the ACTIVE instance (median of 5 each).

    .venv/bin/python -m bench.failover

Two run.py processes on one database; the time is from the signal to the standby's /health
saying ACTIVE. Prints figures; asserts nothing.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import statistics
import tempfile
import time
from pathlib import Path

from tests.procs import FAKE_TOKEN, TrtProcess, eventually, one_active

SETTINGS = {"HEARTBEAT_INTERVAL": "2", "LOCK_RETRY_INTERVAL": "1", "STALE_AFTER": "15"}


async def one(tmp: Path, url: str, how: str, n: int) -> float:
    env = {"TELEGRAM_BOT_TOKEN": FAKE_TOKEN, "DATABASE_URL": url, **SETTINGS}
    a = TrtProcess(tmp, env, name=f"{how.replace(' ', '')}{n}a").start()
    try:
        await a.wait_healthy(timeout=60)
        await eventually(lambda: one_active([a]), 30, "first ACTIVE")
        b = TrtProcess(tmp, env, name=f"{how.replace(' ', '')}{n}b").start()
        try:
            await b.wait_healthy(timeout=60)
            began = time.monotonic()
            if how == "kill -9":
                a.kill()
            elif how == "SIGSTOP":
                a.signal(signal.SIGSTOP)
            else:
                a.signal(signal.SIGTERM)
            await eventually(lambda: one_active([b]), 60, "standby ACTIVE", interval=0.01)
            return time.monotonic() - began
        finally:
            b.kill()
    finally:
        a.kill()


async def main(tmp: Path) -> None:
    server = None
    url = os.environ.get("DATABASE_URL")
    if not url:
        from store import embedded

        server, url = await asyncio.to_thread(embedded.start, tmp / "pg")
    try:
        print(f"settings: {SETTINGS} (idle_session_timeout on the lock session = 3 heartbeats)")
        for how in ("kill -9", "SIGSTOP", "SIGTERM"):
            times = [await one(tmp, url, how, n) for n in range(5)]
            print(f"failover after {how}: median {statistics.median(times):.2f} s "
                  f"(min {min(times):.2f}, max {max(times):.2f}, n=5)")
    finally:
        if server is not None:
            from store import embedded

            embedded.stop(server)


if __name__ == "__main__":
    directory = Path(tempfile.mkdtemp(prefix="trt-failover-"))
    directory.chmod(0o755)
    (directory / "pg").mkdir()
    (directory / "pg").chmod(0o755)
    try:
        asyncio.run(main(directory))
    finally:
        shutil.rmtree(directory, ignore_errors=True)
