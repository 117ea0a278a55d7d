"""Reading the catalog's models from the parsed YAML: a model's keys, its SKUs and the checks across models.

Split from catalog/field_reader.py (one field's rules) and catalog/loader.py (the files): here a
model is assembled from its fields and checked as a whole (ids, endpoints, every priced
combination has exactly one SKU, speech and action models exist), and the catalog ordered.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Mapping
from dataclasses import replace
from decimal import Decimal
from types import MappingProxyType
from typing import Any

from catalog import actions as parents
from catalog.families import BY_ID as FAMILIES_BY_ID
from catalog.families import FAMILIES, OUTPUTS
from catalog.field_reader import ID_RE, TITLE_MAX, FieldReader, is_number, to_decimal
from catalog.model import ENDPOINTS, UNITS, Field, Model, Sku, Value, same

MODEL_KEYS = {"id", "family", "output", "title", "description", "fields", "skus", "forbid", "timeout_seconds",
              "popular", "order", "endpoint", "hidden", "actions"}
MODEL_REQUIRED = ("id", "family", "title", "description", "fields", "skus")
SKU_KEYS = {"when", "credits", "unit", "of", "free"}
SNAKE_RE = re.compile(r"[a-z][a-z0-9_]*")
DEDICATED_ID_RE = re.compile(r"([a-z0-9-]+)/([a-z0-9-]+)(?:/([A-Za-z0-9._-]+))?")  # Suno's variants: V5
DESCRIPTION_MAX = 200
TIMEOUT_RANGE = (30, 3600)


class ModelReader(FieldReader):
    """Turns the parsed YAML into the catalog's models, noting every problem instead of stopping at the first."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__(problems)
        self.built: list[tuple[Model, int]] = []
        self.seen: dict[str, str] = {}  # model id -> file it was first found in
        self.position = 0

    # models

    def models(self, file: str, raw: object) -> None:
        if not isinstance(raw, list):
            if raw is not None:
                self.note(file, "models must be a list")
            return
        for index, entry in enumerate(raw):
            self.position += 1
            model = self.model(file, index, entry)
            if model is not None:
                self.built.append((model, self.position))

    def model(self, file: str, index: int, raw: object) -> Model | None:
        if not isinstance(raw, dict):
            self.note(f"{file}: models[{index}]", "must be a mapping")
            return None
        model_id = raw.get("id")
        where = f"{file}: model {model_id!r}" if isinstance(model_id, str) else f"{file}: models[{index}]"
        bad = len(self.problems)
        for key in sorted(set(raw) - MODEL_KEYS, key=str):
            self.note(where, f"unknown key {key!r}")
        for key in MODEL_REQUIRED:
            if key not in raw:
                self.note(where, f"{key} is missing")
        endpoint = raw.get("endpoint", "jobs")
        if endpoint not in ENDPOINTS:
            self.note(where, f"endpoint must be one of {', '.join(ENDPOINTS)}, got {endpoint!r}")
        dedicated = DEDICATED_ID_RE.fullmatch(model_id) if isinstance(model_id, str) else None
        if endpoint != "jobs" and endpoint in ENDPOINTS and (dedicated is None or dedicated.group(1) != endpoint):
            self.note(where, f"id must be {endpoint}/<operation>[/<variant>] (the family picks KIE's path), "
                             f"got {model_id!r}")
        elif endpoint == "jobs" and (not isinstance(model_id, str) or not ID_RE.fullmatch(model_id)):
            self.note(where, f"id must be KIE's model id (lower case, digits, . _ / -), got {model_id!r}")
        if isinstance(model_id, str) and model_id in self.seen:
            self.note(where, f"duplicate id {model_id!r} (first in {self.seen[model_id]})")
        elif isinstance(model_id, str):
            self.seen[model_id] = file
        family = FAMILIES_BY_ID.get(str(raw.get("family")))
        if family is None and "family" in raw:
            self.note(where, f"unknown family {raw.get('family')!r} (known: {', '.join(FAMILIES_BY_ID)})")
        output = raw.get("output", family.output if family else None)
        if output not in OUTPUTS and family is not None:
            self.note(where, f"output must be one of {', '.join(OUTPUTS)}, got {output!r}")
        title = self.text(f"{where}: title", raw.get("title"), TITLE_MAX) if "title" in raw else None
        description = (self.text(f"{where}: description", raw.get("description"), DESCRIPTION_MAX)
                       if "description" in raw else None)
        timeout = raw.get("timeout_seconds", family.timeout_seconds if family else 0)
        if not isinstance(timeout, int) or isinstance(timeout, bool) or not (
                TIMEOUT_RANGE[0] <= timeout <= TIMEOUT_RANGE[1]):
            self.note(where, f"timeout_seconds must be a whole number from {TIMEOUT_RANGE[0]} to {TIMEOUT_RANGE[1]}")
        popular = raw.get("popular", False)
        if not isinstance(popular, bool):
            self.note(where, "popular must be true or false")
        order = raw.get("order", self.position * 10)
        if not isinstance(order, int) or isinstance(order, bool):
            self.note(where, "order must be a whole number")
        hidden = raw.get("hidden", False)
        if not isinstance(hidden, bool):
            self.note(where, "hidden must be true or false")
        actions, trouble = parents.parse_actions(raw.get("actions"))
        for line in trouble:
            self.note(where, line)
        fields = self.fields(where, raw.get("fields"))
        if endpoint == "jobs":
            for item in fields:
                if not SNAKE_RE.fullmatch(item.name):
                    self.note(f"{where}: field {item.name!r}", "the jobs API names its inputs in snake_case")
        if not hidden and any(f.kind == "parent" for f in fields):
            self.note(where, "a parent field needs a parent: the model must be hidden (reached only as an action)")
        by_name = {f.name: f for f in fields}
        skus = self.skus(where, raw.get("skus"), by_name) if "skus" in raw else ()
        forbid = tuple(rule for i, item in enumerate(_as_list(raw.get("forbid")))
                       if (rule := self.when(f"{where}: forbid[{i}]", item, by_name)) is not None)
        if not isinstance(raw.get("forbid", []), list):
            self.note(where, "forbid must be a list of {field: value} combinations")
        if len(self.problems) > bad or title is None or description is None or family is None:
            return None
        model = Model(id=str(model_id), family=family.id, output=str(output), title=title, description=description,
                      fields=fields, skus=skus, timeout_seconds=int(timeout), popular=bool(popular), order=int(order),
                      endpoint=str(endpoint), forbid=forbid, hidden=bool(hidden),
                      actions=tuple(parents.build(entry) for entry in actions))
        self.coverage(where, model)
        return model

    def when(self, where: str, raw: object, fields: Mapping[str, Field]) -> Mapping[str, Value] | None:
        """A {field: value} combination (a SKU's `when`, a `forbid` rule), checked against the fields."""
        if raw is None:
            return MappingProxyType({})
        if not isinstance(raw, dict):
            self.note(where, "must map field names to values")
            return None
        ok = True
        for name, value in raw.items():
            target = fields.get(name)
            if name in self.broken:
                ok = False
            elif target is None:
                self.note(where, f"names no field {name!r}")
                ok = False
            elif target.kind == "parent" and target.mapping is None:
                self.note(where, f"field {name!r} comes from the parent unmapped: give it a map of the values "
                                 "it may take to set a price")
                ok = False
            elif target.kind not in ("enum", "bool", "parent"):
                self.note(where, f"field {name!r} is a {target.kind}: only enum and bool fields can set a price")
                ok = False
            elif not any(same(value, v) for v in target.values()):
                self.note(where, f"{value!r} is not a value of field {name!r}")
                ok = False
        return MappingProxyType(dict(raw)) if ok else None

    def skus(self, where: str, raw: object, fields: Mapping[str, Field]) -> tuple[Sku, ...]:
        if not isinstance(raw, list) or not raw:
            self.note(where, "skus must be a non-empty list")
            return ()
        built: list[Sku] = []
        for index, entry in enumerate(raw):
            here = f"{where}: skus[{index}]"
            if not isinstance(entry, dict):
                self.note(here, "must be a mapping")
                continue
            bad = len(self.problems)
            for key in sorted(set(entry) - SKU_KEYS, key=str):
                self.note(here, f"unknown key {key!r}")
            credits = _credits(entry.get("credits"))
            if "credits" not in entry:
                self.note(here, "has no credits")
            elif credits is None:
                self.note(here, f"credits must be a positive number, got {entry.get('credits')!r}")
            unit, of, free = entry.get("unit", "task"), entry.get("of"), entry.get("free", False)
            if unit not in UNITS:
                self.note(here, f"unit must be one of {', '.join(UNITS)}, got {unit!r}")
            elif unit == "task" and of is not None:
                self.note(here, "of only goes with unit second or 1000_chars")
            elif unit != "task":
                self.metered(here, unit, of, fields)
            if not isinstance(free, bool):
                self.note(here, "free must be true or false")
            when = self.when(f"{here}: when", entry.get("when"), fields)
            if len(self.problems) == bad and credits is not None and when is not None:
                built.append(Sku(when=when, credits=credits, unit=str(unit), of=of, free=free))
        for name in dict.fromkeys(n for s in built for n in s.when):
            target = fields[name]
            if not target.required and target.default is None and target.kind != "parent":
                self.note(where, f"field {name!r} sets the price but may be left unset: give it a default")
        return tuple(built)

    def metered(self, where: str, unit: str, of: object, fields: Mapping[str, Field]) -> None:
        target = fields.get(of) if isinstance(of, str) else None
        if of in self.broken:
            return
        if target is None:
            self.note(where, f"unit {unit} needs `of`, the field it counts, got {of!r}")
        elif unit == "1000_chars" and target.kind not in ("prompt", "text"):
            self.note(where, f"1000_chars counts a text field, {of!r} is a {target.kind}")
        elif unit == "second" and target.media and target.max_seconds is None:
            self.note(where, f"{of!r} sets the price by its length: give it max_seconds")
        elif unit == "second" and not target.media and not (
                target.kind in ("int", "float") or (target.kind == "enum" and all(
                    is_number(v) or (isinstance(v, str) and to_decimal(v) is not None) for v in target.values()))):
            self.note(where, f"second counts a duration (a number, or an audio or video), {of!r} is not one")
        elif not target.media and not target.required and target.default is None:
            self.note(where, f"{of!r} sets the price but may be left unset: give it a default")

    def coverage(self, where: str, model: Model) -> None:
        """Every combination of the price-setting values that KIE accepts has exactly one price."""
        names = model.price_fields
        domains = [model.field(n).values() for n in names]
        for combination in itertools.product(*domains):
            values = dict(zip(names, combination, strict=True))
            if model.forbidden(values):
                continue
            described = ", ".join(f"{k}={v!r}" for k, v in values.items()) or "any values"
            matching = [s for s in model.skus if s.matches(values)]
            if not matching:
                self.note(where, f"no SKU prices {described}")
                continue
            most = max(len(s.when) for s in matching)
            if sum(len(s.when) == most for s in matching) > 1:
                self.note(where, f"several SKUs price {described} equally: make one more specific")

    def spoken_by(self, model: Model) -> Model:
        """The model with each `speak` bound to its speech model, checked: a model of this catalog
        that makes audio from a required `text` field, asks nothing else without a default, and
        speaks in the voice named (one of its `voice` options)."""
        if not any(f.speak for f in model.fields):
            return model
        by_id = {m.id: m for m, _ in self.built}
        fields = []
        for item in model.fields:
            speech = item.speak
            if speech is None:
                fields.append(item)
                continue
            where = f"model {model.id!r}: field {item.name!r}: speak"
            tts = by_id.get(speech.model)
            text = next((f for f in tts.fields if f.name == "text"), None) if tts is not None else None
            if tts is None:
                self.note(where, f"{speech.model!r} is not in the catalog")
            elif tts.output != "audio" or text is None or text.kind not in ("prompt", "text"):
                self.note(where, f"{speech.model!r} is not a text-to-speech model (audio from a `text` field)")
            elif any(f.speak for f in tts.fields):
                self.note(where, f"{speech.model!r} itself speaks typed text: no chains of speech")
            elif any(f.required and f.default is None and f.name not in ("text", "voice") for f in tts.fields):
                self.note(where, f"{speech.model!r} needs more than a text and a voice")
            else:
                voices = next((f for f in tts.fields if f.name == "voice"), None)
                if speech.voice is not None and (voices is None or not any(same(speech.voice, v)
                                                                           for v in voices.values())):
                    self.note(where, f"voice {speech.voice!r} is not a voice of {speech.model!r}")
                elif speech.voice is None and voices is not None and voices.required and voices.default is None:
                    self.note(where, f"{speech.model!r} needs a voice: name one")
                else:
                    item = replace(item, speak=replace(speech, tts=tts))
            fields.append(item)
        return replace(model, fields=tuple(fields))

    def follow_ups(self) -> None:
        """Each action reaches a hidden model whose parent fields its parent can fill, and each
        hidden model is reached by some action (else nobody could ever use it)."""
        by_id = {m.id: m for m, _ in self.built}
        reached: set[str] = set()
        for model, _ in self.built:
            for action in model.actions:
                reached.add(action.model)
                for line in parents.check(model, action, by_id.get(action.model)):
                    self.note(f"model {model.id!r}", line)
        for model, _ in self.built:
            if model.hidden and model.id not in reached:
                self.note(f"model {model.id!r}", "is hidden and no action reaches it: nobody could use it")

    def finish(self) -> tuple[Model, ...]:
        """Cross-model checks, then the display order."""
        ids = {m.id for m, _ in self.built}
        for model, _ in self.built:
            for item in model.fields:
                for source in item.sources:
                    if source not in ids:
                        self.note(f"model {model.id!r}: field {item.name!r}",
                                  f"source {source!r} is not in the catalog")
        self.built = [(self.spoken_by(model), position) for model, position in self.built]
        self.follow_ups()
        family_order = {f.id: f.order for f in FAMILIES}
        ranked = sorted(self.built, key=lambda pair: (family_order[pair[0].family], not pair[0].popular,
                                                      pair[0].order, pair[1]))
        return tuple(m for m, _ in ranked)


def _as_list(raw: object) -> list[Any]:
    return raw if isinstance(raw, list) else []


def _credits(raw: object) -> Decimal | None:
    """Credits as an exact decimal: a YAML 6.5 is read through its shortest form, "104.5" as written."""
    if isinstance(raw, bool):
        return None
    value = (Decimal(repr(raw)) if isinstance(raw, float) else Decimal(raw) if isinstance(raw, int)
             else to_decimal(raw))
    if value is None or not value.is_finite() or value <= 0:
        return None
    return value

