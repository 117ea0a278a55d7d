"""What a resolution word means to someone who is not a video engineer ("1K ≈ 1024 px", "720p:
1280×720"): one line per option value that has an explanation (bot/phrases/choosing.py, keyed
"res_<value>" in lower case), for the model card and for a step that asks for a resolution."""

from __future__ import annotations

from collections.abc import Iterable

from bot.texts import TEXTS, t


def explain(lang: str, values: Iterable[object]) -> list[str]:
    """The explanations of those of `values` that have one, once each, in their order."""
    out: dict[str, str] = {}
    for value in values:
        key = f"res_{str(value).lower()}"
        if key in TEXTS.get(lang, {}) or key in TEXTS["ru"]:
            out.setdefault(key, t(lang, key))
    return list(out.values())
