"""A flood from one chat beside ordinary chats: do the others wait for it? (issue 19)

    .venv/bin/python -m bench.flood [--against REV] [--flood 3000] [--others 100] [--no-limits]

One `run.py serve` against the fake Telegram and a fresh PostgreSQL, with Telegram's send limits
as in production (30 messages a second, 1 a second per chat; --no-limits: off, what costs is then
CPU only). Two phases:
- quiet: OTHERS chats send /start, spread evenly over SPREAD seconds (an open loop: each is posted
  at its time whatever the answers do);
- flood: one chat posts FLOOD text messages over FLOOD_CONNS connections as fast as they are
  acknowledged (harder than Telegram, which sends one chat's updates one at a time), and half a
  second in, the same number of new chats send /start as above. Update ids are given in posting
  order across all senders, as Telegram does: the inbox is claimed in that order.
Printed: the other chats' latency (post -> their first sendMessage at the fake, one clock) p50 and
p99 in each phase, a chat not answered within WINDOW counted as WINDOW; how many answers the
flood got by then, the notices among them, and trt_updates_dropped_total by reason. --against
REV runs REV (e.g. the commit before flood control) the same way in the same run, beside this
checkout. Prints figures; asserts nothing.
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
WINDOW = 60.0  # seconds the other chats' answers are waited for in a phase


class Ids:
    """Update ids in posting order across every sender, as Telegram numbers them: the inbox is
    claimed in this order, so a flood posted first is ahead of the chats that write after it."""

    def __init__(self, first: int) -> None:
        self.next = first

    def take(self) -> int:
        self.next += 1
        return self.next


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


async def others(base: str, ids: Ids, first_chat: int, count: int) -> dict[int, float]:
    """`count` /start updates, one chat each, posted at their times over SPREAD seconds."""
    posted: dict[int, float] = {}
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60)) as session:
        began = time.monotonic()

        async def one(number: int) -> None:
            await asyncio.sleep(max(0.0, began + number * SPREAD / count - time.monotonic()))
            posted[first_chat + number] = time.monotonic()
            await post(session, base, update_body(ids.take(), first_chat + number))

        await asyncio.gather(*(one(n) for n in range(count)))
    return posted


async def flood(base: str, ids: Ids, count: int) -> None:
    numbers = iter(range(count))
    connector = aiohttp.TCPConnector(limit=FLOOD_CONNS)
    async with aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=60)) as session:
        async def conn() -> None:
            for number in numbers:
                await post(session, base, flood_body(ids.take(), number))
        await asyncio.gather(*(conn() for _ in range(FLOOD_CONNS)))


async def answered(api: str, posted: dict[int, float]) -> dict[int, float]:
    """chat -> latency of its first answer, for the chats answered so far."""
    first: dict[int, float] = {}
    for call in await fake_calls(api, "sendMessage"):
        chat = int(call["params"]["chat_id"])
        if call["status"] == 200 and chat in posted:
            first[chat] = min(first.get(chat, float("inf")), float(call["at"]))
    return {chat: at - posted[chat] for chat, at in first.items()}


async def phase(api: str, posted: dict[int, float], began: float) -> str:
    """Waits (up to WINDOW from `began`) for every chat's answer; the figures as a line. A chat
    not answered in the window counts as WINDOW in the percentiles."""
    while True:
        got = await answered(api, posted)
        if len(got) == len(posted) or time.monotonic() - began > WINDOW:
            break
        await asyncio.sleep(0.5)
    values = list(got.values()) + [WINDOW] * (len(posted) - len(got))
    return (f"{len(got)}/{len(posted)} other chats answered within {WINDOW:g} s, p50 {pct(values, 0.5) * 1000:7.1f} ms"
            f"  p99 {pct(values, 0.99) * 1000:8.1f} ms")


async def dropped(app: App) -> dict[str, float]:
    async with aiohttp.ClientSession() as s, s.get(app.base + "/metrics") as r:
        text = await r.text()
    return {sample.labels.get("reason", ""): sample.value for family in text_string_to_metric_families(text)
            for sample in family.samples if sample.name == "trt_updates_dropped_total"}


async def run(tmp: Path, server_url: str, api: str, name: str, root: Path | None, base: int, flood_n: int,
              others_n: int, env: dict[str, str]) -> None:
    db = await fresh_database(server_url, f"trt_bench_flood_{base}")
    ids = Ids(base * 1_000_000)
    async with trt(tmp, db, api, root=root, name=name, **env) as app:
        await others(app.base, ids, base * 100_000, 100)  # warm-up
        await settle(api)
        began = time.monotonic()
        posted = await others(app.base, ids, base * 100_000 + 1000, others_n)
        print(f"  {name:12s} quiet: {await phase(api, posted, began)}", flush=True)
        await settle(api)
        before = len([c for c in await fake_calls(api, "sendMessage") if int(c["params"]["chat_id"]) == FLOODER])
        began = time.monotonic()
        flooding = asyncio.create_task(flood(app.base, ids, flood_n))
        await asyncio.sleep(0.5)  # the flood is under way (and ahead in the inbox) when the others write
        posted = await others(app.base, ids, base * 100_000 + 2000, others_n)
        await flooding
        acked = time.monotonic() - began
        line = await phase(api, posted, began)
        to_flooder = [c for c in await fake_calls(api, "sendMessage") if int(c["params"]["chat_id"]) == FLOODER]
        texts = [str(c["params"].get("text", "")) for c in to_flooder[before:]]
        notices = sum(1 for t in texts if "lot of messages" in t or "Слишком много" in t)
        print(f"  {name:12s} flood: {line}; flood of {flood_n} acknowledged in {acked:.1f} s, by then "
              f"{len(texts)} answers to it ({notices} notice), dropped {await dropped(app) or 'none'}", flush=True)


async def main(against: str | None, flood_n: int, others_n: int, limits: bool) -> None:
    env = {"TELEGRAM_RATE_GLOBAL": "30", "TELEGRAM_RATE_PER_CHAT": "1"} if limits else {}
    with workdir() as tmp, contextlib.ExitStack() as trees:
        other = trees.enter_context(checkout(against, tmp)) if against else None
        async with database(tmp) as server_url, fake_telegram(tmp) as api:
            print(f"{others_n} chats send /start over {SPREAD:g} s, alone and beside one chat posting "
                  f"{flood_n} messages over {FLOOD_CONNS} connections; Telegram's send limits "
                  f"{'as in production (30/s, 1/s a chat)' if limits else 'off'}", flush=True)
            if other is not None:
                await run(tmp, server_url, api, f"TRT {other[1]}", other[0], 5, flood_n, others_n, env)
            await run(tmp, server_url, api, "TRT", None, 3, flood_n, others_n, env)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="one chat floods while others send /start")
    parser.add_argument("--against", metavar="REV", help="also run this git revision, in the same run")
    parser.add_argument("--flood", type=int, default=3000, help="messages the flooding chat posts")
    parser.add_argument("--others", type=int, default=100, help="other chats, one /start each, per phase")
    parser.add_argument("--no-limits", action="store_true", help="Telegram's send limits off (CPU only)")
    args = parser.parse_args()
    asyncio.run(main(args.against, args.flood, args.others, not args.no_limits))
