"""A flood from one chat beside ordinary chats: do the others wait for it? (issue 19)

    .venv/bin/python -m bench.flood [--against REV] [--flood 3000] [--others 200]

One `run.py serve` against the fake Telegram and a fresh PostgreSQL. Two phases, each after the
previous one's answers have settled:
- quiet: OTHERS chats send /start, spread evenly over SPREAD seconds (an open loop: each is posted
  at its time whatever the answers do);
- flood: the same, for new chats, while one chat posts FLOOD text messages over FLOOD_CONNS
  connections as fast as they are acknowledged (harder than Telegram, which sends one chat's
  updates one at a time: the flood lands in the inbox at the webhook's speed).
Printed: the other chats' latency (post -> their first sendMessage at the fake, one clock) p50 and
p99 in each phase, how many flood messages were answered, the notices among them, and
trt_updates_dropped_total by reason. --against REV runs REV (e.g. the commit before flood
control) the same way in the same run, beside this checkout. Prints figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import time
from pathlib import Path

import aiohttp
from prometheus_client.parser import text_string_to_metric_families

from bench.e2e import checkout
from bench.harness import (
    HEADERS,
    App,
    database,
    fake_calls,
    fake_telegram,
    fresh_database,
    pct,
    settle,
    trt,
    update_body,
    workdir,
)

SPREAD = 4.0
FLOOD_CONNS = 8
FLOODER = 7_000_000


def flood_body(update_id: int, number: int) -> bytes:
    return json.dumps({"update_id": update_id, "message": {
        "message_id": update_id, "date": 1_700_000_000, "text": f"spam {number}",
        "from": {"id": FLOODER, "is_bot": False, "first_name": "Flood", "language_code": "en"},
        "chat": {"id": FLOODER, "type": "private", "first_name": "Flood"}}}).encode()


async def post(session: aiohttp.ClientSession, base: str, body: bytes) -> None:
    for _ in range(20):
        try:
            async with session.post(base + "/webhook", data=body, headers=HEADERS) as response:
                if response.status == 200:
                    return
        except (aiohttp.ClientError, TimeoutError):
            pass
        await asyncio.sleep(0.05)  # a refused update is redelivered, as Telegram does


async def others(base: str, first_id: int, first_chat: int, count: int) -> dict[int, float]:
    """`count` /start updates, one chat each, posted at their times over SPREAD seconds."""
    posted: dict[int, float] = {}
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60)) as session:
        began = time.monotonic()

        async def one(number: int) -> None:
            await asyncio.sleep(max(0.0, began + number * SPREAD / count - time.monotonic()))
            posted[first_chat + number] = time.monotonic()
            await post(session, base, update_body(first_id + number, first_chat + number))

        await asyncio.gather(*(one(n) for n in range(count)))
    return posted


async def flood(base: str, first_id: int, count: int) -> None:
    numbers = iter(range(count))
    connector = aiohttp.TCPConnector(limit=FLOOD_CONNS)
    async with aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=60)) as session:
        async def conn() -> None:
            for number in numbers:
                await post(session, base, flood_body(first_id + number, number))
        await asyncio.gather(*(conn() for _ in range(FLOOD_CONNS)))


async def latencies(api: str, posted: dict[int, float]) -> tuple[int, float, float]:
    first: dict[int, float] = {}
    for call in await fake_calls(api, "sendMessage"):
        chat = int(call["params"]["chat_id"])
        if call["status"] == 200 and chat in posted:
            first[chat] = min(first.get(chat, float("inf")), float(call["at"]))
    values = [first[chat] - posted[chat] for chat in first]
    return len(first), pct(values, 0.5) * 1000, pct(values, 0.99) * 1000


async def dropped(app: App) -> dict[str, float]:
    async with aiohttp.ClientSession() as s, s.get(app.base + "/metrics") as r:
        text = await r.text()
    return {sample.labels.get("reason", ""): sample.value for family in text_string_to_metric_families(text)
            for sample in family.samples if sample.name == "trt_updates_dropped_total"}


async def run(tmp: Path, server_url: str, api: str, name: str, root: Path | None, base: int, flood_n: int,
              others_n: int) -> None:
    db = await fresh_database(server_url, f"trt_bench_flood_{base}")
    async with trt(tmp, db, api, root=root, name=name) as app:
        await others(app.base, base * 1_000_000, base * 100_000, 100)  # warm-up
        await settle(api)
        posted = await others(app.base, base * 1_000_000 + 1000, base * 100_000 + 1000, others_n)
        await settle(api)
        n, p50, p99 = await latencies(api, posted)
        print(f"  {name:12s} quiet: {n}/{others_n} other chats answered, p50 {p50:7.1f} ms  p99 {p99:8.1f} ms",
              flush=True)
        before = len([c for c in await fake_calls(api, "sendMessage") if int(c["params"]["chat_id"]) == FLOODER])
        began = time.monotonic()
        flooding = asyncio.create_task(flood(app.base, base * 1_000_000 + 100_000, flood_n))
        posted = await others(app.base, base * 1_000_000 + 2000, base * 100_000 + 2000, others_n)
        await flooding
        acked = time.monotonic() - began
        await settle(api)
        n, p50, p99 = await latencies(api, posted)
        to_flooder = [c for c in await fake_calls(api, "sendMessage") if int(c["params"]["chat_id"]) == FLOODER]
        texts = [str(c["params"].get("text", "")) for c in to_flooder[before:]]
        notices = sum(1 for t in texts if "lot of messages" in t or "Слишком много" in t)
        print(f"  {name:12s} flood: {n}/{others_n} other chats answered, p50 {p50:7.1f} ms  p99 {p99:8.1f} ms; "
              f"flood of {flood_n} acknowledged in {acked:.1f} s, {len(texts)} answers to it ({notices} notice), "
              f"dropped {await dropped(app) or 'none'}", flush=True)


async def main(against: str | None, flood_n: int, others_n: int) -> None:
    with workdir() as tmp, contextlib.ExitStack() as trees:
        other = trees.enter_context(checkout(against, tmp)) if against else None
        async with database(tmp) as server_url, fake_telegram(tmp) as api:
            print(f"{others_n} chats send /start over {SPREAD:g} s, alone and beside one chat posting "
                  f"{flood_n} messages over {FLOOD_CONNS} connections", flush=True)
            if other is not None:
                await run(tmp, server_url, api, f"TRT {other[1]}", other[0], 5, flood_n, others_n)
            await run(tmp, server_url, api, "TRT", None, 3, flood_n, others_n)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="one chat floods while others send /start")
    parser.add_argument("--against", metavar="REV", help="also run this git revision, in the same run")
    parser.add_argument("--flood", type=int, default=3000, help="messages the flooding chat posts")
    parser.add_argument("--others", type=int, default=200, help="other chats, one /start each, per phase")
    args = parser.parse_args()
    asyncio.run(main(args.against, args.flood, args.others))
