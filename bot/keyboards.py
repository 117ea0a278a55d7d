"""Inline keyboards, built from the texts catalog so every label follows the user's language.

Callback data are short stable ids ("menu:image"): they outlive deploys inside old messages, so
a renamed button must keep its id.
"""

from __future__ import annotations

from aiogram.types import InlineKeyboardButton, InlineKeyboardMarkup

from bot.texts import t

MENU_OPEN = "menu:open"
MENU_IMAGE = "menu:image"
MENU_VIDEO = "menu:video"
MENU_BALANCE = "menu:balance"
MENU_HISTORY = "menu:history"
MENU_HELP = "menu:help"


def _button(lang: str, key: str, data: str) -> InlineKeyboardButton:
    return InlineKeyboardButton(text=t(lang, key), callback_data=data)


def main_menu(lang: str) -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup(inline_keyboard=[
        [_button(lang, "btn_image", MENU_IMAGE), _button(lang, "btn_video", MENU_VIDEO)],
        [_button(lang, "btn_balance", MENU_BALANCE), _button(lang, "btn_history", MENU_HISTORY)],
        [_button(lang, "btn_help", MENU_HELP)],
    ])


def menu_button(lang: str) -> InlineKeyboardMarkup:
    """One "Menu" button: under help, apologies and anything that is not itself the menu."""
    return InlineKeyboardMarkup(inline_keyboard=[[_button(lang, "btn_menu", MENU_OPEN)]])
