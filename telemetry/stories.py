"""Stories: one update's (u<update_id>) or one job's (j<job_id>) trace events as a timeline,
with the stories it links to (the jobs an update confirmed, the update that made a job). Read by
`python run.py trace` (commands/trace.py) and by the admin's `/admin trace` in Telegram, so both
show the same thing."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from store import traces
from store.database import Database

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


async def story(database: Database, correlation_id: str) -> list[str]:
    """The story's lines and the linked stories after it, over a connected database; none when
    nothing was recorded (a wrong id, or trimmed after INBOX_RETENTION_DAYS)."""
    events = await traces.for_correlation(database, correlation_id)
    if not events:
        return []
    out = timeline(correlation_id, events)
    for linked in links(correlation_id, events):
        more = await traces.for_correlation(database, linked)
        out.append("")
        out.extend(timeline(linked, more) if more else [f"trace {linked}: no events"])
    return out
