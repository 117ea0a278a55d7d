"""A fake of KIE AI's Market ("jobs") API, served by a real aiohttp server on 127.0.0.1.

Why it exists: the end-to-end tests and the demo mode must drive the bot's real KIE client over
real HTTP — envelopes whose business status lives in the body's ``code``, ``param`` and
``resultJson`` sent as JSON *strings*, the waiting → queuing → generating → success|fail
progression, signed and duplicated callbacks, short-lived result URLs, file uploads — without
spending KIE credits or touching the network. Point the bot at it with ``KIE_API_BASE=<base_url>``
(the file upload service, a separate host at KIE, is served from the same base URL here).

The behaviour follows KIE's documented wire format:

* ``POST /api/v1/jobs/createTask`` (Bearer key; ``{model, callBackUrl, input}``) → ``data.taskId``;
* ``GET /api/v1/jobs/recordInfo?taskId=`` → the task record;
* ``GET /api/v1/chat/credit`` → credits left (an int);
* ``POST /api/file-stream-upload`` (multipart ``file``, ``uploadPath``, ``fileName``) → ``data.fileUrl``;
* ``GET /files/<name>`` serves generated results (a small PNG, MP4-ish or MP3-ish bytes) and uploads;
* the dedicated families (Veo, Suno and its lyrics, Runway, Aleph, 4o Image, Flux Kontext) on their
  own paths and in their own shapes: :mod:`fakes.kie.families`, :mod:`fakes.kie.dedicated`.

Tests steer it with :meth:`FakeKie.plan` (outcome and duration of the next tasks),
:meth:`FakeKie.inject` (error envelopes, delays, hangs, a connection dropped after the task was
created), :meth:`FakeKie.finish` (complete a held task), and observe it through
:meth:`FakeKie.calls`, :attr:`FakeKie.tasks`, :attr:`FakeKie.callback_attempts` and
:meth:`FakeKie.wait_for`, which wakes on every change instead of sleeping blindly.

Standalone: ``python -m fakes.kie_api --port 8082`` prints ``{"base_url": ...}`` as one JSON line
and serves until SIGINT or SIGTERM.

The code lives in the package :mod:`fakes.kie` (wire records, the task simulation, the routes,
the steering API); this module is its public entry: the names tests and the demo import, and
the command line.
"""

from __future__ import annotations

import os

from fakes.kie.fake import FakeKie
from fakes.kie.wire import (
    CREATE_PATH,
    CREDIT_PATH,
    DEFAULT_MESSAGES,
    FILES_PREFIX,
    JOB_MODELS,
    RECORD_PATH,
    RUNNING_STATES,
    SUCCESS_CALLBACK_MSG,
    TERMINAL_STATES,
    UPLOAD_PATH,
    Call,
    CallbackAttempt,
    FakeTask,
    Injection,
    MediaKind,
    Outcome,
    Plan,
    media_kind,
    sign_callback,
)
from fakes.server import cli_parser, run_until_signal

__all__ = [
    "CREATE_PATH",
    "CREDIT_PATH",
    "DEFAULT_MESSAGES",
    "FILES_PREFIX",
    "JOB_MODELS",
    "RECORD_PATH",
    "RUNNING_STATES",
    "SUCCESS_CALLBACK_MSG",
    "TERMINAL_STATES",
    "UPLOAD_PATH",
    "Call",
    "CallbackAttempt",
    "FakeKie",
    "FakeTask",
    "Injection",
    "MediaKind",
    "Outcome",
    "Plan",
    "main",
    "media_kind",
    "sign_callback",
]


def main(argv: list[str] | None = None) -> None:
    parser = cli_parser("python -m fakes.kie_api", "Serve a fake KIE jobs API.")
    parser.add_argument("--api-key", default=os.environ.get("KIE_API_KEY") or None, help="default: accept any key")
    parser.add_argument("--duration", type=float, default=3.0, help="seconds until a task finishes")
    parser.add_argument("--credits", type=int, default=100_000)
    parser.add_argument("--hmac-key", default=None, help="sign callbacks with this key")
    parser.add_argument("--public-base-url", default=None, help="base URL used in result/file URLs")
    parser.add_argument("--hd-seconds", type=float, default=None,
                        help="Veo's 1080p is 'processing' this long after the original (default: --duration)")
    parser.add_argument("--family-seconds", action="append", default=[], metavar="KEY=SECONDS",
                        help="a dedicated family's task time, e.g. suno=150 (repeatable)")
    args = parser.parse_args(argv)
    durations = {}
    for pair in args.family_seconds:
        key, _, seconds = pair.partition("=")
        durations[key.strip()] = float(seconds)

    def build() -> FakeKie:
        return FakeKie(
            api_key=args.api_key,
            duration=args.duration,
            credits=args.credits,
            hmac_key=args.hmac_key,
            public_base_url=args.public_base_url,
            hd_seconds=args.hd_seconds,
            durations=durations,
        )

    run_until_signal(build, args.host, args.port)


if __name__ == "__main__":
    main()
