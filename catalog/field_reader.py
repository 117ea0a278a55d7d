"""Reading one model's inputs from the catalog's YAML: each field kind's keys and rules.

Split from the model-level reading (catalog/model_reader.py) because a field's rules (its kind's
keys, an enum's labels, a number's bounds, a file's size and types, speech, a parent's source)
are a topic of their own and most of the catalog's checks; every problem is noted, not raised.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import replace
from decimal import Decimal, InvalidOperation
from typing import Any, TypeGuard

from catalog import actions as parents
from catalog.families import LANGUAGES, Text
from catalog.model import KINDS, MEDIA, Field, Option, Speech, same

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
NAME_RE = re.compile(r"[a-z][a-zA-Z0-9_]*")  # as KIE spells it: the jobs API snake_case, dedicated ones camelCase
ID_RE = re.compile(r"[a-z0-9][a-z0-9._/-]*")
TITLE_MAX = 48


class FieldReader:
    """Turns a model's `fields` (and the files' shared labels and titles) into Field values, noting
    every problem instead of stopping at the first."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        self.labels: dict[str, dict[str, Text]] = {}
        self.field_titles: dict[str, Text] = {}
        self.broken: set[str] = set()  # this model's fields already reported: no second line about them

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

    # fields

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
        if not is_whole(longest) or longest < 1:
            self.note(where, "max_length must be a whole number of characters (the wizard checks it)")
            return item
        if shortest is not None and (not is_whole(shortest) or not 0 <= shortest <= longest):
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
            if value is not None and not (is_whole(value) if whole else is_number(value)):
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
        if not is_whole(low) or not is_whole(high) or not 1 <= low <= high:
            self.note(where, "min_items and max_items must be whole numbers, 1 <= min_items <= max_items")
        elif not array and high != 1:
            self.note(where, "max_items needs array: true (KIE takes a single URL here)")
        megabytes, mime = raw.get("max_mb"), raw.get("mime")
        if not is_number(megabytes) or megabytes <= 0:
            self.note(where, "max_mb must be a positive number (the wizard checks the size)")
            megabytes = 0
        if (not isinstance(mime, list) or not mime
                or not all(isinstance(m, str) and m.startswith(item.kind + "/") for m in mime)):
            self.note(where, f"mime must list {item.kind}/... types")
            mime = []
        longest, side = raw.get("max_seconds"), raw.get("max_side")
        if longest is not None and (not is_number(longest) or longest <= 0):
            self.note(where, "max_seconds must be a positive number")
            longest = None
        if side is not None and (not is_whole(side) or side < 1):
            self.note(where, "max_side must be a whole number of pixels")
            side = None
        speech = self.speech(where, raw["speak"], longest, array) if "speak" in raw else None
        return replace(item, array=array, min_items=low if is_whole(low) else 1,
                       max_items=high if is_whole(high) else 1, max_bytes=int(Decimal(str(megabytes)) * 1_000_000),
                       mime=tuple(mime), max_seconds=longest, max_side=side, speak=speech)

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
        if not is_number(rate) or rate <= 0:
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
        assert isinstance(model, str) and is_number(rate)
        return Speech(model=model, chars_per_second=Decimal(repr(rate)) if isinstance(rate, float) else Decimal(rate),
                      voice=voice)


def is_whole(value: object) -> TypeGuard[int]:
    """A whole number as YAML gives it (true and false are not 1 and 0)."""
    return isinstance(value, int) and not isinstance(value, bool)


def is_number(value: object) -> TypeGuard[int | float]:
    """A finite number as YAML gives it, not a bool."""
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def to_decimal(raw: object) -> Decimal | None:
    """A string read as an exact decimal, None when it is none."""
    try:
        return Decimal(raw) if isinstance(raw, str) else None
    except InvalidOperation:
        return None
