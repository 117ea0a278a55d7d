"""Texts of issue 19's living part: one living message per flow (bot/flow.py, routers/confirm.py,
routers/stale.py)."""

from __future__ import annotations

TEXTS: dict[str, dict[str, str]] = {
    "ru": {
        "confirmed_header": "✅ Подтверждено:",
        "living_continue": "▶️ Продолжить: {model}",
    },
    "en": {
        "confirmed_header": "✅ Confirmed:",
        "living_continue": "▶️ Continue: {model}",
    },
}
