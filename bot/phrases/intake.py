"""Texts of what a user sends with no flow open (bot/routers/intake.py), of the wizard taking a
caption or a text before its file, and of a long message Telegram split (bot/parts.py)."""

from __future__ import annotations

TEXTS: dict[str, dict[str, str]] = {
    "ru": {
        "btn_other_model": "🔄 Другая модель",
    },
    "en": {
        "btn_other_model": "🔄 Change model",
    },
}
