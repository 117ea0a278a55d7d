"""Traces: the story of one update (`u<update_id>`) or one generation (`j<job_id>`), step by step.

Producers call `emit()` on the hot path, so it never waits and never raises: the event goes to
the sink the tree installs (the TraceBuffer correlation_flusher drains, which drops its oldest
event when full), and a slow or absent database costs trace lines, counted in
trt_trace_events_total{outcome="dropped"}, never a slower update. Log records made under a correlation id join the
trace through `TraceLogHandler`, so a failure shows beside the steps that led to it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from telemetry import logs
from telemetry.metrics import METRICS
from telemetry.trace_buffer import TraceEvent

Sink = Callable[[TraceEvent], bool]  # True when the event was queued and nothing older was pushed out

_sink: Sink | None = None
emitted = 0  # events offered to the sink since start: written + dropped + given up, once all is flushed
# the flusher's own records would come back to it as events (its handlers run under the producers' ids)
_NOT_TRACED = ("trt.correlation_flusher",)
_DROPPED = METRICS.traces.labels("dropped")  # looked up once: emit() is on every hot path
_DATA_KEYS = 12  # a log record's extras kept in its trace event
_VALUE_CHARS = 300


def install(sink: Sink | None) -> None:
    """Point emit() at a sink (the tree's TraceBuffer.put), or at nothing; log records made under a
    correlation id follow (one handler on the root logger, however often this is called)."""
    global _sink
    _sink = sink
    root = logging.getLogger()
    if sink is not None and not any(isinstance(h, TraceLogHandler) for h in root.handlers):
        root.addHandler(TraceLogHandler(logging.INFO))


def emit(event: str, data: dict[str, Any] | None = None, *, correlation_id: str | None = None,
         actor: str | None = None, at: float | None = None) -> None:
    """Record one step of the current correlation id's story; a no-op outside any story. `at`:
    when the step happened (time.time()), for one told later than it happened."""
    cid = correlation_id or logs.correlation_id.get()
    sink = _sink
    if cid is None or sink is None:
        return
    global emitted
    emitted += 1
    try:
        queued = sink(TraceEvent(cid, time.time() if at is None else at, actor or logs.current_actor.get() or "main",
                                 event, data))
    except Exception:  # a trace must never fail the work it describes
        queued = False
    if not queued:
        _DROPPED.inc()


@contextmanager
def timed(event: str, data: dict[str, Any] | None = None) -> Iterator[dict[str, Any]]:
    """Emit `event` once the block ends, with its duration in ms and an `outcome` the block may set
    (the exception's type name when it raises)."""
    fields: dict[str, Any] = dict(data or {})
    began = time.perf_counter()
    try:
        yield fields
    except BaseException as exc:
        fields.setdefault("outcome", type(exc).__name__)
        raise
    finally:
        fields.setdefault("outcome", "ok")
        fields["ms"] = round((time.perf_counter() - began) * 1000, 1)
        emit(event, fields)


def _plain(value: Any) -> Any:
    if value is None or isinstance(value, bool | int | float):
        return value
    return str(value)[:_VALUE_CHARS]


class TraceLogHandler(logging.Handler):
    """Copies log records made under a correlation id into its trace (level and extras kept)."""

    keep_on_setup = True  # logs.setup replaces the output handler, not this one

    def emit(self, record: logging.LogRecord) -> None:
        if _sink is None or record.name.startswith(_NOT_TRACED):
            return
        cid = getattr(record, "correlation_id", None) or logs.correlation_id.get()
        if not cid:
            return
        data: dict[str, Any] = {"level": record.levelname.lower()}
        for key, value in logs.extras(record).items():
            if len(data) > _DATA_KEYS:
                break
            if key not in ("correlation_id", "actor"):
                data[key] = _plain(value)
        if record.exc_info and record.exc_info[0] is not None:
            data["error"] = record.exc_info[0].__name__
        # secrets are masked as in the log line itself: a trace is read by the same people
        data = {k: logs.redact(v) if isinstance(v, str) else v for k, v in data.items()}
        emit(record.getMessage(), data, correlation_id=str(cid), actor=getattr(record, "actor", None))
