"""Running `run.py` as a real subprocess and talking to it over HTTP, for black-box tests."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import aiohttp

ROOT = Path(__file__).resolve().parent.parent
FAKE_TOKEN = "123456789:AAH-fake-token-for-tests-0123456789ab"
T = TypeVar("T")


_handed: set[int] = set()


def free_port() -> int:
    """A port nothing listens on now, and never one this process handed out before: a port bound
    and closed is free again, so two calls can get the same one from the kernel, and a test that
    starts two servers on them (`run.py demo` and its fake Telegram) reaches one for the other."""
    while True:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = int(s.getsockname()[1])
        if port not in _handed:
            _handed.add(port)
            return port


async def eventually(probe: Callable[[], Awaitable[T | None]], timeout: float, what: str,
                     interval: float = 0.05) -> T:
    """Poll `probe` until it returns something truthy, or fail after `timeout` saying `what`."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while True:
        try:
            last = await probe()
        except (aiohttp.ClientError, OSError, ValueError) as exc:
            last = exc
        if last and not isinstance(last, Exception):
            return last
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g}s waiting for {what}; last: {last!r}")
        await asyncio.sleep(interval)


class TrtProcess:
    """One `python run.py <command>` with its own environment, port and log file."""

    def __init__(self, tmp: Path, env: dict[str, str], command: str = "serve", name: str = "trt",
                 root: Path = ROOT) -> None:
        self.port = int(env.get("PORT") or free_port())
        self.base = f"http://127.0.0.1:{self.port}"
        self.log_path = tmp / f"{name}-{self.port}.log"
        full = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "TELEGRAM_BOT_TOKEN")}
        full.update({"PORT": str(self.port), "LOG_LEVEL": "INFO", "INSTANCE_ID": f"{name}-{self.port}",
                     "DATA_DIR": str(tmp / "data")})
        full.update(env)
        self.env = full
        self.command = command
        self.root = root  # another checkout of the program (bench.e2e --against runs an earlier commit)
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> TrtProcess:
        self._log = self.log_path.open("ab")
        self.proc = subprocess.Popen([sys.executable, str(self.root / "run.py"), self.command], cwd=self.root,
                                     env=self.env, stdout=self._log, stderr=subprocess.STDOUT)
        return self

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def log_lines(self) -> list[dict[str, Any]]:
        out = []
        for line in self.log_path.read_text(errors="replace").splitlines():
            try:
                out.append(json.loads(line))
            except ValueError:
                out.append({"event": "non_json", "text": line})
        return out

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace")

    async def get(self, path: str, timeout: float = 5.0) -> tuple[int, Any]:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=timeout)) as session, \
                session.get(self.base + path, allow_redirects=False) as response:
            text = await response.text()
            body = json.loads(text) if response.content_type == "application/json" else text
            return response.status, body

    async def post(self, path: str, body: Any = None, headers: dict[str, str] | None = None,
                   timeout: float = 5.0) -> tuple[int, Any]:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=timeout)) as session, \
                session.post(self.base + path, json=body, headers=headers) as response:
            text = await response.text()
            return response.status, json.loads(text) if response.content_type == "application/json" else text

    async def health(self) -> dict[str, Any]:
        status, body = await self.get("/health")
        assert status == 200, body
        return body

    async def wait_healthy(self, timeout: float = 60.0, status: str | None = None) -> dict[str, Any]:
        async def probe() -> dict[str, Any] | None:
            if self.proc is not None and self.proc.poll() is not None:
                raise AssertionError(f"process exited with {self.proc.returncode}:\n{self.log_text()[-3000:]}")
            body = await self.health()
            if status is None or body["status"] == status:
                return body
            return None

        return await eventually(probe, timeout, f"/health{' ' + status if status else ''} on {self.base}")

    async def wait_exit(self, timeout: float) -> int:
        assert self.proc is not None
        proc = self.proc
        return await eventually(lambda: _returncode(proc), timeout, "process exit") - 1000

    def signal(self, sig: int) -> None:
        assert self.proc is not None
        self.proc.send_signal(sig)

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGCONT)
            self.proc.kill()
            self.proc.wait(10)
        if hasattr(self, "_log"):
            self._log.close()


async def _returncode(proc: subprocess.Popen[bytes]) -> int | None:
    code = proc.poll()
    return None if code is None else code + 1000  # +1000 keeps exit code 0 truthy for eventually()


async def roles(procs: list[TrtProcess]) -> list[tuple[str, int]]:
    """(role, epoch) of each process by its /health; ("DOWN", 0) for one that does not answer."""
    out = []
    for p in procs:
        try:
            body = await p.health()
            out.append((body["role"], body["epoch"]))
        except (OSError, AssertionError, ValueError, aiohttp.ClientError):
            out.append(("DOWN", 0))
    return out


async def one_active(procs: list[TrtProcess]) -> TrtProcess | None:
    """The one ACTIVE process, or None while there is none or more than one."""
    found = await roles(procs)
    active = [p for p, (role, _) in zip(procs, found, strict=True) if role == "ACTIVE"]
    return active[0] if len(active) == 1 else None
