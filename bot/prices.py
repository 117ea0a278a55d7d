"""Prices as the screens show them, all through catalog/pricing.py's one rule, so the list's
"from", the model card, the confirmation and the hold agree to the kopeck.

A price that depends on a length (seconds of a video, characters of a text) is a range until the
user has sent it: from the shortest billable length to the longest the field allows.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from catalog.model import Model, Value
from catalog.payload import media_seconds
from catalog.pricing import user_price_kopecks
from config import Settings


def kopecks(settings: Settings, credits: Decimal) -> int:
    return user_price_kopecks(credits, settings.price_kopecks_per_credit, settings.price_markup)


def combinations(model: Model) -> list[dict[str, Value]]:
    """Every choice of the price-setting fields that KIE accepts (one empty choice when none set it)."""
    names = model.price_fields
    out = []
    for combo in itertools.product(*(model.field(n).values() for n in names)):
        values = dict(zip(names, combo, strict=True))
        if not model.forbidden(values):
            out.append(values)
    return out


@dataclass(frozen=True, slots=True)
class Range:
    """Kopecks: `low` for the shortest billable input, `high` for the longest."""

    low: int
    high: int
    free: bool  # the SKU is on the free tier


def price_range(settings: Settings, model: Model, values: Mapping[str, Any]) -> Range:
    """The price of one choice of the price fields, before the user's text or files are known."""
    sku = model.sku_for(values)
    if sku.unit == "task" or sku.of is None:
        price = kopecks(settings, model.credits(values))
        return Range(price, price, sku.free)
    metered = model.field(sku.of)
    if sku.unit == "1000_chars":
        low = model.credits({**values, metered.name: "x"})
        high = model.max_credits(values)
    elif metered.media:
        low = model.credits(values, {metered.name: 1})
        high = model.max_credits(values)
    elif metered.name in values:
        low = high = model.credits(values)
    else:
        lengths = list(metered.values()) or [v for v in (metered.minimum, metered.maximum) if v is not None]
        each = [model.credits({**values, metered.name: n}) for n in lengths
                if not model.forbidden({**values, metered.name: n})]
        low, high = min(each), max(each)
    return Range(kopecks(settings, low), kopecks(settings, high), sku.free)


def lowest(settings: Settings, model: Model) -> Range:
    """The list's "from": the cheapest choice; free when any choice is on the free tier."""
    ranges = [price_range(settings, model, values) for values in combinations(model)]
    return Range(min(r.low for r in ranges), min(r.high for r in ranges), any(r.free for r in ranges))


def exact(settings: Settings, model: Model, payload: Mapping[str, Any]) -> int:
    """The price of the job's input (catalog.payload.build), the lengths of the user's files and
    texts included: the one the confirmation shows and Confirm holds."""
    return kopecks(settings, model.credits(payload, media_seconds(model, payload)))


def sku_name(model: Model, payload: Mapping[str, Any]) -> str:
    """The SKU as the job records it: the values that priced it ("resolution=4K"), or "base"."""
    sku = model.sku_for(payload)
    name = ",".join(f"{k}={v}" for k, v in sku.when.items()) or "base"
    return name if sku.unit == "task" else f"{name}/{sku.unit}"
