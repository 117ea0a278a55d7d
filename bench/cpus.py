"""--pin: the app under test on a core of its own, and everything else (PostgreSQL, the fake
Telegram, the posting client, wrk) on the other cores.

Why: on this 2-core machine the app, its PostgreSQL, the fake and the client all share both
cores, so the scheduler decides how much of a core the app gets from moment to moment, and two
runs of the same build differed by up to 30%, too much for a guard meant to catch a 10% drop.
Pinned, each app (stock or TRT) gets exactly one core, as on a host of its own with the database
and Telegram elsewhere, which is how the bot is deployed; the price is that an app can no longer
borrow the second core (TRT's two threads share one GIL, so it never could use two for Python
work). What it bought, measured: the same program against itself (bench.e2e --against, 3 rounds
in two runs) read 0.86-1.14x in its pairs for first contacts (one unpinned round: 0.71x, 1.20x),
but still 0.73-1.30x for known users; the Confirm burst of bench.generation reads slower pinned
(TRT cannot spill onto the second core). Unpinned stays the default, and each bench says which
it ran.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

APP_CPU = 0
_pinned: list[bool] = [False]


def pin_the_rest() -> str:
    """This process (and every process it starts from now on: PostgreSQL, the fake, wrk) off the
    app's core; returns how it was split, for the bench's first line."""
    cpus = sorted(os.sched_getaffinity(0))
    if APP_CPU not in cpus or len(cpus) < 2:
        raise SystemExit(f"--pin needs core {APP_CPU} and one more; this process may use {cpus}")
    rest = {cpu for cpu in cpus if cpu != APP_CPU}
    os.sched_setaffinity(0, rest)
    _pinned[0] = True
    return f"pinned: each app on core {APP_CPU}, everything else on {sorted(rest)}"


def place_app(pid: int) -> None:
    """Every thread of the app on APP_CPU (threads it starts later inherit it), when --pin is on."""
    if not _pinned[0]:
        return
    for _ in range(2):  # a thread started while the first pass ran is moved by the second
        for task in Path(f"/proc/{pid}/task").iterdir():
            try:
                os.sched_setaffinity(int(task.name), {APP_CPU})
            except ProcessLookupError:  # that thread ended meanwhile
                pass


def add_flag(parser: argparse.ArgumentParser) -> None:
    """The --pin flag, the same in every bench."""
    parser.add_argument("--pin", action="store_true",
                        help="each app on a core of its own, everything else on the other (bench/cpus.py)")


def apply(args: argparse.Namespace) -> None:
    """Pin when --pin was given, and say so as the bench's first line."""
    if args.pin:
        print(pin_the_rest(), flush=True)


def times() -> dict[int, tuple[int, int]]:
    """Per core, (busy, all) jiffies since boot from /proc/stat: two of them give each core's busy
    share in between, which says whether a latency was the app's or a saturated neighbour's."""
    out: dict[int, tuple[int, int]] = {}
    for line in Path("/proc/stat").read_text().splitlines():
        name, *fields = line.split()
        if name.startswith("cpu") and name != "cpu":
            ticks = [int(f) for f in fields]
            idle = ticks[3] + ticks[4]  # idle, iowait
            out[int(name[3:])] = (sum(ticks[:8]) - idle, sum(ticks[:8]))
    return out


def busy(before: dict[int, tuple[int, int]], after: dict[int, tuple[int, int]]) -> str:
    """'core 0 63%, core 1 97%': each core's busy share between two `times()`."""
    shares = []
    for cpu, (used, total) in sorted(after.items()):
        was_used, was_total = before.get(cpu, (0, 0))
        shares.append(f"core {cpu} {100 * (used - was_used) / max(total - was_total, 1):.0f}%")
    return ", ".join(shares)
