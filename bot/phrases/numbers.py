"""Texts of issue 19's numbers part: a generation named by the user's own number (№1 is their
first), and the balance history's one line per generation (reserved, then paid or returned)."""

from __future__ import annotations

TEXTS: dict[str, dict[str, str]] = {
    "ru": {
        "gen_no": "№{n}",
        "gen_line_reserved": "Генерация №{n} · {model}: {amount} (в резерве)",
        "gen_line_paid": "Генерация №{n} · {model}: {amount} (оплачено)",
        "gen_line_returned": "Генерация №{n} · {model}: {zero}, возвращено",
    },
    "en": {
        "gen_no": "#{n}",
        "gen_line_reserved": "Generation #{n} · {model}: {amount} (reserved)",
        "gen_line_paid": "Generation #{n} · {model}: {amount} (paid)",
        "gen_line_returned": "Generation #{n} · {model}: {zero}, returned",
    },
}
