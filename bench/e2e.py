"""End to end: /start posted to the webhook -> the menu's sendMessage at the fake Telegram, and the
memory each app holds with 10,000 updates pending. TRT beside stock aiogram, in one run.

    .venv/bin/python -m bench.e2e

Throughput: N updates for N distinct chats posted over 50 connections as fast as acknowledged;
updates/s is N over the time from the first post to the last sendMessage. Latency: per update,
from its post to its sendMessage arriving at the fake (both clocks are this machine's monotonic
clock). Memory: the apps talk to a "Telegram" that never answers, 10,000 updates are posted and
the app's RSS is read once they are all acknowledged (TRT's pending updates wait in PostgreSQL,
whose memory is not counted; 2,000 at most are held in the process). Prints figures; asserts nothing.
"""

from __future__ import annotations

import asyncio
import time

import aiohttp

from bench.harness import (
    HEADERS,
    App,
    black_hole,
    database,
    fake_calls,
    fake_telegram,
    fresh_database,
    pct,
    rss_mb,
    settle,
    stock,
    trt,
    update_body,
    workdir,
)

CONNS = 50
N = 3000
PENDING = 10_000


async def post_all(base: str, first_id: int, first_chat: int, count: int) -> dict[int, float]:
    """Posts `count` /start updates (one chat each) over CONNS connections; returns chat -> post time."""
    posted: dict[int, float] = {}
    numbers = iter(range(count))
    connector = aiohttp.TCPConnector(limit=CONNS)
    async with aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=60)) as session:
        async def worker() -> None:
            for number in numbers:
                chat = first_chat + number
                for _ in range(20):
                    posted[chat] = time.monotonic()
                    try:
                        async with session.post(base + "/webhook", data=update_body(first_id + number, chat),
                                                headers=HEADERS) as response:
                            if response.status == 200:
                                break
                    except (aiohttp.ClientError, TimeoutError):
                        pass
                    await asyncio.sleep(0.05)  # a refused update is redelivered, as Telegram does
        await asyncio.gather(*(worker() for _ in range(CONNS)))
    return posted


async def throughput(app: App, api: str, first_id: int, first_chat: int) -> dict[str, float]:
    began = time.monotonic()
    posted = await post_all(app.base, first_id, first_chat, N)
    acked = time.monotonic()
    await settle(api)
    arrived = {int(c["params"]["chat_id"]): float(c["at"]) for c in await fake_calls(api, "sendMessage")
               if c["status"] == 200 and first_chat <= int(c["params"]["chat_id"]) < first_chat + N}
    latencies = [arrived[chat] - posted[chat] for chat in arrived]
    last = max(arrived.values()) if arrived else acked
    return {"answered": float(len(arrived)), "ups": len(arrived) / (last - began),
            "acks": N / (acked - began), "p50": pct(latencies, 0.5) * 1000, "p99": pct(latencies, 0.99) * 1000}


async def pending_rss(app: App) -> None:
    idle = rss_mb(app.pid)
    await post_all(app.base, 90_000_000, 5_000_000, PENDING)
    await asyncio.sleep(1.0)  # let the app take up what was acknowledged before reading its memory
    print(f"  {app.name:14s} idle {idle:6.1f} MB, with {PENDING:,} pending {rss_mb(app.pid):6.1f} MB", flush=True)


def show(name: str, r: dict[str, float]) -> None:
    print(f"  {name:14s} {r['ups']:7.0f} updates/s end to end ({r['answered']:.0f}/{N} answered), "
          f"acks {r['acks']:7.0f}/s, latency p50 {r['p50']:7.1f} ms  p99 {r['p99']:8.1f} ms", flush=True)


async def main() -> None:
    with workdir() as tmp:
        async with database(tmp) as server_url:
            async with fake_telegram(tmp) as api:
                print(f"/start -> sendMessage, {N} updates over {CONNS} connections (after a warm-up of 500)",
                      flush=True)
                async with stock(tmp, api) as app:
                    await post_all(app.base, 1_000_000, 100_000, 500)
                    await settle(api)
                    stock_r = await throughput(app, api, 2_000_000, 200_000)
                    show(app.name, stock_r)
                db = await fresh_database(server_url, "trt_bench_e2e")
                async with trt(tmp, db, api) as app:
                    await post_all(app.base, 3_000_000, 300_000, 500)
                    await settle(api)
                    trt_r = await throughput(app, api, 4_000_000, 400_000)
                    show(app.name, trt_r)
                print(f"TRT/stock end-to-end updates/s: {trt_r['ups'] / stock_r['ups']:.2f}x", flush=True)
            print(f"RSS with {PENDING:,} updates pending (Telegram never answers)", flush=True)
            async with black_hole() as hole:
                async with stock(tmp, hole) as app:
                    await pending_rss(app)
                db = await fresh_database(server_url, "trt_bench_rss")
                async with trt(tmp, db, hole) as app:
                    await pending_rss(app)


if __name__ == "__main__":
    asyncio.run(main())
