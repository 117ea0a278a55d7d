"""The fake KIE of bench.generation, stamped with the bench's clock, runnable in a process of its own.

    .venv/bin/python -m bench.timed_kie --port 8082 [--duration 1] [--no-callbacks]

Why a process of its own: in scenario A the bench posts 50 Confirm presses at once from its
event loop; a fake KIE on that same loop stamped each createTask only when the loop got to it,
10-12 ms after TRT's own trace of the finished call, so the bench measured its own queue. Out
here, only the arrival is stamped. Every stamp is time.monotonic(), one clock for every process
on the machine (the fake Telegram stamps with it too). GET /_bench/stamps returns what the bench
reads: each createTask's arrival, status and prompt, and when each task's callback left; with
?creates=N it first waits for N createTask calls.
"""

from __future__ import annotations

import contextlib
import time
from typing import Any

from aiohttp import web

from fakes.kie_api import CREATE_PATH, Call, FakeKie, FakeTask, Outcome
from fakes.server import cli_parser, run_until_signal

STAMPS_PATH = "/_bench/stamps"


class TimedKie(FakeKie):
    """The fake KIE with the bench's clock: every recorded request's ``at`` is time.monotonic()
    (not the wall clock the fake keeps), and each task's end and callback are stamped too."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.ended_at: dict[str, float] = {}
        self.called_back_at: dict[str, float] = {}

    def _build_app(self) -> web.Application:
        app = super()._build_app()
        app.router.add_get(STAMPS_PATH, self._stamps)
        return app

    async def _record(self, request: web.Request) -> Call:
        call = await super()._record(request)
        call.at = time.monotonic()
        return call

    def _complete(self, task: FakeTask, outcome: Outcome, *, fail_code: str | None = None,
                  fail_msg: str | None = None) -> None:
        was_terminal = task.terminal
        super()._complete(task, outcome, fail_code=fail_code, fail_msg=fail_msg)
        if not was_terminal and task.terminal:
            self.ended_at[task.task_id] = time.monotonic()

    async def _send_callbacks(self, task: FakeTask, bodies: list[tuple[str | None, dict[str, Any]]]) -> None:
        self.called_back_at.setdefault(task.task_id, time.monotonic())
        await super()._send_callbacks(task, bodies)

    async def _stamps(self, request: web.Request) -> web.Response:
        """?creates=N&timeout=S waits (woken by each change, not polled) until N createTask calls
        arrived or S seconds passed: the bench's wait adds no requests to the window it measures."""
        wanted = int(request.query.get("creates", "0"))
        if wanted:
            with contextlib.suppress(TimeoutError):
                await self.wait_for(lambda: len(self.calls(CREATE_PATH)) >= wanted,
                                    float(request.query.get("timeout", "30")), "createTask calls")
        creates = [{"at": c.at, "status": c.status,
                    "prompt": str(((c.json or {}).get("input") or {}).get("prompt", ""))}
                   for c in self.calls(CREATE_PATH)]
        called_back = {str(self.tasks[t].input.get("prompt", "")): at for t, at in self.called_back_at.items()}
        return web.json_response({"creates": creates, "called_back": called_back})


def main(argv: list[str] | None = None) -> None:
    parser = cli_parser("python -m bench.timed_kie", "Serve bench.generation's fake KIE.")
    parser.add_argument("--duration", type=float, default=1.0, help="seconds until a task finishes")
    parser.add_argument("--no-callbacks", action="store_true", help="post no callbacks (KIE's are not assured)")
    args = parser.parse_args(argv)
    run_until_signal(lambda: TimedKie(duration=args.duration, callbacks=not args.no_callbacks), args.host, args.port)


if __name__ == "__main__":
    main()
