"""Webhook acknowledgements: acks/s and ack latency at 50 connections, TRT beside stock aiogram.

    .venv/bin/python -m bench.ingress [--pin] [--rate N [--open-only]]   (needs wrk: apt-get install wrk)

Closed loop (wrk, as fast as each app acknowledges) gives each app's saturation rate; then an
open loop at the stock app's saturation rate gives both apps' ack latency at that same rate.
TRT acknowledges only after the update is committed to PostgreSQL; the stock app before the
update is stored anywhere. Both run with the same handlers against the same fake Telegram
(its own process). --pin: each app on a core of its own, wrk, PostgreSQL and the fake on the
other (bench/cpus.py). --rate N: both open loops at N updates/s instead of the stock app's
saturation rate, which wanders from run to run (to compare two builds of TRT at one rate);
with --open-only, TRT's open loop alone after a short warm-up at that rate, without the
saturation run whose backlog and table growth the open loop otherwise follows.
Prints figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import asyncio

from bench import cpus
from bench.harness import (
    bucket_count_max,
    bucket_quantile,
    database,
    duplicate_acks,
    fake_telegram,
    fresh_database,
    histograms,
    open_loop,
    run_wrk,
    settle,
    stock,
    trt,
    workdir,
)

CONNS = 50
SECONDS = 10


def show(name: str, what: str, r: dict[str, float]) -> None:
    extra = f", non-2xx {r['non2xx']:.0f}" if r.get("non2xx") else ""
    if "client_lag_p99" in r:  # the posting client's own loop lag, a part of every latency it measures
        extra += f" (the client's own lag p99 {r['client_lag_p99']:.2f} ms, max {r['client_lag_max']:.1f})"
    rate = f"{r['rps']:8.0f} acks/s" if "rps" in r else f"{r['ok']:8.0f} acked "
    print(f"  {name:14s} {what:34s} {rate}  p50 {r['p50']:7.2f} ms  p99 {r['p99']:8.2f} ms{extra}", flush=True)


async def main(fixed_rate: float | None, open_only: bool = False) -> None:
    with workdir() as tmp:
        async with database(tmp) as server_url, fake_telegram(tmp) as api:
            print(f"webhook acks, {CONNS} connections, {SECONDS} s per run (after a 3 s warm-up)", flush=True)
            stock_sat = stock_open = {"rps": float("nan"), "p99": float("nan")}
            rate = fixed_rate or 0.0  # --open-only needs --rate; otherwise the stock's saturation rate below
            if not open_only:
                async with stock(tmp, api) as app:
                    await run_wrk(tmp, app.base, 3, CONNS, 100_000_000)
                    await settle(api)
                    stock_sat = await run_wrk(tmp, app.base, SECONDS, CONNS, 200_000_000)
                    show(app.name, "saturation (wrk, closed loop)", stock_sat)
                    await settle(api)
                    rate = fixed_rate or stock_sat["rps"]
                    cores = cpus.times()
                    stock_open = await open_loop(app.base, rate, SECONDS, CONNS, 300_000_000)
                    show(app.name, f"open loop at {rate:.0f}/s", stock_open)
                    print(f"  {app.name:14s}   cores busy meanwhile: {cpus.busy(cores, cpus.times())}", flush=True)
                    await settle(api)
            db = await fresh_database(server_url, "trt_bench_ingress")
            async with trt(tmp, db, api) as app:
                if open_only:  # warmed by posts at the rate, with no saturation's backlog behind it
                    await open_loop(app.base, rate, 3, CONNS, 400_000_000)
                    await settle(api)
                    trt_sat = {"rps": float("nan")}
                else:
                    await run_wrk(tmp, app.base, 3, CONNS, 400_000_000)
                    await settle(api)
                    trt_sat = await run_wrk(tmp, app.base, SECONDS, CONNS, 500_000_000)
                    show(app.name, "saturation (wrk, closed loop)", trt_sat)
                    await settle(api)
                names = ("trt_webhook_ack_seconds", "trt_inbox_commit_seconds", "trt_gc_pause_seconds")
                before, cores = await histograms(app, *names), cpus.times()
                trt_open = await open_loop(app.base, rate, SECONDS, CONNS, 600_000_000)
                after, cores_busy = await histograms(app, *names), cpus.busy(cores, cpus.times())
                show(app.name, f"open loop at {rate:.0f}/s" + ("" if fixed_rate else " (stock's max)"), trt_open)
                print(f"  {app.name:14s}   cores busy meanwhile: {cores_busy}", flush=True)
                for name, what in zip(names[:2], ("its own ack (request to answer)", "its group commits"), strict=True):
                    p50, p99 = (bucket_quantile(before[name], after[name], q) * 1000 for q in (0.5, 0.99))
                    print(f"  {app.name:14s}   seen by TRT, {what:32s} p50 {p50:7.2f} ms  p99 {p99:8.2f} ms "
                          "(from its histogram's buckets)", flush=True)
                gc = names[2]
                pauses = {key[len(gc):]: bucket_count_max(before.get(key, {}), series)
                          for key, series in sorted(after.items()) if key.startswith(gc + "{")}
                told = ", ".join(f"{key} {count:.0f} (the longest under {largest * 1000:g} ms)"
                                 for key, (count, largest) in pauses.items() if count)
                print(f"  {app.name:14s}   garbage collections meanwhile: {told or 'none'}", flush=True)
                repeated = await duplicate_acks(app)
                print(f"  {app.name:14s} duplicate acks (repeated update ids): {repeated:.0f}", flush=True)
            if open_only:  # no stock run and no saturation run to compare with
                print(f"ack p99 at {rate:.0f}/s: TRT {trt_open['p99']:.1f} ms (open loop alone)", flush=True)
            else:
                print(f"TRT/stock saturation acks/s: {trt_sat['rps'] / stock_sat['rps']:.2f}x; "
                      f"ack p99 at {rate:.0f}/s: TRT {trt_open['p99']:.1f} ms vs stock {stock_open['p99']:.1f} ms",
                      flush=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="webhook acks beside stock aiogram")
    cpus.add_flag(parser)
    parser.add_argument("--rate", type=float, default=None,
                        help="open loops at this rate instead of the stock app's saturation rate")
    parser.add_argument("--open-only", action="store_true",
                        help="with --rate: TRT's open loop alone, after a warm-up at the rate (no stock app, "
                             "no saturation run and its backlog before it)")
    args = parser.parse_args()
    if args.open_only and not args.rate:
        parser.error("--open-only needs --rate")
    cpus.apply(args)
    asyncio.run(main(args.rate, args.open_only))
