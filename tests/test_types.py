"""The program code type-checks under mypy --strict (settings in pyproject.toml), and every
remaining `type: ignore` says why on its line or the line above."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest

from tests.procs import ROOT
from tests.test_architecture import program_files

IGNORE = re.compile(r"#\s*type:\s*ignore(\[[^\]]*\])?(?P<rest>.*)$")


@pytest.mark.timeout(300)
def test_mypy_strict_is_clean_over_the_program() -> None:
    done = subprocess.run([sys.executable, "-m", "mypy", "--no-incremental"], cwd=ROOT, capture_output=True,
                          text=True, timeout=280)
    assert done.returncode == 0, done.stdout[-6000:] + done.stderr[-2000:]


def test_every_type_ignore_says_why() -> None:
    silent = []
    for path in program_files():
        lines = path.read_text().splitlines()
        for number, line in enumerate(lines):
            match = IGNORE.search(line)
            if match is None:
                continue
            reason_here = match.group("rest").strip().lstrip("#").strip()
            reason_above = number > 0 and lines[number - 1].strip().startswith("#")
            if not (match.group(1) and (reason_here or reason_above)):
                silent.append(f"{path.relative_to(ROOT)}:{number + 1}: {line.strip()}")
    assert not silent, "a type: ignore names its error code and says why:\n" + "\n".join(silent)
