"""run.py's first-run bootstrap on a .venv that someone else provisioned (Render builds into
<repo>/.venv with `pip install .`): it must start at once, not pip-install again."""

from __future__ import annotations

import subprocess
import sys
import venv
from pathlib import Path

import pytest

from commands import bootstrap

pytestmark = pytest.mark.timeout(120)


def test_a_provisioned_project_venv_is_stamped_and_never_installed_into_again(tmp_path: Path) -> None:
    root = tmp_path / "repo"
    (root / "commands").mkdir(parents=True)
    (root / "commands" / "__init__.py").write_text("")
    (root / "commands" / "bootstrap.py").write_text(Path(bootstrap.__file__).read_text())
    (root / "pyproject.toml").write_text((bootstrap.ROOT / "pyproject.toml").read_text())
    # the provisioned venv sees this interpreter's packages: everything is installed, no stamp yet
    venv.EnvBuilder(system_site_packages=True, with_pip=False).create(root / ".venv")
    python = root / ".venv" / "bin" / "python"
    site = subprocess.run([sys.executable, "-c", "import aiohttp, os; print(os.path.dirname(os.path.dirname("
                                                 "aiohttp.__file__)))"], capture_output=True, text=True, check=True)
    script = ("import sys; sys.path[:0] = [sys.argv[1], sys.argv[2]]; from commands import bootstrap; "
              "bootstrap.ensure(); print('ready', bootstrap.__file__, sys.prefix, bootstrap.VENV)")
    run = subprocess.run([str(python), "-c", script, str(root), site.stdout.strip()], capture_output=True, text=True,
                         timeout=60)
    assert run.returncode == 0, run.stderr
    assert run.stdout.startswith("ready") and "installing" not in run.stderr, run.stdout + run.stderr
    assert (root / ".venv" / ".trt-requirements").exists(), run.stdout
