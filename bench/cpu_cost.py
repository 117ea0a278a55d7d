"""CPU per update, by process: what each /start -> sendMessage costs the app, its PostgreSQL, the
posting client and the rest of the machine (the fake Telegram, mostly), TRT beside both stock apps.

    .venv/bin/python -m bench.cpu_cost [--updates 3000] [--against REV [--rounds K]] [--pin]

Why: on a machine of 2 cores that runs the app, PostgreSQL, the fake Telegram and the client,
end-to-end throughput is the machine's CPU divided by what one update costs all of them. This
says where that cost sits and how it compares with the stock apps: the bare one stores nothing;
the production-like one upserts the user and keeps the FSM in PostgreSQL; TRT also makes every
update durable before the ack, claims it under the fence, marks it done, creates a new user's
account with the welcome bonus and writes its trace. Read from /proc (utime + stime of every
process, by pid and by name), for the same updates posted the same way (bench.e2e's post_all)
after a warm-up; --against REV also measures TRT at that git revision, in bench.e2e's balanced
order (REV, this, this, REV; --rounds K repeats it), and prints each build's mean and each pair.
Measured one after the other instead, the build in second place read 4% to 28% dearer in every one
of four runs of the same two builds (issue 21's seventeenth session): only interleaved runs compare.

Each app's Python work runs under one GIL (TRT's intake thread and its main loop share it; each
stock app is one thread), so an app cannot handle more than a core's worth of its own CPU per
second: its ceiling, 1,000,000 / (its µs per update) updates/s, is printed beside the others with
TRT's ratio to each stock app's. Unlike bench.e2e's end-to-end rate it does not depend on how the
machine shares its cores in that run; it still moves with the machine's speed (on the 2-core VM
the same build read 843 and 1,067 µs a /start within minutes), so compare builds in one run.
TRT's is split into its main thread (the dispatcher, the handlers) and the others (the intake
loop's). --pin as in bench.e2e.
Prints figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
from pathlib import Path

from bench import cpus
from bench.e2e import ORDER, checkout, post_all
from bench.harness import App, database, fake_telegram, fresh_database, settle, stock, stock_prod, trt, workdir

TICK = os.sysconf("SC_CLK_TCK")


def cpu_by_process() -> dict[int, tuple[str, float]]:
    """pid -> (its name, its CPU seconds so far, user + system)."""
    out: dict[int, tuple[str, float]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            raw = (entry / "stat").read_text()
        except OSError:  # ended meanwhile
            continue
        out[int(entry.name)] = (raw[raw.index("(") + 1:raw.rindex(")")], cpu_seconds(raw))
    return out


def cpu_seconds(stat: str) -> float:
    """utime + stime of a /proc/.../stat line, in seconds (the name in parentheses may hold spaces)."""
    fields = stat[stat.rindex(")") + 2:].split()
    return (int(fields[11]) + int(fields[12])) / TICK


def threads_of(pid: int) -> tuple[float, float]:
    """A process's CPU seconds so far, in its main thread and in all its other threads."""
    main = others = 0.0
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            raw = (task / "stat").read_text()
        except OSError:  # ended meanwhile
            continue
        seconds = cpu_seconds(raw)
        if int(task.name) == pid:
            main += seconds
        else:
            others += seconds
    return main, others


def machine_busy() -> float:
    """CPU seconds the whole machine spent busy so far (every core), from /proc/stat."""
    return _busy(Path("/proc/stat").read_text().splitlines()[0])


def cores_busy() -> list[float]:
    """CPU seconds each core spent busy so far, in core order, from /proc/stat: with --pin, which
    side of the machine ran out (TRT's core, or the one PostgreSQL shares with the fakes)."""
    return [_busy(line) for line in Path("/proc/stat").read_text().splitlines()
            if line.startswith("cpu") and line[3:4].isdigit()]


def _busy(line: str) -> float:
    values = [int(v) for v in line.split()[1:]]
    idle = values[3] + (values[4] if len(values) > 4 else 0)
    return (sum(values[:8]) - idle) / TICK


def load() -> str:
    return Path("/proc/loadavg").read_text().split()[0]


async def measure(app: App, api: str, first_id: int, first_chat: int, count: int) -> dict[str, float]:
    """µs of CPU per update, by process kind, over `count` posted updates (answered before the end)."""
    await post_all(app.base, first_id, first_chat, 500)  # warm-up: code paths, pools, caches
    await settle(api)
    before, busy_before, threads_before = cpu_by_process(), machine_busy(), threads_of(app.pid)
    await post_all(app.base, first_id + 500, first_chat + 500, count)
    await settle(api)
    after, busy_after, threads_after = cpu_by_process(), machine_busy(), threads_of(app.pid)
    kinds = {"app": 0.0, "PostgreSQL": 0.0, "client (this process)": 0.0, "rest (fake Telegram, other)": 0.0}
    for pid, (name, seconds) in after.items():
        spent = seconds - before.get(pid, (name, 0.0))[1]
        if pid == app.pid:
            kinds["app"] += spent
        elif name.startswith("postgres"):
            kinds["PostgreSQL"] += spent
        elif pid == os.getpid():
            kinds["client (this process)"] += spent
        else:
            kinds["rest (fake Telegram, other)"] += spent
    kinds["machine (all cores)"] = busy_after - busy_before
    kinds["app main thread"] = threads_after[0] - threads_before[0]
    kinds["app other threads"] = threads_after[1] - threads_before[1]
    return {kind: seconds * 1e6 / count for kind, seconds in kinds.items()}


def show(name: str, costs: dict[str, float]) -> dict[str, float]:
    shown = {k: v for k, v in costs.items() if not k.startswith("app ")}
    threads = f" (main thread {costs['app main thread']:.0f}, others {costs['app other threads']:.0f})"
    print(f"  {name:16s} " + ", ".join(f"{kind} {value:6.0f}" for kind, value in shown.items()) +
          f"  (load {load()})", flush=True)
    print(f"  {'':16s} ceiling {ceiling(costs):5.0f} updates/s (one core of its own CPU per second)" +
          (threads if costs["app other threads"] >= 1 else ""), flush=True)
    return costs


def ceiling(costs: dict[str, float]) -> float:
    return 1e6 / costs["app"] if costs["app"] else float("nan")


async def main(count: int, against: str | None, rounds: int = 1) -> None:
    with workdir() as tmp, contextlib.ExitStack() as trees:
        other = trees.enter_context(checkout(against, tmp)) if against else None
        async with database(tmp) as server_url, fake_telegram(tmp) as api:
            print(f"CPU µs per /start update ({count} posted over 50 connections, after a warm-up of 500)",
                  flush=True)
            async with stock(tmp, api) as app:
                bare = show(app.name, await measure(app, api, 1_000_000, 100_000, count))
            db = await fresh_database(server_url, "stock_prod_bench_cpu")
            async with stock_prod(tmp, api, db) as app:
                prod = show(app.name, await measure(app, api, 2_000_000, 200_000, count))
            olds: list[dict[str, float]] = []
            news: list[dict[str, float]] = []
            for i, which in enumerate(ORDER * rounds if other is not None else ("this",)):
                db = await fresh_database(server_url, f"trt_bench_cpu_{i}")
                first = 3_000_000 + 100_000 * i
                if which == "REV" and other is not None:
                    async with trt(tmp, db, api, root=other[0], name=f"TRT {other[1]}") as app:
                        olds.append(show(app.name, await measure(app, api, first, first // 10, count)))
                else:
                    async with trt(tmp, db, api) as app:
                        news.append(show(app.name, await measure(app, api, first, first // 10, count)))
            builds = [("TRT", mean(news))]
            if other is not None:
                builds.insert(0, (f"TRT {other[1]}", mean(olds)))
            for name, costs in builds:
                if len(news) > 1:
                    print(f"  {name:16s} mean: app {costs['app']:.0f}, main thread {costs['app main thread']:.0f}, "
                          f"PostgreSQL {costs['PostgreSQL']:.0f}", flush=True)
                print(f"{name} ceiling / stock's: {ceiling(costs) / ceiling(bare):.2f}x bare, "
                      f"{ceiling(costs) / ceiling(prod):.2f}x production-like", flush=True)
            if other is not None:
                old, new = builds[0][1], builds[1][1]
                pairs = ", ".join(f"{n['app'] / o['app']:.2f}x" for o, n in zip(olds, news, strict=True))
                print(f"this checkout against {other[1]}: {new['app'] / old['app']:.2f}x the app's CPU per update "
                      f"(each pair: {pairs}); app {old['app']:.0f} -> {new['app']:.0f} µs, main thread "
                      f"{old['app main thread']:.0f} -> {new['app main thread']:.0f}, PostgreSQL "
                      f"{old['PostgreSQL']:.0f} -> {new['PostgreSQL']:.0f}", flush=True)


def mean(runs: list[dict[str, float]]) -> dict[str, float]:
    """Each figure's mean over one build's runs."""
    return {kind: sum(r[kind] for r in runs) / len(runs) for kind in runs[0]}


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="CPU per /start update, by process, TRT beside stock aiogram")
    parser.add_argument("--updates", type=int, default=3000)
    parser.add_argument("--against", metavar="REV", help="also measure TRT at this git revision")
    parser.add_argument("--rounds", type=int, default=1,
                        help="with --against: measure in the order REV, this, this, REV this many times")
    cpus.add_flag(parser)
    args = parser.parse_args()
    if args.rounds < 1:
        parser.error("--rounds must be at least 1")
    cpus.apply(args)
    asyncio.run(main(args.updates, args.against, args.rounds))
