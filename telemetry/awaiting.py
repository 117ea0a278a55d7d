"""Where a task is waiting: the frames of its await chain, outermost first, for a log line.

A stop that cancels tasks and then waits for them hangs only if one of them does not end when
cancelled (a shielded call, a `finally` that awaits the network). The line that says so is of use
only if it names the await each late task sits in. `Task.get_stack()` gives only the outermost
frame of a suspended coroutine, so the chain is followed through each coroutine's `cr_await`.
"""

from __future__ import annotations

import asyncio
from typing import Any


def awaiting(task: asyncio.Task[Any], limit: int = 12) -> str:
    """`file:line in function` for the innermost `limit` coroutines the task is suspended in,
    then what the innermost one waits on, by its type (a Future's iterator, a Task)."""
    parts: list[str] = []
    step: Any = task.get_coro()
    while step is not None and len(parts) < 1000:  # a bound, should a chain ever loop
        frame = getattr(step, "cr_frame", None) or getattr(step, "gi_frame", None)
        if frame is None:
            parts.append(type(step).__name__)
            break
        parts.append(f"{frame.f_code.co_filename.rsplit('/', 1)[-1]}:{frame.f_lineno} in {frame.f_code.co_name}")
        step = getattr(step, "cr_await", None) or getattr(step, "gi_yieldfrom", None)
    shown = parts[-(limit + 1):]
    return " > ".join(["..."] * (len(shown) < len(parts)) + shown)
