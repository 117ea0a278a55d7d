"""The catalog: what the bot sells, read from catalog/models/*.yaml and validated whole at start.

The YAML files are the single source of truth for models, the inputs a chat collects for each,
and their prices in KIE credits. Everything is checked before the bot starts (unknown keys, an
enum value without a label, a SKU without credits, a required input the wizard cannot ask for, a
duplicate id, a choice of options no SKU prices), and every problem is reported together, one
line each, like config.ConfigError: a bad catalog must never reach a user as a wrong price or a
task KIE refuses after the money is taken.

File layout: a mapping with `models` (a list), and optionally `labels` (shared option labels:
label set -> value -> {ru, en}) and `field_titles` (field name -> {ru, en}), shared by all files.

A model of a dedicated KIE family (issue 20: `endpoint: veo`, ...) has the id
`<endpoint>/<operation>[/<variant>]` and KIE's camelCase input names; `hidden: true` models are
reached only as `actions` on another model's result, their `parent` fields filled from it
(catalog/actions.py holds those rules).
"""

from __future__ import annotations

import itertools
import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from dataclasses import field as dataclass_field
from decimal import Decimal, InvalidOperation
from functools import cache, cached_property
from pathlib import Path
from types import MappingProxyType
from typing import Any, TypeGuard

import yaml

from catalog import actions as parents
from catalog.actions import Action
from catalog.families import BY_ID as FAMILIES_BY_ID
from catalog.families import FAMILIES, LANGUAGES, OUTPUTS, Family, Text

MODELS_DIR = Path(__file__).with_name("models")

Value = str | int | float | bool  # a scalar as KIE takes it: "5" and 5 are different values

# What a field is to the wizard. prompt/text: typed text; enum: buttons; bool: yes/no; int/float: a
# number; image/video/audio: files the user sends (uploaded, then passed to KIE as URLs); task: one
# of the user's earlier results from `sources` (KIE takes its task id); json: a fixed value sent as
# its default and never asked; parent: taken from the parent job when an action starts (catalog.actions).
KINDS = ("prompt", "text", "enum", "bool", "int", "float", "image", "video", "audio", "task", "json", "parent")
MEDIA = ("image", "video", "audio")
UNITS = ("task", "second", "1000_chars")  # what one SKU price is for
# KIE's jobs API, then the dedicated families (issue 20; the names kie.families registers, stored in
# jobs.endpoint). A dedicated model's id is "<endpoint>/<operation>[/<variant>]".
ENDPOINTS = ("jobs", "veo", "suno", "suno-lyrics", "runway", "aleph", "gpt4o", "flux-kontext")

FILE_KEYS = {"models", "labels", "field_titles"}
MODEL_KEYS = {"id", "family", "output", "title", "description", "fields", "skus", "forbid", "timeout_seconds",
              "popular", "order", "endpoint", "hidden", "actions"}
MODEL_REQUIRED = ("id", "family", "title", "description", "fields", "skus")
SKU_KEYS = {"when", "credits", "unit", "of", "free"}
OPTION_KEYS = {"value", "ru", "en"}
FIELD_COMMON = {"name", "kind", "title", "required", "ask", "default"}
FIELD_KEYS: dict[str, set[str]] = {
    "prompt": {"max_length", "min_length"},
    "text": {"max_length", "min_length", "pattern"},
    "enum": {"options", "labels"},
    "bool": set(),
    "int": {"min", "max"},
    "float": {"min", "max"},
    "image": {"array", "min_items", "max_items", "max_mb", "mime", "max_side"},
    "video": {"array", "min_items", "max_items", "max_mb", "mime", "max_seconds"},
    "audio": {"array", "min_items", "max_items", "max_mb", "mime", "max_seconds", "speak"},
    "task": {"sources"},
    "json": set(),
    "parent": {"from", "map"},
}
SPEAK_KEYS = {"model", "chars_per_second", "voice"}
SPEAK_KEY = "speak"  # a spoken value: {"speak": text, "tts": model id, "voice": ..., "seconds": estimate}
NAME_RE = re.compile(r"[a-z][a-zA-Z0-9_]*")  # as KIE spells it: the jobs API snake_case, dedicated ones camelCase
SNAKE_RE = re.compile(r"[a-z][a-z0-9_]*")
DEDICATED_ID_RE = re.compile(r"([a-z0-9-]+)/([a-z0-9-]+)(?:/([A-Za-z0-9._-]+))?")  # Suno's variants: V5
ID_RE = re.compile(r"[a-z0-9][a-z0-9._/-]*")
TITLE_MAX, DESCRIPTION_MAX = 48, 200
TIMEOUT_RANGE = (30, 3600)


class CatalogError(Exception):
    """Raised with every catalog problem found, one per line."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


@dataclass(frozen=True)
class Option:
    value: Value
    label: Text


@dataclass(frozen=True)
class Speech:
    """An audio step that also takes typed text: the bot speaks it with `model` (a text-to-speech
    model of this catalog) in the same job, before the model that takes the audio.

    The audio's length is estimated before anything is made: one second per `chars_per_second`
    characters, rounded up (at least one second); the price is the speech's own price for the text
    plus the audio model's price for those seconds, and a text whose estimate is over the field's
    max_seconds is refused."""

    model: str
    chars_per_second: Decimal
    voice: Value | None = None  # None: the speech model's default voice
    tts: Model | None = dataclass_field(default=None, compare=False)  # the speech model, set once the catalog is read

    def seconds(self, text: str) -> int:
        """The estimated seconds `text` plays for when spoken."""
        return max(1, math.ceil(Decimal(len(text)) / self.chars_per_second))

    def most_characters(self, max_seconds: float) -> int:
        """The longest text whose estimate fits in `max_seconds`."""
        return int(Decimal(str(max_seconds)) * self.chars_per_second)

    def tts_values(self, value: Mapping[str, Any]) -> dict[str, Any]:
        """What the speech model is asked (the text, and the voice the value names)."""
        chosen: dict[str, Any] = {"text": value[SPEAK_KEY]}
        if value.get("voice") is not None:
            chosen["voice"] = value["voice"]
        return chosen

    def credits(self, value: Mapping[str, Any]) -> Decimal:
        """The speech model's price for the value's text, in KIE credits."""
        if self.tts is None:
            raise LookupError(f"speech model {self.model!r} is not resolved")
        return self.tts.credits(self.tts_values(value))


def spoken(value: object) -> Mapping[str, Any] | None:
    """The value when it is a typed text to speak (see Speech), else None."""
    if isinstance(value, Mapping) and isinstance(value.get(SPEAK_KEY), str):
        return value
    return None


@dataclass(frozen=True)
class Field:
    """One input of a model, named exactly as KIE names it, in the order the wizard asks."""

    name: str
    kind: str
    title: Text | None  # the wizard's question; None only for fields never asked
    required: bool = False
    ask: bool = True  # False: never asked, `default` is sent as it is
    default: Any = None  # preselected, and sent when the user skips the field; None: not sent
    options: tuple[Option, ...] = ()
    min_length: int | None = None
    max_length: int | None = None
    pattern: str | None = None
    minimum: int | float | None = None
    maximum: int | float | None = None
    array: bool = False  # KIE takes a list of URLs (image_urls) rather than one string (image_url)
    min_items: int = 1
    max_items: int = 1
    max_bytes: int | None = None
    mime: tuple[str, ...] = ()
    max_seconds: float | None = None  # longest audio or video KIE accepts (and we price for)
    max_side: int | None = None  # an image's longest side in pixels, where the price depends on the size
    sources: tuple[str, ...] = ()  # task: the models whose results may be picked
    speak: Speech | None = None  # audio: a typed text is spoken by the bot's own speech model
    source: str | None = None  # parent: where the value comes from (`from:`, catalog.actions.SOURCES or param:<name>)
    mapping: Mapping[Value, Value] | None = None  # parent: {the parent's value: the value sent} (`map:`)

    @property
    def media(self) -> bool:
        return self.kind in MEDIA

    def values(self) -> tuple[Value, ...]:
        """The values the field may take, when there are few: an enum's options, a flag's two states."""
        if self.kind == "bool":
            return (False, True)
        if self.kind == "parent":  # known before the confirmation only through a map
            return parents.mapped_values(self)
        return tuple(o.value for o in self.options)

    def option(self, value: object) -> Option:
        for option in self.options:
            if same(option.value, value):
                return option
        raise KeyError(f"{self.name}: {value!r} is not an option")


@dataclass(frozen=True)
class Sku:
    """A price in KIE credits, for the field values in `when` (empty: any), per `unit`.

    unit "task": the credits are the price; "second": per second of `of` (a duration field's value,
    or the length of the audio or video in it); "1000_chars": per thousand characters of `of`.
    """

    when: Mapping[str, Value]
    credits: Decimal
    unit: str = "task"
    of: str | None = None
    free: bool = False  # offered on the free tier

    def matches(self, values: Mapping[str, object]) -> bool:
        return all(name in values and same(values[name], value) for name, value in self.when.items())


@dataclass(frozen=True)
class Model:
    id: str  # KIE's model id, sent as it is
    family: str
    output: str  # photo, video, audio or document
    title: Text
    description: Text
    fields: tuple[Field, ...]
    skus: tuple[Sku, ...]
    timeout_seconds: int
    popular: bool
    order: int
    endpoint: str = "jobs"
    forbid: tuple[Mapping[str, Value], ...] = ()  # combinations KIE refuses (10 s at 1080P, ...)
    hidden: bool = False  # reached only as an action on a result: not in menus, search or intake
    actions: tuple[Action, ...] = ()  # the follow-ups its results offer (catalog.actions)

    def field(self, name: str) -> Field:
        for item in self.fields:
            if item.name == name:
                return item
        raise KeyError(f"{self.id} has no field {name!r}")

    def defaults(self) -> dict[str, Any]:
        """What is sent when the user chooses nothing: every field with a default."""
        return {f.name: f.default for f in self.fields if f.default is not None}

    @cached_property
    def price_fields(self) -> tuple[str, ...]:
        """The fields whose values change the price, in the order they are asked."""
        named = {name for sku in self.skus for name in sku.when}
        return tuple(f.name for f in self.fields if f.name in named)

    def forbidden(self, values: Mapping[str, object]) -> bool:
        """True when KIE refuses this combination of values: the wizard must not offer it."""
        return any(all(k in values and same(values[k], v) for k, v in rule.items()) for rule in self.forbid)

    def sku_for(self, values: Mapping[str, object]) -> Sku:
        """The most specific SKU that matches the values (defaults fill what is not chosen)."""
        full = {**self.defaults(), **values}
        return _best_sku(self.skus, full, self.id)

    def credits(self, values: Mapping[str, object], seconds: Mapping[str, float] | None = None) -> Decimal:
        """The price of a task in KIE credits. `seconds` gives the length of the audio or video in a
        field whose length sets the price (measured when the user sent it)."""
        full = {**self.defaults(), **values}
        sku = _best_sku(self.skus, full, self.id)
        total = sku.credits * self._quantity(sku, full, seconds or {}, upper=False)
        for item in self.fields:  # a typed text spoken first: the speech model's price on top
            value = spoken(full.get(item.name))
            if value is not None and item.speak is not None:
                total += item.speak.credits(value)
        return total

    def max_credits(self, values: Mapping[str, object]) -> Decimal:
        """The price before the lengths are known: the longest audio or video, the longest text."""
        full = {**self.defaults(), **values}
        sku = _best_sku(self.skus, full, self.id)
        return sku.credits * self._quantity(sku, full, {}, upper=True)

    def _quantity(self, sku: Sku, values: Mapping[str, object], seconds: Mapping[str, float], upper: bool) -> Decimal:
        if sku.unit == "task" or sku.of is None:
            return Decimal(1)
        metered = self.field(sku.of)
        if sku.unit == "1000_chars":
            text = values.get(metered.name)
            count = (metered.max_length or 0) if upper else (len(text) if isinstance(text, str) else 0)
            return Decimal(count) / 1000
        if metered.media:
            if upper:
                return Decimal(math.ceil(metered.max_seconds or 0))
            if metered.name not in seconds:
                raise ValueError(f"{self.id}: the price needs the length of {metered.name} in seconds")
            return Decimal(math.ceil(seconds[metered.name]))
        return Decimal(str(values[metered.name]))


@dataclass(frozen=True)
class Catalog:
    """What is on sale. `models` are the ones a user can pick (menus, search, intake, the first
    screen's prices); `hidden` ones are reached only as actions on a result, yet model() finds
    them. Hidden models passed in `models` are moved to `hidden`."""

    models: tuple[Model, ...]  # in display order: by family, popular first, then by order
    hidden: tuple[Model, ...] = ()

    def __post_init__(self) -> None:
        if any(m.hidden for m in self.models):
            object.__setattr__(self, "hidden", (*self.hidden, *(m for m in self.models if m.hidden)))
            object.__setattr__(self, "models", tuple(m for m in self.models if not m.hidden))

    @property
    def everything(self) -> tuple[Model, ...]:
        """Every model, the hidden ones last."""
        return (*self.models, *self.hidden)

    @cached_property
    def _by_id(self) -> dict[str, Model]:
        return {m.id: m for m in self.everything}

    def model(self, model_id: str) -> Model:
        try:
            return self._by_id[model_id]
        except KeyError:
            raise KeyError(f"no model {model_id!r} in the catalog") from None

    def __contains__(self, model_id: object) -> bool:
        return model_id in self._by_id

    def families(self) -> list[Family]:
        """The families that have something to sell, in menu order."""
        present = {m.family for m in self.models}
        return [f for f in FAMILIES if f.id in present]

    def in_family(self, family: str | Family) -> list[Model]:
        """A family's models, popular first, then by order."""
        wanted = family.id if isinstance(family, Family) else family
        return [m for m in self.models if m.family == wanted]


def same(a: object, b: object) -> bool:
    """Equal and of the same type: KIE tells "5" from 5, and True must not pass for 1."""
    return type(a) is type(b) and a == b


def _best_sku(skus: Iterable[Sku], values: Mapping[str, object], model_id: str) -> Sku:
    matching = [s for s in skus if s.matches(values)]
    if not matching:
        raise LookupError(f"{model_id}: no price for {dict(values)!r}")
    most = max(len(s.when) for s in matching)
    best = [s for s in matching if len(s.when) == most]
    if len(best) > 1:
        raise LookupError(f"{model_id}: {len(best)} prices match {dict(values)!r}")
    return best[0]


@cache
def shipped() -> Catalog:
    """The catalog that ships in the package, loaded once per process."""
    return load()


def load(path: Path | str | None = None) -> Catalog:
    """Read and validate a catalog directory (every *.yaml in it) or one file; the package's own
    catalog/models/ by default. Raises CatalogError listing every problem."""
    root = Path(path) if path is not None else MODELS_DIR
    files = sorted(root.glob("*.yaml")) if root.is_dir() else [root]
    problems: list[str] = []
    documents: list[tuple[str, dict[str, Any]]] = []
    if not files:
        problems.append(f"{root}: no catalog files (*.yaml)")
    for file in files:
        try:
            data = yaml.load(file.read_text(encoding="utf-8"), Loader=_StrictLoader)
        except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
            problems.append(f"{file.name}: cannot be read: {' '.join(str(exc).split())}")
            continue
        if not isinstance(data, dict):
            problems.append(f"{file.name}: must be a mapping with a `models` list")
            continue
        for key in sorted(set(data) - FILE_KEYS, key=str):
            problems.append(f"{file.name}: unknown key {key!r} (known: {', '.join(sorted(FILE_KEYS))})")
        documents.append((file.name, data))
    reader = _Reader(problems)
    for name, data in documents:
        reader.shared(name, data)
    for name, data in documents:
        reader.models(name, data.get("models"))
    models = reader.finish()
    if problems:
        raise CatalogError(problems)
    return Catalog(models)


# libyaml's parser when present (5x faster: the catalog is read at every start), the safe constructor either way
_SafeBase: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _StrictLoader(_SafeBase):  # type: ignore[valid-type,misc]  # a base chosen at import time
    """A safe loader that refuses a key given twice in one mapping (plain YAML keeps the last, silently)."""


def _mapping_without_duplicates(loader: yaml.SafeLoader, node: yaml.MappingNode) -> dict[Any, Any]:
    seen: set[Any] = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node)
        if isinstance(key, str | int | float | bool) and key in seen:
            raise yaml.constructor.ConstructorError(None, None, f"key {key!r} is given twice", key_node.start_mark)
        seen.add(key)
    return loader.construct_mapping(node, deep=True)


_StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _mapping_without_duplicates)


class _Reader:
    """Turns the parsed YAML into the dataclasses, noting every problem instead of stopping at the first."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        self.labels: dict[str, dict[str, Text]] = {}
        self.field_titles: dict[str, Text] = {}
        self.built: list[tuple[Model, int]] = []
        self.seen: dict[str, str] = {}  # model id -> file it was first found in
        self.broken: set[str] = set()  # this model's fields already reported: no second line about them
        self.position = 0

    def note(self, where: str, problem: str) -> None:
        self.problems.append(f"{where}: {problem}")

    # shared labels and titles

    def shared(self, file: str, data: Mapping[str, Any]) -> None:
        labels = data.get("labels", {})
        if not isinstance(labels, dict):
            self.note(file, "labels must map a label set to {value: {ru, en}}")
        else:
            for set_name, values in labels.items():
                if not isinstance(values, dict):
                    self.note(file, f"labels {set_name!r} must map values to {{ru, en}}")
                    continue
                target = self.labels.setdefault(str(set_name), {})
                for value, text in values.items():
                    parsed = self.text(f"{file}: labels {set_name!r} {value!r}", text, TITLE_MAX)
                    if parsed is not None:
                        target[str(value)] = parsed
        titles = data.get("field_titles", {})
        if not isinstance(titles, dict):
            self.note(file, "field_titles must map a field name to {ru, en}")
        else:
            for name, text in titles.items():
                parsed = self.text(f"{file}: field_titles {name!r}", text, TITLE_MAX)
                if parsed is not None:
                    self.field_titles[str(name)] = parsed

    def text(self, where: str, raw: object, longest: int) -> Text | None:
        if not isinstance(raw, dict) or set(raw) != set(LANGUAGES):
            self.note(where, f"must be {{ru: ..., en: ...}}, got {raw!r}")
            return None
        for language in LANGUAGES:
            value = raw[language]
            if not isinstance(value, str) or not value.strip():
                self.note(where, f"{language} must be a non-empty string")
                return None
            if "\n" in value.strip() or len(value) > longest:
                self.note(where, f"{language} must be one line of at most {longest} characters")
                return None
        return Text(ru=raw["ru"].strip(), en=raw["en"].strip())

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

    def fields(self, where: str, raw: object) -> tuple[Field, ...]:
        if not isinstance(raw, list) or not raw:
            if raw is not None:
                self.note(where, "fields must be a non-empty list")
            return ()
        built: list[Field] = []
        self.broken = set()
        for index, entry in enumerate(raw):
            name = entry.get("name") if isinstance(entry, dict) else None
            here = f"{where}: field {name!r}" if isinstance(name, str) else f"{where}: fields[{index}]"
            if any(f.name == name for f in built):
                self.note(here, "is given twice")
                continue
            item = self.field(here, entry)
            if item is not None:
                built.append(item)
            elif isinstance(name, str):
                self.broken.add(name)
        return tuple(built)

    def field(self, where: str, raw: object) -> Field | None:
        if not isinstance(raw, dict):
            self.note(where, "must be a mapping")
            return None
        bad = len(self.problems)
        name, kind = raw.get("name"), raw.get("kind")
        if not isinstance(name, str) or not NAME_RE.fullmatch(name):
            self.note(where, f"name must be KIE's input name (snake_case), got {name!r}")
        if kind not in KINDS:
            self.note(where, f"unknown kind {kind!r} (known: {', '.join(KINDS)})")
            return None
        for key in sorted(set(raw) - FIELD_COMMON - FIELD_KEYS[kind], key=str):
            self.note(where, f"unknown key {key!r} for a {kind} field")
        required, ask = raw.get("required", False), raw.get("ask", kind not in ("json", "parent"))
        if not isinstance(required, bool) or not isinstance(ask, bool):
            self.note(where, "required and ask must be true or false")
            return None
        if kind == "json" and ask:
            self.note(where, "a json field cannot be asked: set ask: false and give it a default")
        if kind == "parent" and ask:
            self.note(where, "a parent field is never asked: its value comes from the parent's result")
        default = raw.get("default")
        title = None
        if "title" in raw:
            title = self.text(f"{where}: title", raw["title"], TITLE_MAX)
        elif isinstance(name, str):
            title = self.field_titles.get(name)
        if ask and title is None and "title" not in raw:
            self.note(where, "has no title for the wizard's question: give it one or add it to field_titles")
        item = Field(name=str(name), kind=kind, title=title, required=required, ask=ask, default=default)
        if kind in ("prompt", "text"):
            item = self.text_field(where, raw, item)
        elif kind == "enum":
            item = self.enum_field(where, raw, item)
        elif kind == "bool":
            if default is not None and not isinstance(default, bool):
                self.note(where, f"default must be true or false, got {default!r}")
        elif kind in ("int", "float"):
            item = self.number_field(where, raw, item)
        elif kind in MEDIA:
            item = self.media_field(where, raw, item)
        elif kind == "task":
            sources = raw.get("sources")
            if not isinstance(sources, list) or not sources or not all(isinstance(s, str) for s in sources):
                self.note(where, "sources must list the model ids whose results may be picked")
            else:
                item = replace(item, sources=tuple(sources))
        elif kind == "parent":
            item = self.parent_field(where, raw, item)
        if kind in (*MEDIA, "task", "parent") and default is not None:
            self.note(where, "a file or an earlier result cannot have a default")
        if required and not (ask and kind != "json") and default is None and kind != "parent":
            self.note(where, "is required, but the wizard cannot ask for it (ask: false) and it has no default")
        if not required and not ask and default is None and kind != "parent":
            self.note(where, "is never asked and has no default, so it is never sent: remove it")
        return item if len(self.problems) == bad else None

    def parent_field(self, where: str, raw: Mapping[str, Any], item: Field) -> Field:
        """`from:` one of catalog.actions.SOURCES or param:<name>, and an optional `map:`."""
        source = parents.parse_source(raw.get("from"))
        if source is None:
            self.note(where, f"from must be one of {', '.join(parents.SOURCES)} or param:<name>, "
                             f"got {raw.get('from')!r}")
        mapping, problem = parents.parse_map(raw.get("map"))
        if problem is not None:
            self.note(where, problem)
        return replace(item, source=source, mapping=mapping)

    def text_field(self, where: str, raw: Mapping[str, Any], item: Field) -> Field:
        longest, shortest, pattern = raw.get("max_length"), raw.get("min_length"), raw.get("pattern")
        if not _whole(longest) or longest < 1:
            self.note(where, "max_length must be a whole number of characters (the wizard checks it)")
            return item
        if shortest is not None and (not _whole(shortest) or not 0 <= shortest <= longest):
            self.note(where, "min_length must be a whole number from 0 to max_length")
        if pattern is not None:
            try:
                re.compile(pattern)
            except (re.error, TypeError) as exc:
                self.note(where, f"pattern is not a regular expression: {exc}")
        default = item.default
        if default is not None and (not isinstance(default, str) or len(default) > longest):
            self.note(where, f"default must be a string of at most {longest} characters")
        return replace(item, max_length=longest, min_length=shortest, pattern=pattern)

    def enum_field(self, where: str, raw: Mapping[str, Any], item: Field) -> Field:
        entries, label_set = raw.get("options"), raw.get("labels", item.name)
        if not isinstance(entries, list) or not entries:
            self.note(where, "options must be a non-empty list")
            return item
        shared = self.labels.get(str(label_set), {})
        options: list[Option] = []
        for entry in entries:
            if isinstance(entry, dict):
                for key in sorted(set(entry) - OPTION_KEYS, key=str):
                    self.note(where, f"unknown key {key!r} in an option")
                value = entry.get("value")
                label = self.text(f"{where}: option {value!r}", {k: entry.get(k) for k in LANGUAGES}, TITLE_MAX)
            else:
                value = entry
                label = shared.get(str(value))
                if label is None:
                    self.note(where, f"enum value {value!r} has no label (give {{value, ru, en}} or add it to "
                                     f"labels {label_set!r})")
            if not isinstance(value, str | int | float) or isinstance(value, bool):
                self.note(where, f"an option value must be a string or a number, got {value!r}")
                continue
            if any(same(o.value, value) for o in options):
                self.note(where, f"option {value!r} is given twice")
            elif label is not None:
                options.append(Option(value, label))
        if item.default is not None and not any(same(o.value, item.default) for o in options):
            self.note(where, f"default {item.default!r} is not one of the options")
        return replace(item, options=tuple(options))

    def number_field(self, where: str, raw: Mapping[str, Any], item: Field) -> Field:
        lo, hi, default = raw.get("min"), raw.get("max"), item.default
        whole = item.kind == "int"
        for label, value in (("min", lo), ("max", hi), ("default", default)):
            if value is not None and not (_whole(value) if whole else _number(value)):
                self.note(where, f"{label} must be a {'whole number' if whole else 'number'}, got {value!r}")
                return item
        if item.ask and (lo is None or hi is None):
            self.note(where, "an asked number needs min and max (the wizard checks them)")
        if lo is not None and hi is not None and lo > hi:
            self.note(where, "min is above max")
        if default is not None and ((lo is not None and default < lo) or (hi is not None and default > hi)):
            self.note(where, f"default {default!r} is outside min..max")
        return replace(item, minimum=lo, maximum=hi)

    def media_field(self, where: str, raw: Mapping[str, Any], item: Field) -> Field:
        array = raw.get("array", False)
        if not isinstance(array, bool):
            self.note(where, "array must be true or false")
            return item
        low, high = raw.get("min_items", 1), raw.get("max_items", 1)
        if not _whole(low) or not _whole(high) or not 1 <= low <= high:
            self.note(where, "min_items and max_items must be whole numbers, 1 <= min_items <= max_items")
        elif not array and high != 1:
            self.note(where, "max_items needs array: true (KIE takes a single URL here)")
        megabytes, mime = raw.get("max_mb"), raw.get("mime")
        if not _number(megabytes) or megabytes <= 0:
            self.note(where, "max_mb must be a positive number (the wizard checks the size)")
            megabytes = 0
        if (not isinstance(mime, list) or not mime
                or not all(isinstance(m, str) and m.startswith(item.kind + "/") for m in mime)):
            self.note(where, f"mime must list {item.kind}/... types")
            mime = []
        longest, side = raw.get("max_seconds"), raw.get("max_side")
        if longest is not None and (not _number(longest) or longest <= 0):
            self.note(where, "max_seconds must be a positive number")
            longest = None
        if side is not None and (not _whole(side) or side < 1):
            self.note(where, "max_side must be a whole number of pixels")
            side = None
        speech = self.speech(where, raw["speak"], longest, array) if "speak" in raw else None
        return replace(item, array=array, min_items=low if _whole(low) else 1, max_items=high if _whole(high) else 1,
                       max_bytes=int(Decimal(str(megabytes)) * 1_000_000), mime=tuple(mime), max_seconds=longest,
                       max_side=side, speak=speech)

    def speech(self, where: str, raw: object, longest: object, array: object) -> Speech | None:
        """An audio field's `speak: {model, chars_per_second, voice?}`; the model is checked in finish()."""
        if not isinstance(raw, dict):
            self.note(where, "speak must be {model: <a text-to-speech model id>, chars_per_second: <number>}")
            return None
        for key in sorted(set(raw) - SPEAK_KEYS, key=str):
            self.note(where, f"unknown key {key!r} in speak")
        model, rate, voice = raw.get("model"), raw.get("chars_per_second"), raw.get("voice")
        ok = True
        if not isinstance(model, str) or not ID_RE.fullmatch(model):
            self.note(where, f"speak.model must be a model id, got {model!r}")
            ok = False
        if not _number(rate) or rate <= 0:
            self.note(where, "speak.chars_per_second must be a positive number (it estimates the seconds)")
            ok = False
        if voice is not None and (not isinstance(voice, str | int | float) or isinstance(voice, bool)):
            self.note(where, f"speak.voice must be one of the speech model's voices, got {voice!r}")
            ok = False
        if longest is None:
            self.note(where, "speak needs max_seconds: a text is refused when it would play longer")
            ok = False
        if array:
            self.note(where, "speak goes with a single audio (array: false)")
            ok = False
        if not ok:
            return None
        assert isinstance(model, str) and _number(rate)
        return Speech(model=model, chars_per_second=Decimal(repr(rate)) if isinstance(rate, float) else Decimal(rate),
                      voice=voice)

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
                    _number(v) or (isinstance(v, str) and _decimal(v) is not None) for v in target.values()))):
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


def _whole(value: object) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool)


def _number(value: object) -> TypeGuard[int | float]:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _decimal(raw: object) -> Decimal | None:
    try:
        return Decimal(raw) if isinstance(raw, str) else None
    except InvalidOperation:
        return None


def _credits(raw: object) -> Decimal | None:
    """Credits as an exact decimal: a YAML 6.5 is read through its shortest form, "104.5" as written."""
    if isinstance(raw, bool):
        return None
    value = (Decimal(repr(raw)) if isinstance(raw, float) else Decimal(raw) if isinstance(raw, int)
             else _decimal(raw))
    if value is None or not value.is_finite() or value <= 0:
        return None
    return value

