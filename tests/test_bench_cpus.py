"""bench/cpus.py's --pin does what the bench figures claim: the app under test alone on its core
(every thread, including those started before it was placed and after), and the bench with
everything it starts (PostgreSQL, the fake, wrk) off that core. Run in a child interpreter, so
this test process keeps its own affinity."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from bench.cpus import APP_CPU
from tests.procs import ROOT

pytestmark = pytest.mark.timeout(60)

SCRIPT = r"""
import json, os, subprocess, sys
from pathlib import Path
from bench import cpus

cpus.place_app(os.getpid())  # a no-op before --pin
before = sorted(os.sched_getaffinity(0))
cpus.pin_the_rest()
app = subprocess.Popen([sys.executable, "-c", (
    "import sys, threading, time\n"
    "early = threading.Thread(target=time.sleep, args=(30,), daemon=True); early.start()\n"
    "print('up', flush=True)\n"
    "sys.stdin.readline()\n"
    "late = threading.Thread(target=time.sleep, args=(30,), daemon=True); late.start()\n"
    "print('late', flush=True)\n"
    "sys.stdin.readline()\n")], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
assert app.stdout.readline().strip() == "up"
started_off = sorted(os.sched_getaffinity(app.pid))
cpus.place_app(app.pid)
app.stdin.write("\n"); app.stdin.flush()
assert app.stdout.readline().strip() == "late"
threads = {int(t.name): sorted(os.sched_getaffinity(int(t.name))) for t in Path(f"/proc/{app.pid}/task").iterdir()}
other = subprocess.run([sys.executable, "-c", "import os; print(sorted(os.sched_getaffinity(0)))"],
                       capture_output=True, text=True, check=True).stdout.strip()
app.stdin.write("\n"); app.stdin.flush(); app.wait(10)
print(json.dumps({"before": before, "bench": sorted(os.sched_getaffinity(0)), "started_off": started_off,
                  "threads": list(threads.values()), "other": other}))
"""


def test_pin_puts_every_thread_of_the_app_alone_on_its_core_and_all_else_off_it() -> None:
    allowed = os.sched_getaffinity(0)
    if APP_CPU not in allowed or len(allowed) < 2:
        pytest.skip(f"--pin needs core {APP_CPU} and one more; this process may use {sorted(allowed)}")
    done = subprocess.run([sys.executable, "-c", SCRIPT], cwd=ROOT, capture_output=True, text=True, timeout=45,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert done.returncode == 0, done.stderr[-2000:]
    seen = json.loads(done.stdout.strip().splitlines()[-1])
    rest = sorted(allowed - {APP_CPU})
    assert seen["before"] == sorted(allowed), "placing an app does nothing until --pin"
    assert seen["bench"] == rest, "the bench itself is off the app's core"
    assert seen["started_off"] == rest, "what the bench starts inherits that: PostgreSQL, the fake, wrk, the app"
    assert seen["other"] == str(rest)
    assert len(seen["threads"]) == 3, "the app's main thread, one started before it was placed, one after"
    assert all(cpus == [APP_CPU] for cpus in seen["threads"]), seen["threads"]


def test_pin_refuses_a_machine_without_a_second_core() -> None:
    if APP_CPU not in os.sched_getaffinity(0):
        pytest.skip(f"the child is confined to core {APP_CPU}, which this process may not use")
    script = f"import os\nos.sched_setaffinity(0, {{{APP_CPU}}})\nfrom bench import cpus\ncpus.pin_the_rest()"
    done = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=30,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert done.returncode != 0
    assert "--pin needs core 0 and one more" in done.stderr
