"""Follow-ups on a result (actions) and the inputs they take from it (fields of kind `parent`).

Why a module of its own: an action ties two models together (the one whose result the user is
looking at, and the hidden model the button starts), so its rules are cross-model checks the
loader runs once every model is read. A `parent` field is never asked: when an action starts,
its value is taken from the parent job (its KIE task id, the chosen file's ref, index or URL,
the parent model id's variant, or one of the parent's inputs) and, with `map`, translated
(Veo's generate says veo3_fast, its extend says fast). Its value is known before the
confirmation, so a mapped parent field may set the price like an enum.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Protocol

Value = str | int | float | bool  # as catalog.model.Value (this module must not import catalog.model: no cycle)

# where a parent field's value comes from (contract of issue 20)
SOURCES = ("task_id", "item_ref", "item_index", "item_url", "variant")
PARAM = "param:"  # param:<name>: the value of the parent's input <name>
PER_ITEM_SOURCES = ("item_ref", "item_index", "item_url")  # these need a chosen file: per_item actions only
SAME_FAMILY_SOURCES = ("task_id", "item_ref")  # a KIE id means something only to its own family
ACTION_KEYS = {"id", "model", "per_item", "when"}
ACTION_ID_RE = re.compile(r"[a-z][a-z0-9_]*")


class Field(Protocol):
    """What these rules read of a catalog.model.Field."""

    @property
    def name(self) -> str: ...
    @property
    def kind(self) -> str: ...
    @property
    def default(self) -> Any: ...
    @property
    def source(self) -> str | None: ...
    @property
    def mapping(self) -> Mapping[Value, Value] | None: ...
    def values(self) -> tuple[Value, ...]: ...


class Model(Protocol):
    """What these rules read of a catalog.model.Model."""

    @property
    def id(self) -> str: ...
    @property
    def endpoint(self) -> str: ...
    @property
    def hidden(self) -> bool: ...
    @property
    def fields(self) -> Sequence[Field]: ...


def same(a: object, b: object) -> bool:
    """Equal and of the same type (catalog.model.same: KIE tells "5" from 5)."""
    return type(a) is type(b) and a == b


@dataclass(frozen=True)
class Action:
    """A follow-up a model's result offers: a button that starts the hidden model `model` as a
    child job of the result. per_item: one button per file of the result (Suno's two songs),
    the field values from item_* taken from that file. when: offered only when the parent's
    input has these values (a value or a tuple of values each); empty: always."""

    id: str
    model: str
    per_item: bool = False
    when: Mapping[str, tuple[Value, ...]] = field(default_factory=lambda: MappingProxyType({}))

    def offered(self, parent_input: Mapping[str, object]) -> bool:
        """Whether the parent's input (the values it was made with) allows this action."""
        return all(name in parent_input and any(same(parent_input[name], v) for v in values)
                   for name, values in self.when.items())


def parse_source(raw: object) -> str | None:
    """The `from:` of a parent field when it is one the contract knows, else None."""
    if not isinstance(raw, str):
        return None
    if raw in SOURCES:
        return raw
    if raw.startswith(PARAM) and re.fullmatch(r"[a-z][a-zA-Z0-9_]*", raw[len(PARAM):]):
        return raw
    return None


def parse_map(raw: object) -> tuple[Mapping[Value, Value] | None, str | None]:
    """A parent field's `map:` ({parent value: value sent}), or the problem with it."""
    if raw is None:
        return None, None
    if not isinstance(raw, dict) or not raw:
        return None, "map must be a non-empty {parent value: value sent} mapping"
    for key, value in raw.items():
        for scalar in (key, value):
            if not isinstance(scalar, str | int | float) or isinstance(scalar, bool):
                return None, f"map values must be strings or numbers, got {scalar!r}"
    return MappingProxyType(dict(raw)), None


def mapped_values(item: Field) -> tuple[Value, ...]:
    """What a mapped parent field may be sent as, in the map's order, once each."""
    if item.mapping is None:
        return ()
    out: list[Value] = []
    for value in item.mapping.values():
        if not any(same(value, seen) for seen in out):
            out.append(value)
    return tuple(out)


def resolve(item: Field, raw: object) -> object:
    """The value sent for a parent field, given what its source holds: mapped when there is a map
    (a value the map does not name raises KeyError: the action must not be offered then)."""
    if item.mapping is None:
        return raw
    for key, value in item.mapping.items():
        if same(key, raw):
            return value
    raise KeyError(f"{item.name}: the parent's {raw!r} is not in the map")


def variant_of(model_id: str) -> str | None:
    """The variant segment of a dedicated id (`veo/generate/veo3_fast` -> veo3_fast), else None."""
    parts = model_id.split("/")
    return parts[2] if len(parts) == 3 else None


def parse_actions(raw: object) -> tuple[list[dict[str, Any]], list[str]]:
    """The raw `actions:` list checked for shape only; the cross-model rules are in check()."""
    if raw is None:
        return [], []
    if not isinstance(raw, list):
        return [], ["actions must be a list of {id, model, per_item?, when?}"]
    entries: list[dict[str, Any]] = []
    problems: list[str] = []
    seen: set[str] = set()
    for index, entry in enumerate(raw):
        here = f"actions[{index}]"
        if not isinstance(entry, dict):
            problems.append(f"{here}: must be a mapping {{id, model, per_item?, when?}}")
            continue
        bad = len(problems)
        for key in sorted(set(entry) - ACTION_KEYS, key=str):
            problems.append(f"{here}: unknown key {key!r}")
        action_id, model = entry.get("id"), entry.get("model")
        if not isinstance(action_id, str) or not ACTION_ID_RE.fullmatch(action_id):
            problems.append(f"{here}: id must be a short snake_case name, got {action_id!r}")
        elif action_id in seen:
            problems.append(f"{here}: id {action_id!r} is given twice")
        else:
            seen.add(action_id)
        if not isinstance(model, str) or not model:
            problems.append(f"{here}: model must be a model id of this catalog, got {model!r}")
        if not isinstance(entry.get("per_item", False), bool):
            problems.append(f"{here}: per_item must be true or false")
        when = entry.get("when", {})
        if not isinstance(when, dict):
            problems.append(f"{here}: when must map the parent's fields to a value or a list of values")
        if len(problems) == bad:
            entries.append(entry)
    return entries, problems


def build(entry: Mapping[str, Any]) -> Action:
    when = {str(k): tuple(v) if isinstance(v, list) else (v,) for k, v in (entry.get("when") or {}).items()}
    return Action(id=str(entry["id"]), model=str(entry["model"]), per_item=bool(entry.get("per_item", False)),
                  when=MappingProxyType(when))


def check(parent: Model, action: Action, target: Model | None) -> list[str]:
    """Why `action` on `parent` cannot work, one line each (empty: it can): the target exists and
    is hidden, per-file sources come with per_item, an id of KIE's goes to its own family, the
    variant and param sources name what the parent has, and a map covers the parent's values."""
    here = f"action {action.id!r}"
    if target is None:
        return [f"{here}: model {action.model!r} is not in the catalog"]
    found: list[str] = []
    if not target.hidden:
        found.append(f"{here}: {target.id!r} is not hidden (an action's model is reached only from a result)")
    for name, values in action.when.items():
        item = next((f for f in parent.fields if f.name == name), None)
        if item is None:
            found.append(f"{here}: when names no field {name!r} of {parent.id!r}")
        elif item.values() and not all(any(same(v, w) for w in item.values()) for v in values):
            found.append(f"{here}: when gives {name!r} a value {parent.id!r} never has")
    for item in target.fields:
        if item.kind != "parent" or item.source is None:
            continue
        where = f"{here}: field {item.name!r} from {item.source}"
        if item.source in PER_ITEM_SOURCES and not action.per_item:
            found.append(f"{where}: needs per_item: true (which file of the result?)")
        if item.source in SAME_FAMILY_SOURCES and target.endpoint != parent.endpoint:
            found.append(f"{where}: {target.endpoint!r} cannot use an id of {parent.endpoint!r}")
        parent_values: tuple[Value, ...] = ()
        if item.source == "variant":
            variant = variant_of(parent.id)
            own = next((f for f in parent.fields if f.name == item.name), None)
            if variant is None and own is None:
                found.append(f"{where}: {parent.id!r} has no variant, nor a field {item.name!r} that carries it")
                continue
            if variant is not None:
                parent_values = (variant,)
            elif own is not None:  # a child acted on again (an extended song extended): its own value
                parent_values = mapped_values(own) if own.kind == "parent" else own.values()
        elif item.source.startswith(PARAM):
            name = item.source[len(PARAM):]
            source = next((f for f in parent.fields if f.name == name), None)
            if source is None:
                found.append(f"{where}: {parent.id!r} has no field {name!r}")
                continue
            parent_values = source.values() if source.kind != "parent" else mapped_values(source)
            if not parent_values and source.default is not None:
                parent_values = (source.default,)
        if item.mapping is not None:
            for value in parent_values:
                if not any(same(value, key) for key in item.mapping):
                    found.append(f"{where}: the map has no value for the parent's {value!r}")
    return found
