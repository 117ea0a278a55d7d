"""`python run.py trace <correlation id>`: one update's (u<update_id>) or one job's (j<job_id>)
story as a timeline, read from the traces table, so an operator answering "why did my /start get
no answer" or "where is my picture" reads what happened instead of grepping logs.

An update that confirmed a generation names its job, and a job names the update that made it:
the linked story is printed after the asked one.
"""

from __future__ import annotations

import datetime as dt
import json
import sys
from typing import Any

from store import traces
from store.database import DB_ERRORS, Database, describe_url
from telemetry import logs

KEYS_FIRST = ("status", "outcome", "ms", "level")


def _fields(data: dict[str, Any] | None) -> str:
    if not data:
        return ""
    ordered = [k for k in KEYS_FIRST if k in data] + sorted(k for k in data if k not in KEYS_FIRST)
    return " ".join(f"{k}={_value(data[k])}" for k in ordered)


def _value(value: Any) -> str:
    """A string with spaces is quoted, so the fields of a line stay apart."""
    return json.dumps(value, ensure_ascii=False) if isinstance(value, str) and " " in value else str(value)


def timeline(correlation_id: str, events: list[dict[str, Any]]) -> list[str]:
    """The lines of one story: offsets from its first event, actor, event and its fields."""
    first = events[0]["at"]
    began = dt.datetime.fromtimestamp(first, dt.UTC).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]
    span = events[-1]["at"] - first
    lines = [f"trace {correlation_id}: {len(events)} events over {span:.3f} s, from {began} UTC"]
    for event in events:
        mark = "!" if (event["data"] or {}).get("level") in ("warning", "error", "critical") else " "
        lines.append(f" {mark}{event['at'] - first:+9.3f} s  {event['actor']:<20} {event['event']:<28} "
                     f"{_fields(event['data'])}".rstrip())
    return lines


def links(correlation_id: str, events: list[dict[str, Any]]) -> list[str]:
    """The other stories this one names: the jobs an update confirmed, the update that made a job."""
    found: list[str] = []
    for event in events:
        data = event["data"] or {}
        if correlation_id.startswith("u") and event["event"] == "job_confirmed" and "job_id" in data:
            found.append(f"j{data['job_id']}")
        if correlation_id.startswith("j") and event["event"] == "confirmed" and data.get("update"):
            found.append(str(data["update"]))
    return list(dict.fromkeys(c for c in found if c != correlation_id))


async def show(database: Database, correlation_id: str) -> int:
    correlation_id = correlation_id.strip()
    try:
        await database.connect()
    except (*DB_ERRORS, OSError) as exc:
        print(logs.redact(f"cannot reach the database at {describe_url(database.url)}: {exc}"), file=sys.stderr)
        return 1
    try:
        events = await traces.for_correlation(database, correlation_id)
        if not events:
            print(f"no trace for {correlation_id!r}: ids look like u<update_id> or j<job_id>, and traces are "
                  "trimmed after INBOX_RETENTION_DAYS", file=sys.stderr)
            return 1
        out = timeline(correlation_id, events)
        for linked in links(correlation_id, events):
            more = await traces.for_correlation(database, linked)
            out.append("")
            out.extend(timeline(linked, more) if more else [f"trace {linked}: no events"])
    except DB_ERRORS as exc:
        print(logs.redact(f"reading traces failed: {exc}"), file=sys.stderr)
        return 1
    finally:
        await database.close()
    print(logs.redact("\n".join(out)))
    return 0
