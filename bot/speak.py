"""A typed text at an audio step that speaks text (catalog.model.Speech): the value the wizard
keeps for the field instead of a file, checked against the field's limit, and the lines that tell
the user about it.

Why it exists: a talking avatar needs a voice recording, and most people have a text, not one.
The bot speaks the text with its own speech model in the same job (generation/speech.py); here
the text only becomes a payload.Spoken whose estimated seconds the avatar's per-second price
counts, so the confirmation shows the whole price (the speech's plus the avatar's) before Confirm.

bot/flow.py imports this module (for `shown` and `hint`); the wizard's router takes the value
(bot/routers/wizard.py take_spoken), so this module never imports the wizard.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from bot.inputs import Bad
from bot.texts import t
from catalog.model import SPEAK_KEY, Field, Model, spoken
from catalog.payload import Spoken, spoken_ref

QUOTE = 80  # characters of the text shown back


def speaks(item: Field) -> bool:
    """The step takes a typed text to speak instead of an audio file."""
    return item.kind == "audio" and item.speak is not None and item.max_seconds is not None


def spoken_value(model: Model, item: Field, text: str) -> Spoken | Bad:
    """The value for `item` when the user typed `text` at its step, or why it cannot be one:
    an empty text, a field that takes no text, or a text whose estimated seconds (the catalog's
    chars_per_second, rounded up) are over the field's max_seconds."""
    if not speaks(item):
        return Bad(f"send_file_{item.kind}")
    assert item.speak is not None and item.max_seconds is not None
    value = text.strip()
    if not value:
        return Bad("bad_empty")
    seconds = item.speak.seconds(value)
    if seconds > item.max_seconds:
        return Bad("speak_too_long", {"got": len(value), "seconds": seconds, "limit": int(item.max_seconds),
                                      "most": item.speak.most_characters(item.max_seconds)})
    return spoken_ref(item.speak, value)


def hint(lang: str, item: Field) -> str | None:
    """The line a speaking audio step adds to its question: a text works too, and how long."""
    if not speaks(item):
        return None
    assert item.speak is not None and item.max_seconds is not None
    return t(lang, "ask_speak", most=item.speak.most_characters(item.max_seconds))


def shown(lang: str, value: Any) -> str | None:
    """A spoken value as a screen lists it (the confirmation, Change): the text, quoted, and its
    estimated seconds; None for any other value."""
    said: Mapping[str, Any] | None = spoken(value)
    if said is None:
        return None
    text = str(said[SPEAK_KEY])
    text = text if len(text) <= QUOTE else text[:QUOTE - 1] + "…"
    text = f"“{text}”" if lang == "en" else f"«{text}»"
    return t(lang, "value_spoken", text=text, seconds=int(said.get("seconds") or 0))
