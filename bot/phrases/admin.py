"""Texts of the admin screens (Russian first, English for English users)."""

TEXTS: dict[str, dict[str, str]] = {
    "ru": {
    },
    "en": {
    },
}
