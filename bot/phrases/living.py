"""Texts of issue 19's living part (filled by its owner)."""

from __future__ import annotations

TEXTS: dict[str, dict[str, str]] = {"ru": {}, "en": {}}
