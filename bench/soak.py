"""The chaos soak: several `run.py serve` on one PostgreSQL and one fake Telegram, a Telegram-like
load over many chats, a seeded schedule of faults, then a drain and a check of the recorded
history against the invariants of bench/soak_checker.py.

    .venv/bin/python -m bench.soak --seed 1 --minutes 3 [--instances 3] [--chats 200] [--rate 30]

Why: the bugs of the role and the pipeline (an update lost, answered twice, answered by an
ex-leader, a leader that stops working) appear under combinations of faults nobody writes a
test for. A soak finds them before a user does, and its seed replays the schedule that found
one. Prints figures; exits 1 on any violation, printing the seed, the whole fault schedule and
the kept log files of every process. tests/test_soak.py runs a short one in the suite.

What runs: each instance gets TELEGRAM_API_BASE=<fake>/_as/<instance> (the fake records the
sender of every call) and INSTANCE_ID=<instance>, reused when a process manager would start it
again; the code runs from a snapshot taken at the start (--live: the working tree). The load
posts `/chaos_echo <update_id> <seconds>` (bot/routers/chaos.py works that long, 0 to 0.3 s,
then answers with the id) to a random instance's /webhook, one update per chat at a time,
redelivering elsewhere after an error, a 503 or a timeout, as Telegram does. Faults: kill -9
and SIGTERM (then started again), SIGSTOP then SIGCONT (sometimes past STALE_AFTER), /chaos
crash, hang and slow of every actor, a PostgreSQL restart, and Telegram answering 429, 500 or
slowly; half of the process faults aim at whichever instance is ACTIVE at that moment. /health
of every instance and the inbox's unfinished count are sampled twice a second throughout.

Generations: one fake KIE in this process serves every instance (KIE_API_BASE, KIE_UPLOAD_BASE),
each instance's WEBHOOK_BASE_URL is its own address, so a task's callback goes to the instance
that created it, whatever its role by then; WELCOME_BONUS gives every user money. `gen_chats`
more chats walk the real wizard by posted updates, pressing the buttons the bot sent (read from
the fake Telegram): /start, the family, the model, Start, each step as it comes, Confirm. Half the
walks make google/nano-banana; the rest are spread over KIE's dedicated families (GEN_FAMILIES:
a Suno song, a Veo video and then its 1080p version through the action on its result, a Runway
video, a 4o picture, a Flux Kontext picture), whose tasks the same fake KIE plays at their own
paths and takes the same KIE faults for (a plan for "*" applies to them; the createTask hang
and drop stay on the jobs API's path).
KIE's faults have a schedule of their own seed stream (the process faults stay as they were):
tasks that fail, tasks that take 10-40 s, 402 on createTask for a while (then credits back),
duplicated callbacks, lost callbacks, a createTask that hangs, one whose answer is lost after the
task was made. The drain also waits for every job told, except an ambiguous submit, which waits
for its model's timeout (minutes); the history then holds the jobs with their ledger entries,
the createTask calls, the media sends and store.invariants.check's lines.

Money faults (issue 17), on a seed stream of their own: Cloudflare's 502/520 page after the fake
KIE really made the task; two results whose second answers 404 (for good) or 503 (a while);
forged callbacks at a running job (a wrong token in its URL; its real URL with a body claiming
success with results on a loopback trap server (127.0.0.2), directly or through a redirect from
the fake KIE, or claiming failure); a real signed callback's headers with another body (KIE signs;
i0 alone checks signatures, so one run has both intakes); Telegram's 413 on media sends a while.
The history adds who sent each Bot API call (<instance>.<incarnation>, stamped when the fake
Telegram, a process of its own, accepted it), when each process died, each epoch's last
heartbeat, the tasks per job, which jobs' files reached their chat, the trap's requests and the
`kie_orphan_task` lines of every log.
"""

from __future__ import annotations

import argparse
import asyncio
import atexit
import base64
import contextlib
import functools
import hashlib
import json
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, unquote, urlencode, urlsplit, urlunsplit

import aiohttp
import asyncpg
from aiohttp import web

from bench.soak_checker import (
    Acquisition,
    Death,
    Forged,
    Freeze,
    History,
    InboxRow,
    JobRow,
    KieCreate,
    Media,
    Reply,
    Sample,
    Violation,
    check,
    describe_failovers,
    failover_times,
    figures,
    parse_reply,
)
from bench.soak_telegram import RemoteTelegram, SentCall
from bot import keyboards
from catalog.loader import shipped
from fakes.kie.wire import FILES_PREFIX, SUCCESS_CALLBACK_MSG, FakeTask, ms
from fakes.kie_api import CREATE_PATH, FakeKie
from fakes.telegram_api import callback_update, message_update, pre_checkout_update, successful_payment_update
from store import invariants
from store.database import Database
from store.leader import lock_name
from tests.procs import FAKE_TOKEN, ROOT, TrtProcess, free_port

BOT_ID = int(FAKE_TOKEN.split(":")[0])
SECRET = "soak-secret_0123"
CHAOS_TOKEN = "chaos-token-soak"
CHAOS_HEADERS = {"X-Chaos-Token": CHAOS_TOKEN}
# every actor of the tree (the run reports any /health shows that is not here: a new one to add)
ACTORS = ("db", "lock_keeper", "correlation_flusher", "dispatcher", "kie_poller", "janitor", "webhook_setter",
          "broadcaster", "profile_setter", "ingress")
PROCESS_FAULTS = ("kill9", "sigterm", "sigstop")
# the faults are dealt from a shuffled deck, so every kind comes up within a dozen faults
DECK = ("kill9", "sigterm", "sigstop", "sigstop", "pg_restart",
        "chaos", "chaos", "chaos", "chaos", "telegram", "telegram", "telegram")
KINDS = ("kill9", "sigterm", "sigstop", "pg_restart", "chaos", "telegram")
ENDS_LEADERSHIP = ("kill9", "sigterm", "sigstop", "pg_restart")
# KIE's faults, on a schedule of their own (its own random stream: the schedule above stays as it was)
KIE_DECK = ("fail", "slow", "duplicate", "lost", "hang", "drop")  # and one 402, late: see make_kie_schedule
# the money faults (issue 17), on a stream of their own too: Cloudflare's 502/520 page after KIE made
# the task, results whose second file answers 404 (for good) or 503 (a while), forged callbacks (a
# wrong token in the URL; the real URL with a body claiming success from the trap, directly or through
# a redirect, or claiming failure), a real signed callback's headers with another body, Telegram's 413
MONEY_DECK = ("cdn502", "cdn520", "partial404", "partial503", "forge_token", "forge_trap", "forge_redirect",
              "forge_fail", "rebodied", "tg413")
FORGED_KINDS = {"forge_token": "wrong token", "forge_trap": "success to trap", "forge_redirect": "success via redirect",
                "forge_fail": "failure", "rebodied": "re-bodied"}
HMAC_KEY = "kie-soak-hmac-key"  # KIE's callback signing: on i0 only, so one run has both intakes
TRAP_HOST = "127.0.0.2"  # loopback, but not the fakes' host: an allow-list of result hosts never names it
CLOUDFLARE_PAGES = {
    502: "<!DOCTYPE html>\n<html><head><title>api.kie.ai | 502: Bad gateway</title></head><body>"
         "<h1>Bad gateway</h1><span>Error code 502</span><p>The web server reported a bad gateway error.</p>"
         "<p>Cloudflare Ray ID: 8a1b2c3d4e5f6a7b</p></body></html>",
    520: "<!DOCTYPE html>\n<html><head><title>api.kie.ai | 520: Web server is returning an unknown error</title>"
         "</head><body><h1>Web server is returning an unknown error</h1><span>Error code 520</span>"
         "<p>Cloudflare Ray ID: 8a1b2c3d4e5f6a7c</p></body></html>",
}
TRAP_PNG = base64.b64decode(  # a 1x1 PNG: what the trap answers, so a fetch of it looks like a result
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR4nGNgYPj/HwADAgH/6kXoWQAAAABJRU5ErkJggg==")
GEN_MODEL = "google/nano-banana"  # a photo, two steps (a prompt, an optional size)
# KIE's dedicated families (issue 20): a share of the walks make a song, a Veo video (then its 1080p,
# an action on the result), a Runway video, a 4o picture, a Flux Kontext picture; their first model a
# user can pick, when the catalog has one (an older snapshot without them walks nano-banana only)
GEN_FAMILIES = ("suno", "veo", "runway", "gpt4o", "flux-kontext")
FAMILY_SHARE = 0.5  # of the walks, spread evenly over GEN_FAMILIES
# every path that makes a task at KIE: the jobs API's createTask and each family's create calls
# (Veo's 1080p makes none: it is a GET on the original's task)
CREATE_PATHS = frozenset((CREATE_PATH, "/api/v1/generate", "/api/v1/generate/extend", "/api/v1/generate/upload-cover",
                          "/api/v1/generate/upload-extend", "/api/v1/lyrics", "/api/v1/veo/generate",
                          "/api/v1/veo/extend", "/api/v1/veo/get-4k-video", "/api/v1/runway/generate",
                          "/api/v1/runway/extend", "/api/v1/aleph/generate", "/api/v1/gpt4o-image/generate",
                          "/api/v1/flux/kontext/generate"))
WELCOME_BONUS = 1_000_000  # kopecks: more than any chat can spend in a soak
GEN_TIMEOUT = float(shipped().model(GEN_MODEL).timeout_seconds) + 10.0  # its timeout, and a sweep's margin


def family_models() -> dict[str, str]:
    """Each dedicated family's first model a user can pick (the menu's order) whose operation is generate."""
    out: dict[str, str] = {}
    for family in GEN_FAMILIES:
        found = [m for m in shipped().models if m.endpoint == family and m.id.split("/")[1] == "generate"]
        if found:
            out[family] = found[0].id
    return out


def action_button(model_id: str, child: str) -> str | None:
    """The pattern of the button (bot/routers/actions.py: act:<job>:<action id>[:<file>]) that starts the
    action of `model_id` whose model is `child` (Veo's 1080p), or None when it offers none."""
    model = shipped().model(model_id)
    found = [a.id for a in getattr(model, "actions", ()) if a.model == child]
    return rf"^{re.escape(keyboards.ACTION)}\d+:{re.escape(found[0])}(:\d+)?$" if found else None


def timeout_of(model: str) -> float:
    """A job's deadline after its creation: its model's timeout and a sweep's margin."""
    try:
        return float(shipped().model(model).timeout_seconds) + 10.0
    except KeyError:
        return GEN_TIMEOUT
MEDIA_METHODS = ("sendPhoto", "sendDocument", "sendVideo", "sendAudio", "sendAnimation", "sendMediaGroup")


# -- the schedule --------------------------------------------------------------------------------


@dataclass(frozen=True)
class PlannedFault:
    """One fault of the schedule: `at` seconds into the fault period, on `target` ("i<n>", "active"
    for whichever instance is ACTIVE then, "-" for none), with its parameters."""

    at: float
    kind: str
    target: str
    params: tuple[tuple[str, Any], ...] = ()

    def param(self, name: str, default: Any = None) -> Any:
        return dict(self.params).get(name, default)

    def label(self) -> str:
        shown = " ".join(f"{k}={v}" for k, v in self.params)
        return f"{self.kind} {self.target}{' ' + shown if shown else ''}"


def make_schedule(seed: int, seconds: float, instances: int) -> list[PlannedFault]:
    """The faults of a run, from the seed alone: the same seed gives the same schedule."""
    rng = random.Random(seed)
    out: list[PlannedFault] = []
    deck: list[str] = []
    at = rng.uniform(1.0, 3.0)
    while at < seconds:
        if not deck:
            deck = list(DECK)
            rng.shuffle(deck)
        kind = deck.pop()
        target = "-"
        if kind in (*PROCESS_FAULTS, "chaos"):
            target = "active" if rng.random() < 0.5 else f"i{rng.randrange(instances)}"
        params: dict[str, Any] = {}
        if kind in ("kill9", "sigterm"):
            params["down"] = round(rng.uniform(0.5, 3.0), 2)  # before the process manager starts it again
        elif kind == "sigstop":  # half of them outlast STALE_AFTER (3 s): a standby takes over meanwhile
            params["seconds"] = round(rng.uniform(1.0, 2.5) if rng.random() < 0.5 else rng.uniform(3.5, 7.0), 2)
        elif kind == "chaos":
            params["actor"] = rng.choice(ACTORS)
            params["fault"] = rng.choice(("crash", "hang", "slow"))
            if params["fault"] == "hang":
                params["deadline"] = round(rng.uniform(0.5, 3.0), 2)
                if rng.random() < 0.2:
                    params["ignore_cancel"] = True  # only the watchdog ends it
            elif params["fault"] == "slow":
                params["seconds"] = round(rng.uniform(0.5, 4.0), 2)
        elif kind == "telegram":
            what = rng.choice(("429", "500", "slow"))
            params["answer"] = what
            if what == "429":
                params["count"] = rng.randint(1, 5)
            elif what == "500":
                params["count"] = rng.randint(1, 3)
            else:
                params["delay"] = round(rng.uniform(0.5, 3.0), 2)
                params["count"] = rng.randint(5, 20)
        out.append(PlannedFault(round(at, 2), kind, target, tuple(params.items())))
        at += rng.uniform(2.0, 6.0)
    return out


def make_kie_schedule(seed: int, seconds: float) -> list[PlannedFault]:
    """KIE's faults of a run, from the seed alone: tasks that fail, tasks that take long, 402 on
    createTask for a while (then credits back), duplicated callbacks, lost callbacks (polling must
    finish those), a createTask that hangs or whose answer is lost after the task was made. The 402
    comes once, between 60% and 80% of the period: it pauses generations until the jobs actor next
    asks KIE's balance (every 60 s while paused), so an earlier one leaves a short soak with few."""
    rng = random.Random(f"{seed}:kie")
    out: list[PlannedFault] = []
    deck: list[str] = []
    at = rng.uniform(3.0, 8.0)
    while at < seconds:
        if not deck:
            deck = list(KIE_DECK)
            rng.shuffle(deck)
        what = deck.pop()
        params: dict[str, Any] = {"answer": what}
        if what in ("fail", "slow"):
            params["count"] = rng.randint(2, 6)
            if what == "slow":
                params["duration"] = round(rng.uniform(10.0, 40.0), 1)
        elif what in ("402", "duplicate", "lost"):
            params["seconds"] = round(rng.uniform(3.0, 12.0), 1)
        out.append(PlannedFault(round(at, 2), "kie", "-", tuple(params.items())))
        at += rng.uniform(4.0, 9.0)
    late = round(rng.uniform(0.6, 0.8) * seconds, 2)
    out.append(PlannedFault(late, "kie", "-", (("answer", "402"), ("seconds", round(rng.uniform(3.0, 12.0), 1)))))
    return sorted(out, key=lambda f: f.at)


def make_money_schedule(seed: int, seconds: float) -> list[PlannedFault]:
    """The money faults of a run (MONEY_DECK), from the seed alone, dealt from a shuffled deck so a
    minute sees nearly every kind; a stream of their own, so the other schedules stay as they were."""
    rng = random.Random(f"{seed}:money")
    out: list[PlannedFault] = []
    deck: list[str] = []
    at = rng.uniform(4.0, 8.0)
    while at < seconds:
        if not deck:
            deck = list(MONEY_DECK)
            rng.shuffle(deck)
        what = deck.pop()
        params: dict[str, Any] = {"what": what}
        if what in ("cdn502", "cdn520", "partial404", "partial503"):
            params["count"] = rng.randint(1, 3)
            if what == "partial503":
                params["seconds"] = round(rng.uniform(3.0, 15.0), 1)
        elif what == "tg413":
            params["seconds"] = round(rng.uniform(3.0, 10.0), 1)
        out.append(PlannedFault(round(at, 2), "money", "-", tuple(params.items())))
        at += rng.uniform(3.0, 6.0)
    return out


@dataclass
class AppliedFault:
    planned: PlannedFault
    at: float  # wall clock when it was applied
    target: str = "-"  # the instance it hit
    was_active: bool = False  # the target reported ACTIVE just before
    outcome: str = "ok"  # "ok", "skipped: why", "failed: why"
    detail: str = ""

    def line(self) -> str:
        hit = f" -> {self.target}{' (ACTIVE)' if self.was_active else ''}" if self.target != "-" else ""
        more = f" {self.detail}" if self.detail else ""
        return f"+{self.planned.at:7.2f}s ({self.at:.3f}) {self.planned.label()}{hit}: {self.outcome}{more}"


# -- the processes -------------------------------------------------------------------------------

_LIVE: list[TrtProcess] = []  # every process this module started: killed at exit whatever happened


@atexit.register
def _kill_leftovers() -> None:
    for proc in _LIVE:
        with contextlib.suppress(Exception):
            proc.kill()


SNAPSHOT_IGNORE = shutil.ignore_patterns(".venv", ".data", ".git", "__pycache__", "*.pyc", ".*_cache", "*.egg-info")


def snapshot(into: Path) -> Path:
    """A copy of the code to run the instances from: a process started again mid-run (as every
    kill does) runs the same code as the others, whatever is edited in the working tree meanwhile
    (a half-saved file once made every restart of a run exit 1 for a minute and a half)."""
    shutil.copytree(ROOT, into, ignore=SNAPSHOT_IGNORE)
    return into


class SoakProcess(TrtProcess):
    """`run.py serve` from `root` (a snapshot, or the working tree)."""

    def __init__(self, tmp: Path, env: dict[str, str], name: str, root: Path, incarnation: int = 0) -> None:
        super().__init__(tmp, env, name=name)
        self.root = root
        self.incarnation = incarnation

    def start(self) -> SoakProcess:
        self._log = self.log_path.open("ab")
        self.proc = subprocess.Popen([sys.executable, str(self.root / "run.py"), self.command], cwd=self.root,
                                     env=self.env, stdout=self._log, stderr=subprocess.STDOUT)
        return self


class Slot:
    """One instance as a process manager sees it: a name, a port, the process of the moment."""

    def __init__(self, name: str, tmp: Path, env: dict[str, str], root: Path = ROOT,
                 deaths: list[Death] | None = None, telegram: str = "") -> None:
        self.name = name
        self.deaths = deaths if deaths is not None else []  # every process of it that stopped, and when
        self.telegram = telegram  # the fake Telegram's base URL: each start sends as <name>.<incarnation>
        self.tmp = tmp
        self.root = root
        self.env = env
        self.port = int(env["PORT"])
        self.base = f"http://127.0.0.1:{self.port}"
        self.proc: TrtProcess | None = None
        self.started: list[TrtProcess] = []
        self.incarnation = 0
        self.down = False  # taken down on purpose: the process manager waits for the fault to start it
        self.frozen = False

    def start(self) -> TrtProcess:
        self.incarnation += 1
        if self.telegram:  # the fake records the sender of each call: this process, not only this slot
            self.env["TELEGRAM_API_BASE"] = f"{self.telegram}/_as/{self.name}.{self.incarnation}"
        proc = SoakProcess(self.tmp, self.env, f"{self.name}-{self.incarnation}", self.root,
                           self.incarnation).start()
        self.proc = proc
        self.started.append(proc)
        _LIVE.append(proc)
        self.down = False
        self.frozen = False
        return proc

    def running(self) -> bool:
        return self.proc is not None and self.proc.proc is not None and self.proc.proc.poll() is None

    def died(self, proc: TrtProcess, how: str) -> None:
        """Note a process of this slot stopped (stamped now: no earlier than its last instruction)."""
        self.deaths.append(Death(self.name, getattr(proc, "incarnation", 0), time.time(), how))

    async def kill(self) -> None:
        """kill -9 (its death stamped right after the signal, with no await between), waiting for
        the exit without blocking the loop."""
        proc = self.proc
        if proc is not None and proc.proc is not None:
            popen = proc.proc
            if popen.poll() is None:
                popen.send_signal(signal.SIGCONT)
                popen.kill()
                self.died(proc, "kill9")
            for _ in range(200):
                if popen.poll() is not None:
                    break
                await asyncio.sleep(0.05)
            proc.kill()  # closes its log; waits only if it is somehow still there
        self.frozen = False

    def kill_all(self) -> None:
        for proc in self.started:
            proc.kill()


async def get_json(session: aiohttp.ClientSession, url: str, timeout: float) -> dict[str, Any] | None:
    try:
        async with session.get(url, timeout=aiohttp.ClientTimeout(total=timeout)) as response:
            body = await response.json(content_type=None)
            return body if isinstance(body, dict) else None
    except (aiohttp.ClientError, OSError, TimeoutError, ValueError):
        return None


def role_of(body: dict[str, Any] | None) -> tuple[str | None, bool]:
    if body is None:
        return None, False
    dispatcher = body.get("actors", {}).get("dispatcher") or {}
    return body.get("role"), bool(dispatcher.get("consuming"))


# -- the run -------------------------------------------------------------------------------------


@dataclass
class SoakConfig:
    seed: int
    fault_seconds: float
    instances: int = 3
    chats: int = 200
    rate: float = 30.0  # updates/s over all chats, on average (each chat pauses chats/rate between its updates)
    handler_seconds: float = 0.15  # mean time a handler works before its reply (uniform from 0 to twice that)
    quiet_seconds: float = 5.0  # after the faults, before the drain is judged
    drain_timeout: float = 120.0  # bound on the wait for every acknowledged update answered
    start_timeout: float = 90.0
    post_timeout: float = 3.0  # a webhook POST not answered by then is redelivered elsewhere
    redeliver_for: float = 120.0  # an update not acknowledged for this long is given up (a figure)
    settle_faults_timeout: float = 60.0  # bound on the wait for the last faults to end
    code: Path = ROOT  # where run.py is run from (bench.soak: a snapshot taken at its start)
    sample_every: float = 0.5
    idle_bound: float = 5.0
    slack: float = 0.05
    gen_chats: int = 20  # chats that walk the wizard to generations (besides `chats`); 0: none
    kie_faults: bool = True
    kie_duration: float = 2.0  # seconds a task takes at the fake KIE unless a fault says otherwise
    money_faults: bool = True  # the money faults of MONEY_DECK (with generations and KIE faults on)
    # chats that top up with Stars (half of them also generation chats: top-ups race generations);
    # each payment's successful_payment is delivered 2 or 3 times, to random instances, spread out
    pay_chats: int = 10


@dataclass
class SoakResult:
    config: SoakConfig
    schedule: list[PlannedFault]
    applied: list[AppliedFault]
    history: History
    violations: list[Violation]
    log_paths: list[Path]
    posts: Counter[str] = field(default_factory=Counter)
    posted: int = 0
    unacked: list[int] = field(default_factory=list)
    exits: list[str] = field(default_factory=list)
    max_lag: float = 0.0
    lags: list[tuple[float, float]] = field(default_factory=list)
    drained_in: float | None = None
    phases: dict[str, float] = field(default_factory=dict)
    unfaulted: list[str] = field(default_factory=list)
    gen: Counter[str] = field(default_factory=Counter)
    kie_callbacks: dict[str, int] = field(default_factory=dict)
    pay: Counter[str] = field(default_factory=Counter)

    @property
    def ok(self) -> bool:
        return not self.violations

    @property
    def anomalies(self) -> list[str]:
        """What is no invariant's business but deserves the logs: processes exiting by themselves,
        updates never acknowledged, a drain past its bound."""
        out = []
        if self.exits:
            out.append(f"{len(self.exits)} process(es) exited by themselves")
        if self.unacked:
            out.append(f"{len(self.unacked)} update(s) never acknowledged")
        if self.drained_in is None:
            out.append("the drain did not finish within its bound")
        return out

    def failovers(self) -> list[tuple[str, float]]:
        hits = [(a.at, f"{a.planned.kind}@{a.planned.at:g}") for a in self.applied
                if a.outcome == "ok" and (a.planned.kind == "pg_restart" or
                                          (a.planned.kind in ENDS_LEADERSHIP and a.was_active))]
        return failover_times(self.history, hits)

    def report(self, full: bool = False) -> str:
        """The figures; with `full` (always on failure) the seed, schedule, violations and logs."""
        c = self.config
        f = figures(self.history)
        kinds = Counter(a.planned.kind for a in self.applied if a.outcome == "ok")
        detail = Counter(a.planned.label().split(" ")[0] + ":" + (
            a.planned.param("fault") or a.planned.param("answer") or a.planned.param("what") or "")
            for a in self.applied if a.outcome == "ok")
        not_applied = Counter(a.outcome.split(":")[0] + " " + a.planned.kind for a in self.applied
                              if a.outcome != "ok")
        by_invariant = Counter(v.invariant for v in self.violations)
        kie_faults = Counter(a.planned.param("answer") for a in self.applied
                             if a.planned.kind == "kie" and a.outcome == "ok")
        h = self.history
        money = Counter(a.planned.param("what") for a in self.applied
                        if a.planned.kind == "money" and a.outcome == "ok")
        forged: dict[str, list[int | None]] = {}
        for f_ in h.forged:
            forged.setdefault(f_.kind, []).append(f_.status)
        drained = "NOT within the bound" if self.drained_in is None else f"in {self.drained_in:.1f}s"
        lines = [
            f"soak seed={c.seed} faults for {c.fault_seconds:g}s, {c.instances} instances, {c.chats} chats, "
            f"~{c.rate:g} updates/s",
            f"updates: posted {self.posted}, acked {f['acked']}, answered {f['answered']}, "
            f"never acked {len(self.unacked)}; webhook posts by answer {dict(sorted(self.posts.items()))}",
            f"replies: {f['replies_ok']} seen by users {f['replies_by_kind']}, {f['replies_failed']} failed sends; "
            f"by instance {f['replies_by_instance']}",
            f"faults: {len(self.applied)} of {len(self.schedule)} planned applied; ok by kind {dict(kinds)}; "
            f"detail {dict(sorted(detail.items()))}; not applied {dict(not_applied)}"
            + (f"; actors never faulted (add them to ACTORS): {self.unfaulted}" if self.unfaulted else ""),
            f"replays (duplicates): {f['replayed_updates']} updates answered more than once, "
            f"{f['replay_replies']} extra replies; inbox attempts {f['inbox_attempts']}",
            f"failovers (old epoch's real end to the next acquisition, by cause): "
            f"{describe_failovers(self.failovers())}",
            f"epochs {f['epochs']}; longest ACTIVE-but-not-consuming spell with work waiting "
            f"{f['longest_idle_active']:.1f}s (bound {self.history.idle_bound:g}s); "
            f"processes that exited by themselves: {len(self.exits)} {self.exits}",
            f"drained {drained}; "
            f"bench event-loop lag max {self.max_lag * 1000:.0f} ms; health samples {f['health_samples']}; "
            f"phases {', '.join(f'{k} {v:.0f}s' for k, v in self.phases.items())}",
            f"payments: {dict(sorted(self.pay.items()))}, "
            f"{len(self.history.payments_posted)} charges posted, {len(self.history.payments_recorded)} recorded; "
            f"generations: {dict(sorted(self.gen.items()))}; jobs by state {f['jobs_by_state']}, delivered "
            f"{f['jobs_delivered']}, ambiguous submits still within the model's timeout "
            f"{f['jobs_submitting_within_timeout']}; createTask {f['kie_creates']} "
            f"({f['kie_creates_ambiguous']} ambiguous), tasks "
            f"made {f['kie_tasks']}; KIE callbacks {self.kie_callbacks}; media sent {f['media_ok']}; KIE faults "
            f"applied {dict(sorted(kie_faults.items()))}",
            f"money: faults applied {dict(sorted(money.items()))}; forged callbacks (kind: answers) "
            f"{dict(sorted(forged.items()))}; trap hits {len(h.trap_hits)}; orphans counted in the logs "
            f"{sum(h.orphans.values())} over {len(h.orphans)} job(s); jobs with a result file delivered "
            f"{sum(1 for j in h.jobs if j.files_delivered)}; fake Telegram's loop stalls "
            f"{len(h.stalls)}, max {max((lag for _, lag in h.stalls), default=0.0) * 1000:.0f} ms; "
            f"process deaths {Counter(d.how for d in h.deaths)}",
            f"violations: {len(self.violations)} {dict(by_invariant)}; anomalies: {self.anomalies or 'none'}",
        ]
        if full or self.violations or self.anomalies:
            lines.append(f"replay with: .venv/bin/python -m bench.soak --seed {c.seed} "
                         f"--minutes {c.fault_seconds / 60:g} --instances {c.instances} --chats {c.chats} "
                         f"--rate {c.rate:g}")
            lines.append("schedule (as applied):")
            lines += ["  " + a.line() for a in self.applied]
            lines += ["  " + f"+{p.at:7.2f}s {p.label()}: not reached" for p in self.schedule[len(self.applied):]]
            for name in by_invariant:
                found = [v.detail for v in self.violations if v.invariant == name]
                lines.append(f"violated: {name} ({len(found)}):")
                lines += ["  " + d for d in found[:25]]
                if len(found) > 25:
                    lines.append(f"  ... and {len(found) - 25} more")
            if self.lags:
                worst = sorted(self.lags, key=lambda x: -x[1])[:10]
                lines.append(f"bench loop stalls over 50 ms ({len(self.lags)}), worst: "
                             + ", ".join(f"{lag * 1000:.0f} ms at {at:.3f}" for at, lag in sorted(worst)))
            lines.append("logs:")
            lines += ["  " + str(p) for p in self.log_paths]
        return "\n".join(lines)


class Soak:
    """One run: start the instances, load and faults, drain, record, check."""

    def __init__(self, config: SoakConfig, database_url: str, tmp: Path,
                 restart_postgres: Callable[[], None] | None) -> None:
        self.config = config
        self.database_url = database_url
        self.tmp = tmp
        self.restart_postgres = restart_postgres
        self.schedule = make_schedule(config.seed, config.fault_seconds, config.instances)
        if config.kie_faults and config.gen_chats:
            self.schedule = sorted(self.schedule + make_kie_schedule(config.seed, config.fault_seconds),
                                   key=lambda f: f.at)
            if config.money_faults:
                self.schedule = sorted(self.schedule + make_money_schedule(config.seed, config.fault_seconds),
                                       key=lambda f: f.at)
        self.deaths: list[Death] = []
        self.freezes: list[Freeze] = []
        self.heartbeats: dict[int, float] = {}  # epoch -> its last heartbeat_at seen (wall clock)
        self.forged: list[Forged] = []
        self.trap_log: list[str] = []  # every request the trap server got
        self.gen_acked: dict[int, int] = {}  # the generation chats' updates (no echo to judge them by)
        self.gen: Counter[str] = Counter()  # the generation chats' progress: confirmed, results, stopped at
        self.pay: Counter[str] = Counter()  # the paying chats' progress
        # charge id -> (chat, Stars, acknowledged at least once) of each payment posted
        self.payments: dict[str, tuple[int, int, bool]] = {}
        self.kie_callbacks: dict[str, int] = {}
        self.runtime_rng = random.Random(f"{config.seed}:runtime")
        self.load_rng = random.Random(f"{config.seed}:load")
        self.slots: list[Slot] = []
        self.applied: list[AppliedFault] = []
        self.samples: list[Sample] = []
        self.acked: dict[int, int] = {}
        self.posts: Counter[str] = Counter()
        self.posted = 0
        self.unacked: list[int] = []
        self.exits: list[str] = []
        self.next_update_id = 1_000_000
        self.max_lag = 0.0
        self.lags: list[tuple[float, float]] = []  # (wall clock, seconds) of each stall over 50 ms
        self.stop_load = asyncio.Event()
        self.stop_sampling = asyncio.Event()
        self.pg_lock = asyncio.Lock()
        self.pending_lock = asyncio.Lock()
        self.fault_tasks: set[asyncio.Task[None]] = set()
        self.pending_conn: asyncpg.Connection | None = None
        self.phases: dict[str, float] = {}
        self.unfaulted: list[str] = []  # actors /health shows that the schedule never faults

    # -- the whole run -------------------------------------------------------------------------

    async def run(self) -> SoakResult:
        async with self._trap() as trap, RemoteTelegram(watch=trap) as fake, \
                FakeKie(duration=self.config.kie_duration, credits=10**12, hmac_key=HMAC_KEY) as kie, \
                self._session() as session:
            self.trap_base = f"http://{trap}"
            self.fake = fake
            self.kie = kie
            self.session = session
            await fake.refresh()
            helpers: list[asyncio.Task[None]] = []
            chats: list[asyncio.Task[None]] = []
            drained_in: float | None = None
            try:
                began = time.monotonic()
                await self._start_instances()
                self.phases["start"] = time.monotonic() - began
                helpers += [asyncio.create_task(self._sample_loop()), asyncio.create_task(self._lag_loop()),
                            asyncio.create_task(self._process_manager()), asyncio.create_task(fake.follow())]
                chats = [asyncio.create_task(self._chat(50_000 + c)) for c in range(self.config.chats)]
                chats += [asyncio.create_task(self._gen_chat(90_000 + c)) for c in range(self.config.gen_chats)]
                chats += [asyncio.create_task(self._pay_chat(chat)) for chat in self._payers()]
                began = time.monotonic()
                await self._run_faults()
                self.phases["faults"] = time.monotonic() - began
                self.stop_load.set()
                began = time.monotonic()
                await self._settle(chats)
                self.phases["settle"] = time.monotonic() - began
                await asyncio.sleep(self.config.quiet_seconds)  # the scenario's quiet period
                began = time.monotonic()
                drained_in = await self._drain()
                self.phases["drain"] = time.monotonic() - began
                final = await self._look(pending=await self._pending())
                self.stop_sampling.set()
                for task in helpers:  # an observer that died would leave the history short: fail loudly
                    if task.done() and task.exception() is not None:
                        raise RuntimeError(f"a soak helper failed: {task.exception()!r}")
                history = await self._history(final)
                attempts = self.kie.callback_attempts
                self.kie_callbacks = {"posted": len(attempts), "duplicates": sum(1 for a in attempts if a.copy),
                                      "answered 200": sum(1 for a in attempts if a.status == 200)}
            finally:
                # processes first, before any await: a finally interrupted (a test's timeout) still kills them
                tasks = [*chats, *helpers, *self.fault_tasks]
                for task in tasks:
                    task.cancel()
                for slot in self.slots:
                    slot.kill_all()
                self.stop_load.set()
                self.stop_sampling.set()
                await asyncio.gather(*tasks, return_exceptions=True)
                for slot in self.slots:  # one a cancelled fault may have started meanwhile
                    slot.kill_all()
                if self.pending_conn is not None:
                    with contextlib.suppress(Exception):
                        await asyncio.wait_for(self.pending_conn.close(), 2)
        violations = check(history)
        return SoakResult(self.config, self.schedule, self.applied, history, violations,
                          [p.log_path for s in self.slots for p in s.started], self.posts, self.posted,
                          self.unacked, self.exits, self.max_lag, self.lags, drained_in, self.phases,
                          self.unfaulted, self.gen, self.kie_callbacks, self.pay)

    @contextlib.asynccontextmanager
    async def _trap(self) -> AsyncIterator[str]:
        """The loopback trap: what forged callbacks name as results (directly or through a redirect
        from the fake KIE). It records every request it gets and answers a PNG, as a credentials
        endpoint inside the network would answer something worth stealing."""
        async def record(request: web.Request) -> web.Response:
            self.trap_log.append(f"the trap got {request.method} {request.path_qs} from {request.remote} "
                                 f"at {time.time():.3f} (User-Agent {request.headers.get('User-Agent', '?')})")
            return web.Response(body=TRAP_PNG, content_type="image/png")

        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", record)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, TRAP_HOST, 0)
        await site.start()
        try:
            yield f"{TRAP_HOST}:{runner.addresses[0][1]}"
        finally:
            await runner.cleanup()

    @contextlib.asynccontextmanager
    async def _session(self) -> AsyncIterator[aiohttp.ClientSession]:
        connector = aiohttp.TCPConnector(limit=0)  # chats stuck on a frozen instance must not starve the rest
        async with aiohttp.ClientSession(connector=connector) as session:
            yield session

    def _env(self, name: str) -> dict[str, str]:
        port = free_port()
        return {
            "TELEGRAM_BOT_TOKEN": FAKE_TOKEN, "DATABASE_URL": self.database_url,
            "TELEGRAM_API_BASE": f"{self.fake.base_url}/_as/{name}", "INSTANCE_ID": name,
            "PORT": str(port), "LOG_LEVEL": "INFO",
            # KIE's callbacks go to the instance that made the task, whatever its role by then
            "WEBHOOK_BASE_URL": f"http://127.0.0.1:{port}", "BOT_MODE": "webhook", "WEBHOOK_SECRET": SECRET,
            "KIE_API_KEY": "kie-soak-key", "KIE_API_BASE": self.kie.base_url, "KIE_UPLOAD_BASE": self.kie.base_url,
            "DOWNLOAD_TRUSTED_HOSTS": urlsplit(self.kie.base_url).netloc,
            "WELCOME_BONUS": str(WELCOME_BONUS),
            # three pools within the server's 100 connections (the default, 40 each, is 120: under
            # load the soak's own checker found none left), with the lock sessions and the checker
            "DATABASE_POOL_SIZE": "26",
            # KIE signs its callbacks; i0 checks the signature, the others do not: one run covers a
            # re-bodied signed callback and forged unsigned ones reaching the verdict path
            **({"KIE_WEBHOOK_HMAC_KEY": HMAC_KEY} if name == "i0" else {}),
            "CHAOS_TOKEN": CHAOS_TOKEN, "TELEGRAM_RATE_GLOBAL": "0", "TELEGRAM_RATE_PER_CHAT": "0",
            "HEARTBEAT_INTERVAL": "0.5", "LOCK_RETRY_INTERVAL": "0.2", "STALE_AFTER": "3",
            "INBOX_SWEEP_INTERVAL": "0.2", "RESTART_BACKOFF_MIN": "0.05", "RESTART_BACKOFF_MAX": "0.5",
        }

    async def _start_instances(self) -> None:
        for i in range(self.config.instances):
            slot = Slot(f"i{i}", self.tmp, self._env(f"i{i}"), self.config.code, self.deaths, self.fake.base_url)
            self.slots.append(slot)
            slot.start()
        deadline = time.monotonic() + self.config.start_timeout
        while True:
            looks = await asyncio.gather(*(get_json(self.session, s.base + "/health", 1.0) for s in self.slots))
            states = [role_of(b) for b in looks]
            if all(b is not None for b in looks) and sum(r == "ACTIVE" and c for r, c in states) == 1:
                seen = set((looks[0] or {}).get("actors", {}))
                self.unfaulted = sorted(seen - set(ACTORS) - {"work"})
                return
            for slot in self.slots:
                if not slot.running():
                    raise RuntimeError(f"{slot.name} exited at start; see {slot.started[-1].log_path}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"instances not up with one ACTIVE within {self.config.start_timeout:g}s: {states}")
            await asyncio.sleep(0.2)

    # -- load ----------------------------------------------------------------------------------

    async def _chat(self, chat: int) -> None:
        """One chat, as Telegram feeds a webhook: its next update only once the previous got a 200."""
        mean_pause = self.config.chats / self.config.rate
        await self._pause(self.load_rng.uniform(0, mean_pause))
        while not self.stop_load.is_set():
            update_id = self.next_update_id
            self.next_update_id += 1
            if not await self._deliver(chat, update_id):
                return  # given up: the chat's later updates would be out of its order
            await self._pause(self.load_rng.uniform(0, 2 * mean_pause))

    async def _pause(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(seconds):
                await self.stop_load.wait()

    async def _deliver(self, chat: int, update_id: int) -> bool:
        # the handler works a while before it answers, so a fault finds updates mid-handler, as
        # it would real handlers (a woken ex-leader's late sends come from those)
        work = round(self.load_rng.uniform(0, 2 * self.config.handler_seconds), 3)
        text = f"/chaos_echo {update_id} {work}"
        return await self._post(chat, update_id, message_update(update_id, chat, text, language_code="en"),
                                self.acked)

    async def _post(self, chat: int, update_id: int, update: dict[str, Any], acked: dict[int, int]) -> bool:
        """One update posted as Telegram does: again (to a random instance) until a 200, or given up."""
        body = json.dumps(update).encode()
        headers = {"Content-Type": "application/json", "X-Telegram-Bot-Api-Secret-Token": SECRET}
        self.posted += 1
        give_up = time.monotonic() + self.config.redeliver_for
        attempt = 0
        while True:
            slot = self.load_rng.choice(self.slots)
            try:
                async with self.session.post(slot.base + "/webhook", data=body, headers=headers,
                                             timeout=aiohttp.ClientTimeout(total=self.config.post_timeout)) as r:
                    await r.read()
                    answer = str(r.status)
            except TimeoutError:
                answer = "timeout"
            except (aiohttp.ClientError, OSError):
                answer = "connection error"
            self.posts[answer] += 1
            if answer == "200":
                acked[update_id] = chat
                return True
            attempt += 1
            if time.monotonic() > give_up:
                self.unacked.append(update_id)
                return False
            await asyncio.sleep(0.05 * min(attempt, 6) + self.load_rng.uniform(0, 0.1))

    # -- generations -------------------------------------------------------------------------

    async def _gen_chat(self, chat: int) -> None:
        """A user who makes generations through the wizard, pressing the buttons the bot sent
        (their callback_data, nonces included, read from the fake Telegram): /start, the family
        (paged until the model shows), the model, Start, then each step as it comes (a text for a
        prompt, the first option, Skip, Done), Confirm, then the result or the failure; after a Veo
        video, its 1080p action when the result offers it (Confirm again). Half the walks are on
        nano-banana, the rest spread over the dedicated families (GEN_FAMILIES). A screen that does
        not come within a bound (a fault ate it) starts the walk again from /start; what the bot did
        with every Confirm is judged from the database at the end."""
        families = family_models()
        await self._pause(self.load_rng.uniform(0, 5.0))
        while not self.stop_load.is_set():
            self.gen["walks"] += 1
            family = self.load_rng.choice(sorted(families)) if families and \
                self.load_rng.random() < FAMILY_SHARE else None
            model = families[family] if family else GEN_MODEL
            seen = len(self.fake.shown_messages(chat))
            stopped, seen = await self._walk_to_confirm(chat, model, seen)
            if stopped is not None:
                self.gen[f"stopped at {stopped}"] += 1
                await self._pause(1.0)
                continue
            self.gen["confirmed"] += 1
            self.gen[f"confirmed {family or 'jobs'}"] += 1
            told, seen = await self._gen_end(chat, seen)
            hd = action_button(model, "veo/1080p") if family == "veo" else None
            if told == "a result" and hd is not None:  # its 1080p version: an action on the result
                stopped, seen = await self._gen_action(chat, seen, hd)
                self.gen[f"1080p {stopped or 'confirmed'}"] += 1
                if stopped is None:
                    told, seen = await self._gen_end(chat, seen)
                    self.gen[f"1080p ended with {told}"] += 1
            await self._pause(self.load_rng.uniform(0.5, 3.0))

    async def _walk_to_confirm(self, chat: int, model_id: str, seen: int) -> tuple[str | None, int]:
        """/start to Confirm pressed for `model_id`: where the walk stopped (None: confirmed), and
        how many screens the chat had been shown by then."""
        model = shipped().model(model_id)
        if not await self._gen_update(chat, message_update(self._next_id(), chat, "/start", language_code="en")):
            return "/start (never acknowledged)", seen
        found = await self._gen_button(chat, rf"^{re.escape(keyboards.family_data(model.family))}$", seen, 20.0)
        if found is None:
            return "family", seen
        data, message_id, seen = found
        page = 0
        for _ in range(20):  # the family's pages, until the model shows
            if not await self._press(chat, data, message_id):
                return "family (never acknowledged)", seen
            screen = await self._gen_screen(chat, seen, 20.0, keyboards.MODEL)
            if screen is None:
                return "model", seen
            buttons, message_id, seen = screen
            if keyboards.model_data(model_id) in buttons:
                break
            later = [d for d in buttons if d.startswith(f"{keyboards.FAMILY}{model.family}:")
                     and d.split(":")[2].isdigit() and int(d.split(":")[2]) > page]
            if not later:
                return "model (not listed)", seen
            data, page = later[0], int(later[0].split(":")[2])
        else:
            return "model (too many pages)", seen
        for data, prefix, name in ((keyboards.model_data(model_id), keyboards.START, "start"),
                                   (keyboards.start_data(model_id), keyboards.STEP, "the first step")):
            if not await self._press(chat, data, message_id):
                return f"{name} (never acknowledged)", seen
            screen = await self._gen_screen(chat, seen, 20.0, prefix)
            if screen is None:
                return name, seen
            buttons, message_id, seen = screen
        for step in range(15):  # each step as it comes, until the confirmation's Confirm
            wizard = [d for d in buttons if d.startswith(keyboards.STEP)]
            action = {d.split(":")[2]: d for d in reversed(wizard)}
            if "ok" in action:
                return (None if await self._press(chat, action["ok"], message_id) else
                        "confirm (never acknowledged)"), seen
            pick = next((d for d in wizard if d.split(":")[2] in ("o", "b")), None) or action.get("skip") \
                or action.get("done")
            if pick is not None:
                ok = await self._press(chat, pick, message_id)
            else:  # a step that takes a text: the prompt, a title, a style
                ok = await self._gen_update(chat, message_update(
                    self._next_id(), chat, f"soak {model_id} for chat {chat}", language_code="en"))
            if not ok:
                return f"step {step + 1} (never acknowledged)", seen
            screen = await self._gen_screen(chat, seen, 20.0, keyboards.STEP)
            if screen is None:
                return f"step {step + 1}", seen
            buttons, message_id, seen = screen
        return "steps (too many)", seen

    async def _gen_end(self, chat: int, seen: int) -> tuple[str, int]:
        """How a Confirm ended: the result (its last message carries Again), or a message with Menu
        (a failure, or a Confirm refused while a job of this user runs)."""
        end = rf"^({re.escape(keyboards.AGAIN)}|{re.escape(keyboards.MENU_OPEN)}$)"
        told = await self._gen_button(chat, end, seen, 90.0)
        if told is None:
            self.gen["no answer while loading"] += 1
            return "no answer", seen
        what = "a result" if told[0].startswith(keyboards.AGAIN) else "a message with Menu"
        self.gen[what] += 1
        return what, told[2]

    async def _gen_action(self, chat: int, seen: int, pattern: str) -> tuple[str | None, int]:
        """An action on the result just delivered (its button on the result's messages), through its
        confirmation: where it stopped (None: confirmed)."""
        messages = self.fake.shown_messages(chat)
        found = None
        for index in range(max(0, seen - 4), len(messages)):  # the result's messages, the last few shown
            for data in _buttons_of(messages[index]):
                if re.match(pattern, data):
                    found = data, int(messages[index].message_id or 1)
        if found is None:
            return "no action button", seen
        if not await self._press(chat, *found):
            return "action (never acknowledged)", seen
        for step in range(10):
            screen = await self._gen_screen(chat, seen, 20.0, keyboards.STEP)
            if screen is None:
                return f"action step {step + 1}", seen
            buttons, message_id, seen = screen
            action = {d.split(":")[2]: d for d in buttons if d.startswith(keyboards.STEP)}
            pick = action.get("ok") or action.get("skip") or action.get("done")
            if pick is None:
                return "action (no way on)", seen
            if not await self._press(chat, pick, message_id):
                return "action (never acknowledged)", seen
            if pick == action.get("ok"):
                return None, seen
        return "action (too many steps)", seen

    async def _press(self, chat: int, data: str, message_id: int) -> bool:
        return await self._gen_update(chat, callback_update(self._next_id(), chat, data, message_id,
                                                            language_code="en", user_id=chat, bot_id=BOT_ID))

    async def _gen_screen(self, chat: int, seen: int, timeout: float,
                          prefix: str = "") -> tuple[list[str], int, int] | None:
        """The next screen shown in the chat after the first `seen` with a button whose data starts
        with `prefix`: all its buttons' data, its message id, and how many the chat has been shown
        with it; None by the bound or once the load stops."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and not self.stop_load.is_set():
            sent = self.fake.shown_messages(chat)
            for index in range(seen, len(sent)):
                found = _buttons_of(sent[index])
                if any(d.startswith(prefix) for d in found):
                    return found, int(sent[index].message_id or 1), index + 1
            await asyncio.sleep(0.5)
        return None

    # -- Stars payments ------------------------------------------------------------------------

    def _payers(self) -> list[int]:
        """Half the payers are generation chats (their top-ups race their generations), half only pay."""
        count = self.config.pay_chats
        racing = min(count // 2, self.config.gen_chats)
        return [90_000 + c for c in range(racing)] + [95_000 + c for c in range(count - racing)]

    async def _pay_chat(self, chat: int) -> None:
        """A user who buys Stars packs as Telegram plays it: the pack's button, the invoice the bot
        sends, the pre-checkout query (answered or not, it decides), then the payment, delivered
        2 or 3 times to random instances (Telegram redelivers; a failover lands between copies).
        What the bot did with each acknowledged payment is judged from the database at the end."""
        await self._pause(self.load_rng.uniform(0, 5.0))
        number = 0
        while not self.stop_load.is_set():
            number += 1
            self.pay["walks"] += 1
            stars = self.load_rng.choice((50, 100, 250))
            invoices = len(self.fake.to_chat(chat, "sendInvoice"))
            if not await self._gen_update(chat, callback_update(self._next_id(), chat, f"st:buy:{stars}", 1,
                                                                language_code="en", user_id=chat, bot_id=BOT_ID)):
                self.pay["stopped at the pack (never acknowledged)"] += 1
                continue
            invoice = await self._wait_call(functools.partial(self._new_invoices, chat, invoices), 20.0)
            if invoice is None and self.stop_load.is_set():  # the load ended while it waited: no verdict
                self.pay["stopped by the end of the load"] += 1
                break
            if invoice is None or not invoice.payload:
                self.pay["no invoice"] += 1
                await self._pause(1.0)
                continue
            query_id = f"soak-pcq-{chat}-{number}"
            if not await self._gen_update(chat, pre_checkout_update(self._next_id(), chat, stars, invoice.payload,
                                                                    query_id=query_id, language_code="en")):
                self.pay["stopped at the pre-checkout (never acknowledged)"] += 1
                continue
            answer = await self._wait_call(functools.partial(self._answers, query_id), 20.0)
            if answer is None and self.stop_load.is_set():  # an answer may still come: no verdict either
                self.pay["stopped by the end of the load"] += 1
                break
            if answer is None or not answer.answer_ok:
                # Telegram charges nothing unless the bot said yes within 10 s
                self.pay["pre-checkout unanswered" if answer is None else "pre-checkout refused"] += 1
                continue
            charge = f"soak-{self.config.seed}-{chat}-{number}"
            copies = self.load_rng.choice((2, 3))
            self.payments[charge] = (chat, stars, False)
            for copy in range(copies):
                paid = successful_payment_update(self._next_id(), chat, stars, invoice.payload, language_code="en",
                                                 telegram_payment_charge_id=charge, user_id=chat)
                if await self._gen_update(chat, paid):
                    self.payments[charge] = (chat, stars, True)
                if copy + 1 < copies:
                    await self._pause(self.load_rng.uniform(0.2, 4.0))
            self.pay["paid"] += 1
            await self._pause(self.load_rng.uniform(1.0, 6.0))

    def _new_invoices(self, chat: int, seen: int) -> list[SentCall]:
        return self.fake.to_chat(chat, "sendInvoice")[seen:]

    def _answers(self, query_id: str) -> list[SentCall]:
        return [c for c in self.fake.calls("answerPreCheckoutQuery") if c.query_id == query_id and c.ok]

    async def _wait_call(self, probe: Callable[[], list[SentCall]], timeout: float) -> SentCall | None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and not self.stop_load.is_set():
            found = probe()
            if found:
                return found[0]
            await asyncio.sleep(0.25)
        return None

    def _next_id(self) -> int:
        update_id = self.next_update_id
        self.next_update_id += 1
        return update_id

    async def _gen_update(self, chat: int, update: dict[str, Any]) -> bool:
        return await self._post(chat, int(update["update_id"]), update, self.gen_acked)

    async def _gen_button(self, chat: int, pattern: str, seen: int,
                          timeout: float) -> tuple[str, int, int] | None:
        """The first button matching `pattern` on a message shown in the chat (sent, or edited in)
        after the first `seen` (its data, message id, and how many the chat has been shown with
        it); None by the bound or once the load stops."""
        wanted = re.compile(pattern)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and not self.stop_load.is_set():
            sent = self.fake.shown_messages(chat)
            for index in range(seen, len(sent)):
                markup = sent[index].reply_markup or {}
                if isinstance(markup, str):
                    markup = json.loads(markup)
                for row in markup.get("inline_keyboard", []):
                    for button in row:
                        data = button.get("callback_data") or ""
                        if wanted.match(data):
                            return data, int(sent[index].message_id or 1), index + 1
            await asyncio.sleep(0.5)  # each look scans every call the fake recorded: not too often
        return None

    async def _kie_fault(self, fault: AppliedFault) -> None:
        kie = self.kie
        what = fault.planned.param("answer")
        if what == "fail":
            kie.plan("*", "fail", count=fault.planned.param("count"))
        elif what == "slow":
            kie.plan("*", "success", duration=fault.planned.param("duration"), count=fault.planned.param("count"))
        elif what == "hang":  # createTask never answered: an ambiguous submit, no task made
            kie.inject(CREATE_PATH, hang=True)
        elif what == "drop":  # the task made, the answer lost: an ambiguous submit with a task
            kie.inject(CREATE_PATH, drop_after_create=True)
        else:
            seconds = fault.planned.param("seconds")
            if what == "402":
                credits, kie.credits = kie.credits, 0
                await asyncio.sleep(seconds)
                kie.credits = credits
            elif what == "duplicate":
                kie.callback_duplicates = 2
                await asyncio.sleep(seconds)
                kie.callback_duplicates = 0
            elif what == "lost":
                kie.callbacks = False
                await asyncio.sleep(seconds)
                kie.callbacks = True

    async def _money_fault(self, fault: AppliedFault) -> None:
        kie = self.kie
        what = fault.planned.param("what")
        count = fault.planned.param("count")
        if what in ("cdn502", "cdn520"):  # the task made, then Cloudflare's page instead of KIE's answer
            status = 502 if what == "cdn502" else 520
            kie.inject(CREATE_PATH, body=CLOUDFLARE_PAGES[status], http_status=status, after_create=True, count=count)
        elif what == "partial404":  # two results, the second gone for good
            kie.plan("*", "success", result_count=2, file_faults={1: (404, None)}, count=count)
        elif what == "partial503":  # two results, the second unavailable for a while
            kie.plan("*", "success", result_count=2, file_faults={1: (503, fault.planned.param("seconds"))},
                     count=count)
        elif what == "tg413":
            for method in ("sendPhoto", "sendDocument", "sendVideo"):
                await self.fake.inject(method, status=413, description="Request Entity Too Large", count=10**6,
                                       seconds=fault.planned.param("seconds"))
        else:
            await self._forge(fault, what)

    async def _running_task(self, port: int | None, timeout: float = 15.0) -> FakeTask | None:
        """A task still running at the fake KIE whose callback names a job (and, with `port`,
        goes to that instance); the newest of a few, by the runtime's random stream."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            running = [t for t in self.kie.tasks.values() if not t.terminal and job_id_of(t.callback_url) is not None
                       and (port is None or urlsplit(t.callback_url or "").port == port)]
            if running:
                return self.runtime_rng.choice(running[-3:])
            await asyncio.sleep(0.5)
        return None

    async def _forge(self, fault: AppliedFault, what: str) -> None:
        """A forged callback at a running job (see MONEY_DECK); recorded with the instance's answer."""
        task = await self._running_task(None)
        if task is None or task.callback_url is None:
            fault.outcome = "skipped: no running job"
            return
        job = job_id_of(task.callback_url)
        assert job is not None
        url, trap = task.callback_url, f"{self.trap_base}/creds/{job}.png"
        headers = {"Content-Type": "application/json"}
        if what == "forge_token":
            url, body = wrong_token(url), forged_body(task, "success", [trap], self.kie.credits)
        elif what == "forge_trap":
            body = forged_body(task, "success", [trap], self.kie.credits)
        elif what == "forge_redirect":  # from the fake KIE's host (an allowed one) to the trap
            body = forged_body(task, "success", [self.kie.add_redirect(f"redirect/{job}.png", trap)], self.kie.credits)
        elif what == "forge_fail":
            body = forged_body(task, "fail", [], self.kie.credits)
        else:  # a real signed callback (of another task: its signature covers its taskId and timestamp) re-bodied
            recent = [a for a in self.kie.callback_attempts if "X-Webhook-Signature" in a.headers
                      and time.time() - a.at < 240]
            if not recent:
                fault.outcome = "skipped: no signed callback in the last 4 minutes"
                return
            real = recent[-1]
            other = self.kie.tasks.get(real.task_id)
            if other is None:
                fault.outcome = "skipped: the signed callback's task is gone"
                return
            headers.update({k: v for k, v in real.headers.items() if k.startswith("X-Webhook-")})
            body = forged_body(other, "success", [trap], self.kie.credits)
            # to i0, the instance that checks signatures (every instance serves /kie-callback)
            parts = urlsplit(url)
            url = urlunsplit((parts.scheme, f"127.0.0.1:{self.slots[0].port}", parts.path, parts.query, ""))
        status: int | None = None
        try:
            async with self.session.post(url, data=json.dumps(body).encode(), headers=headers,
                                         timeout=aiohttp.ClientTimeout(total=5)) as response:
                await response.read()
                status = response.status
        except (aiohttp.ClientError, OSError, TimeoutError) as exc:
            fault.detail = f"{type(exc).__name__}"
        self.forged.append(Forged(job, time.time(), FORGED_KINDS[what], status))
        fault.target = f"job {job}"
        fault.detail = (fault.detail + f" answered {status}").strip()

    async def _settle(self, chats: list[asyncio.Task[None]]) -> None:
        """Let every chat's update in delivery finish (bounded by redeliver_for), and every fault
        end (a frozen process woken, a killed one started again), then make sure all run."""
        await asyncio.wait(chats, timeout=self.config.redeliver_for + 10)
        if self.fault_tasks:  # a freeze lasts 7 s at most, a SIGTERM is given 40 s
            await asyncio.wait(list(self.fault_tasks), timeout=self.config.settle_faults_timeout)
        for slot in self.slots:
            if slot.frozen and slot.proc is not None and slot.running():
                slot.proc.signal(signal.SIGCONT)
                slot.frozen = False
            if not slot.running():
                slot.start()

    # -- faults --------------------------------------------------------------------------------

    async def _run_faults(self) -> None:
        began = time.monotonic()
        for planned in self.schedule:
            delay = began + planned.at - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            applied = AppliedFault(planned, time.time())
            self.applied.append(applied)
            task = asyncio.create_task(self._apply(applied))
            self.fault_tasks.add(task)
            task.add_done_callback(self.fault_tasks.discard)
        rest = began + self.config.fault_seconds - time.monotonic()
        if rest > 0:
            await asyncio.sleep(rest)

    async def _roles(self) -> dict[str, tuple[str | None, bool]]:
        looks = await asyncio.gather(*(get_json(self.session, s.base + "/health", 1.0) for s in self.slots))
        return {s.name: role_of(b) for s, b in zip(self.slots, looks, strict=True)}

    async def _apply(self, fault: AppliedFault) -> None:
        planned = fault.planned
        try:
            if planned.target != "-":
                roles = await self._roles()
                name = planned.target
                if name == "active":
                    active = [n for n, (role, _) in roles.items() if role == "ACTIVE"]
                    name = active[0] if len(active) == 1 else self.runtime_rng.choice(sorted(roles))
                    if len(active) != 1:
                        fault.detail = f"(no single ACTIVE: {active})"
                fault.target = name
                fault.was_active = roles[name][0] == "ACTIVE"
            slot = next((s for s in self.slots if s.name == fault.target), None)
            if planned.kind in PROCESS_FAULTS:
                assert slot is not None
                await self._process_fault(fault, slot)
            elif planned.kind == "chaos":
                assert slot is not None
                await self._chaos(fault, slot)
            elif planned.kind == "telegram":
                await self._telegram(fault)
            elif planned.kind == "pg_restart":
                await self._pg_restart(fault)
            elif planned.kind == "kie":
                await self._kie_fault(fault)
            elif planned.kind == "money":
                await self._money_fault(fault)
        except Exception as exc:  # a fault that fails to apply is recorded, never fatal
            fault.outcome = f"failed: {type(exc).__name__}: {exc}"[:300]

    async def _process_fault(self, fault: AppliedFault, slot: Slot) -> None:
        kind = fault.planned.kind
        if slot.down or not slot.running():
            fault.outcome = "skipped: down"
            return
        if slot.frozen:
            fault.outcome = "skipped: already stopped"
            return
        proc = slot.proc
        assert proc is not None
        if kind == "sigstop":
            slot.frozen = True
            proc.signal(signal.SIGSTOP)
            stopped = time.time()  # right after the signal: no earlier than its last instruction
            await asyncio.sleep(fault.planned.param("seconds"))  # how long the freeze lasts: the scenario
            if slot.proc is proc and slot.running():
                self.freezes.append(Freeze(slot.name, slot.incarnation, stopped, time.time()))
                proc.signal(signal.SIGCONT)
                slot.frozen = False
            return
        slot.down = True  # the process manager leaves it to us
        if kind == "kill9":
            await slot.kill()
        else:
            proc.signal(signal.SIGTERM)
            try:
                code = await proc.wait_exit(40)
                slot.died(proc, "sigterm")
                fault.detail = f"exited {code}"
            except AssertionError:
                fault.outcome = "failed: no exit within 40s of SIGTERM; killed"
                await slot.kill()
        await asyncio.sleep(fault.planned.param("down"))  # as long as the process manager takes
        if slot.proc is proc and not slot.running():
            slot.start()

    async def _chaos(self, fault: AppliedFault, slot: Slot) -> None:
        body = {k: v for k, v in fault.planned.params if k != "actor"}
        actor = fault.planned.param("actor")
        try:
            async with self.session.post(f"{slot.base}/chaos/{actor}", json=body, headers=CHAOS_HEADERS,
                                         timeout=aiohttp.ClientTimeout(total=2)) as r:
                text = await r.text()
                if r.status != 202:
                    fault.outcome = f"failed: {r.status} {text[:120]}"
        except (aiohttp.ClientError, OSError, TimeoutError) as exc:
            fault.outcome = f"failed: {type(exc).__name__} {exc}"[:200]

    async def _telegram(self, fault: AppliedFault) -> None:
        answer = fault.planned.param("answer")
        count = fault.planned.param("count")
        if answer == "429":
            await self.fake.inject("sendMessage", retry_after=1, count=count)
        elif answer == "500":
            await self.fake.inject("sendMessage", status=500, count=count)
        else:
            await self.fake.inject("sendMessage", delay=fault.planned.param("delay"), count=count)

    async def _pg_restart(self, fault: AppliedFault) -> None:
        if self.restart_postgres is None:
            fault.outcome = "skipped: PostgreSQL is not ours to restart (DATABASE_URL)"
            return
        if self.pg_lock.locked():
            fault.outcome = "skipped: a restart is running"
            return
        async with self.pg_lock:
            began = time.monotonic()
            await asyncio.to_thread(self.restart_postgres)
            fault.detail = f"took {time.monotonic() - began:.1f}s"

    async def _process_manager(self) -> None:
        """Starts again a process that exited by itself (as Render or systemd would), and notes it."""
        while True:
            await asyncio.sleep(0.5)
            for slot in self.slots:
                if not slot.down and slot.proc is not None and not slot.running():
                    code = slot.proc.proc.returncode if slot.proc.proc is not None else None
                    self.exits.append(f"{slot.name}#{slot.incarnation} exited {code} at {time.time():.3f}")
                    slot.died(slot.proc, "exited")
                    slot.start()

    # -- observation ---------------------------------------------------------------------------

    async def _pending(self) -> int | None:
        """Unfinished inbox rows now; None while the database does not answer."""
        async with self.pending_lock:  # one connection, shared by the sampler and the drain
            return await self._count_pending()

    async def _count_pending(self) -> int | None:
        try:
            if self.pending_conn is None or self.pending_conn.is_closed():
                self.pending_conn = await asyncpg.connect(self.database_url, timeout=1.0)
            value = await self.pending_conn.fetchval(
                "SELECT count(*) FROM inbox WHERE bot_id = $1 AND state < 2", BOT_ID, timeout=1.0)
            beat = await self.pending_conn.fetchrow(  # the epoch's last renewal: where a frozen leader's ended
                "SELECT epoch, extract(epoch FROM heartbeat_at)::float8 AS at FROM leader_heartbeat WHERE name = $1",
                lock_name(BOT_ID), timeout=1.0)
            if beat is not None:
                epoch = int(beat["epoch"])
                self.heartbeats[epoch] = max(self.heartbeats.get(epoch, 0.0), float(beat["at"]))
            return int(value)
        except Exception:  # whatever a restarting server answers (or not): unknown this time
            conn, self.pending_conn = self.pending_conn, None
            if conn is not None:
                conn.terminate()
            return None

    async def _look(self, pending: int | None) -> list[Sample]:
        looks = await asyncio.gather(*(get_json(self.session, s.base + "/health", 1.0) for s in self.slots))
        now = time.time()
        return [Sample(now, s.name, *role_of(b), pending) for s, b in zip(self.slots, looks, strict=True)]

    async def _sample_loop(self) -> None:
        while not self.stop_sampling.is_set():
            began = time.monotonic()
            self.samples += await self._look(await self._pending())
            await asyncio.sleep(max(0.0, self.config.sample_every - (time.monotonic() - began)))

    async def _lag_loop(self) -> None:
        """The bench's own event-loop lag: the fake stamps arrivals in this loop, so it bounds how
        late a send may look (a figure to read a leadership violation against)."""
        while True:
            began = time.monotonic()
            await asyncio.sleep(0.05)
            lag = time.monotonic() - began - 0.05
            self.max_lag = max(self.max_lag, lag)
            if lag > 0.05:
                self.lags.append((time.time() - lag, lag))

    async def _drain(self) -> float | None:
        """Wait (bounded) until every acknowledged update is stored and the inbox has nothing
        unfinished (a row is marked done after its reply went out: nothing more will come), and
        one instance is ACTIVE and consuming; the seconds it took, or None."""
        began = time.monotonic()
        while time.monotonic() - began < self.config.drain_timeout:
            if await self._finished():
                states = await self._roles()
                if sum(r == "ACTIVE" and c for r, c in states.values()) == 1:
                    return time.monotonic() - began
            await asyncio.sleep(0.5)
        return None

    async def _finished(self) -> bool:
        """Every acknowledged update stored and nothing unfinished in the inbox."""
        if await self._pending() != 0:
            return False
        try:
            conn = await asyncpg.connect(self.database_url, timeout=2.0)
            try:
                stored = await conn.fetchval("SELECT count(*) FROM inbox WHERE bot_id = $1 AND update_id = ANY($2)",
                                             BOT_ID, list(self.acked) + list(self.gen_acked), timeout=5.0)
                # an ambiguous submit waits for its callback or its model's timeout (minutes): not for the drain
                undelivered = await conn.fetchval(
                    "SELECT count(*) FROM jobs WHERE bot_id = $1 AND delivered_at IS NULL "
                    "AND NOT (state = 'submitting' AND created_at > now() - make_interval(secs => $2::float8))",
                    BOT_ID, GEN_TIMEOUT, timeout=5.0)
            finally:
                await conn.close()
        except Exception:
            return False
        return int(stored) == len(self.acked) + len(self.gen_acked) and int(undelivered) == 0

    async def _history(self, final: list[Sample]) -> History:
        conn = await asyncpg.connect(self.database_url, timeout=10)
        try:
            leaders = await conn.fetch(
                "SELECT epoch, instance, extract(epoch FROM acquired_at)::float8 AS at FROM leader_history "
                "WHERE name = $1 ORDER BY epoch", lock_name(BOT_ID))
            rows = await conn.fetch("SELECT update_id, chat_key, state, attempts, outcome FROM inbox "
                                    "WHERE bot_id = $1", BOT_ID)
            job_rows = await conn.fetch(
                """SELECT j.id, j.chat_id, j.model, j.state, j.paid_with, j.result,
                          j.delivered_at IS NOT NULL AS delivered,
                          extract(epoch FROM j.created_at)::float8 AS created, j.kie_task_id,
                          count(l.id) FILTER (WHERE l.kind = 'hold') AS holds,
                          count(l.id) FILTER (WHERE l.kind = 'capture') AS captures,
                          count(l.id) FILTER (WHERE l.kind = 'release') AS releases
                     FROM jobs j LEFT JOIN ledger l ON l.job_id = j.id WHERE j.bot_id = $1 GROUP BY j.id""", BOT_ID)
            paid_rows = await conn.fetch(
                """SELECT p.charge_id, p.user_id, p.stars,
                          (SELECT count(*) FROM ledger l WHERE l.bot_id = p.bot_id
                             AND l.idempotency_key = 'stars:' || p.charge_id) AS credits
                     FROM star_payments p WHERE p.bot_id = $1""", BOT_ID)
        finally:
            await conn.close()
        db = Database(self.database_url, "soak-checker", pool_size=1)
        await db.connect()
        try:
            money = await invariants.check(db, BOT_ID)
        finally:
            await db.close()
        await self.fake.refresh()
        to_wall = time.time() - time.monotonic()  # the fake stamps with CLOCK_MONOTONIC (system-wide)
        # the tasks KIE made, by job: when the last ended, how, and the digests and URLs of their files
        ended: dict[int, float] = {}
        outcome: dict[int, str] = {}
        owners: dict[str, set[int]] = {}  # a file's digest -> the jobs whose tasks made those bytes
        urls: dict[str, int] = {}
        for task in sorted(self.kie.tasks.values(), key=lambda t: t.create_time):
            job = job_id_of(task.callback_url)
            if job is None:
                continue
            outcome[job] = task.state
            if task.complete_time is not None:
                ended[job] = max(ended.get(job, 0.0), task.complete_time / 1000)
            for url in task.result_urls or getattr(task, "urls", None) or []:  # a family's task: its items
                urls[url] = job
                stored = self.kie.files.get(unquote(urlsplit(url).path.removeprefix(FILES_PREFIX)))
                if stored is not None:
                    owners.setdefault(hashlib.sha256(stored[0]).hexdigest(), set()).add(job)
        # only bytes one job's task made name that job (the fake's songs and clips repeat across tasks:
        # Suno's two shipped MP3s, a clip per frame; those files are told apart by their URLs alone)
        digests = {digest: next(iter(jobs)) for digest, jobs in owners.items() if len(jobs) == 1}
        for r in job_rows:  # a task no callback names (Veo's 1080p is a GET on its parent's): the URLs it kept
            if r["id"] not in outcome and r["result"] is not None:
                kept = json.loads(r["result"]) if isinstance(r["result"], str) else r["result"]
                for url in (kept.get("urls") or []) if isinstance(kept, dict) else []:
                    if isinstance(url, str):
                        urls.setdefault(url, r["id"])
        creates = []
        made = sorted((job_id_of(t.callback_url), t.create_time / 1000) for t in self.kie.tasks.values())
        calls = sorted((c for c in self.kie.calls() if c.method == "POST" and c.path in CREATE_PATHS),
                       key=lambda c: c.at)
        job_of: dict[int, int | None] = {}  # id(createTask call) -> the job its callBackUrl names
        for create in calls:
            callback = create.json.get("callBackUrl") if isinstance(create.json, dict) else None
            job_of[id(create)] = job_id_of(callback if isinstance(callback, str) else None)
        made_by: set[int] = set()
        for job, at in made:  # the task's call: the last createTask for its job that arrived before it was made
            before = [c for c in calls if job_of[id(c)] == job and c.at <= at + 0.001]
            if before:
                made_by.add(id(before[-1]))
        for create in calls:  # ambiguous: no answer, or a CDN's page instead of KIE's envelope
            creates.append(KieCreate(job_of[id(create)], create.at, id(create) in made_by,
                                     create.status is None or create.injected == "body_after_create"))
        replies = []
        for call in self.fake.calls("sendMessage"):
            update_id, kind = parse_reply(call.text)
            instance, incarnation = call.instance
            chat = call.chat_id
            replies.append(Reply(instance, int(chat) if chat is not None else 0, call.at + to_wall,
                                 call.ok, update_id, kind, incarnation))
        # a result reaches the chat as a file, or as a link to it (the fallback after 413 or "too big")
        media = [c for c in self.fake.calls() if c.method in MEDIA_METHODS
                 or (c.method == "sendMessage" and any(u in urls for u in c.urls))]
        delivered: Counter[int] = Counter()
        for call in media:
            carried = {digests[h] for h in call.hashes if h in digests} | {urls[u] for u in call.urls if u in urls}
            if call.ok:
                for job in carried:
                    delivered[job] += 1
        trap = list(self.trap_log)
        trap += [f"{c.caller} sent {c.method} to chat {c.chat_id} carrying the trap's address ({c.status})"
                 for c in self.fake.calls() if c.watched]
        return History(
            acked=dict(self.acked), replies=replies,
            leadership=[Acquisition(r["epoch"], r["instance"], r["at"]) for r in leaders],
            inbox={r["update_id"]: InboxRow(r["update_id"], r["chat_key"], r["state"], r["attempts"], r["outcome"])
                   for r in rows},
            samples=list(self.samples), final=final, slack=self.config.slack, idle_bound=self.config.idle_bound,
            stalls=[(at + to_wall, lag) for at, lag in await self.fake.lags()], webhook_answers=dict(self.posts),
            deaths=list(self.deaths), heartbeats=dict(self.heartbeats), freezes=list(self.freezes),
            jobs=[JobRow(r["id"], r["chat_id"], r["state"], r["paid_with"], r["delivered"], r["created"],
                         r["holds"], r["captures"], r["releases"], ended.get(r["id"]),
                         r["created"] + timeout_of(r["model"]), r["kie_task_id"], outcome.get(r["id"]),
                         delivered[r["id"]])
                  for r in job_rows],
            ended_at=time.time(),
            kie_creates=creates,
            media=[Media(int(c.chat_id or 0), c.at + to_wall, c.ok, "link" if c.method == "sendMessage" else c.method)
                   for c in media],
            money_problems=money, orphans=self.orphans(), trap_hits=trap, forged=list(self.forged),
            payments_posted=dict(self.payments),
            payments_recorded={r["charge_id"]: (r["user_id"], r["stars"], r["credits"]) for r in paid_rows})

    def orphans(self) -> dict[int, int]:
        """job id -> `kie_orphan_task` lines in every process's log: a log survives the kills that
        reset the metric (trt_kie_orphan_tasks_total counts per process, from 0 at each start)."""
        out: Counter[int] = Counter()
        for slot in self.slots:
            for proc in slot.started:
                with contextlib.suppress(OSError):
                    for line in proc.log_path.read_text(errors="replace").splitlines():
                        if "kie_orphan_task" not in line:
                            continue
                        with contextlib.suppress(ValueError, TypeError):
                            record = json.loads(line)
                            if record.get("event") == "kie_orphan_task" and record.get("job_id") is not None:
                                out[int(record["job_id"])] += 1
        return dict(out)


def _buttons_of(call: SentCall) -> list[str]:
    """The callback_data of every inline button a message shown carried."""
    markup = call.reply_markup or {}
    if isinstance(markup, str):
        markup = json.loads(markup)
    return [b.get("callback_data") or "" for row in markup.get("inline_keyboard", []) for b in row]


def job_id_of(url: str | None) -> int | None:
    """The job a KIE callback URL names: its first all-digit path segment after /kie-callback/
    (config.kie_callback_url: .../kie-callback/<secret>/<job id>, or the job with a token bound to it)."""
    path = urlsplit(url or "").path
    if "/kie-callback/" not in path:
        return None
    for segment in path.split("/kie-callback/", 1)[1].split("/"):
        if segment.isdigit():
            return int(segment)
    return None


def wrong_token(url: str) -> str:
    """The callback URL with every token in it (a path segment after /kie-callback/ that is not the
    job id, a query value) changed in its last character: the job's URL with a wrong token."""
    def flip(text: str) -> str:
        return text[:-1] + ("a" if text[-1:] != "a" else "b") if text else "x"

    parts = urlsplit(url)
    head, _, tail = parts.path.partition("/kie-callback/")
    segments = [seg if seg.isdigit() or not seg else flip(seg) for seg in tail.split("/")]
    query = urlencode([(k, flip(v)) for k, v in parse_qsl(parts.query, keep_blank_values=True)])
    return urlunsplit((parts.scheme, parts.netloc, f"{head}/kie-callback/{'/'.join(segments)}", query, parts.fragment))


def forged_body(task: FakeTask, state: str, urls: list[str], credits: int) -> dict[str, Any]:
    """A callback body in KIE's shape for `task`, claiming `state` with `urls` as its results."""
    now = ms()
    data = task.callback_data(credits)
    data.update(state=state, completeTime=now, updateTime=now, costTime=now - task.create_time,
                resultJson=json.dumps({"resultUrls": urls}) if state == "success" else None,
                failCode=None if state == "success" else "500",
                failMsg=None if state == "success" else "Internal error, please try again later.")
    return {"code": 200 if state == "success" else 501,
            "msg": SUCCESS_CALLBACK_MSG if state == "success" else "Generation failed", "data": data}


async def run_soak(config: SoakConfig, database_url: str, tmp: Path,
                   restart_postgres: Callable[[], None] | None = None) -> SoakResult:
    """One soak on an empty database; `restart_postgres` (blocking) enables the PostgreSQL restarts."""
    return await Soak(config, database_url, tmp, restart_postgres).run()


# -- the command line ----------------------------------------------------------------------------


def describe_code() -> str:
    """The commit the run's code is based on, and whether the working tree differs from it."""
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True,
                              timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=ROOT,
                               capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown (no git)"
    return f"{head or 'unknown'}{' with uncommitted changes' if dirty else ''}"


async def _main(args: argparse.Namespace, tmp: Path) -> SoakResult:
    import os

    from tests.conftest import create_database

    server: Any = None
    restart: Callable[[], None] | None = None
    url = os.environ.get("DATABASE_URL")
    if not url:
        from store import embedded

        (tmp / "pg").mkdir()
        (tmp / "pg").chmod(0o755)
        server, url = await asyncio.to_thread(embedded.start, tmp / "pg")

        def restart() -> None:
            server._stop()
            server.ensure_postgres_running()
    assert url is not None
    try:
        _, soak_url = await create_database(url, f"soak_{args.seed}_{uuid.uuid4().hex[:8]}")
        code = ROOT if args.live else await asyncio.to_thread(snapshot, tmp / "code")
        config = SoakConfig(seed=args.seed, fault_seconds=args.minutes * 60, instances=args.instances,
                            chats=args.chats, rate=args.rate, code=code)
        print(f"code: {describe_code()}{' (the live working tree)' if args.live else ''}", flush=True)
        return await run_soak(config, soak_url, tmp, restart)
    finally:
        if server is not None:
            from store import embedded

            embedded.stop(server)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.soak", description=__doc__.split("\n\n")[0])
    parser.add_argument("--seed", type=int, required=True)
    parser.add_argument("--minutes", type=float, default=3.0, help="of faults (then a quiet period and a drain)")
    parser.add_argument("--instances", type=int, default=3)
    parser.add_argument("--chats", type=int, default=200)
    parser.add_argument("--rate", type=float, default=30.0, help="updates/s over all chats, on average")
    parser.add_argument("--keep", action="store_true", help="keep the work directory (logs) even when clean")
    parser.add_argument("--full", action="store_true", help="print the schedule and the logs even when clean")
    parser.add_argument("--live", action="store_true",
                        help="run the working tree itself, not a snapshot taken at the start")
    args = parser.parse_args(argv)
    tmp = Path(tempfile.mkdtemp(prefix=f"trt-soak-{args.seed}-"))
    tmp.chmod(0o755)
    keep = True
    try:
        result = asyncio.run(_main(args, tmp))
        print(result.report(full=args.full or not result.ok), flush=True)
        keep = args.keep or not result.ok or bool(result.anomalies)
        if keep:
            print(f"work directory kept: {tmp}")
        return 0 if result.ok else 1
    finally:
        if not keep:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
