"""Texts of issue 19's avatar part: a typed text the bot speaks at a talking avatar's audio step
(bot/speak.py)."""

from __future__ import annotations

TEXTS: dict[str, dict[str, str]] = {
    "ru": {
        "ask_speak": "Или напишите текст (до {most} символов) — бот озвучит его сам, озвучка входит в цену.",
        "speak_too_long": "Текст для озвучки слишком длинный: {got} символов — это около {seconds} с, а здесь можно "
                          "не больше {limit} с (до {most} символов). Сократите, пожалуйста.",
        "value_spoken": "озвучка текста {text}, около {seconds} с",
    },
    "en": {
        "ask_speak": "Or type a text (up to {most} characters): the bot will speak it itself, the voice-over is "
                     "in the price.",
        "speak_too_long": "The text to speak is too long: {got} characters, about {seconds} s, and at most {limit} s "
                          "fit here (up to {most} characters). Please shorten it.",
        "value_spoken": "your text spoken, {text}, about {seconds} s",
    },
}
