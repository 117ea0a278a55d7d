"""Where one update's time goes: bench.e2e's /start load on a real `run.py serve`, sampled by
py-spy, with what each update costs in database transactions and rows and in Bot API calls.

    .venv/bin/python -m bench.profile [--seconds 20] [--top 25] [--known]

Why: throughput fell by half while the product landed (issue 21) and nothing said where. A
profile names the costs (the account middleware's transaction, FSM reads and writes, the trace
events, the middlewares, the send gate, the control lane) so they can be taken out at their
mechanism, and the counts per update say which of them are round trips. py-spy samples the
process from outside (no instrumentation in the hot path, so the figures are the real ones);
it is installed from PyPI on first use (a wheel with its binary). Prints figures; asserts nothing.

What it prints: the updates/s of the sampled run; per update, the PostgreSQL transactions
(pg_stat_database xact_commit + xact_rollback of TRT's database), rows written and read, and the
Bot API calls by method at the fake; then the functions with the most samples, by self time and
by total time, as a share of the process's CPU samples and in microseconds per update.
--known: every sampled /start comes from a user the warm-up already met (the leader's caches
hold their account and chat), as in bench.e2e --known; otherwise each is a first contact.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import asyncpg

from bench.e2e import CONNS, post_all
from bench.harness import database, fake_calls, fake_telegram, fresh_database, sent_count, settle, trt, workdir
from tests.procs import ROOT

RATE = 200  # samples a second
CHUNK = 1000  # updates posted at once
STATS = ("xact_commit", "xact_rollback", "tup_inserted", "tup_updated", "tup_deleted", "tup_fetched")


def py_spy() -> str:
    """The py-spy binary, installed into this venv from PyPI when missing."""
    found = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    if not Path(found).exists():
        subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "py-spy"], check=True)
    return found


async def db_stats(url: str) -> tuple[dict[str, int], dict[str, tuple[int, int, int, int]]]:
    """The database's totals, and per table (seq scans, rows they read, index scans, rows fetched)."""
    conn = await asyncpg.connect(url)
    try:
        await conn.execute("SELECT pg_stat_clear_snapshot()")
        row = await conn.fetchrow(f"SELECT {', '.join(STATS)} FROM pg_stat_database "
                                  "WHERE datname = current_database()")
        tables = {r["relname"]: (int(r["seq_scan"] or 0), int(r["seq_tup_read"] or 0), int(r["idx_scan"] or 0),
                                 int(r["idx_tup_fetch"] or 0))
                  for r in await conn.fetch("SELECT relname, seq_scan, seq_tup_read, idx_scan, idx_tup_fetch "
                                            "FROM pg_stat_user_tables")}
        # per index: its scans and the entries they read (the seq columns unused)
        tables.update({"index " + r["indexrelname"]: (0, 0, int(r["idx_scan"] or 0), int(r["idx_tup_read"] or 0))
                       for r in await conn.fetch("SELECT indexrelname, idx_scan, idx_tup_read "
                                                 "FROM pg_stat_user_indexes")})
        return ({key: int(row[key]) for key in STATS} if row else {}), tables
    finally:
        await conn.close()


def table_reads(before: dict[str, tuple[int, int, int, int]], after: dict[str, tuple[int, int, int, int]],
                updates: int) -> None:
    """Per update, by table: which queries read the rows (a sequential scan reads every row)."""
    rows = []
    for name, now in after.items():
        then = before.get(name, (0, 0, 0, 0))
        delta = [(a - b) / max(updates, 1) for a, b in zip(now, then, strict=True)]
        if any(delta):
            rows.append((delta[1] + delta[3], name, delta))
    print("  reads per update by table (seq scans, rows they read, index scans, rows fetched by index);"
          " by index (its scans, entries read):")
    for _, name, (seq, seq_rows, idx, idx_rows) in sorted(rows, reverse=True):
        print(f"    {name:22s} {seq:6.2f} {seq_rows:9.2f} {idx:6.2f} {idx_rows:9.2f}")


def shares(raw: Path, top: int, updates: int, rate: int = RATE) -> None:
    """py-spy's collapsed stacks ("frame;frame;frame count") as self and total shares, and the
    total of this program's own functions (what a change here can take out)."""
    own: collections.Counter[str] = collections.Counter()
    total: collections.Counter[str] = collections.Counter()
    ours: collections.Counter[str] = collections.Counter()
    samples = 0
    root = str(ROOT) + "/"
    for line in raw.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack:
            continue
        count = int(count_text)
        frames = stack.split(";")
        names = [frame.split(" (")[0] + " " + frame.rsplit("/", 1)[-1].rstrip(")") for frame in frames]
        samples += count
        own[names[-1]] += count
        for name in set(names):
            total[name] += count
        for name in {n for n, f in zip(names, frames, strict=True) if root in f and "/.venv/" not in f}:
            ours[name] += count
    if not samples:
        print("  no samples (is py-spy allowed to attach? it needs ptrace: root, or CAP_SYS_PTRACE)")
        return
    per_sample_us = 1e6 / rate  # one (non-idle) sample stands for this much of the process's time

    def show(title: str, counter: collections.Counter[str]) -> None:
        print(f"  {title} (share of {samples} samples; µs per update)")
        for frame, count in counter.most_common(top):
            print(f"    {count / samples:6.1%} {count * per_sample_us / max(updates, 1):8.1f} µs  {frame[:110]}")

    show("self time", own)
    show("total time", total)
    show("total time in this program's own functions", ours)


async def main(seconds: float, top: int, gil: bool = False, known: bool = False) -> None:
    spy = py_spy()
    with workdir() as tmp:
        async with database(tmp) as server_url, fake_telegram(tmp) as api:
            db = await fresh_database(server_url, "trt_bench_profile")
            async with trt(tmp, db, api) as app:
                met = 2 * CHUNK if known else 500  # known: every chat a sampled chunk posts to
                await post_all(app.base, 1_000_000, 100_000, met)  # warm-up: code paths, pool, caches
                await settle(api)
                before_calls = collections.Counter(c["method"] for c in await fake_calls(api, ""))
                before, tables_before = await db_stats(db)
                raw = tmp / "profile.txt"
                sampler = await asyncio.create_subprocess_exec(
                    spy, "record", "--pid", str(app.pid), "--duration", str(int(seconds)), "--rate", str(RATE),
                    "--format", "raw", "--full-filenames", "--nonblocking", *(["--gil"] if gil else []),
                    "--output", str(raw),
                    stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
                began = time.monotonic()
                posted = 0
                sent_before = await sent_count(api)
                while time.monotonic() - began < seconds:
                    chats = 100_000 + posted % met if known else 200_000 + posted
                    await post_all(app.base, 2_000_000 + posted, chats, CHUNK)
                    posted += CHUNK
                    # the backlog stays under two chunks: acks are far faster than handling, and a
                    # backlog of tens of thousands would profile the inbox's depth count, not an update
                    while await sent_count(api) - sent_before < posted - CHUNK:  # noqa: ASYNC110 - another process
                        await asyncio.sleep(0.05)
                # the sampler ran while we posted: its µs are per update answered in that window
                in_window = await sent_count(api) - sent_before
                await settle(api)
                elapsed = time.monotonic() - began
                _, spy_errors = await asyncio.wait_for(sampler.communicate(), seconds + 60)
                after, tables_after = await db_stats(db)
                calls = collections.Counter(c["method"] for c in await fake_calls(api, "")) - before_calls
                ups = calls.get("sendMessage", 0) / elapsed
                print(f"/start ({'known users' if known else 'first contacts'}) -> sendMessage over {CONNS} "
                      f"connections for {seconds:.0f} s, sampled by py-spy at "
                      f"{RATE} Hz: {posted} updates posted, ~{ups:.0f} answered/s", flush=True)
                per: dict[str, Any] = {key: (after.get(key, 0) - before.get(key, 0)) / max(posted, 1) for key in STATS}
                print("  per update: " + ", ".join(f"{key} {value:.2f}" for key, value in per.items()))
                table_reads(tables_before, tables_after, posted)
                print("  Bot API calls per update: " + ", ".join(f"{method} {count / max(posted, 1):.2f}"
                                                               for method, count in calls.most_common()))
                if sampler.returncode:
                    print(f"  py-spy failed: {spy_errors.decode(errors='replace')[:300]}")
                elif raw.exists():
                    print(f"  µs below are per update answered while sampled ({in_window})")
                    shares(raw, top, in_window)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="where one /start update's time goes in TRT")
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument("--gil", action="store_true",
                        help="sample only the thread holding the GIL: Python's own CPU, without waits for the GIL")
    parser.add_argument("--known", action="store_true", help="every /start from a user met before")
    args = parser.parse_args()
    asyncio.run(main(args.seconds, args.top, args.gil, args.known))
