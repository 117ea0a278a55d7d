"""Every string a Telegram user sees, in one place: Russian by default, English for English users.

Product issues add their keys here; `t()` falls back to Russian and then to the key itself, so a
missing translation shows something sane instead of failing a handler.
"""

from __future__ import annotations

from typing import Any

DEFAULT = "ru"

TEXTS: dict[str, dict[str, str]] = {
    "ru": {
        "welcome": "Привет, {name}! Я создаю изображения и видео с помощью ИИ.\nВыберите, что сделать:",
        "menu": "Главное меню. Выберите, что сделать:",
        "btn_image": "🎨 Создать изображение",
        "btn_video": "🎬 Создать видео",
        "btn_balance": "💰 Баланс",
        "btn_history": "🗂 Мои генерации",
        "btn_help": "❓ Помощь",
        "btn_menu": "☰ Меню",
        "help": (
            "Я генерирую изображения и видео нейросетями.\n\n"
            "• «Создать изображение» или «Создать видео» — выберите модель и опишите, что нужно.\n"
            "• «Баланс» — сколько осталось и как пополнить.\n"
            "• «Мои генерации» — готовые результаты.\n\n"
            "Команды: /start — меню, /help — эта справка, /cancel — отменить текущее действие."
        ),
        "cancelled": "Действие отменено.",
        "nothing_to_cancel": "Отменять нечего — вы в главном меню.",
        "fallback": "Не понял сообщение. Вот что я умею:",
        "coming_soon": "Этот раздел скоро откроется. А пока вот меню:",
        "apology": "Что-то пошло не так, и мы уже разбираемся. Попробуйте ещё раз из меню. Код: {ref}",
        "updating": "Сервис обновляется, повторите через минуту.",
        "friend": "друг",
    },
    "en": {
        "welcome": "Hi, {name}! I create images and videos with AI.\nWhat would you like to do?",
        "menu": "Main menu. What would you like to do?",
        "btn_image": "🎨 Create an image",
        "btn_video": "🎬 Create a video",
        "btn_balance": "💰 Balance",
        "btn_history": "🗂 My generations",
        "btn_help": "❓ Help",
        "btn_menu": "☰ Menu",
        "help": (
            "I generate images and videos with neural networks.\n\n"
            "• “Create an image” or “Create a video”: pick a model and describe what you want.\n"
            "• “Balance”: what is left and how to top up.\n"
            "• “My generations”: your finished results.\n\n"
            "Commands: /start for the menu, /help for this help, /cancel to cancel what you are doing."
        ),
        "cancelled": "Cancelled.",
        "nothing_to_cancel": "Nothing to cancel: you are in the main menu.",
        "fallback": "I did not understand that. Here is what I can do:",
        "coming_soon": "This section opens soon. Meanwhile, here is the menu:",
        "apology": "Something went wrong and we are looking into it. Please try again from the menu. Ref: {ref}",
        "updating": "The service is updating, please try again in a minute.",
        "friend": "friend",
    },
}


def lang_of(user: Any) -> str:
    """The language for a Telegram user (aiogram User, its JSON dict, or None)."""
    if user is None:
        return DEFAULT
    code = user.get("language_code") if isinstance(user, dict) else getattr(user, "language_code", None)
    if isinstance(code, str) and code.lower().startswith("en"):
        return "en"
    return DEFAULT


def t(lang: str, key: str, **values: Any) -> str:
    """The text for `key` in `lang`, formatted with `values`."""
    template = TEXTS.get(lang, TEXTS[DEFAULT]).get(key) or TEXTS[DEFAULT].get(key) or key
    return template.format(**values) if values else template
