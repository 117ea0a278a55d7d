"""The catalog's data: models, their inputs and prices, as frozen dataclasses with pure arithmetic.

Kept apart from the YAML reading (catalog/field_reader.py, catalog/model_reader.py, catalog/loader.py)
because every part of the bot uses these types and their price arithmetic, while only the start
reads and validates the files: a reader of a price needs none of the validation rules.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from dataclasses import field as dataclass_field
from decimal import Decimal
from functools import cached_property
from typing import Any

from catalog import actions as parents
from catalog.actions import Action
from catalog.families import FAMILIES, Family, Text

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
SPEAK_KEY = "speak"  # a spoken value: {"speak": text, "tts": model id, "voice": ..., "seconds": estimate}


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

