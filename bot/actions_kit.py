"""What an action on a result (extend, another version, 1080p, 4K) takes from the job it acts on:
the child model's fields of kind "parent", filled from the parent job's stored result and input
when the action starts, never asked (catalog/field_reader.py and catalog/actions.py: `from:`
task_id | item_ref | item_index | item_url | variant | param:<name>, optional `map:`). Pure: the
router reads the jobs, this reads their fields, so the rules are tested without a chat.

KIE keeps a result 14 days (DEDICATED.md §1.2 "Retention"; Veo's 1080p and 4K only for records
younger than that): an older parent cannot be acted on, and the user is told so plainly.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from catalog.actions import Action, variant_of
from catalog.actions import resolve as mapped
from catalog.model import Field, Model
from store.jobs import Job

RETENTION = timedelta(days=14)
PARENT = "parent"  # the field kind filled from the parent's result


class Unavailable(ValueError):
    """The parent lacks what the action needs (no task id recorded, no such file, a value the
    child's map does not name): the action is not offered for it."""


def operation(model_id: str) -> str:
    """A catalog id's operation (`veo/extend` -> "extend"): which words name the action."""
    parts = model_id.split("/")
    return parts[1] if len(parts) > 1 else parts[0]


def offered(model: Model, parent_input: Mapping[str, Any]) -> tuple[Action, ...]:
    """The follow-ups a result of `model` made with `parent_input` offers (catalog Model.actions,
    each as its `when:` allows): what a result's keyboard shows and what a press may start."""
    return tuple(a for a in model.actions if a.offered(parent_input))


def acting_key(model_id: str) -> str:
    """The text key of the line naming what a child model does to its parent (bot/phrases/actions.py)."""
    return f"acting_{operation(model_id)}"


def items(parent: Job) -> list[dict[str, Any]]:
    """The parent's files as delivery recorded them (result.items, else one per result URL)."""
    result = parent.result or {}
    recorded = result.get("items")
    if isinstance(recorded, list) and recorded:
        return [i if isinstance(i, dict) else {} for i in recorded]
    urls = result.get("urls")
    return [{"url": u} for u in urls if isinstance(u, str)] if isinstance(urls, list) else []


def files(parent: Job) -> int:
    """How many files the parent's result has (a per-item action offers one button each)."""
    return max(1, len(items(parent)))


def task_id(parent: Job) -> str | None:
    """The parent's KIE task id: the one its result recorded, else the one it was submitted as."""
    recorded = (parent.result or {}).get("task_id")
    return recorded if isinstance(recorded, str) and recorded else parent.kie_task_id


def expired(parent: Job, now: datetime) -> bool:
    """Older than KIE keeps results: counted from when its task was sent (KIE's record dates from
    then, not from the finish), else from the job's making."""
    return (parent.submitted_at or parent.created_at) + RETENTION <= now


def actable(parent: Job) -> bool:
    """A result that can be acted on: succeeded and delivered to the user."""
    return parent.state == "succeeded" and parent.delivered_at is not None


def resolve(source: str, parent: Job, item: int | None) -> Any:
    """One `from:` value of the parent (None when it has none)."""
    index = item if item is not None else 0
    if source == "task_id":
        return task_id(parent)
    if source == "item_index":
        return index
    if source in ("item_ref", "item_url"):
        found = items(parent)
        if not 0 <= index < len(found):
            return None
        value = found[index].get("ref" if source == "item_ref" else "url")
        return value if isinstance(value, str) and value else None
    if source == "variant":
        return variant_of(parent.model)
    if source.startswith("param:"):
        return parent.input.get(source[len("param:"):])
    raise Unavailable(f"unknown parent source {source!r}")


def parent_fields(model: Model) -> Sequence[Field]:
    return [f for f in model.fields if f.kind == PARENT]


def parent_values(model: Model, parent: Job, item: int | None = None) -> dict[str, Any]:
    """The child model's parent fields filled from `parent` (its file `item`, 0 when the action is
    not per file), mapped through each field's `map:`. Raises Unavailable when a value is missing
    or its map does not name it: KIE would refuse the task after the money is held."""
    out: dict[str, Any] = {}
    for field in parent_fields(model):
        if field.source is None:
            raise Unavailable(f"{model.id}.{field.name} names no source")
        value = resolve(field.source, parent, item)
        if value is None and field.source == "variant":  # a child acted on again: the value it was sent
            value = parent.input.get(field.name)
        if value is None:
            raise Unavailable(f"{model.id}.{field.name}: the parent job {parent.id} has no {field.source}")
        try:
            out[field.name] = mapped(field, value)
        except KeyError as exc:
            raise Unavailable(str(exc)) from None
    return out


def item_of(model: Model, parent: Job, values: Mapping[str, Any]) -> int | None:
    """Which of the parent's files a child's values name (its item_index, or the file whose ref or
    URL it took), when the parent has several: the confirmation says "file 2"."""
    found = items(parent)
    if len(found) < 2:
        return None
    for field in parent_fields(model):
        value = values.get(field.name)
        if field.source == "item_index" and isinstance(value, int) and 0 <= value < len(found):
            return value
        if field.source in ("item_ref", "item_url") and isinstance(value, str):
            key = "ref" if field.source == "item_ref" else "url"
            matching = [i for i, entry in enumerate(found) if entry.get(key) == value]
            if matching:
                return matching[0]
    return None


def kept(model: Model, payload: Mapping[str, Any]) -> dict[str, Any]:
    """The parent fields of an earlier child job's input: a repetition acts on the same parent
    with the same values (the parent's task id, the file), never re-read."""
    return {f.name: payload[f.name] for f in parent_fields(model) if f.name in payload}
