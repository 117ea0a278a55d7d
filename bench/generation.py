"""Generations: Confirm -> createTask and KIE's callback -> sendPhoto at 50 concurrent
generations; the jobs actor with 1,000 jobs in flight and no callbacks.

    .venv/bin/python -m bench.generation [--only a|b] [--users N] [--set NAME=VALUE] [--against REV [--rounds K]]
                                         [--spy] [--timeline] [--pin]

The fake Telegram runs in its own process (as in bench.e2e); so does A's fake KIE
(bench/timed_kie.py), so the 50 presses this process posts at once do not delay its stamps; B's
runs in this process, which steers it (tasks held, ended on a schedule). Both stamp with
time.monotonic(), the clock the fake Telegram stamps with (one clock for every process on this
machine). TRT is a real `run.py serve` on its own database,
with the production Telegram pacing (30 messages/s, 1 a second per chat) and the real KIE
limiter (createTask 18 per 10 s, recordInfo 10 per s). The model is google/nano-banana (a photo).

A. 50 users with money (WELCOME_BONUS) walk the real wizard by posted updates (/start, the
   family, the model, Start, a prompt, an image size), taking each callback_data from what the
   bot sent to the fake Telegram; once all 50 see the confirmation, the 50 Confirm presses are
   posted at once. The fake KIE answers at once, ends each task 1 s after createTask and posts
   the callback to TRT's /kie-callback. Figures: Confirm posted -> createTask arriving at KIE,
   KIE's callback leaving -> sendPhoto arriving at Telegram, and the whole way, p50/p99; the CPU
   of TRT, its PostgreSQL and the machine from the presses to KIE's 18th createTask; and, from
   the traces, when each step of the first 18 Confirms happened after its update was received.
   The first 18's post -> ack is printed apart: what this process's posting and TRT's intake
   took before any handler ran. `--users N` presses with fewer (1: a Confirm alone);
   `--set NAME=VALUE` tunes A's TRT; `--timeline` also prints each step's time for every
   Confirm, in order (whether the commits came one after another or together at the burst's
   end; which Confirms waited for a worker);
   `--against REV` runs A for REV and for this checkout in the order REV, this, this, REV
   (`--rounds K`: K times), and prints the p50 and p99 of each run and their means: on a
   machine whose figures wander, only interleaved runs compare two builds. The order is
   balanced, as bench.e2e's is: the runs share the fake Telegram and PostgreSQL, and with REV,
   this, REV, this the build in second place read slower in 8 of 10 pairs whichever build it
   was (p99 +19 ms for one over 6 pairs, +30 ms for the other over 2; issue 21's eleventh
   session), which no difference of code explained. `--pin` puts TRT on a core of its own and
   everything else on the other (bench/cpus.py), as in bench.e2e.
B. 1,000 jobs in flight: a first TRT starts (and idles 10 s: the baseline) and is killed; the
   jobs are then created as the wizard would (store.jobs.confirm with a status message sent
   through the fake Telegram, then mark_submitting / mark_submitted with a task that exists at
   the fake KIE, held at "generating"), and a second TRT takes over. The fake KIE posts no
   callbacks. Over the window, 300 of the tasks (chosen at random) end, evenly from 5 s to 65 s;
   the window closes when each is delivered, or after 180 s. Figures: recordInfo calls/s at
   the fake (mean, busiest second), which tasks were asked, the process's CPU share (of one
   core) and RSS, the database reads of the sweeps (pg_stat_user_tables) and the CPU of
   TRT's PostgreSQL backends, one sweep's read timed here, editMessageText/s, and the time from
   each task's end at the fake to its sendPhoto at the fake Telegram.

Prints figures; asserts nothing. The machine's load (1-minute average, a running bench.soak) is
printed beside each scenario, since other work on the machine changes every figure.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import os
import random
import re
import signal
import subprocess
import time
from collections import Counter
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import asyncpg
from prometheus_client.parser import text_string_to_metric_families

from bench import cpus
from bench.cpu_cost import cores_busy, cpu_by_process
from bench.e2e import checkout
from bench.harness import (
    HEADERS,
    App,
    database,
    fake_telegram,
    fresh_database,
    pct,
    python_server,
    rss_mb,
    trt,
    workdir,
)
from bench.profile import py_spy, shares
from bench.timed_kie import STAMPS_PATH, TimedKie
from catalog import payload
from catalog.loader import shipped
from fakes.kie_api import CREATE_PATH, RECORD_PATH
from fakes.telegram_api import callback_update, message_update
from store import accounts, jobs, kie_callbacks, leader, traces
from store.database import Database
from store.jobs import Created, Order
from tests.procs import FAKE_TOKEN, eventually, free_port

BOT_ID = int(FAKE_TOKEN.split(":")[0])
LOCK_NAME = leader.lock_name(BOT_ID)
MODEL = "google/nano-banana"
FAMILY = "text_to_image"
KIE_KEY = "bench-kie-key-0123456789"
PACING = {"TELEGRAM_RATE_GLOBAL": "30", "TELEGRAM_RATE_PER_CHAT": "1"}  # production defaults

A_USERS = 50
A_TASK_SECONDS = 1.0
A_FIRST_CHAT = 700_001

B_JOBS = 1000
B_ENDING = 300  # tasks that end within the window
B_ENDS_FROM, B_ENDS_TO = 5.0, 65.0  # seconds into the window
B_LIMIT = 180.0  # seconds the window lasts at most
B_IDLE = 10.0  # seconds of the idle baseline
B_FIRST_CHAT = 800_001
B_PRICE = 400  # kopecks

UPDATE_IDS = itertools.count(60_000_000)
CLK_TCK = os.sysconf("SC_CLK_TCK")


# -- the machine and the process ---------------------------------------------------------------


def machine() -> str:
    soak = subprocess.run(["pgrep", "-f", "bench.soak"], capture_output=True, text=True).stdout.split()
    soak = [p for p in soak if int(p) != os.getpid()]
    load1, load5, _ = os.getloadavg()
    return (f"machine: {os.cpu_count()} cores, load average {load1:.2f} (1 min) {load5:.2f} (5 min), "
            f"bench.soak {'running' if soak else 'not running'}")


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process, in seconds (0 for one that is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def hwm_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


@dataclass
class Snapshot:
    """What is read at each end of a window."""

    at: float
    cpu: float  # the TRT process's CPU seconds
    backends: dict[int, float]  # TRT's PostgreSQL backends: pid -> CPU seconds
    tables: dict[str, dict[str, int]]  # pg_stat_user_tables, by table


async def snapshot(conn: asyncpg.Connection, pid: int, db_name: str) -> Snapshot:
    rows = await conn.fetch("SELECT pid FROM pg_stat_activity WHERE datname = $1 AND application_name LIKE 'trt:%'",
                            db_name)
    tables = {r["relname"]: dict(r) for r in await conn.fetch(
        """SELECT relname, seq_scan, seq_tup_read, coalesce(idx_scan, 0) AS idx_scan,
                  coalesce(idx_tup_fetch, 0) AS idx_tup_fetch, n_tup_upd, n_tup_ins
             FROM pg_stat_user_tables WHERE relname IN ('jobs', 'inbox', 'kie_callbacks', 'kie_account')""")}
    return Snapshot(time.monotonic(), cpu_seconds(pid), {r["pid"]: cpu_seconds(r["pid"]) for r in rows}, tables)


def backend_cpu(first: Snapshot, last: Snapshot) -> float:
    """CPU seconds TRT's backends spent between the snapshots (a backend opened meanwhile counts whole)."""
    return sum(cpu - first.backends.get(pid, 0.0) for pid, cpu in last.backends.items())


def delta(first: dict[str, dict[str, int]], last: dict[str, dict[str, int]], name: str, column: str) -> int:
    return last.get(name, {}).get(column, 0) - first.get(name, {}).get(column, 0)


def table_rates(first: Snapshot, last: Snapshot) -> dict[str, float]:
    seconds = last.at - first.at
    out: dict[str, float] = {}
    for table in ("jobs", "inbox"):
        scans = delta(first.tables, last.tables, table, "seq_scan") + delta(first.tables, last.tables, table,
                                                                                "idx_scan")
        rows = delta(first.tables, last.tables, table, "seq_tup_read") + delta(first.tables, last.tables, table,
                                                                                   "idx_tup_fetch")
        out[f"{table}_scans"] = scans / seconds
        out[f"{table}_rows"] = rows / seconds
        out[f"{table}_updates"] = delta(first.tables, last.tables, table, "n_tup_upd") / seconds
    return out


def show_window(label: str, first: Snapshot, last: Snapshot, pid: int) -> dict[str, float]:
    seconds = last.at - first.at
    rates = table_rates(first, last)
    cpu = (last.cpu - first.cpu) / seconds * 100
    pg = backend_cpu(first, last) / seconds * 100
    print(f"  {label}: {seconds:.0f} s; TRT process CPU {cpu:.1f}% of one core, RSS {rss_mb(pid):.1f} MB "
          f"(peak {hwm_mb(pid):.1f}); TRT's PostgreSQL backends CPU {pg:.1f}%", flush=True)
    print(f"    database reads: jobs {rates['jobs_scans']:.1f} scans/s, {rates['jobs_rows']:.0f} rows/s, jobs rows "
          f"updated {rates['jobs_updates']:.1f}/s; inbox {rates['inbox_scans']:.1f} scans/s, "
          f"{rates['inbox_rows']:.1f} rows/s", flush=True)
    return {"cpu": cpu, "pg": pg, **rates}


# -- talking to the fakes ----------------------------------------------------------------------


def buttons(call: dict[str, Any]) -> list[str]:
    markup = call["params"].get("reply_markup")
    if isinstance(markup, str):
        try:
            markup = json.loads(markup)
        except ValueError:
            return []
    if not isinstance(markup, dict):
        return []
    return [b.get("callback_data") or "" for row in markup.get("inline_keyboard", []) for b in row]


def message_id_of(call: dict[str, Any]) -> int:
    result = call.get("result")
    if isinstance(result, dict) and "message_id" in result:
        return int(result["message_id"])
    return int(call["params"].get("message_id") or 1)


async def telegram_calls(session: aiohttp.ClientSession, api: str, **query: str) -> Any:
    async with session.get(f"{api}/_fake/calls", params=query) as r:
        return await r.json()


async def metric(base: str, name: str) -> dict[tuple[tuple[str, str], ...], float]:
    return (await metrics(base, name))[name]


async def metrics(base: str, *names: str) -> dict[str, dict[tuple[tuple[str, str], ...], float]]:
    """Each named sample's values by labels, from one scrape (so they agree with each other)."""
    async with aiohttp.ClientSession() as s, s.get(base + "/metrics") as r:
        text = await r.text()
    found: dict[str, dict[tuple[tuple[str, str], ...], float]] = {name: {} for name in names}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name in found:
                found[sample.name][tuple(sorted(sample.labels.items()))] = sample.value
    return found


async def gc_pauses(base: str) -> tuple[float, float]:
    """TRT's garbage collections so far, every generation: (how many, seconds paused), from one
    scrape: a collection during the scrape (rendering allocates) would otherwise count in one
    figure and not the other."""
    found = await metrics(base, "trt_gc_pause_seconds_count", "trt_gc_pause_seconds_sum")
    return sum(found["trt_gc_pause_seconds_count"].values()), sum(found["trt_gc_pause_seconds_sum"].values())


async def driving(app: App) -> None:
    async def probe() -> bool:
        async with aiohttp.ClientSession() as s, s.get(app.base + "/health") as r:
            body = await r.json()
        return bool(body["role"] == "ACTIVE" and body["jobs"]["driving"])
    await eventually(probe, 60, "the jobs actor driving")


def trt_extra(kie_base: str, **more: str) -> dict[str, str]:
    return {"KIE_API_KEY": KIE_KEY, "KIE_API_BASE": kie_base, "KIE_UPLOAD_BASE": kie_base,
            "DOWNLOAD_TRUSTED_HOSTS": urlsplit(kie_base).netloc, **PACING, **more}


def ms(values: list[float]) -> str:
    return f"p50 {pct(values, 0.5) * 1000:7.0f} ms  p99 {pct(values, 0.99) * 1000:7.0f} ms  " \
           f"max {max(values, default=float('nan')) * 1000:7.0f} ms  (n={len(values)})"


# -- A: 50 generations through the wizard ------------------------------------------------------


class User:
    """One user of scenario A: posts updates to TRT's webhook, reads the bot's answers at the fake."""

    def __init__(self, session: aiohttp.ClientSession, base: str, api: str, chat: int) -> None:
        self.session, self.base, self.api, self.chat = session, base, api, chat
        self.seen = 0

    async def post(self, update: dict[str, Any]) -> None:
        for _ in range(20):
            try:
                async with self.session.post(self.base + "/webhook", data=json.dumps(update).encode(),
                                             headers=HEADERS) as response:
                    if response.status == 200:
                        return
            except (aiohttp.ClientError, TimeoutError):
                pass
            await asyncio.sleep(0.1)  # Telegram redelivers a refused update
        raise RuntimeError(f"chat {self.chat}: an update was refused 20 times")

    async def say(self, text: str) -> None:
        await self.post(message_update(next(UPDATE_IDS), self.chat, text, user_id=self.chat, language_code="en",
                                       first_name="Bench"))

    def press_update(self, data: str, message_id: int) -> dict[str, Any]:
        return callback_update(next(UPDATE_IDS), self.chat, data, message_id, language_code="en", user_id=self.chat,
                               first_name="Bench", bot_id=BOT_ID)

    async def press(self, data: str, message_id: int) -> None:
        await self.post(self.press_update(data, message_id))

    async def button(self, pattern: str, timeout: float = 60.0) -> tuple[str, int]:
        """The first button matching `pattern` on what the bot sent this chat since the last look."""
        wanted = re.compile(pattern)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            calls = await telegram_calls(self.session, self.api, chat_id=str(self.chat))
            for index in range(self.seen, len(calls)):
                found = next((d for d in buttons(calls[index]) if wanted.match(d)), None)
                if found is not None and calls[index]["status"] == 200:
                    self.seen = index + 1
                    return found, message_id_of(calls[index])
            await asyncio.sleep(0.25)
        raise RuntimeError(f"chat {self.chat}: no button {pattern} within {timeout:g}s")

    async def to_confirmation(self) -> tuple[str, int]:
        await self.say("/start")
        await self.press(*await self.button(rf"^fam:{FAMILY}:0$"))
        await self.press(*await self.button(rf"^mdl:{re.escape(MODEL)}$"))
        await self.press(*await self.button(rf"^go:{re.escape(MODEL)}$"))
        await self.button(r"^w:[^:]+:cancel$")  # the prompt's step
        await self.say(prompt_of(self.chat))
        await self.press(*await self.button(r"^w:[^:]+:o:0$"))  # the first image size
        return await self.button(r"^w:[^:]+:ok$")


def bursts(times: dict[int, float], gap: float = 1.0) -> list[list[int]]:
    """Chats grouped by their time: a new group after a pause longer than `gap`."""
    groups: list[list[int]] = []
    last = float("-inf")
    for chat, at in sorted(times.items(), key=lambda item: item[1]):
        if at - last > gap:
            groups.append([])
        groups[-1].append(chat)
        last = at
    return groups


async def kie_stamps(session: aiohttp.ClientSession, base: str, creates: int = 0) -> dict[str, Any]:
    """What the fake KIE in its own process stamped (bench/timed_kie.py); `creates`: once that
    many createTask calls arrived (or after 30 s)."""
    async with session.get(base + STAMPS_PATH, params={"creates": str(creates), "timeout": "30"}) as response:
        found: dict[str, Any] = await response.json()
        return found


def prompt_of(chat: int) -> str:
    return f"bench picture for chat {chat}"


async def scenario_a(tmp: Path, server_url: str, api: str, users_n: int = A_USERS,
                     settings: dict[str, str] | None = None, root: Path | None = None, name: str = "TRT",
                     first_chat: int = A_FIRST_CHAT, spy: bool = False, timeline: bool = False) -> list[float]:
    """Returns the first window's Confirm -> createTask seconds. `root`: another checkout's TRT;
    `first_chat`: chats apart from an earlier run's on the same fake Telegram; `spy`: sample the
    GIL's holder with py-spy from the presses to the window's last createTask; `timeline`: every
    Confirm's steps too, each as every Confirm's time in order."""
    print(f"A. {name}: {users_n} generations at once through the wizard ({MODEL}; the fake KIE answers at once, "
          f"each task ends {A_TASK_SECONDS:g} s after createTask and calls back)", flush=True)
    print(f"  {machine()}", flush=True)
    db = await fresh_database(server_url, "trt_bench_generation_a")
    port = free_port()
    async with python_server(tmp, "bench.timed_kie", ["--duration", f"{A_TASK_SECONDS:g}"], STAMPS_PATH,
                             "the fake KIE") as kie, \
            trt(tmp, db, api, root=root, name=name,
                **trt_extra(kie.base, PORT=str(port), WEBHOOK_BASE_URL=f"http://127.0.0.1:{port}",
                            WELCOME_BONUS="100000", **(settings or {}))) as app:
        await driving(app)
        connector = aiohttp.TCPConnector(limit=2 * users_n)
        async with aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=60)) as session:
            users = [User(session, app.base, api, first_chat + i) for i in range(users_n)]
            photos_before = int((await telegram_calls(session, api, method="sendPhoto", count="1"))["count"])
            began = time.monotonic()
            confirmations = await asyncio.gather(*(u.to_confirmation() for u in users))
            print(f"  {users_n} users at the confirmation after {time.monotonic() - began:.1f} s of wizard; "
                  f"Confirm pressed by all at once", flush=True)
            await asyncio.sleep(2.0)  # the wizard's last answers settle
            presses = [u.press_update(data, mid) for u, (data, mid) in zip(users, confirmations, strict=True)]
            posted: dict[int, float] = {}
            acked: dict[int, float] = {}  # TRT answers a webhook post once the update is committed

            async def confirm(user: User, update: dict[str, Any]) -> None:
                posted[user.chat] = time.monotonic()
                await user.post(update)
                acked[user.chat] = time.monotonic()
            window = min(18, users_n)
            gc_before = await gc_pauses(app.base)
            sampler = await spying(app.pid, tmp / "burst.txt") if spy else None
            cpu_before, cores_before, pressed_at = cpu_by_process(), cores_busy(), time.monotonic()
            await asyncio.gather(*(confirm(u, p) for u, p in zip(users, presses, strict=True)))

            await kie_stamps(session, kie.base, creates=window)  # the first window's createTask, or 30 s
            cpu_after, cores_after, window_s = cpu_by_process(), cores_busy(), time.monotonic() - pressed_at
            if sampler is not None:
                sampler.send_signal(signal.SIGINT)  # py-spy writes what it sampled and stops
                await asyncio.wait_for(sampler.wait(), 60)
            gc_after = await gc_pauses(app.base)

            async def photos() -> bool:
                found = await telegram_calls(session, api, method="sendPhoto", count="1")
                return int(found["count"]) >= photos_before + users_n
            with contextlib.suppress(AssertionError):
                await eventually(photos, 120, "every photo sent", interval=0.5)
            sent = await telegram_calls(session, api, method="sendPhoto")
            stamps = await kie_stamps(session, kie.base)
        photo_at: dict[int, float] = {}
        for call in sent:
            chat = int(call["params"].get("chat_id", 0))
            if call["status"] == 200 and chat in posted:
                photo_at.setdefault(chat, float(call["at"]))
        created_at: dict[int, float] = {}
        for call in stamps["creates"]:
            if call["status"] == 200 and call["prompt"].startswith("bench picture"):
                created_at.setdefault(int(call["prompt"].rsplit(" ", 1)[-1]), call["at"])
        callback_at = {int(prompt.rsplit(" ", 1)[-1]): at for prompt, at in stamps["called_back"].items()
                       if prompt.startswith("bench picture")}
        to_create = [created_at[c] - posted[c] for c in posted if c in created_at]
        by_arrival = sorted(created_at.values())
        first_window = [created_at[c] - posted[c] for c in posted
                        if c in created_at and created_at[c] <= by_arrival[min(17, len(by_arrival) - 1)]]
        to_photo = [photo_at[c] - callback_at[c] for c in callback_at if c in photo_at]
        whole = [photo_at[c] - posted[c] for c in posted if c in photo_at]
        outcomes = await metric(app.base, "trt_kie_calls_total")
        creates = {dict(k).get("outcome", "?"): int(v) for k, v in outcomes.items()
                   if dict(k).get("endpoint") == "create_task"}
        print(f"  Confirm posted -> createTask at KIE   {ms(to_create)}", flush=True)
        spent = {"app": 0.0, "PostgreSQL": 0.0, "rest": 0.0}
        for pid, (name, seconds) in cpu_after.items():
            kind = "app" if pid == app.pid else "PostgreSQL" if name.startswith("postgres") else "rest"
            spent[kind] += seconds - cpu_before.get(pid, (name, 0.0))[1]
        by_core = ", ".join(f"{(after - before) / window_s * 100:.0f}%"
                            for before, after in zip(cores_before, cores_after, strict=True))
        print(f"    CPU from the presses to the {window}th createTask ({window_s * 1000:.0f} ms): TRT "
              f"{spent['app'] * 1000:.0f} ms, its PostgreSQL {spent['PostgreSQL'] * 1000:.0f} ms, every other "
              f"process (the fakes, this one) {spent['rest'] * 1000:.0f} ms; the machine "
              f"{(sum(cores_after) - sum(cores_before)) * 1000:.0f} ms "
              f"of {window_s * 1000 * (os.cpu_count() or 1):.0f}, each core busy {by_core} of the time "
              f"(10 ms ticks); TRT's garbage collections {gc_after[0] - gc_before[0]:.0f}, "
              f"{(gc_after[1] - gc_before[1]) * 1000:.1f} ms", flush=True)
        print(f"    the first 18 to arrive (KIE's createTask window, 18 per 10 s) {ms(first_window)}", flush=True)
        last_of_window = by_arrival[min(17, len(by_arrival) - 1)]
        first_chats = [c for c in posted if c in created_at and created_at[c] <= last_of_window]
        print(f"      their Confirm posted -> acked (this process posting, TRT's intake committing) "
              f"{ms([acked[c] - posted[c] for c in first_chats if c in acked])}", flush=True)
        print(f"    createTask calls by outcome at TRT: {creates}; at the fake: {len(stamps['creates'])}",
              flush=True)
        pressed = min(posted.values())
        print("    createTask arrivals after the presses: " + ", ".join(
            f"{len(group)} at {created_at[group[0]] - pressed:.1f}-{created_at[group[-1]] - pressed:.1f} s"
            for group in bursts(created_at)), flush=True)
        print(f"  KIE callback -> sendPhoto at Telegram {ms(to_photo)}", flush=True)
        for group in bursts(callback_at):
            photos_of = sorted(photo_at[c] for c in group if c in photo_at)
            if photos_of:
                print(f"    {len(group)} callbacks within {callback_at[group[-1]] - callback_at[group[0]]:.2f} s: "
                      f"their sendPhoto calls spread over {photos_of[-1] - photos_of[0]:.2f} s, "
                      f"{ms([photo_at[c] - callback_at[c] for c in group if c in photo_at])}", flush=True)
        print(f"  Confirm posted -> sendPhoto           {ms(whole)}", flush=True)
        arrived = sorted(created_at, key=created_at.__getitem__)  # chats by their createTask's arrival
        await confirm_steps(db, arrived[:18])
        if timeline:
            await confirm_steps(db, arrived, every=True)
        if spy and (tmp / "burst.txt").exists():
            print(f"    py-spy --gil at {SPY_RATE} Hz from the presses to the {window}th createTask; µs per Confirm "
                  f"of that window ({window}):", flush=True)
            shares(tmp / "burst.txt", 30, window, rate=SPY_RATE)
        print(f"  TRT RSS {rss_mb(app.pid):.1f} MB; {machine()}", flush=True)
    return first_window


SPY_RATE = 1000  # samples a second: the window is a few hundred ms


async def spying(pid: int, raw: Path) -> asyncio.subprocess.Process:
    """py-spy recording the GIL's holder of `pid` into `raw` until SIGINT; returns once it samples."""
    sampler = await asyncio.create_subprocess_exec(
        py_spy(), "record", "--pid", str(pid), "--rate", str(SPY_RATE), "--format", "raw", "--full-filenames",
        "--nonblocking", "--gil", "--output", str(raw), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    await asyncio.sleep(1.0)  # py-spy attaches and starts sampling (it says nothing when it has)
    return sampler


CONFIRM_STEPS = ("received", "claimed", "handler_start", "job_confirmed", "create_began", "kie.create_task",
                 "handler_end")


async def confirm_steps(db: str, chats: list[int], *, every: bool = False) -> None:
    """Where a Confirm's time goes, from its trace: each step's time after the update was received
    (the ack's commit), for the first chats whose createTask arrived (KIE's first window).
    `every`: each Confirm's time of each step too, in order: whether the burst's commits came one
    after another or all together at its end, and which Confirms waited for a dispatch worker."""
    store = Database(db, "bench", pool_size=2)
    await store.connect()
    try:
        created: dict[str, list[dict[str, Any]]] = {}  # the Confirm's update -> its job's story

        async def written() -> bool:
            for job in await store.require().fetch("SELECT id FROM jobs WHERE chat_id = ANY($1::bigint[])", chats):
                story = await traces.for_correlation(store, f"j{job['id']}")
                update = next((s["data"]["update"] for s in story if s["event"] == "confirmed"), None)
                if update is not None:
                    created[update] = story
            return len(created) >= len(chats)
        with contextlib.suppress(AssertionError):
            await eventually(written, 10, "the Confirm traces written", interval=0.2)
        steps: dict[str, list[float]] = {}
        for update, job_story in created.items():
            at: dict[str, float] = {}
            for step in await traces.for_correlation(store, update) + job_story:
                at.setdefault(step["event"], step["at"])
                if step["event"] == "kie.create_task":
                    at.setdefault("create_began", step["at"] - step["data"]["ms"] / 1000)
            if "received" not in at:
                continue
            for step in CONFIRM_STEPS[1:]:
                if step in at:
                    steps.setdefault(step, []).append(at[step] - at["received"])
        which = f"all {len(chats)}" if every else f"the first {len(chats)}"
        print(f"    {which} Confirms' steps after their update was received (traces):", flush=True)
        for step in CONFIRM_STEPS[1:]:
            if step in steps:
                print(f"      {step:<16} {ms(steps[step])}", flush=True)
                if every:
                    print("        each, ms: " + " ".join(f"{t * 1000:.0f}" for t in sorted(steps[step])), flush=True)
    finally:
        await store.close()


# -- B: 1,000 jobs in flight, no callbacks -----------------------------------------------------


async def create_jobs(db_url: str, api: str, kie: TimedKie) -> dict[int, str]:
    """B_JOBS jobs as the wizard makes them (status message included), each submitted with a task
    held at the fake KIE. Written under the epoch of the instance that was just killed."""
    kie.plan(hold=True)
    store = Database(db_url, "bench", pool_size=8)
    await store.connect()
    model = shipped().model(MODEL)
    tasks: dict[int, str] = {}
    gate = asyncio.Semaphore(8)
    try:
        epoch = await store.require().fetchval("SELECT epoch FROM leader WHERE name = $1", LOCK_NAME)
        async with aiohttp.ClientSession() as session:
            async def one(chat: int) -> None:
                async with gate:
                    await accounts.ensure_user(store, LOCK_NAME, epoch, BOT_ID, chat, "en", 0)
                    await accounts.credit(store, LOCK_NAME, epoch, BOT_ID, chat, 10 * B_PRICE, f"seed:{chat}")
                    async with session.post(f"{api}/bot{FAKE_TOKEN}/sendMessage",
                                            json={"chat_id": chat, "text": "Queued: Nano Banana"}) as r:
                        status_id = int((await r.json())["result"]["message_id"])
                    task_input = payload.build(model, {"prompt": prompt_of(chat)})
                    order = Order(user_id=chat, chat_id=chat, nonce=f"bench-{chat}", model=MODEL, sku="default",
                                  input=task_input, price=B_PRICE, paid_with="money", day=date.today(),
                                  status_message_id=status_id)
                    created = await jobs.confirm(store, LOCK_NAME, epoch, BOT_ID, order, free_daily_limit=5,
                                                 max_active=3)
                    assert isinstance(created, Created), created
                    await jobs.mark_submitting(store, LOCK_NAME, epoch, created.job.id)
                    async with session.post(kie.base_url + CREATE_PATH, json={"model": MODEL, "input": task_input},
                                            headers={"Authorization": f"Bearer {KIE_KEY}"}) as r:
                        task_id = str((await r.json())["data"]["taskId"])
                    await jobs.mark_submitted(store, LOCK_NAME, epoch, created.job.id, task_id)
                    tasks[chat] = task_id
            await asyncio.gather(*(one(B_FIRST_CHAT + i) for i in range(B_JOBS)))
        await sweep_read(store)
    finally:
        await store.close()
    return tasks


async def sweep_read(store: Database) -> None:
    """What one sweep of the jobs actor reads, timed here (the same store calls, the same pages)."""
    timings, cpu = [], []
    count = 0
    for _ in range(10):
        began, began_cpu = time.perf_counter(), time.process_time()
        await kie_callbacks.pending_callbacks(store, BOT_ID, 500)
        found: list[jobs.Job] = []
        after = 0
        while True:
            page = await jobs.jobs_to_drive(store, BOT_ID, 500, after=after)
            found += page
            if len(page) < 500:
                break
            after = page[-1].id
        timings.append(time.perf_counter() - began)
        cpu.append(time.process_time() - began_cpu)
        count = len(found)
    size = await store.require().fetchval(
        "SELECT avg(pg_column_size(j.*)) FROM jobs j WHERE bot_id = $1 AND delivered_at IS NULL", BOT_ID)
    print(f"  one sweep's read of {count} undelivered jobs (pending callbacks + jobs_to_drive pages, timed in "
          f"the bench): median {pct(timings, 0.5) * 1000:.1f} ms (CPU of the reading process "
          f"{pct(cpu, 0.5) * 1000:.1f} ms), max {max(timings) * 1000:.1f} ms; "
          f"{float(size or 0):.0f} bytes a row, {count * float(size or 0) / 1024:.0f} KB a sweep", flush=True)


async def sweep_rhythm(app: App, seconds: float = 10.0) -> None:
    """How often the jobs actor sweeps, from /health's last_sweep_age_seconds sampled 5 times a second."""
    seen: list[float] = []
    began = time.monotonic()
    async with aiohttp.ClientSession() as session:
        while time.monotonic() - began < seconds:
            asked = time.monotonic()
            async with session.get(app.base + "/health") as r:
                body = await r.json()
            age = body["actors"]["kie_poller"].get("last_sweep_age_seconds")
            if age is not None:
                seen.append((asked + time.monotonic()) / 2 - age)
            await asyncio.sleep(0.2)
    sweeps: list[float] = []
    for at in sorted(seen):  # one sweep seen twice differs by the requests' latency, sweeps are >= 0.2 s apart
        if not sweeps or at - sweeps[-1] > 0.1:
            sweeps.append(at)
    gaps = [b - a for a, b in itertools.pairwise(sweeps)]
    if gaps:
        print(f"  sweeps seen through /health over {seconds:g} s: {len(sweeps)}, "
              f"{len(gaps) / (sweeps[-1] - sweeps[0]):.2f}/s, gap median {pct(gaps, 0.5):.2f} s, "
              f"max {max(gaps):.2f} s; event-loop lag now {body['event_loop']['lag_seconds'] * 1000:.0f} ms, "
              f"max since start {body['event_loop']['lag_max_seconds'] * 1000:.0f} ms", flush=True)


def busiest_second(times: list[float]) -> int:
    ordered = sorted(times)
    best, start = 0, 0
    for end, at in enumerate(ordered):
        while ordered[start] <= at - 1.0:
            start += 1
        best = max(best, end - start + 1)
    return best


async def scenario_b(tmp: Path, server_url: str, api: str) -> None:
    print(f"B. {B_JOBS:,} jobs in flight, no callbacks; {B_ENDING} tasks end between {B_ENDS_FROM:g} s and "
          f"{B_ENDS_TO:g} s of the window (at most {B_LIMIT:g} s)", flush=True)
    print(f"  {machine()}", flush=True)
    db_name = "trt_bench_generation_b"
    db = await fresh_database(server_url, db_name)
    async with TimedKie(callbacks=False) as kie:
        stats = await asyncpg.connect(db)
        try:
            # the first instance: migrations, a leader row
            async with trt(tmp, db, api, **trt_extra(kie.base_url)) as app:
                await driving(app)
                await asyncio.sleep(2.0)
                first = await snapshot(stats, app.pid, db_name)
                await asyncio.sleep(B_IDLE)
                show_window("idle, no jobs (baseline)", first, await snapshot(stats, app.pid, db_name), app.pid)
            prep = time.monotonic()
            tasks = await create_jobs(db, api, kie)
            print(f"  {len(tasks)} jobs created and submitted in {time.monotonic() - prep:.1f} s; the next "
                  f"instance takes over", flush=True)
            async with trt(tmp, db, api, **trt_extra(kie.base_url)) as app:
                await driving(app)
                first = await snapshot(stats, app.pid, db_name)
                w0 = first.at
                rss_start = rss_mb(app.pid)
                ending = random.Random(7).sample(sorted(tasks.values()), B_ENDING)
                loop = asyncio.get_running_loop()
                for index, task_id in enumerate(ending):
                    due = B_ENDS_FROM + (B_ENDS_TO - B_ENDS_FROM) * index / B_ENDING
                    loop.call_at(loop.time() + due, kie.finish, task_id)
                async with aiohttp.ClientSession() as session:
                    photos_before = (await telegram_calls(session, api, method="sendPhoto", count="1"))["count"]
                    edits_before = (await telegram_calls(session, api, method="editMessageText", count="1"))["count"]
                    while time.monotonic() - w0 < B_LIMIT:
                        await asyncio.sleep(1.0)
                        found = await telegram_calls(session, api, method="sendPhoto", count="1")
                        if time.monotonic() - w0 > B_ENDS_TO and int(found["count"]) - photos_before >= B_ENDING:
                            break
                    last = await snapshot(stats, app.pid, db_name)
                    sent = await telegram_calls(session, api, method="sendPhoto")
                    edits = (await telegram_calls(session, api, method="editMessageText", count="1"))["count"]
                    edits -= edits_before
                await sweep_rhythm(app)
                print(f"  TRT RSS at the window's start {rss_start:.1f} MB", flush=True)
                show_window("1,000 jobs in flight", first, last, app.pid)
                seconds = last.at - w0
                records = [c for c in kie.calls(RECORD_PATH) if w0 <= c.at <= last.at]
                asked = Counter(c.query.get("taskId", "") for c in records)
                job_rank = {task_id: rank for rank, (_, task_id) in enumerate(sorted(tasks.items()))}
                asked_ranks = sorted(job_rank[t] for t in asked if t in job_rank)
                print(f"  recordInfo at the fake: {len(records)} calls, {len(records) / seconds:.2f}/s, busiest "
                      f"second {busiest_second([c.at for c in records])} (KIE's limit 10/s); "
                      f"{len(asked)} of {B_JOBS} tasks asked at least once, {B_JOBS - len(asked)} never", flush=True)
                if asked:
                    per = sorted(asked.values())
                    print(f"    calls per asked task: median {pct(per, 0.5):.0f}, max {per[-1]}; asked tasks by job "
                          f"age rank (0 = oldest job): {asked_ranks[0]}..{asked_ranks[-1]}, median "
                          f"{pct(asked_ranks, 0.5):.0f}", flush=True)
                    calls_by_rank = Counter(job_rank[c.query.get("taskId", "")] // 100 for c in records
                                            if c.query.get("taskId", "") in job_rank)
                    print("    calls by job age rank: " + ", ".join(
                        f"{b * 100}-{b * 100 + 99}: {calls_by_rank.get(b, 0)}" for b in range(B_JOBS // 100)),
                          flush=True)
                photo_at: dict[int, float] = {}
                for call in sent:
                    if call["status"] == 200 and int(call["params"].get("chat_id", 0)) >= B_FIRST_CHAT:
                        photo_at.setdefault(int(call["params"].get("chat_id", 0)), float(call["at"]))
                chat_of_task = {task_id: chat for chat, task_id in tasks.items()}
                waits, waiting = [], []
                by_rank: dict[int, list[float | None]] = {}
                for task_id, ended in kie.ended_at.items():
                    chat = chat_of_task[task_id]
                    wait = photo_at[chat] - ended if chat in photo_at else None
                    by_rank.setdefault(job_rank[task_id] // 100, []).append(wait)
                    if wait is not None:
                        waits.append(wait)
                    else:
                        waiting.append(last.at - ended)
                print(f"  task's end at KIE -> sendPhoto: {len(waits)} of {len(kie.ended_at)} ended tasks delivered; "
                      f"{ms(waits)}", flush=True)
                print("    by job age rank, delivered/ended and p50: " + "; ".join(
                    f"{b * 100}-{b * 100 + 99}: {sum(w is not None for w in v)}/{len(v)} "
                    f"{pct([w for w in v if w is not None], 0.5):.0f} s" for b, v in sorted(by_rank.items())),
                      flush=True)
                if waiting:
                    print(f"    not delivered when the window closed: {len(waiting)}, ended "
                          f"{min(waiting):.0f}..{max(waiting):.0f} s before", flush=True)
                print(f"  editMessageText (status messages) {int(edits) / seconds:.1f}/s over the window",
                      flush=True)
                states = await stats.fetch(
                    "SELECT state, delivered_at IS NOT NULL AS told, count(*) FROM jobs GROUP BY 1, 2 ORDER BY 1, 2")
                print("  jobs at the end: " + ", ".join(
                    f"{r['state']}{' (told)' if r['told'] else ''} {r['count']}" for r in states), flush=True)
                print(f"  {machine()}", flush=True)
        finally:
            await stats.close()


async def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.generation")
    parser.add_argument("--only", choices=("a", "b"), default=None)
    parser.add_argument("--users", type=int, default=A_USERS, help="A's users pressing Confirm at once")
    parser.add_argument("--set", action="append", default=[], metavar="NAME=VALUE",
                        help="a setting for A's TRT (e.g. DISPATCH_TURNS=4); repeatable")
    parser.add_argument("--spy", action="store_true",
                        help="sample A's TRT with py-spy (the GIL's holder) from the presses to the 18th createTask")
    parser.add_argument("--timeline", action="store_true",
                        help="A's steps for every Confirm, each Confirm's time in order (not only the first 18's)")
    parser.add_argument("--against", metavar="REV",
                        help="A for this git revision and this checkout: REV, this, this, REV, on the same machine")
    parser.add_argument("--rounds", type=int, default=1, help="with --against: the four runs this many times")
    cpus.add_flag(parser)
    args = parser.parse_args()
    cpus.apply(args)
    settings = dict(item.split("=", 1) for item in args.set)
    with workdir() as tmp, contextlib.ExitStack() as trees:
        other = trees.enter_context(checkout(args.against, tmp)) if args.against else None
        async with database(tmp) as server_url, fake_telegram(tmp) as api:
            if args.only in (None, "a") and other is not None:
                runs: dict[str, list[list[float]]] = {other[1]: [], "this checkout": []}
                rev, this = (other[0], other[1]), (None, "this checkout")
                for n, (root, name) in enumerate([rev, this, this, rev] * args.rounds):
                    runs[name].append(await scenario_a(tmp, server_url, api, args.users, settings, root=root,
                                                       name=f"TRT {name}", first_chat=A_FIRST_CHAT + n * 1_000,
                                                       timeline=args.timeline))
                for name, windows in runs.items():
                    print(f"the first window's Confirm -> createTask, {name}: " + "; ".join(ms(w) for w in windows),
                          flush=True)
                for name, windows in runs.items():
                    p50s, p99s = ([pct(w, q) * 1000 for w in windows] for q in (0.5, 0.99))
                    print(f"  {name}: p50 {', '.join(f'{v:.0f}' for v in p50s)} (mean {sum(p50s) / len(p50s):.0f}) ms;"
                          f" p99 {', '.join(f'{v:.0f}' for v in p99s)} (mean {sum(p99s) / len(p99s):.0f}) ms",
                          flush=True)
            elif args.only in (None, "a"):
                await scenario_a(tmp, server_url, api, args.users, settings, spy=args.spy, timeline=args.timeline)
            if args.only in (None, "b"):
                await scenario_b(tmp, server_url, api)


if __name__ == "__main__":
    asyncio.run(main())
