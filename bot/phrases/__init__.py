"""The texts of each topic in a module of its own (the same shape as bot/texts.py's TEXTS:
language -> key -> text), merged into TEXTS by bot/texts.py; a key defined twice is an error at
import, so two topics cannot silently override each other."""

from __future__ import annotations

from bot.phrases import (
    actions,
    admin,
    avatar,
    broadcast,
    choosing,
    flood,
    intake,
    living,
    money,
    numbers,
    promo,
    referral,
    stars,
    subscription,
    support,
    transfer,
    welcome,
)

TOPICS: tuple[dict[str, dict[str, str]], ...] = (
    money.TEXTS, stars.TEXTS, subscription.TEXTS, transfer.TEXTS, referral.TEXTS, promo.TEXTS, admin.TEXTS,
    broadcast.TEXTS, support.TEXTS, living.TEXTS, intake.TEXTS, numbers.TEXTS, welcome.TEXTS, choosing.TEXTS,
    avatar.TEXTS, flood.TEXTS, actions.TEXTS)
