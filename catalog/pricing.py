"""What a user pays: KIE credits turned into kopecks, one rule for every screen.

The price is credits x PRICE_KOPECKS_PER_CREDIT x PRICE_MARKUP, rounded up to whole rubles. It is
computed with exact fractions, never floats: 7.5 credits x 50 x 2.0 must be 750 kopecks, not
749.9999, or the price would drift a ruble between the menu and the receipt.
"""

from __future__ import annotations

from decimal import Decimal
from fractions import Fraction

KOPECKS_PER_RUBLE = 100


def _exact(value: Decimal | Fraction | int | float | str) -> Fraction:
    """A float is read through its shortest decimal form (2.0 -> "2.0"), the number a person typed."""
    if isinstance(value, float):
        return Fraction(Decimal(repr(value)))
    return Fraction(value)


def user_price_kopecks(credits: Decimal | Fraction | int | str, kopecks_per_credit: int,
                       markup: Decimal | Fraction | float | str) -> int:
    """The user's price in kopecks: a whole number of rubles, never below our cost.

    Zero credits cost nothing; anything above zero costs at least one ruble.
    """
    amount = _exact(credits) * kopecks_per_credit * _exact(markup)
    if amount < 0 or kopecks_per_credit < 1 or _exact(markup) < 1:
        raise ValueError("credits must be >= 0, kopecks_per_credit >= 1 and markup >= 1")
    rubles = -(-amount // KOPECKS_PER_RUBLE)  # ceiling division, exact on Fractions
    return int(rubles) * KOPECKS_PER_RUBLE


class Pricing:
    """The two settings bound once (from config: PRICE_KOPECKS_PER_CREDIT, PRICE_MARKUP), so every
    screen, the confirmation and the ledger turn credits into the same kopecks."""

    def __init__(self, kopecks_per_credit: int, markup: Decimal | Fraction | float | str) -> None:
        user_price_kopecks(0, kopecks_per_credit, markup)  # refuses bad settings now, not at the first sale
        self.kopecks_per_credit = kopecks_per_credit
        self.markup = markup

    def kopecks(self, credits: Decimal | Fraction | int | str) -> int:
        return user_price_kopecks(credits, self.kopecks_per_credit, self.markup)
