"""The one entrypoint: `serve` (default), `check`, `migrate`, `demo`, `trace`, and `test` for developers.

    python3 run.py [serve|migrate|demo]      python3 run.py check [health URL]
    python3 run.py trace <correlation id>    python3 run.py test [pytest args]

On a fresh machine the first run installs the dependencies into .venv (see commands/bootstrap.py).
Without DATABASE_URL an embedded PostgreSQL under DATA_DIR is started and stopped with us.
Exit codes: 0 clean stop, 1 failure (root supervisor gave up, start failed, check failed),
2 configuration errors (one line each, no traceback).
"""

from __future__ import annotations

import sys
import time

if sys.version_info < (3, 11):  # noqa: UP036 - this line must be readable on an old interpreter
    sys.exit(f"TRT needs Python 3.11 or newer; this is {sys.version.split()[0]}")

from commands import bootstrap

T0 = time.monotonic()
COMMANDS = ("serve", "check", "migrate", "demo", "trace", "test")
USAGE = ("usage: python3 run.py [serve|migrate|demo] | check [health URL] | trace <correlation id>"
         " | test [pytest args]")
ARGUMENTS = {"check": (0, 1), "trace": (1, 1)}  # (fewest, most) for commands that take any


def main(argv: list[str]) -> int:
    command = argv[0] if argv else "serve"
    if command in ("-h", "--help", "help"):
        print(__doc__)
        return 0
    if command not in COMMANDS:
        print(f"unknown command {command!r}\n{USAGE}", file=sys.stderr)
        return 2
    bootstrap.ensure(with_tests=command == "test")
    if command == "test":
        import subprocess

        return subprocess.call([sys.executable, "-m", "pytest", *argv[1:]], cwd=bootstrap.ROOT)
    fewest, most = ARGUMENTS.get(command, (0, 0))
    if not fewest <= max(len(argv) - 1, 0) <= most:
        print(f"wrong arguments for {command}\n{USAGE}", file=sys.stderr)
        return 2
    from ingest import aiogram_on_demand

    aiogram_on_demand.install()  # before anything imports aiogram: its models are built when first used
    from commands.main import execute

    return execute(command, T0, argv[1:])


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
