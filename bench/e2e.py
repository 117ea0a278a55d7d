"""End to end: /start posted to the webhook -> the menu's sendMessage at the fake Telegram, and the
memory each app holds with 10,000 updates pending. TRT beside two stock aiogram apps, in one run:
the bare one (bench/stock_app.py: MemoryStorage, no database: what aiogram costs) and the
production-like one (bench/stock_prod_app.py: an asyncpg pool, the user upserted on every update,
the FSM in PostgreSQL: what people deploy). Both ratios are printed, "TRT/stock (bare)" and
"TRT/stock (production-like)".

    .venv/bin/python -m bench.e2e [--against REV [--rounds K]] [--known] [--pin]

--against REV: the guard against the next regression. REV (any git revision: main~3, a commit)
is checked out into a temporary worktree and run beside this checkout in the same run, against
the same stock apps, the same fake Telegram and the same PostgreSQL, in the order REV, this,
this, REV, so both see the same machine and neither always runs second; each run's figures, the
means' ratios to both anchors and "this checkout against REV" (the means' ratio, and each
pair's) are printed. On this machine two runs of the same code differed by 12%, and in pairs
always run in the same order the second was 5-6% slower, so the guard reads the means of a
balanced order. A drop of more than 10% is a bug to fix or explain (each issue note carries this
line for main before and after). Single pairs still ranged 0.74-1.26x for the same change in one
session: --rounds K repeats that order K times (about 4 minutes a round) and means all of them.

Throughput: N updates for N distinct chats posted over 50 connections as fast as acknowledged;
updates/s is N over the time from the first post to the last sendMessage. Latency: per update,
from its post to its sendMessage arriving at the fake (both clocks are this machine's monotonic
clock). Every update of that run is a user's first contact (TRT creates the user's account, in
a fenced transaction). --known: each app then gets the same N users' /start again (new update
ids), as most of a live bot's updates are: TRT reads nothing for a user or a chat its leader
already holds (store/user_cache.py, bot/fsm_cache.py), the production-like app upserts the user
and reads and clears the FSM as on every update. Each app with a database gets a fresh one of its
own. Memory: the apps talk to a "Telegram" that never answers, 10,000 updates are posted and the
app's RSS is read once they are all acknowledged (TRT's pending updates wait in PostgreSQL, whose
memory is not counted; 2,000 at most are held in the process). --pin: each app on a core of its
own, PostgreSQL, the fake and the client on the other (bench/cpus.py), so the machine's
scheduling does not decide the figures. Prints figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import aiohttp

from bench import cpus
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
    stock_prod,
    trt,
    update_body,
    workdir,
)
from tests.procs import ROOT

CONNS = 50
N = 3000
PENDING = 10_000
# with --against: each pair's two orders once (a pair wanders by 10% here, and its second run was slower)
ORDER = ("REV", "this", "this", "REV")


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
               if c["status"] == 200 and first_chat <= int(c["params"]["chat_id"]) < first_chat + N
               and float(c["at"]) >= began}  # a known users' run repeats an earlier run's chats
    latencies = [arrived[chat] - posted[chat] for chat in arrived]
    last = max(arrived.values()) if arrived else acked
    return {"answered": float(len(arrived)), "ups": len(arrived) / (last - began),
            "acks": N / (acked - began), "p50": pct(latencies, 0.5) * 1000, "p99": pct(latencies, 0.99) * 1000}


async def pending_rss(app: App) -> None:
    idle = rss_mb(app.pid)
    await post_all(app.base, 90_000_000, 5_000_000, PENDING)
    await asyncio.sleep(1.0)  # let the app take up what was acknowledged before reading its memory
    print(f"  {app.name:16s} idle {idle:6.1f} MB, with {PENDING:,} pending {rss_mb(app.pid):6.1f} MB", flush=True)


def show(name: str, r: dict[str, float]) -> None:
    print(f"  {name:24s} {r['ups']:7.0f} updates/s end to end ({r['answered']:.0f}/{N} answered), "
          f"acks {r['acks']:7.0f}/s, latency p50 {r['p50']:7.1f} ms  p99 {r['p99']:8.1f} ms", flush=True)


@contextlib.contextmanager
def checkout(rev: str, into: Path) -> Iterator[tuple[Path, str]]:
    """REV as a detached worktree under `into` (removed afterwards), and its short commit."""
    commit = subprocess.run(["git", "rev-parse", "--short", f"{rev}^{{commit}}"], cwd=ROOT, check=True,
                            capture_output=True, text=True).stdout.strip()
    tree = into / f"rev-{commit}"
    subprocess.run(["git", "worktree", "add", "--detach", "--force", str(tree), commit], cwd=ROOT, check=True,
                   capture_output=True)
    try:
        yield tree, commit
    finally:
        subprocess.run(["git", "worktree", "remove", "--force", str(tree)], cwd=ROOT, check=False,
                       capture_output=True)


Runs = dict[str, dict[str, float]]  # "new" (first contacts), and "known" when asked: the same users again


async def runs(app: App, api: str, first_id: int, first_chat: int, known: bool) -> Runs:
    """The throughput run; with `known`, a second one of the same users (new update ids)."""
    out = {"new": await throughput(app, api, first_id, first_chat)}
    show(app.name, out["new"])
    if known:
        await settle(api)
        out["known"] = await throughput(app, api, first_id + 100_000, first_chat)
        show(app.name + " (known)", out["known"])
    return out


async def run_trt(tmp: Path, server_url: str, api: str, name: str, root: Path | None, base: int,
                  known: bool = False) -> Runs:
    db = await fresh_database(server_url, f"trt_bench_e2e_{base}")
    async with trt(tmp, db, api, root=root, name=name) as app:
        await post_all(app.base, base * 1_000_000, base * 100_000, 500)
        await settle(api)
        return await runs(app, api, base * 1_000_000 + 500_000, base * 100_000 + 50_000, known)


async def run_stock(app: App, api: str, base: int, known: bool = False) -> Runs:
    """A warm-up of 500, then the throughput run(s); update ids and chats `base` apart from other runs'."""
    await post_all(app.base, base * 1_000_000, base * 100_000, 500)
    await settle(api)
    return await runs(app, api, (base + 1) * 1_000_000, (base + 1) * 100_000, known)


def mean(rounds: list[Runs]) -> Runs:
    """Each figure's mean over the rounds of one build."""
    return {users: {k: sum(r[users][k] for r in rounds) / len(rounds) for k in rounds[0][users]}
            for users in rounds[0]}


def ratio(label: str, trt_r: dict[str, float], anchor: dict[str, float]) -> str:
    return (f"{label} end-to-end updates/s: {trt_r['ups'] / anchor['ups']:.2f}x, "
            f"acks/s {trt_r['acks'] / anchor['acks']:.2f}x")


async def main(against: str | None, known: bool, rounds: int = 1) -> None:
    with workdir() as tmp, contextlib.ExitStack() as trees:
        other = trees.enter_context(checkout(against, tmp)) if against else None
        async with database(tmp) as server_url:
            async with fake_telegram(tmp) as api:
                print(f"/start -> sendMessage, {N} updates over {CONNS} connections (after a warm-up of 500)",
                      flush=True)
                async with stock(tmp, api) as app:
                    stock_r = await run_stock(app, api, 1, known)
                db = await fresh_database(server_url, "stock_prod_bench_e2e")
                async with stock_prod(tmp, api, db) as app:
                    prod_r = await run_stock(app, api, 7, known)
                anchors = {"bare": stock_r, "production-like": prod_r}
                olds: list[Runs] = []
                news: list[Runs] = []
                for i, which in enumerate(ORDER * rounds if other is not None else ("this",)):
                    if which == "REV" and other is not None:
                        olds.append(await run_trt(tmp, server_url, api, f"TRT {other[1]}", other[0], 5 + 10 * i,
                                                  known))
                    else:
                        news.append(await run_trt(tmp, server_url, api, "TRT", None, 3 + 10 * i, known))
                trt_r = mean(news)
                for users in trt_r:
                    who = "" if users == "new" else f", {users} users"
                    for kind, r in anchors.items():
                        print(ratio(f"TRT/stock ({kind}{who})", trt_r[users], r[users]), flush=True)
                    if other is not None:
                        old_r = mean(olds)
                        for kind, r in anchors.items():
                            print(ratio(f"TRT {other[1]}/stock ({kind}{who})", old_r[users], r[users]), flush=True)
                        pairs = ", ".join(f"{n[users]['ups'] / o[users]['ups']:.2f}x" for o, n in zip(olds, news,
                                                                                                    strict=True))
                        print(f"this checkout against {other[1]}{who}: "
                              f"{trt_r[users]['ups'] / old_r[users]['ups']:.2f}x updates/s (each pair: {pairs}), "
                              f"p99 {old_r[users]['p99']:.0f} -> {trt_r[users]['p99']:.0f} ms", flush=True)
            print(f"RSS with {PENDING:,} updates pending (Telegram never answers)", flush=True)
            async with black_hole() as hole:
                async with stock(tmp, hole) as app:
                    await pending_rss(app)
                db = await fresh_database(server_url, "stock_prod_bench_rss")
                async with stock_prod(tmp, hole, db) as app:
                    await pending_rss(app)
                if other is not None:
                    db = await fresh_database(server_url, "trt_bench_rss_rev")
                    async with trt(tmp, db, hole, root=other[0], name=f"TRT {other[1]}") as app:
                        await pending_rss(app)
                db = await fresh_database(server_url, "trt_bench_rss")
                async with trt(tmp, db, hole) as app:
                    await pending_rss(app)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="/start -> sendMessage end to end, beside stock aiogram")
    parser.add_argument("--against", metavar="REV", help="also run this git revision, in the same run")
    parser.add_argument("--known", action="store_true",
                        help="after each app's run of first contacts, run the same users again")
    parser.add_argument("--rounds", type=int, default=1,
                        help="with --against: run the order REV, this, this, REV this many times")
    cpus.add_flag(parser)
    args = parser.parse_args()
    if args.rounds < 1:
        parser.error("--rounds must be at least 1")
    cpus.apply(args)
    asyncio.run(main(args.against, args.known, args.rounds))
