"""Texts of the broadcast screens (Russian first, English for English users)."""

TEXTS: dict[str, dict[str, str]] = {
    "ru": {
    },
    "en": {
    },
}
