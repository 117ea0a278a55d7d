"""The texts of each money-and-shop topic in a module of its own (the same shape as bot/texts.py's
TEXTS: language -> key -> text), merged into TEXTS by bot/texts.py; a key defined twice is an
error at import, so two topics cannot silently override each other."""

from __future__ import annotations

from bot.phrases import admin, broadcast, money, promo, referral, stars, subscription, support, transfer

TOPICS: tuple[dict[str, dict[str, str]], ...] = (
    money.TEXTS, stars.TEXTS, subscription.TEXTS, transfer.TEXTS, referral.TEXTS, promo.TEXTS, admin.TEXTS,
    broadcast.TEXTS, support.TEXTS)
