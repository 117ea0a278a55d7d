"""Texts of choosing a model (issue 19): the list's order, the card's typical time, what the
resolution words mean, the one price of a card with one price, the family's sample.

The resolution explanations are keyed by option value, lower case: "res_<value>" (1K, 720p,
the bare 1080 of an output_resolution...); a value with no key is simply not explained.
"""

from __future__ import annotations

TEXTS: dict[str, dict[str, str]] = {
    "ru": {
        "btn_sort_p": "⭐ Сначала популярные",
        "btn_sort_c": "💸 Сначала дешёвые",
        "family_header_cheap": "{family}: выберите модель, сначала дешёвые. 🎁 — есть бесплатные генерации, "
                               "⭐ — популярная.",
        "card_price_one": "Цена: {price}",
        "card_time_measured": "⏱ Обычно готово за {time} (по последним генерациям).",
        "card_time_estimate": "⏱ Обычно готово примерно за {time}.",
        "time_seconds": "{n} с",
        "time_minutes": "{n} мин",
        "card_resolution": "📐 Что значит разрешение:",
        "res_1k": "1K ≈ 1024 пикселя по длинной стороне — для экрана телефона и соцсетей",
        "res_2k": "2K ≈ 2048 пикселей — чётко на мониторе, можно немного обрезать",
        "res_4k": "4K ≈ 4096 пикселей — для печати и больших экранов",
        "res_480p": "480p — 854×480, как черновик: мелкие детали размыты",
        "res_512p": "512p — около 512 пикселей по короткой стороне, черновик",
        "res_580p": "580p — чуть лучше 480p",
        "res_720p": "720p — 1280×720 (HD), хорошо смотрится на телефоне",
        "res_768p": "768p — чуть лучше 720p",
        "res_720": "720 — 1280×720 (HD), хорошо смотрится на телефоне",
        "res_1080p": "1080p — 1920×1080 (Full HD), чётко и на большом экране",
        "res_1080": "1080 — 1920×1080 (Full HD), чётко и на большом экране",
        "btn_sample": "👀 Пример",
        "sample_caption": "👀 «{family}»: так примерно выглядит результат. Это иллюстрация, нарисованная "
                          "заранее, а не работа модели.",
        "sample_missing": "Для этого раздела пока нет примера.",
    },
    "en": {
        "btn_sort_p": "⭐ Popular first",
        "btn_sort_c": "💸 Cheapest first",
        "family_header_cheap": "{family}: pick a model, cheapest first. 🎁 has free generations, ⭐ is popular.",
        "card_price_one": "Price: {price}",
        "card_time_measured": "⏱ Usually ready in {time} (recent generations).",
        "card_time_estimate": "⏱ Usually ready in about {time}.",
        "time_seconds": "{n} s",
        "time_minutes": "{n} min",
        "card_resolution": "📐 What the resolution means:",
        "res_1k": "1K ≈ 1024 pixels on the long side: for phone screens and social media",
        "res_2k": "2K ≈ 2048 pixels: sharp on a monitor, room to crop",
        "res_4k": "4K ≈ 4096 pixels: for print and big screens",
        "res_480p": "480p: 854×480, draft-like: fine detail is soft",
        "res_512p": "512p: about 512 pixels on the short side, a draft",
        "res_580p": "580p: a little better than 480p",
        "res_720p": "720p: 1280×720 (HD), looks good on a phone",
        "res_768p": "768p: a little better than 720p",
        "res_720": "720: 1280×720 (HD), looks good on a phone",
        "res_1080p": "1080p: 1920×1080 (Full HD), sharp on a big screen too",
        "res_1080": "1080: 1920×1080 (Full HD), sharp on a big screen too",
        "btn_sample": "👀 Sample",
        "sample_caption": "👀 “{family}”: roughly what the result looks like. This is an illustration drawn "
                          "in advance, not the model's work.",
        "sample_missing": "There is no sample for this section yet.",
    },
}
