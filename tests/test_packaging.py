"""pyproject.toml describes the project as it is: `pip install -e .` into a fresh virtual
environment works, and every program module is importable from it, wherever the caller stands."""

from __future__ import annotations

import subprocess
import tomllib
import venv
from pathlib import Path

import pytest

from tests.procs import ROOT
from tests.test_architecture import ROOT_MODULES, module_name, program_files


def test_pyproject_lists_exactly_the_root_modules() -> None:
    """Packages are found by setuptools itself; only the three root modules are named, and they
    must be the files that are really there."""
    tool = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    assert set(tool["py-modules"]) == ROOT_MODULES == {p.stem for p in ROOT.glob("*.py")}
    assert set(tool["packages"]) == {"find"}, "packages are discovered (tool.setuptools.packages.find), not listed"


@pytest.mark.timeout(900)
def test_editable_install_into_a_fresh_venv_imports_every_module(tmp_path: Path) -> None:
    env_dir = tmp_path / "venv"
    venv.EnvBuilder(with_pip=True).create(env_dir)
    python = env_dir / "bin" / "python"
    install = subprocess.run([str(python), "-m", "pip", "install", "--disable-pip-version-check", "--quiet",
                              "-e", str(ROOT)], capture_output=True, text=True, timeout=840)
    assert install.returncode == 0, install.stdout[-3000:] + install.stderr[-3000:]
    names = sorted(module_name(p) for p in program_files())
    probe = (
        "import importlib, importlib.metadata, sys\n"
        f"names = {names!r}\n"
        "for name in names:\n"
        "    module = importlib.import_module(name)\n"
        f"    assert module.__file__.startswith({str(ROOT)!r}), (name, module.__file__)\n"
        "print(importlib.metadata.version('trt'), len(names))\n"
    )
    # run from an unrelated folder, so nothing is found through the current directory
    done = subprocess.run([str(python), "-c", probe], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    version, count = done.stdout.split()
    assert version == "0.1.0" and int(count) == len(names) > 40
