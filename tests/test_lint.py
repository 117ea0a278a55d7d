"""The code base stays ruff-clean and free of placeholder stubs (part of the one test command)."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest

from tests.procs import ROOT

pytestmark = pytest.mark.timeout(60)
PROGRAM_DIRS = ("actors", "messages", "store", "kie", "bot", "catalog", "fakes")


def test_ruff_is_clean() -> None:
    done = subprocess.run([sys.executable, "-m", "ruff", "check", "."], cwd=ROOT, capture_output=True, text=True,
                          timeout=50)
    assert done.returncode == 0, done.stdout + done.stderr


def test_no_blocking_sleep_or_stubs_in_program_code() -> None:
    files = [p for d in PROGRAM_DIRS for p in (ROOT / d).rglob("*.py")] + list(ROOT.glob("*.py"))
    offenders = []
    for path in files:
        text = path.read_text()
        if re.search(r"\btime\.sleep\(|raise NotImplementedError|^\s*\.\.\.\s*$", text, re.M):
            offenders.append(str(path.relative_to(ROOT)))
    assert not offenders, offenders
