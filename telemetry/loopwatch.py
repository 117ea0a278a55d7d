"""Event-loop lag watchdog: a thread that notices when the loop stops turning.

Blocking code in async context (time.sleep, sync I/O, a long CPU loop) stalls every actor at
once and no asyncio timer can see it. A thread can: it asks the loop to run a callback and
measures how late it ran, exports the lag, and logs a stall with the stack that blocked.
"""

from __future__ import annotations

import asyncio
import collections
import sys
import threading
import time
import traceback

from telemetry import logs
from telemetry.metrics import METRICS

log = logs.get("loopwatch")


class LoopWatch:
    def __init__(self, loop: asyncio.AbstractEventLoop, interval: float = 0.25, stall_threshold: float = 0.5) -> None:
        self.loop = loop
        self.interval = interval
        self.stall_threshold = stall_threshold
        self.lag = 0.0
        self.stalls = 0
        self._window: collections.deque[tuple[float, float]] = collections.deque()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="loopwatch", daemon=True)
        self._loop_thread_id = threading.get_ident()

    def start(self) -> None:
        self._loop_thread_id = threading.get_ident()
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()

    @property
    def lag_max(self) -> float:
        return max((lag for _, lag in self._window), default=0.0)

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            ran = threading.Event()
            sent = time.monotonic()
            try:
                self.loop.call_soon_threadsafe(ran.set)
            except RuntimeError:  # the loop is closed: the process is ending
                return
            reported = False
            while not ran.wait(self.stall_threshold if not reported else 1.0):
                if self._stop.is_set():
                    return
                if not reported:
                    reported = True
                    self._report_stall(time.monotonic() - sent)
            self._record(time.monotonic() - sent)

    def _record(self, lag: float) -> None:
        now = time.monotonic()
        self.lag = lag
        self._window.append((now, lag))
        while self._window and now - self._window[0][0] > 60:
            self._window.popleft()
        METRICS.loop_lag.set(lag)
        METRICS.loop_lag_max.set(self.lag_max)
        if lag >= self.stall_threshold:
            log.warning("event_loop_stall_ended", extra={"lag_seconds": round(lag, 3)})

    def _report_stall(self, so_far: float) -> None:
        self.stalls += 1
        METRICS.loop_stalls.inc()
        frame = sys._current_frames().get(self._loop_thread_id)
        stack = "".join(traceback.format_stack(frame, limit=8)) if frame is not None else None
        log.warning("event_loop_stalled", extra={"blocked_seconds": round(so_far, 3), "stack": stack})
