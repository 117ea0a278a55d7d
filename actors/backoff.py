"""Exponential delay with jitter: the supervisor's restart backoff and the retry pace of actors
that call flaky services (Telegram, KIE), so a dead dependency never becomes a hot loop."""

from __future__ import annotations

import random
from dataclasses import dataclass


@dataclass(frozen=True)
class Backoff:
    """Exponential restart delay with jitter; the streak resets after a quiet period."""

    min: float = 0.05
    max: float = 10.0
    factor: float = 2.0
    jitter: float = 0.2
    reset_after: float = 30.0

    def delay(self, streak: int) -> float:
        if streak <= 0 or self.max <= 0:
            return 0.0
        try:
            base = min(self.max, self.min * self.factor ** (streak - 1))
        except OverflowError:  # a crash loop long enough to outgrow floats is long past the cap
            base = self.max if self.min > 0 else 0.0
        return max(0.0, min(self.max, base * (1 + random.uniform(-self.jitter, self.jitter))))
