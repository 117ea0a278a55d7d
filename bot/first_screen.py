"""What a newcomer reads first: the greeting under /start, /help, and the bot's profile in
Telegram (its command list, description and short description, set by the leader at start).

They say what the user already has (the welcome bonus or their balance, the free generations
left today), what things cost "from" (the cheapest price of each kind, through bot/prices.py's
one rule, so it agrees with the model lists and the confirmation), and how to start and to pay.
"""

from __future__ import annotations

from dataclasses import dataclass

from aiogram.types import User

from bot.prices import lowest
from bot.replies import name_of
from bot.services import Services
from bot.texts import money, t
from catalog.model import Catalog
from config import Settings
from ingest.turns import away
from store import jobs, standing

# what "from" is quoted for, and the families it is the cheapest of: what people come to create
# (an upscale or a one-second avatar is cheaper, but it is not what "a video from" promises)
KINDS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("image", ("text_to_image", "image_edit")),
    ("video", ("text_to_video", "image_to_video")),
    ("audio", ("audio",)),
)
COMMANDS = ("start", "help", "models", "balance", "topup", "subscribe", "promo", "invite", "history", "language",
            "cancel", "paysupport", "terms", "privacy")
PROFILE_LANGUAGES = (("", "ru"), ("en", "en"))  # Telegram's language_code ("" = everyone else) -> ours
DESCRIPTION_MOST, SHORT_DESCRIPTION_MOST = 512, 120  # Telegram's limits

_cheapest: dict[tuple[int, int, float], dict[str, int]] = {}


def cheapest(settings: Settings, catalog: Catalog) -> dict[str, int]:
    """Kind -> the lowest price in kopecks of its families' models (computed once per catalog and
    price rule: /start is most of the traffic)."""
    key = (id(catalog), settings.price_kopecks_per_credit, settings.price_markup)
    found = _cheapest.get(key)
    if found is None:
        found = {}
        for kind, families in KINDS:
            lows = [lowest(settings, m).low for m in catalog.models if m.family in families]
            if lows:
                found[kind] = min(lows)
        _cheapest[key] = found
    return found


def prices_from(lang: str, settings: Settings, catalog: Catalog) -> str:
    """"картинка от 1 ₽, видео от 7 ₽, звук от 1 ₽"."""
    return ", ".join(t(lang, f"price_kind_{kind}", price=money(lang, kopecks))
                     for kind, kopecks in cheapest(settings, catalog).items())


def has_free_tier(settings: Settings, catalog: Catalog) -> bool:
    return settings.free_daily_limit > 0 and any(sku.free for m in catalog.models for sku in m.skus)


async def free_left(services: Services, user_id: int) -> int:
    settings = services.settings
    used = await jobs.free_used(services.database, settings.bot_id, user_id, jobs.local_day(settings.zone))
    return max(0, settings.free_daily_limit - used)


async def greeting(services: Services | None, user: User | None, lang: str, *, first_contact: bool = False) -> str:
    """/start's text, 4-6 short lines: hello, the bonus or balance, free today, prices from, how to start."""
    lines = [t(lang, "welcome", name=name_of(user, lang))]
    if services is None or user is None:  # the conversation without the product (tests, no database)
        return "\n".join([*lines, t(lang, "welcome_choose")])
    settings = services.settings
    if first_contact:  # this update opened the account: the bonus is all it holds, no job is made yet
        available, used = settings.welcome_bonus, 0
    else:
        # read without a turn (ingest/turns.py): the answer's send gives it away right after anyway,
        # and at 4 turns a known user's /start held one through this round trip
        async with away():
            available, used = await standing.read(services.database, settings.bot_id, user.id,
                                                 jobs.local_day(settings.zone))
    if first_contact and settings.welcome_bonus > 0:
        lines.append(t(lang, "welcome_bonus", bonus=money(lang, settings.welcome_bonus)))
    elif available > 0:
        lines.append(t(lang, "welcome_balance", balance=money(lang, available)))
    if has_free_tier(settings, services.catalog):
        left = max(0, settings.free_daily_limit - used)
        lines.append(t(lang, "welcome_free", left=left, limit=settings.free_daily_limit) if left
                     else t(lang, "welcome_free_used", limit=settings.free_daily_limit))
    prices = prices_from(lang, settings, services.catalog)
    if prices:
        lines.append(t(lang, "welcome_prices", prices=prices))
    lines.append(t(lang, "welcome_how"))
    return "\n".join(lines)


async def help_text(services: Services | None, user_id: int | None, lang: str) -> str:
    """/help: how to start, the free tier, prices from, how to pay, then the other commands."""
    lines = [t(lang, "help_intro"), "", t(lang, "help_start")]
    if services is not None and user_id is not None and has_free_tier(services.settings, services.catalog):
        lines.append(t(lang, "help_free", limit=services.settings.free_daily_limit,
                       left=await free_left(services, user_id)))
    prices = prices_from(lang, services.settings, services.catalog) if services is not None else ""
    lines.append(t(lang, "help_prices", prices=prices) if prices else t(lang, "help_exact"))
    lines.append(t(lang, "help_pay"))
    if services is not None and services.settings.payment_transfer_details:
        lines.append(t(lang, "help_transfer"))
    lines += ["", t(lang, "help_commands")]
    return "\n".join(lines)


@dataclass(frozen=True, slots=True)
class Profile:
    """What Telegram shows of the bot for one language_code: the "/" menu, the empty chat's
    "What can this bot do?" and the profile page's line."""

    language_code: str
    commands: tuple[tuple[str, str], ...]
    description: str
    short_description: str


def profile(settings: Settings, catalog: Catalog) -> list[Profile]:
    """The bot's profile in Russian (the default for every language) and English."""
    out = []
    for code, lang in PROFILE_LANGUAGES:
        prices = prices_from(lang, settings, catalog)
        free = t(lang, "profile_free", limit=settings.free_daily_limit) if has_free_tier(settings, catalog) else ""
        description = t(lang, "profile_description", prices=prices, free=free)[:DESCRIPTION_MOST]
        short = t(lang, "profile_short_description", prices=prices)
        if len(short + t(lang, "profile_short_how")) <= SHORT_DESCRIPTION_MOST:  # a sentence dropped, not cut
            short += t(lang, "profile_short_how")
        short = short[:SHORT_DESCRIPTION_MOST]
        commands = tuple((name, t(lang, f"cmd_{name}")) for name in COMMANDS)
        out.append(Profile(code, commands, description, short))
    return out
