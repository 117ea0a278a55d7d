"""Texts of issue 19's flood part: the one notice a burst of messages gets (actors/dispatcher.py,
bot/flood.py say when)."""

from __future__ import annotations

TEXTS: dict[str, dict[str, str]] = {
    "ru": {
        "flood_notice": "Слишком много сообщений подряд — я отвечу на последнее.",
    },
    "en": {
        "flood_notice": "That's a lot of messages at once — I'll answer the last one.",
    },
}
