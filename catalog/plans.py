"""Subscription plans: what a 30-day subscription for Telegram Stars costs and gives, read from
catalog/plans.yaml (SUBSCRIPTION_PLANS) and validated whole at start like the catalog.

A plan gives a monthly credit to the balance, a daily allowance of free generations of listed
models, and a discount on paid generations. Every problem is reported together, one line each
(catalog.loader.CatalogError): a wrong plan must never reach a user as a wrong price, and a
price over Telegram's cap would only fail when a user presses Buy.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

import yaml

from catalog.families import Text
from catalog.loader import CatalogError, _StrictLoader
from catalog.model import Catalog

PLANS_FILE = Path(__file__).with_name("plans.yaml")
PLAN_KEYS = {"id", "title", "description", "stars", "monthly_credit", "daily", "discount"}
PLAN_REQUIRED = ("id", "title", "stars")
ID_RE = re.compile(r"[a-z0-9][a-z0-9_-]{0,31}")  # goes into callback data (sub:buy:<id>), so short
STARS_MAX = 10_000  # Telegram: "Subscription price must no exceed 10000 Telegram Stars"
DISCOUNT_MAX = 90
TITLE_MAX, DESCRIPTION_MAX = 32, 200  # a title is the invoice's title (1-32 characters)
COUNT_MAX = 1_000


@dataclass(frozen=True)
class Plan:
    id: str
    title: Text
    description: Text
    stars: int  # per 30 days
    monthly_credit: int = 0  # kopecks credited at each payment
    daily: Mapping[str, int] = field(default_factory=dict)  # model id -> free generations a day
    discount: int = 0  # percent off paid generations

    def daily_json(self) -> dict[str, int]:
        return dict(self.daily)


@dataclass(frozen=True)
class Plans:
    plans: tuple[Plan, ...]

    def get(self, plan_id: str) -> Plan | None:
        return next((p for p in self.plans if p.id == plan_id), None)

    def __iter__(self) -> Any:
        return iter(self.plans)

    def __len__(self) -> int:
        return len(self.plans)


def load(path: Path | str | None = None, catalog: Catalog | None = None) -> Plans:
    """Read and validate the plans file (catalog/plans.yaml by default); with `catalog`, the daily
    allowance's model ids must be in it. A missing file means no plans (subscriptions off).
    Raises CatalogError listing every problem."""
    file = Path(path) if path is not None else PLANS_FILE
    if not file.exists():
        return Plans(())
    problems: list[str] = []
    try:
        data = yaml.load(file.read_text(encoding="utf-8"), Loader=_StrictLoader)
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise CatalogError([f"{file.name}: cannot be read: {' '.join(str(exc).split())}"]) from None
    if data is None:
        return Plans(())
    if not isinstance(data, dict) or not isinstance(data.get("plans", []), list):
        raise CatalogError([f"{file.name}: must be a mapping with a `plans` list"])
    for key in sorted(set(data) - {"plans"}, key=str):
        problems.append(f"{file.name}: unknown key {key!r} (known: plans)")
    plans: list[Plan] = []
    seen: set[str] = set()
    for index, raw in enumerate(data.get("plans") or []):
        plan = _plan(f"{file.name}: plans[{index}]", raw, catalog, problems)
        if plan is None:
            continue
        if plan.id in seen:
            problems.append(f"{file.name}: plan {plan.id!r} is defined twice")
            continue
        seen.add(plan.id)
        plans.append(plan)
    if problems:
        raise CatalogError(problems)
    return Plans(tuple(plans))


def _whole(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _text(where: str, raw: object, longest: int, problems: list[str]) -> Text | None:
    if not isinstance(raw, dict) or set(raw) != {"ru", "en"} or not all(
            isinstance(v, str) and v.strip() for v in raw.values()):
        problems.append(f"{where}: must be {{ru: ..., en: ...}} with both texts non-empty")
        return None
    if any(len(v.strip()) > longest for v in raw.values()):
        problems.append(f"{where}: longer than {longest} characters")
        return None
    return Text(ru=raw["ru"].strip(), en=raw["en"].strip())


def _plan(where: str, raw: object, catalog: Catalog | None, problems: list[str]) -> Plan | None:
    if not isinstance(raw, dict):
        problems.append(f"{where}: must be a mapping")
        return None
    before = len(problems)
    for key in sorted(set(raw) - PLAN_KEYS, key=str):
        problems.append(f"{where}: unknown key {key!r} (known: {', '.join(sorted(PLAN_KEYS))})")
    for key in PLAN_REQUIRED:
        if key not in raw:
            problems.append(f"{where}: `{key}` is required")
    plan_id = raw.get("id")
    if "id" in raw and not (isinstance(plan_id, str) and ID_RE.fullmatch(plan_id)):
        problems.append(f"{where}: id {plan_id!r} must match {ID_RE.pattern}")
    else:
        where = f"{where} ({plan_id})"
    title = _text(f"{where}: title", raw.get("title"), TITLE_MAX, problems) if "title" in raw else None
    description = (_text(f"{where}: description", raw["description"], DESCRIPTION_MAX, problems)
                   if "description" in raw else title)
    stars = raw.get("stars")
    if "stars" in raw and not (isinstance(stars, int) and _whole(stars) and 1 <= stars <= STARS_MAX):
        problems.append(f"{where}: stars must be a whole number of Stars from 1 to {STARS_MAX}, got {stars!r}")
    credit = raw.get("monthly_credit", 0)
    if not (_whole(credit) and credit >= 0):
        problems.append(f"{where}: monthly_credit must be whole kopecks >= 0, got {credit!r}")
    discount = raw.get("discount", 0)
    if not (_whole(discount) and 0 <= discount <= DISCOUNT_MAX):
        problems.append(f"{where}: discount must be a whole percent from 0 to {DISCOUNT_MAX}, got {discount!r}")
    daily_raw = raw.get("daily") or {}
    daily: dict[str, int] = {}
    if not isinstance(daily_raw, dict):
        problems.append(f"{where}: daily must be a mapping of model id to a count a day")
    else:
        for model_id, count in daily_raw.items():
            if not isinstance(model_id, str) or (catalog is not None and model_id not in catalog):
                problems.append(f"{where}: daily: {model_id!r} is not a model of the catalog")
            elif not (_whole(count) and 1 <= count <= COUNT_MAX):
                problems.append(f"{where}: daily: {model_id}: the count must be from 1 to {COUNT_MAX}, got {count!r}")
            else:
                daily[model_id] = count
    if len(problems) > before or title is None or description is None:
        return None
    if not (credit or daily or discount):
        problems.append(f"{where}: gives nothing (no monthly_credit, daily or discount)")
        return None
    assert isinstance(plan_id, str) and isinstance(stars, int) and isinstance(credit, int)
    assert isinstance(discount, int)
    return Plan(plan_id, title, description, stars, credit, MappingProxyType(daily), discount)
